"""The connectors and SQL processors through the real engine, as users meet them: `pulumi up`,
`preview --diff --refresh` and the nightly drift check, on a real Mosquitto (the rendered
password file and ACL), Kafka and a Connect worker running this project's MQTT source, and
the HQ test server for the processors.

The stack is one per module; each test starts from the declared state (a test that changes
what is deployed marks it, and the next test's fixture puts it back with `up --refresh`)."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from pulumi import automation as auto
from pulumi.automation.errors import CommandError

from components.connectors import MQTT_SOURCE_NAME
from components.http_api import JsonApi
from components.processors import SQL_DIR, read_sql
from components.streams import DERIVED_STREAMS, DEVICE_TOPIC
from devtools.engine import Engine
from devtools.engine_program import PipelineTargets, SnowflakeAccount, pipeline_program
from devtools.harness import PROJECT, ROOT, ProgramRun, run_program
from devtools.servers import Mosquitto, simulate
from tests.fake_lenses import FakeLenses

SOURCE = "connectors-mqtt-source"
DRIFT_EXIT_CODE = 7
"""`preview --expect-no-changes` found changes (pulumi/pulumi#22176); .github/workflows/
drift.yml tells drift from failure by it."""
RUN_URL = "https://github.com/example/health-pipeline/actions/runs/1"


@pytest.fixture(scope="module")
def own() -> ProgramRun:
    """The dev stack with this project's MQTT source, under mocks: the broker's rendered files
    and the generated MQTT credentials."""
    return run_program("dev", {f"{PROJECT}:kafkaMqttSource": "health-pipeline"})


@pytest.fixture(scope="module")
def mqtt_server(own):
    """A broker of this module's own: the connector's persistent session must not meet the
    end-to-end tests' messages."""
    with Mosquitto.temporary(own, "engine") as server:
        yield server


RESOURCES = 6 + len(DERIVED_STREAMS)
"""The stack, two components, the MQTT source, the HQ environment, device_data's formats and one
processor per derived stream."""


@pytest.fixture(scope="module")
def lenses_server():
    """An HQ with no environment yet: the program creates it, declares device_data's formats,
    and only then can the processors be created (the server refuses them before)."""
    server = FakeLenses(environments=())
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def sql_dir(tmp_path_factory) -> Path:
    """A copy of sql/processors that a test may edit, as a user edits the repository's."""
    folder = tmp_path_factory.mktemp("sql")
    for path in SQL_DIR.glob("*.sql"):
        shutil.copy(path, folder / path.name)
    return folder


@dataclasses.dataclass
class Pipeline:
    """The module's stack, the engine running it and what its program targets."""

    stack: auto.Stack
    engine: Engine
    targets: PipelineTargets
    device: tuple[str, str]
    dirty: bool = False
    """Something deployed or live differs from `targets`: the next test puts it back."""

    def with_changes(self, **changes) -> auto.Stack:
        """The stack with `changes` to the targets for its next command (and marked dirty)."""
        self.dirty = True
        self.stack.workspace.program = pipeline_program(
            dataclasses.replace(self.targets, **changes))
        return self.stack

    def declared(self) -> auto.Stack:
        """The stack with the program as declared for its next command."""
        self.stack.workspace.program = pipeline_program(self.targets)
        return self.stack

    def drift_check(self) -> tuple[int, str]:
        """`preview --refresh --expect-no-changes --diff --json` as the nightly workflow runs
        it: the exit code and the JSON it printed."""
        # A non-zero exit raises; the code, which the caller checks, tells drift from failure.
        with contextlib.suppress(CommandError):
            self.stack.preview(refresh=True, expect_no_changes=True, diff=True, json=True)
        last = self.engine.command.last
        assert last is not None
        return last.code, last.stdout


@pytest.fixture(scope="module")
def deployment(engine, own, kafka_server, connect_server, mqtt_server, lenses_server, sql_dir):
    """The stack after its first `up`, and that up's result. Destroyed at the end (a second
    time if the destroy test already did: that must be a no-op)."""
    declared = own.one("kafka:index/topic:Topic", f"topics-{DEVICE_TOPIC}")
    done = kafka_server.create_topic(DEVICE_TOPIC, declared.get("partitions"),
                                     declared.get("config"), if_not_exists=True)
    assert done.returncode == 0, done.stdout + done.stderr
    targets = PipelineTargets(
        connect_url=connect_server.url,
        mqtt_url=f"tcp://127.0.0.1:{mqtt_server.port}",
        mqtt_username=own.outputs["mqttConnectorUsername"][0],
        mqtt_password=own.outputs["mqttConnectorPassword"][0],
        hq_url=lenses_server.url,
        lenses_username=lenses_server.username,
        lenses_password=lenses_server.password,
        sql_dir=sql_dir,
    )
    stack = engine.stack("dev", pipeline_program(targets))
    pipeline = Pipeline(stack, engine, targets, device=(own.outputs["mqttDeviceUsername"][0],
                                                         own.outputs["mqttDevicePassword"][0]))
    result = stack.up()
    yield pipeline, result
    pipeline.declared().destroy()


@pytest.fixture
def pipeline(deployment) -> Pipeline:
    """The stack as declared, deployed and live."""
    pipeline, _ = deployment
    if pipeline.dirty:
        pipeline.declared().up(refresh=True)
        pipeline.dirty = False
    return pipeline


def _live_config(connect_server) -> dict[str, str]:
    status, config = connect_server.get(f"/connectors/{MQTT_SOURCE_NAME}/config")
    assert status == 200, config
    return config


def _lower_qos_by_hand(pipeline: Pipeline, connect_server) -> None:
    """What an operator might do with curl: the source's QoS down to 0, out of band."""
    live = {**_live_config(connect_server), "mqtt.qos": "0"}
    JsonApi(connect_server.url).request("PUT", f"/connectors/{MQTT_SOURCE_NAME}/config", live)
    pipeline.dirty = True


def _drift_report(preview_json: str, tmp_path: Path) -> str:
    """scripts/drift-report fed the preview exactly as .github/workflows/drift.yml feeds it."""
    (tmp_path / "preview.json").write_text(preview_json)
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "drift-report"), "dev", "preview.json", RUN_URL],
        cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def _report_rows(report: str) -> list[str]:
    return [line for line in report.splitlines()
            if line.startswith("| ") and not line.startswith(("| operation", "| ---"))]


def test_up_creates_the_connector_and_processors_and_readings_reach_device_data(
    deployment, kafka_server, connect_server, mqtt_server, lenses_server
) -> None:
    pipeline, result = deployment
    assert result.summary.result == "succeeded"
    assert result.summary.resource_changes == {"create": RESOURCES}
    connect_server.task_in_state(MQTT_SOURCE_NAME, "RUNNING")
    assert _live_config(connect_server)["mqtt.server.uri"] == pipeline.targets.mqtt_url
    assert lenses_server.live() == {s.name: read_sql(SQL_DIR, s) for s in DERIVED_STREAMS}
    assert result.outputs["sqlProcessors"].value == {
        s.name: lenses_server.named(s.name)["id"] for s in DERIVED_STREAMS}

    before = kafka_server.record_count(DEVICE_TOPIC)
    summary = simulate(mqtt_server.port, *pipeline.device, "--count", "300", "--rate", "0",
                       "--devices", "5", "--seed", "17")
    assert summary.startswith("sent 300, acknowledged 300, failed 0,"), summary
    deadline = time.monotonic() + 60
    while kafka_server.record_count(DEVICE_TOPIC) < before + 300:
        assert time.monotonic() < deadline, "the readings did not all reach device_data"
        time.sleep(0.5)
    assert kafka_server.record_count(DEVICE_TOPIC) == before + 300, "duplicates"


def test_a_second_up_changes_nothing_and_a_refreshed_preview_expects_no_changes(
    pipeline,
) -> None:
    again = pipeline.stack.up()
    assert again.summary.resource_changes == {"same": RESOURCES}
    refreshed = pipeline.stack.refresh()
    assert set(refreshed.summary.resource_changes) == {"same"}, refreshed.summary
    preview = pipeline.stack.preview(expect_no_changes=True)
    assert set(preview.change_summary) == {"same"}, preview.change_summary


def test_connector_changed_out_of_band_fails_the_drift_check_and_is_named_in_the_report(
    pipeline, connect_server, tmp_path
) -> None:
    _lower_qos_by_hand(pipeline, connect_server)
    code, output = pipeline.drift_check()
    assert code == DRIFT_EXIT_CODE, output[-2000:]
    report = _drift_report(output, tmp_path)
    assert "found drift in stack **dev**" in report and f"Run: {RUN_URL}" in report
    assert _report_rows(report) == [
        f'| update | `{SOURCE}` (pulumi-python:dynamic/connect:Connector) | config["mqtt.qos"] |'
    ], "only the drifted resource, with the drifted key"
    assert f"Summary: same {RESOURCES - 1}, update 1" in report, report


def test_the_diff_a_reviewer_reads_names_the_drifted_key_and_masks_the_password(
    pipeline, connect_server
) -> None:
    _lower_qos_by_hand(pipeline, connect_server)
    shown = pipeline.stack.preview(refresh=True, diff=True).stdout
    assert "mqtt.qos" in shown and '"0" => "1"' in shown, shown
    assert pipeline.targets.mqtt_password not in shown


def test_up_with_refresh_repairs_connector_drift_and_the_check_passes_again(
    pipeline, connect_server
) -> None:
    _lower_qos_by_hand(pipeline, connect_server)
    repaired = pipeline.stack.up(refresh=True)
    assert repaired.summary.resource_changes.get("update") == 1, repaired.summary
    assert _live_config(connect_server)["mqtt.qos"] == "1"
    connect_server.task_in_state(MQTT_SOURCE_NAME, "RUNNING")
    pipeline.dirty = False
    assert pipeline.drift_check()[0] == 0


def test_processor_changed_in_lenses_fails_the_drift_check_and_up_refresh_replaces_it(
    pipeline, lenses_server, tmp_path
) -> None:
    stream = DERIVED_STREAMS[0]
    processor_id = lenses_server.named(stream.name)["id"]
    lenses_server.set_sql(processor_id, "INSERT INTO elsewhere SELECT STREAM * FROM device_data;")
    pipeline.dirty = True

    code, output = pipeline.drift_check()
    assert code == DRIFT_EXIT_CODE, output[-2000:]
    rows = _report_rows(_drift_report(output, tmp_path))
    assert len(rows) == 1, rows
    assert f"`processors-{stream.name}` (pulumi-python:dynamic/lenses:Processor)" in rows[0]
    assert rows[0].startswith("| replace |") and "sql" in rows[0], rows[0]

    pipeline.stack.up(refresh=True)
    pipeline.dirty = False
    now = lenses_server.named(stream.name)
    assert now["application"]["sql"] == read_sql(SQL_DIR, stream)
    assert now["id"] != processor_id
    assert pipeline.drift_check()[0] == 0


def test_a_changed_connector_setting_updates_it_in_place(pipeline, connect_server) -> None:
    stack = pipeline.with_changes(client_id="health-pipeline-dev-mqtt-source-2")
    preview = stack.preview(diff=True)
    assert preview.change_summary.get("update") == 1, preview.change_summary
    assert "replace" not in preview.change_summary
    assert "mqtt.client.id" in preview.stdout and "health-pipeline-dev-mqtt-source-2" in (
        preview.stdout)

    result = stack.up()
    assert result.summary.resource_changes.get("update") == 1, result.summary
    assert _live_config(connect_server)["mqtt.client.id"] == "health-pipeline-dev-mqtt-source-2"
    connect_server.task_in_state(MQTT_SOURCE_NAME, "RUNNING")


def test_changed_processor_sql_replaces_the_processor(pipeline, lenses_server, sql_dir) -> None:
    stream = DERIVED_STREAMS[1]
    path = sql_dir / f"{stream.name}.sql"
    original = path.read_text()
    old_id = lenses_server.named(stream.name)["id"]
    path.write_text(original.replace("SELECT", "SELECT /* reviewed */", 1))
    pipeline.dirty = True
    try:
        preview = pipeline.stack.preview(diff=True)
        assert preview.change_summary.get("replace") == 1, preview.change_summary
        assert f"processors-{stream.name}" in preview.stdout
        pipeline.stack.up()
        now = lenses_server.named(stream.name)
        assert now["id"] != old_id and "/* reviewed */" in now["application"]["sql"]
    finally:
        path.write_text(original)


def _private_key_body() -> str:
    """A PKCS#8 key body, as snowflake.private.key takes it."""
    pem = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()).decode()
    return "".join(pem.splitlines()[1:-1])


SNOWFLAKE_URL = "example-org-account.snowflakecomputing.com:443"


def _diagnostics(printed: str) -> dict[str, list[str]]:
    """The CLI's Diagnostics section: resource heading -> its `error:` lines."""
    found: dict[str, list[str]] = {}
    heading = ""
    for line in printed.split("Diagnostics:", 1)[-1].split("\nOutputs:", 1)[0].splitlines():
        if line.startswith("  ") and not line.startswith("    ") and line.rstrip().endswith(":"):
            heading = line.strip().rstrip(":")
            found[heading] = []
        elif line.strip().startswith("error:") and heading:
            found[heading].append(line.strip())
    return found


def test_a_config_the_connector_refuses_fails_up_with_its_message_and_no_secret(
    pipeline, connect_server
) -> None:
    body = _private_key_body()
    broken = body[: len(body) // 2]
    stack = pipeline.with_changes(
        snowflake=SnowflakeAccount(url=SNOWFLAKE_URL, private_key=broken))
    with pytest.raises(CommandError):
        stack.up()
    last = pipeline.engine.command.last
    assert last is not None and last.code != 0
    printed = last.stdout + last.stderr
    sink = "pulumi-python:dynamic/connect:Connector (connectors-snowflake-sink)"
    errors = _diagnostics(printed)
    assert len(errors.get(sink, [])) == 1, printed[-3000:]
    assert ("failed Connect's validation (1 error(s)): snowflake.private.key: "
            "snowflake.private.key must be a valid PEM RSA private key") in printed
    assert broken not in printed and broken[:40] not in printed
    assert pipeline.targets.mqtt_password not in printed
    assert connect_server.get("/connectors/health_snowflake_sink")[0] == 404
    connect_server.task_in_state(MQTT_SOURCE_NAME, "RUNNING")


def test_the_stack_export_holds_no_secret_in_plain_text(pipeline, lenses_server) -> None:
    """`pulumi stack export` (no --show-secrets) after ups, refreshes and replacements, and
    after an up with Snowflake on. The sink cannot be created here (the connector's validate
    refuses the key; a valid one would wait 30 s for a Snowflake it cannot reach), so that up
    runs with --continue-on-error and saves the rest, the sink's key among the stack
    outputs."""
    body = _private_key_body()
    key = body[: len(body) // 2]
    stack = pipeline.with_changes(snowflake=SnowflakeAccount(url=SNOWFLAKE_URL, private_key=key))
    with pytest.raises(CommandError):
        stack.up(continue_on_error=True)
    exported = pipeline.engine.cli("stack", "export", "--stack", "dev").stdout
    agent_key = lenses_server.agent_keys[pipeline.targets.environment]
    for secret in (pipeline.targets.mqtt_password, pipeline.targets.lenses_password, key,
                   key[:40], agent_key):
        assert secret not in exported
    resources = json.loads(exported)["deployment"]["resources"]
    (root,) = [r for r in resources if r["type"] == "pulumi:pulumi:Stack"]
    for name in ("mqttConnectorPassword", "lensesAdminPassword", "snowflakePrivateKey"):
        assert "ciphertext" in root["outputs"][name], f"output {name} is not encrypted"
    (source,) = [r for r in resources if r["urn"].endswith(f"::{SOURCE}")]
    config = source["inputs"]["config"]
    assert "ciphertext" in config["mqtt.password"], "the password is encrypted on its own"
    assert config["mqtt.qos"] == "1", "the rest of the config stays readable"


def test_the_policy_pack_runs_in_the_real_cli_and_reports_on_the_programs_resources(
    pipeline,
) -> None:
    """The pack as the CLI serves it (policies/analyzer: this CLI has no Python language
    plugin), with the stack counted as production (HEALTH_PIPELINE_PROD_STACKS): dev's HQ
    environment is not protected, which the mandatory prod-stateful-resources-protected stops,
    and the connector's plain tcp:// broker, which the mandatory prod-no-plaintext-endpoint
    stops (HQ and Connect on 127.0.0.1 are loopback, so they pass)."""
    analyzer = ROOT / "policies" / "analyzer"
    if not (ROOT / "policies" / "venv" / "bin" / "python").exists():
        pytest.skip("policies/venv is missing; scripts/test creates it")
    env = pipeline.stack.workspace.env_vars
    env["HEALTH_PIPELINE_PROD_STACKS"] = "dev"
    try:
        with pytest.raises(CommandError):
            pipeline.stack.preview(policy_packs=[str(analyzer)])
    finally:
        del env["HEALTH_PIPELINE_PROD_STACKS"]
    last = pipeline.engine.command.last
    assert last is not None and last.code != 0
    shown = last.stdout
    assert "health-pipeline-guardrails" in shown, shown[-3000:]
    assert re.search(r"\[mandatory\]\s+prod-stateful-resources-protected\s+"
                     r"\(pulumi-python:dynamic/lenses:Environment: lenses-environment\)",
                     shown), shown[-3000:]
    assert re.search(r"\[mandatory\]\s+prod-no-plaintext-endpoint\s+"
                     r"\(pulumi-python:dynamic/connect:Connector: connectors-mqtt-source\)",
                     shown), shown[-3000:]
    assert f"mqtt.server.uri is {pipeline.targets.mqtt_url}" in shown, shown[-3000:]
    assert "lenses:Processor" not in shown.split("prod-no-plaintext-endpoint", 1)[1].split(
        "\n", 1)[0], "a loopback HQ is not a network endpoint"


def test_destroy_removes_the_connector_processors_formats_and_environment_once(
    pipeline, connect_server, lenses_server
) -> None:
    destroyed = pipeline.stack.destroy()
    assert destroyed.summary.resource_changes == {"delete": RESOURCES}
    assert connect_server.get(f"/connectors/{MQTT_SOURCE_NAME}")[0] == 404
    assert lenses_server.processors == {}
    assert lenses_server.topic_metadata == {}
    assert lenses_server.environments == ()
    again = pipeline.stack.destroy()
    assert not again.summary.resource_changes, again.summary
    pipeline.dirty = True
