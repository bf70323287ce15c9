"""Offline plan: the program for a stack run under the mock engine (no cloud, no Docker, no
credentials), printed as its resource tree with key properties (secrets masked), plus a
diagram of the pipeline as declared.

    scripts/plan [--stack dev|prod] [--diagram FILE] [--readme README.md | --check README.md]

Per-user settings (the Snowflake account of dev) and the secrets a user sets with
`pulumi config set --secret` are stood in for by the test harness's placeholders; generated
values (passwords, keys) come from the mocks. Nothing here reaches a server.
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from components.streams import DEVICE_DEAD_LETTER_TOPIC, SINK_DEAD_LETTER_TOPIC
from devtools.harness import ProgramRun, is_secret, run_program, unwrap

BEGIN, END = "<!-- diagram:begin -->", "<!-- diagram:end -->"
MASK = "[secret]"

KEY_PROPERTIES = {
    "docker:index/container:Container": ("name", "image", "ports", "restart"),
    "docker:index/remoteImage:RemoteImage": ("name",),
    "docker:index/volume:Volume": ("name",),
    "docker:index/network:Network": ("name",),
    "kafka:index/topic:Topic": ("name", "partitions", "replicationFactor", "config"),
    "pulumi-python:dynamic/connect:Connector": ("name", "connect_url", "config"),
    "pulumi-python:dynamic/lenses:Processor": ("name", "environment"),
    "postgresql:index/role:Role": ("name", "login", "password"),
    "postgresql:index/database:Database": ("name", "owner"),
    "snowflake:index/serviceUser:ServiceUser": ("name", "defaultRole", "rsaPublicKey"),
    "pulumi:providers:kafka": ("bootstrapServers", "tlsEnabled", "saslMechanism"),
    "pulumi:providers:postgresql": ("host", "port", "sslmode", "superuser"),
    "pulumi:providers:docker": ("host",),
}
"""Properties worth a reviewer's eye per type; other types show their name only."""


def _show(value) -> str:
    """A property value for one line: secrets masked, long values shortened."""
    if is_secret(value):
        return MASK
    value = unwrap(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dict) and "internal" in value and "external" in value:
        return f"{_show(value['external'])}->{_show(value['internal'])}"
    if isinstance(value, list):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}={_show(v)}" for k, v in value.items()) + "}"
    text = str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _connector_class(resource) -> str:
    """The class of a connector: not a credential, though it sits in the secret config."""
    return str(unwrap(resource.inputs.get("config", {})).get("connector.class", "?"))


def connectors_of(run: ProgramRun) -> dict[str, str]:
    return {str(c.get("name")): _connector_class(c)
            for c in run.of_type("pulumi-python:dynamic/connect:Connector")}


def tree(run: ProgramRun) -> list[str]:
    children: dict[str, list] = {}
    urns = {r.urn for r in run.resources}
    for resource in run.resources:
        parent = resource.parent if resource.parent in urns else ""
        children.setdefault(parent, []).append(resource)
    lines = [f"stack {run.stack}: {len(run.resources)} resources"]

    def walk(parent: str, depth: int) -> None:
        for resource in children.get(parent, []):
            keys = KEY_PROPERTIES.get(resource.type, ("name",))
            shown = [f"{k}={_show(resource.inputs[k])}" for k in keys
                     if k in resource.inputs and k not in ("name", "image")]
            if resource.name + "-image" in images:
                shown.insert(0, f"image={images[resource.name + '-image']}")
            if resource.type == "pulumi-python:dynamic/connect:Connector":
                shown.append(f"class={_connector_class(resource)}")
            flags = " (protect)" if resource.protect else ""
            lines.append(f"{'  ' * depth}- {resource.type} {resource.name}{flags}"
                         + (f": {'; '.join(shown)}" if shown else ""))
            walk(resource.urn, depth + 1)

    images = {i.name: str(i.get("name"))
              for i in run.of_type("docker:index/remoteImage:RemoteImage")}
    walk("", 1)
    return lines


def _kept(retention_ms: int) -> str:
    """retention.ms in the largest whole unit: `30 d`, `12 h`, `forever` for -1."""
    if retention_ms == -1:
        return "forever"
    for unit, ms in (("d", 86_400_000), ("h", 3_600_000), ("min", 60_000), ("s", 1_000)):
        if retention_ms % ms == 0:
            return f"{retention_ms // ms} {unit}"
    return f"{retention_ms} ms"


def diagram(run: ProgramRun) -> str:
    """The pipeline as declared, from the resources themselves."""
    def names(typ: str) -> list[str]:
        return [str(r.get("name")) for r in run.of_type(typ)]

    images = {i.name: str(i.get("name"))
              for i in run.of_type("docker:index/remoteImage:RemoteImage")}
    prefix = f"health-pipeline-{run.stack}-"
    containers = {str(c.get("name")).removeprefix(prefix): c
                  for c in run.of_type("docker:index/container:Container")}

    def where(role: str, fallback: str) -> str:
        container = containers.get(role)
        if container is None:
            return fallback
        # Each container runs the RemoteImage declared beside it as <name>-image.
        return f"container {images.get(container.name + '-image', '?')}"

    outputs = {k: v for k, (v, secret) in run.outputs.items() if not secret}
    source = ", ".join(f"{name} ({cls.rsplit('.', 1)[-1]})" for name, cls in
                       connectors_of(run).items() if "source" in name)
    topics = {str(t.get("name")): t for t in run.of_type("kafka:index/topic:Topic")}
    device = topics.get("device_data")
    dead_letters = (DEVICE_DEAD_LETTER_TOPIC, SINK_DEAD_LETTER_TOPIC)
    derived = sorted(t for t in topics if t != "device_data" and t not in dead_letters)
    connectors = connectors_of(run)
    processors = names("pulumi-python:dynamic/lenses:Processor")
    tables = "INGEST.INGEST" if run.of_type("snowflake:index/schema:Schema") else "(Snowflake off)"

    def topic(t) -> str:
        return f"{int(t.get('partitions'))} partitions, RF {int(t.get('replicationFactor'))}"

    def dead_letter(name: str, what: str) -> list[str]:
        """The dead-letter topic under the connector that writes it, when declared."""
        if name not in topics:
            return []
        retention = int(unwrap(topics[name].get("config"))["retention.ms"])
        return [f"       {what} --> {name} [{topic(topics[name])}, kept {_kept(retention)}]"]

    lines = [
        f"stack {run.stack}",
        f" devices --MQTT QoS 1, user/password--> Mosquitto [{where('mosquitto', 'external')}]"
        f" {outputs.get('mqttUrl', '')}",
        f"   --{source}-->"
        f" Kafka device_data [{topic(device) if device else 'not declared'}]"
        f" [{where('kafka', 'external cluster')}]",
        *dead_letter(DEVICE_DEAD_LETTER_TOPIC, "payloads it cannot key"),
        f"   --Lenses SQL processors ({len(processors)}) [{where('lenses-hq', 'external HQ')}]-->",
        *(f"       {t} [{topic(topics[t])}]" for t in derived),
        f"   --{', '.join(n for n in connectors if 'sink' in n) or 'no sink'}--> Snowflake {tables}"
        f" --> Metabase [{where('metabase', 'external or off')}]",
        *dead_letter(SINK_DEAD_LETTER_TOPIC, "records it cannot convert"),
        f" Postgres [{where('postgres', 'external')}]: databases "
        + ", ".join(sorted(names("postgresql:index/database:Database"))),
    ]
    return "\n".join(lines) + "\n"


def readme_block(text: str) -> str:
    return f"{BEGIN}\n```\n{text}```\n{END}"


def main(argv: list[str] | None = None,
         runner: Callable[[str], ProgramRun] = run_program) -> int:
    """`runner` evaluates a stack (the tests pass the runs they already have)."""
    parser = argparse.ArgumentParser(prog="scripts/plan", description=__doc__.splitlines()[0])
    parser.add_argument("--stack", default="dev", choices=("dev", "prod"))
    parser.add_argument("--diagram", type=Path, help="write the diagram here "
                        "(default build/plan/<stack>-diagram.txt)")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--readme", type=Path, help="replace the diagram in this README")
    group.add_argument("--check", type=Path, help="exit 1 when this README's diagram is stale")
    args = parser.parse_args(argv)
    run = runner(args.stack)
    picture = diagram(run)
    if args.check or args.readme:
        readme = (args.check or args.readme).read_text()
        if BEGIN not in readme or END not in readme:
            print(f"error: no {BEGIN} ... {END} block in {args.check or args.readme}",
                  file=sys.stderr)
            return 2
        rest = readme.split(BEGIN, 1)[1]
        current = BEGIN + rest.split(END, 1)[0] + END
        if args.check:
            if current != readme_block(picture):
                print(f"{args.check}: the diagram is stale; run scripts/plan --readme "
                      f"{args.check}", file=sys.stderr)
                return 1
            return 0
        args.readme.write_text(readme.replace(current, readme_block(picture)))
    print("\n".join(tree(run)))
    target = args.diagram or Path("build") / "plan" / f"{args.stack}-diagram.txt"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(picture)
    print(f"\n{picture}\ndiagram written to {target}")
    return 0


if __name__ == "__main__":
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `scripts/plan | head` ends quietly
    sys.exit(main())
