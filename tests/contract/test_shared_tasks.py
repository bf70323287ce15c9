"""Several tasks of this project's MQTT source on a two-worker Connect cluster, on real
servers: Mosquitto (the rendered files), one Kafka broker and two Connect workers in one group
running the rendered source config with mqttSourceTasks above 1. The tasks share each MQTT
subscription ($share/<group>/<topic>), so Mosquitto gives every message to one of them: every
acknowledged message reaches device_data (once or more), each task carries a share, and
Connect spreads the tasks over both workers. Then recovery: a source created while Mosquitto is
down stays RUNNING, retrying, and delivers once the broker is up, without a restart."""

from __future__ import annotations

import collections
import json
import time

import pytest

from devtools.fault_pipeline import pipeline
from devtools.harness import PROJECT, ProgramRun, run_program

COUNT = 10_000
RATE = 2_000.0

REPORTS: list[str] = []


def _own(tasks: int) -> ProgramRun:
    return run_program("dev", {f"{PROJECT}:kafkaMqttSource": "health-pipeline",
                               f"{PROJECT}:mqttSourceTasks": tasks})


@pytest.mark.parametrize("tasks", [2, 4])
def test_tasks_share_the_subscription_across_two_workers_and_lose_nothing(tasks: int) -> None:
    own = _own(tasks)
    with pipeline(own, f"shared-{tasks}", workers=2) as p:
        p.create_source()
        placement = p.task_placement(tasks)
        outcome = p.publish_with(lambda: None, after=0, count=COUNT, rate=RATE)
        records = p.kafka.records("device_data", sum(outcome.received.values()), timeout=120)
    per_client = collections.Counter(r.headers["mqtt.client.id"].decode() for r in records)
    seqs = {json.loads(r.value)["seq"] for r in records}
    client_id = own.one("pulumi-python:dynamic/connect:Connector",
                        "connectors-mqtt-source").get("config")["mqtt.client.id"]
    REPORTS.append(f"{tasks} tasks on workers {sorted(set(placement.values()))}: acknowledged "
                   f"{len(outcome.acknowledged)} of {COUNT}, lost {len(outcome.lost)}, "
                   f"duplicated {outcome.duplicated}, per task {dict(sorted(per_client.items()))}")
    print(REPORTS[-1])
    assert len(outcome.acknowledged) == COUNT
    assert not outcome.lost, f"lost {sorted(outcome.lost)[:20]}"
    assert seqs >= outcome.acknowledged
    assert set(per_client) == {f"{client_id}-{i}" for i in range(tasks)}, per_client
    # Mosquitto 2.0 deals a share group's messages round robin: each gets about 1/N.
    assert min(per_client.values()) >= COUNT / tasks / 2, per_client
    assert len(set(placement.values())) == 2, f"the tasks did not spread: {placement}"


def test_a_source_created_while_the_broker_is_down_delivers_once_it_is_up() -> None:
    """The task stays RUNNING while it cannot reach the broker, logging each attempt with its
    backoff, and subscribes once the broker is up: nothing needs restarting."""
    own = _own(1)
    with pipeline(own, "broker-late", workers=1) as p:
        p.mqtt.stop()
        p.create_source()
        worker = p.workers[0]
        deadline = time.monotonic() + 8
        while time.monotonic() < deadline:
            status = worker.get(f"/connectors/{p.name}/status")[1]
            assert status["tasks"][0]["state"] == "RUNNING", status
            time.sleep(0.5)
        assert "cannot reach MQTT broker" in worker.log, worker.log[-3000:]
        assert "tries again in" in worker.log, worker.log[-3000:]
        p.mqtt.start()
        # A new client id has no session before it subscribes: publish once it has.
        deadline = time.monotonic() + 90
        while "Reached MQTT broker" not in worker.log:
            assert time.monotonic() < deadline, worker.log[-3000:]
            time.sleep(0.5)
        time.sleep(1)
        outcome = p.publish_with(lambda: None, after=0, count=500, rate=500)
        assert worker.get(f"/connectors/{p.name}/status")[1]["tasks"][0]["state"] == "RUNNING"
    assert len(outcome.acknowledged) == 500
    assert not outcome.lost, f"lost {sorted(outcome.lost)[:20]}"
