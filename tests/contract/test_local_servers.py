"""scripts/local-servers: start and stop are idempotent, and what it starts is the pipeline's
MQTT -> device_data path, usable by the simulator through the outputs file."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from devtools.harness import ROOT
from devtools.kafka_servers import Kafka, mqtt_source_plugin, snowflake_jar
from devtools.servers import binary


def _tool(home: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, check=False,
                          env={**os.environ, "HEALTH_PIPELINE_LOCAL_SERVERS": str(home)})


@pytest.fixture
def home():
    for name in ("mosquitto", "java"):
        binary(name)
    mqtt_source_plugin()
    snowflake_jar()
    parent = Path(tempfile.mkdtemp(prefix="health-pipeline-local-"))
    parent.chmod(0o755)  # Mosquitto and Postgres run as their own users
    path = parent / "servers"
    yield path
    _tool(path, "-m", "devtools.local_servers", "stop")
    shutil.rmtree(parent, ignore_errors=True)


def test_start_twice_simulate_then_stop_twice(home) -> None:
    first = _tool(home, "-m", "devtools.local_servers", "start")
    assert first.returncode == 0, first.stdout + first.stderr
    assert first.stdout.count(" running ") == 4, first.stdout
    again = _tool(home, "-m", "devtools.local_servers", "start")
    assert again.returncode == 0 and "already running" in again.stdout, again.stdout
    assert (home / "outputs.json").stat().st_mode & 0o777 == 0o600

    sent = _tool(home, "-m", "simulator", "--outputs", str(home / "outputs.json"),
                 "--count", "200", "--rate", "0")
    assert sent.stdout.startswith("sent 200, acknowledged 200, failed 0,"), sent.stderr
    state = json.loads((home / "state.json").read_text())
    kafka = Kafka(home / "kafka")
    kafka.port = int(state["addresses"]["kafka"].rsplit(":", 1)[1])
    assert len(kafka.consume("device_data", 200, 60)) == 200

    for _ in range(2):
        stopped = _tool(home, "-m", "devtools.local_servers", "stop")
        assert stopped.returncode == 0, stopped.stderr
    status = _tool(home, "-m", "devtools.local_servers", "status")
    assert status.returncode == 1 and "not started" in status.stdout
    assert not home.exists()
