"""A real Mosquitto with the TLS configuration the program renders and the certificate chain
it makes (pulumi-tls's resources, computed under the mocks as the provider computes them:
devtools/harness.py): devices and the connector over TLS and secure websockets, nothing for a
client without the broker's CA, and the healthcheck as the container runs it."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from components.mqtt import HEALTH_CONFIG_HOME
from components.streams import MQTT_TOPICS
from devtools.certs import TestCa
from devtools.harness import ROOT, ProgramRun, unwrap
from devtools.mqtt_client import Client
from devtools.servers import Mosquitto, binary, negotiated_tls

TOPIC = MQTT_TOPICS[0]
RECIPE = re.compile(r"<!-- monitor-recipe:begin -->\n```sh\n(.*?)```\n<!-- monitor-recipe:end -->",
                    re.DOTALL)
FAKE_PULUMI = """#!{python}
import json, sys
args = sys.argv[1:]
assert args[:2] == ["stack", "output"], args
names = [a for a in args[2:] if not a.startswith("--")]
value, secret = json.load(open({outputs!r}))[names[0]]
print("[secret]" if secret and "--show-secrets" not in args else value)
"""
"""`pulumi stack output [--show-secrets] NAME` as the CLI answers it, from a ProgramRun's
outputs: the value, or [secret] for a secret one without --show-secrets."""


@pytest.fixture(scope="module")
def tls_only(dev: ProgramRun):
    """prod's shape: TLS listeners only."""
    with Mosquitto.temporary(dev, "tls-only", plaintext=False) as server:
        yield server


def _login(run: ProgramRun, who: str) -> tuple[str, str]:
    return run.outputs[f"mqtt{who}Username"][0], run.outputs[f"mqtt{who}Password"][0]


@pytest.mark.parametrize("websocket", [False, True], ids=["mqtts", "wss"])
def test_devices_and_the_connector_trusting_the_ca_talk_over_tls(
    dev, tls_only, websocket
) -> None:
    port = tls_only.secure_websocket_port if websocket else tls_only.tls_port
    reader = Client(port, *_login(dev, "Connector"), ca_file=tls_only.ca_file,
                    websocket=websocket)
    device = Client(port, *_login(dev, "Device"), ca_file=tls_only.ca_file, websocket=websocket)
    try:
        assert reader.connect() and device.connect()
        reader.subscribe(TOPIC)
        payload = uuid.uuid4().hex.encode()
        device.c.publish(TOPIC, payload, qos=1).wait_for_publish(5)
        deadline = time.monotonic() + 10
        while payload not in reader.received and time.monotonic() < deadline:
            time.sleep(0.05)
        assert payload in reader.received
    finally:
        reader.close()
        device.close()


def test_a_client_without_tls_gets_nothing_from_the_tls_port(dev, tls_only) -> None:
    client = Client(tls_only.tls_port, *_login(dev, "Device"))
    with pytest.raises((OSError, AssertionError)):
        client.connect()  # the broker waits for a TLS ClientHello and drops MQTT bytes
    client.close()


def test_a_client_trusting_another_ca_is_refused(dev, tls_only, tmp_path) -> None:
    stranger = tmp_path / "stranger-ca.pem"
    stranger.write_text(TestCa.create("someone else's CA").pem)
    client = Client(tls_only.tls_port, *_login(dev, "Device"), ca_file=str(stranger))
    with pytest.raises(OSError, match="CERTIFICATE_VERIFY_FAILED"):
        client.connect()


def test_without_plaintext_the_broker_opens_only_the_tls_listeners(tls_only) -> None:
    """What the broker itself says it listens on: the TLS port and the secure websockets
    port, nothing else (in particular no 1883-style plain listener)."""
    opened = {int(port) for port in re.findall(r"Opening \S+ listen socket on port (\d+)\.",
                                               tls_only.log)}
    assert opened == {tls_only.tls_port, tls_only.secure_websocket_port}, tls_only.log[-2000:]


def _healthcheck(run: ProgramRun, server: Mosquitto, options: str) -> subprocess.CompletedProcess:
    """The container's healthcheck command, with the container's paths and port mapped onto
    this broker's, and `options` as mosquitto_sub's config file."""
    command = run.container("mosquitto").get("healthcheck")["tests"][1]
    home = Path(tempfile.mkdtemp(prefix="health-pipeline-healthcheck-"))
    try:
        (home / "mosquitto_sub").write_text(options)
        (home / "mosquitto_sub").chmod(0o600)
        local = (command.replace(HEALTH_CONFIG_HOME, str(home))
                 .replace("/mosquitto/certs/ca.crt", server.ca_file)
                 .replace("-p 8883", f"-p {server.tls_port}"))
        assert local != command
        binary("mosquitto_sub")
        return subprocess.run(["sh", "-c", local], capture_output=True, text=True, timeout=30,
                              check=False, env={**os.environ, "HOME": str(home)})
    finally:
        shutil.rmtree(home)


def test_the_healthcheck_passes_with_its_login_file_and_fails_without(dev, tls_only) -> None:
    options = unwrap(dev.upload("mosquitto", f"{HEALTH_CONFIG_HOME}/mosquitto_sub")["content"])
    done = _healthcheck(dev, tls_only, options)
    assert done.returncode == 0, done.stderr
    wrong = re.sub(r"^-P .*$", "-P not-the-password", options, flags=re.M)
    done = _healthcheck(dev, tls_only, wrong)
    assert done.returncode != 0
    assert "not authorised" in done.stderr.lower() or "refused" in done.stderr.lower(), (
        done.stderr)


@pytest.mark.parametrize("listener", ["tls_port", "secure_websocket_port"])
def test_the_tls_listeners_take_tls_1_2_or_later_only(tls_only, listener) -> None:
    """The MQTT one by its tls_version; the websockets one, which takes no tls_version
    (mosquitto.conf(5)), by its TLS library's defaults, checked here all the same."""
    port = getattr(tls_only, listener)
    assert negotiated_tls(port, "tls1_2") == "TLSv1.2"
    assert negotiated_tls(port, "tls1_3") == "TLSv1.3"
    assert negotiated_tls(port, "tls1_1") is None, "TLS 1.1 must be refused"


def test_the_readme_recipe_shows_live_messages_from_both_topics(dev, tls_only, tmp_path):
    """The README's monitor recipe, run as written by a shell: `pulumi stack output` answers
    from the dev run's outputs; only the port is this broker's, and mosquitto_sub is told to
    stop after two messages. The login reaches mosquitto_sub through its options file, never
    its command line."""
    recipe = RECIPE.search((ROOT / "README.md").read_text())
    assert recipe, "README.md has no monitor recipe block"
    script = recipe[1]
    assert "-p 8883" in script and "mqttMonitorPassword" in script
    command = next(line for line in script.splitlines() if "mosquitto_sub " in line)
    assert " -P" not in command and "Password" not in command, command
    outputs = tmp_path / "outputs.json"
    outputs.write_text(json.dumps(dev.outputs))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "pulumi").write_text(FAKE_PULUMI.format(python=sys.executable,
                                                       outputs=str(outputs)))
    (bin_dir / "pulumi").chmod(0o700)
    binary("mosquitto_sub")
    local = script.replace("-p 8883", f"-p {tls_only.tls_port}").replace(
        "mosquitto_sub ", "mosquitto_sub -C 2 -W 20 ", 1)
    watcher = subprocess.Popen(
        ["bash", "-euc", local], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, env={**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"})
    device = Client(tls_only.tls_port, *_login(dev, "Device"), ca_file=tls_only.ca_file)
    try:
        assert device.connect()
        # Pairs until it has its two: any two in a row come from both topics.
        deadline = time.monotonic() + 20
        while watcher.poll() is None and time.monotonic() < deadline:
            for topic in MQTT_TOPICS:
                device.c.publish(topic, json.dumps({"on": topic}), qos=1).wait_for_publish(5)
            time.sleep(0.2)
        out, err = watcher.communicate(timeout=30)
    finally:
        device.close()
        if watcher.poll() is None:
            watcher.kill()
    assert watcher.returncode == 0, err
    lines = out.splitlines()
    assert len(lines) == 2, out
    assert sorted(lines) == sorted(f'{t} {{"on": "{t}"}}' for t in MQTT_TOPICS)
    # The CLI prints the value and a newline, as print does.
    assert (tmp_path / "ca.pem").read_text().strip() == dev.outputs["mqttCaCertificate"][0].strip()
