"""The local servers of the contract tests, kept running for people: Mosquitto, PostgreSQL,
Kafka and a Connect worker on free 127.0.0.1 ports, loaded with what the program renders for
the dev stack (kafkaMqttSource=health-pipeline), wired MQTT -> device_data.

    scripts/local-servers start | status | stop

`start` is idempotent (a running set is reported, not restarted; a partial one is stopped
and started again), `stop` too. State, logs and an outputs file in the shape of
`pulumi stack output --json` live in build/local-servers/, so the simulator runs against them
with `python -m simulator --outputs build/local-servers/outputs.json`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
import time
from pathlib import Path

from components.connectors import ConnectorProvider
from devtools.harness import PROJECT, ROOT, run_program
from devtools.kafka_servers import (
    MQTT_SOURCE,
    MQTT_SOURCE_PLUGIN,
    SNOWFLAKE_JAR,
    SNOWFLAKE_SINK,
    ConnectWorker,
    Kafka,
)
from devtools.servers import Mosquitto, Postgres

HOME = Path(os.environ.get("HEALTH_PIPELINE_LOCAL_SERVERS", ROOT / "build" / "local-servers"))
"""Where state, data and logs live; the environment variable moves it (the tests do)."""
STATE = HOME / "state.json"
OUTPUTS = HOME / "outputs.json"
SQL = ROOT / "sql" / "postgres" / "app_databases.sql"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _state() -> dict | None:
    return json.loads(STATE.read_text()) if STATE.exists() else None


def _running(state: dict) -> dict[str, bool]:
    alive = {name: _alive(pid) for name, pid in state["pids"].items()}
    pid_file = Path(state["postgres_data"]) / "postmaster.pid"
    alive["postgres"] = pid_file.exists() and _alive(int(pid_file.read_text().split()[0]))
    return alive


def status() -> int:
    state = _state()
    if state is None:
        print("local servers: not started (scripts/local-servers start)")
        return 1
    alive = _running(state)
    for name, address in state["addresses"].items():
        print(f"  {name:<10} {address:<28} {'running' if alive[name] else 'STOPPED'}"
              f"  log: {state['logs'][name]}")
    return 0 if all(alive.values()) else 1


def stop() -> int:
    state = _state()
    if state is None:
        print("local servers: nothing to stop")
        return 0
    for name, pid in state["pids"].items():
        if _alive(pid):
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 30
            while _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.2)
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
            print(f"  stopped {name} (pid {pid})")
    if _running(state)["postgres"]:
        Postgres(Path(state["postgres_root"]), admin_password="").stop()
        print("  stopped postgres")
    shutil.rmtree(HOME, ignore_errors=True)
    return 0


def start() -> int:
    state = _state()
    if state is not None:
        if all(_running(state).values()):
            print("local servers: already running")
            return status()
        print("local servers: some have stopped; starting the set again")
        stop()
    if not any(MQTT_SOURCE_PLUGIN.glob("*.jar")) or not SNOWFLAKE_JAR.exists():
        print("error: build the connectors first: scripts/fetch-connectors && "
              "scripts/build-mqtt-source", file=sys.stderr)
        return 2
    HOME.mkdir(parents=True, exist_ok=True)
    HOME.chmod(0o755)  # Mosquitto and Postgres run as their own users
    run = run_program("dev", {f"{PROJECT}:kafkaMqttSource": "health-pipeline"})
    outputs = {key: value for key, (value, _) in run.outputs.items()}
    started = []
    try:
        print("  starting mosquitto ...", flush=True)
        mqtt = Mosquitto.rendered_for(run, HOME / "mosquitto").start()
        started.append(mqtt)
        print("  starting postgres ...", flush=True)
        postgres = Postgres(HOME / "postgres", outputs["postgresAdminPassword"]).start()
        started.append(postgres)
        roles = {r.get("name"): r.get("password")
                 for r in run.of_type("postgresql:index/role:Role")}
        done = postgres.psql("postgres", postgres.admin_password, "postgres", SQL.read_text(),
                             {f"{role}_password": pw for role, pw in roles.items()})
        if done.returncode:
            raise RuntimeError(f"{SQL.name} failed: {done.stderr}")
        print("  starting kafka ...", flush=True)
        kafka = Kafka(HOME / "kafka").start()
        started.append(kafka)
        print("  starting kafka connect (scans its plugins) ...", flush=True)
        connect = ConnectWorker(HOME / "connect", kafka.bootstrap,
                                plugins=(SNOWFLAKE_JAR, MQTT_SOURCE_PLUGIN),
                                expected_plugins=(SNOWFLAKE_SINK, MQTT_SOURCE)).start()
        started.append(connect)
        for topic in run.of_type("kafka:index/topic:Topic"):
            done = kafka.create_topic(topic.get("name"), topic.get("partitions"),
                                      topic.get("config"))
            if done.returncode:
                raise RuntimeError(f"creating {topic.get('name')}: {done.stderr}")
        source = run.one("pulumi-python:dynamic/connect:Connector", "connectors-mqtt-source")
        # Over TLS with the stack's CA, as the program renders the source.
        config = {**source.get("config"), "mqtt.server.uri": mqtt.tls_url}
        ConnectorProvider().create({"connect_url": connect.url, "name": config["name"],
                                    "config": config, "timeout_seconds": 30})
    except BaseException:
        for server in reversed(started):
            server.stop()
        raise
    local = {**outputs, "mqttUrl": mqtt.tls_url,
             "kafkaBootstrapServers": [kafka.bootstrap], "kafkaConnectUrl": connect.url,
             "postgresEndpoint": f"postgresql://127.0.0.1:{postgres.port}"}
    state = {
        # In stop order: Connect before the broker it needs to shut down cleanly.
        "pids": {"mosquitto": mqtt.process.pid, "connect": connect.process.pid,
                 "kafka": kafka.process.pid},
        "postgres_root": str(postgres.root), "postgres_data": str(postgres.data),
        "addresses": {"mosquitto": mqtt.tls_url,
                      "postgres": f"127.0.0.1:{postgres.port}",
                      "kafka": kafka.bootstrap, "connect": connect.url},
        "logs": {"mosquitto": str(mqtt.root / "log" / "mosquitto.log"),
                 "postgres": str(postgres.root / "postgres.log"),
                 "kafka": str(kafka.root / "broker.log"),
                 "connect": str(connect.root / "connect.log")},
    }
    for path in (STATE, OUTPUTS):
        path.write_text(json.dumps(state if path == STATE else local, indent=2))
        path.chmod(0o600)  # the outputs hold the generated passwords
    print("local servers: started; MQTT source health_mqtt_source writes to device_data")
    status()
    shown = OUTPUTS.relative_to(ROOT) if OUTPUTS.is_relative_to(ROOT) else OUTPUTS
    print(f"  simulator: .venv/bin/python -m simulator --outputs {shown}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/local-servers",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=("start", "status", "stop"))
    command = parser.parse_args(argv).command
    return {"start": start, "status": status, "stop": stop}[command]()


if __name__ == "__main__":
    sys.exit(main())
