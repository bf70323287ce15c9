"""A change of mqttSourceTasks on real servers (Mosquitto with the rendered files, one Kafka
broker, two Connect workers running the rendered source config): the MQTT sessions the change
leaves behind, which Mosquitto keeps feeding (a share group's absent member still gets its
turn; the single task's old session gets a copy of everything), are adopted by the new tasks:
every message acknowledged to the devices reaches device_data, and no session is left."""

from __future__ import annotations

import collections
import re

import pytest

from components.settings.loaders import MAX_MQTT_SOURCE_TASKS
from devtools.fault_pipeline import SOURCE, Pipeline, pipeline
from devtools.harness import PROJECT, ProgramRun, run_program
from devtools.kafka_servers import task_client_ids
from devtools.servers import wait_until

COUNT = 2_000
RATE = 1_000.0
DELAY_MS = 15_000
"""mqtt.orphans.delay.ms here (5 s by default): long enough that what is published right after
the change is queued for the orphaned session before the new tasks adopt it."""
FIRST_DELAY_MS = 1_000
"""mqtt.orphans.delay.ms of the tasks before the change: their scan finds nothing on a new
broker and only has to be over before the change."""
SCAN = MAX_MQTT_SOURCE_TASKS
"""mqtt.orphans.scan's default, the program's most mqttSourceTasks (tests/test_connectors.py
checks that the two agree)."""
ADOPTED_HEADER = "mqtt.adopted.client.id"
KEEP = {"retention.ms": "3600000"}
"""device_data's retention here: the dev stack keeps records 60 s, and this test counts them
minutes after the first were written."""

REPORTS: list[str] = []
"""One line per change, printed by tests/contract/conftest.py at the end of the run."""


def _own(tasks: int) -> ProgramRun:
    return run_program("dev", {f"{PROJECT}:kafkaMqttSource": "health-pipeline",
                               f"{PROJECT}:mqttSourceTasks": tasks})




def _logs_since(p: Pipeline, marks: list[int]) -> str:
    return "".join(worker.log[mark:] for worker, mark in zip(p.workers, marks, strict=True))


def _logged_by_each(p: Pipeline, marks: list[int], pattern: str, ids: list[str]) -> bool:
    logs = _logs_since(p, marks)
    return all(re.search(pattern.format(id=re.escape(i)), logs) for i in ids)


CONNECTED = r"Connected to \S+ as {id}, subscribing"
SCANNED = r"Checked \d+ client id\(s\) for orphaned MQTT sessions as {id}:"


def _publish(p: Pipeline, first: int) -> dict[int, float]:
    publisher = p.publisher()
    publisher.run(COUNT, RATE, first=first)
    return publisher.acked


@pytest.mark.parametrize(("before", "after"), [(3, 2), (1, 2)])
def test_the_sessions_a_change_of_tasks_leaves_are_adopted_and_nothing_is_lost(
        before: int, after: int) -> None:
    """3 -> 2 leaves `<id>-2`, still a member of the share group, given a third of what is
    published; 1 -> 2 leaves `<id>`, subscribed to the topic itself, given a copy of
    everything. Messages published right after the change queue there until a new task adopts
    the session: reads it through the task's own path into device_data, acknowledges each
    once Kafka has it, and removes the session."""
    own = _own(before)
    assert _own(after).one(*SOURCE).get("config")["tasks.max"] == str(after)
    client_id = own.one(*SOURCE).get("config")["mqtt.client.id"]
    orphan = f"{client_id}-2" if before == 3 else client_id
    delay = {"mqtt.orphans.delay.ms": str(DELAY_MS)}
    wait = DELAY_MS / 1000 + 90
    with pipeline(own, f"orphans-{before}-{after}", workers=2) as p:
        start = [0] * len(p.workers)
        p.create_source({"mqtt.orphans.delay.ms": str(FIRST_DELAY_MS)}, topic_config=KEEP)
        p.task_placement(before)
        acknowledged = _publish(p, first=0)
        # The first tasks' own scan is over before the change, so it cannot meet the next one.
        scanned_before = wait_until(lambda: _logged_by_each(
            p, start, SCANNED, task_client_ids(client_id, before)), wait, interval=1)
        marks = [len(worker.log) for worker in p.workers]
        p.update_source({**delay, "tasks.max": str(after)})
        p.task_placement(after)
        new_ids = task_client_ids(client_id, after)
        assert wait_until(lambda: _logged_by_each(p, marks, CONNECTED, new_ids), 120,
                          interval=1), _logs_since(p, marks)[-3000:]
        # The old tasks have stopped: the orphan's share of this is queued in its session.
        acknowledged |= _publish(p, first=COUNT)
        scanned = wait_until(lambda: _logged_by_each(p, marks, SCANNED, new_ids), wait,
                             interval=1)
        outcome = p.outcome(acknowledged, 2 * COUNT)
        records = p.kafka.records("device_data", p.kafka.record_count("device_data"))
        logs = _logs_since(p, marks)
        held = [int(n) for n in re.findall(
            rf"Adopted the orphaned MQTT session {re.escape(orphan)}: it held (\d+) message",
            logs)]
        scanned_ids = [client_id] + [f"{client_id}-{i}" for i in range(after, SCAN)]
        left = [i for i in scanned_ids if p.session_held(i)]
    adopted = collections.Counter(r.headers[ADOPTED_HEADER].decode() for r in records
                                  if ADOPTED_HEADER in r.headers)
    REPORTS.append(f"tasks {before} -> {after}: {outcome.summary(f'orphan {orphan}')}, "
                   f"adopted records {dict(adopted)}, sessions it held {held}, "
                   f"sessions left {left}")
    print(REPORTS[-1])
    assert len(outcome.acknowledged) == 2 * COUNT
    assert not outcome.lost, f"lost {len(outcome.lost)}: {sorted(outcome.lost)[:20]}"
    assert scanned_before and scanned, f"no task logged the end of its scan: {logs[-3000:]}"
    assert len(held) == 1 and held[0] > 0, f"{orphan} was not adopted once: {held}"
    assert adopted[orphan] >= held[0], adopted
    assert set(adopted) == {orphan}, adopted
    assert not left, f"the broker still holds sessions for {left}"
