"""Faults while devices publish, on real servers: 10,000 numbered QoS 1 messages at a steady
1,000 per second through Mosquitto (the rendered files) and this project's MQTT source (the
rendered config) into device_data, while a Connect worker, the Kafka broker or Mosquitto
dies. Each test counts what device_data received against what the broker acknowledged to the
devices: lost (acknowledged, never in device_data) and duplicated (there more than once, which
at-least-once delivery allows). The counts are printed at the end of the run; bench/faults.py
runs the same faults longer.

Each test has servers of its own (a broker it may kill must not be the session's)."""

from __future__ import annotations

import time

import pytest

from devtools.fault_pipeline import Outcome, pipeline
from devtools.harness import PROJECT, ProgramRun, run_program

COUNT = 10_000
RATE = 1_000.0

REPORTS: list[str] = []
"""One line per fault, printed by tests/contract/conftest.py at the end of the run."""


@pytest.fixture(scope="module")
def own() -> ProgramRun:
    return run_program("dev", {f"{PROJECT}:kafkaMqttSource": "health-pipeline"})


def _report(outcome: Outcome, fault: str) -> None:
    REPORTS.append(outcome.summary(fault))
    print(REPORTS[-1])


def test_a_killed_connect_worker_hands_its_task_over_and_loses_nothing(own) -> None:
    """(a) SIGKILL the worker running the source's task: the other worker takes the task,
    reconnects with the same client id to the persistent session, and gets what its
    predecessor had not acknowledged."""
    with pipeline(own, "fault-worker", workers=2) as p:
        p.create_source()
        victim = p.task_worker(p.workers)
        survivor = next(w for w in p.workers if w is not victim)
        outcome = p.publish_with(victim.kill, after=3, count=COUNT, rate=RATE)
        assert p.task_worker([survivor]) is survivor
    _report(outcome, "(a) Connect worker SIGKILLed")
    assert len(outcome.acknowledged) == COUNT
    assert not outcome.lost, f"lost {sorted(outcome.lost)[:20]}"


def test_a_kafka_broker_restart_loses_nothing(own) -> None:
    """(b) Stop and start the broker: the source's producer retries, and the source
    acknowledges to Mosquitto only what Kafka has, so the broker keeps the rest meanwhile."""
    with pipeline(own, "fault-kafka", workers=2) as p:
        p.create_source()

        def restart() -> None:
            p.kafka.stop()
            time.sleep(2)
            p.kafka.start()

        outcome = p.publish_with(restart, after=3, count=COUNT, rate=RATE)
    _report(outcome, "(b) Kafka broker stopped and restarted")
    assert len(outcome.acknowledged) == COUNT
    assert not outcome.lost, f"lost {sorted(outcome.lost)[:20]}"


def test_a_killed_mosquitto_loses_at_most_what_it_had_not_saved(own) -> None:
    """(c) SIGKILL Mosquitto and start it again: what it acknowledged to devices but had not
    yet handed to the connector and not yet written to its persistence file is gone (the
    window Mosquitto's autosave settings leave); everything acknowledged after the restart
    arrives, because the connector's persistent session was saved before (as every
    autosave_interval saves it in a broker that has run that long; here SIGUSR1 does it once).
    The count is reported, not required to be zero.

    Without any save since the connector subscribed (a broker killed within its first
    autosave_interval), its session is gone too, and what devices publish until the connector
    has reconnected and subscribed again is lost as well: measured, about 3 s at 1,000/s."""
    with pipeline(own, "fault-mosquitto", workers=1) as p:
        p.create_source()
        p.mqtt.save()
        restarted_at: list[float] = []

        def crash() -> None:
            p.mqtt.kill()
            time.sleep(1)
            p.mqtt.start()
            restarted_at.append(time.monotonic())

        outcome = p.publish_with(crash, after=3, count=COUNT, rate=RATE)
    _report(outcome, "(c) Mosquitto SIGKILLed and restarted (default persistence)")
    # Counted from the restart, not from the kill: a PUBACK the killed broker sent just before
    # it died can sit in the publisher's socket and reach paho's callback after kill() returns
    # (seen in CI: three of them, lost with the broker's unsaved state, as they may be).
    after_restart = {seq for seq, at in outcome.acknowledged_at.items()
                     if at > restarted_at[0]}
    assert after_restart, "nothing was acknowledged after the restart"
    assert not (outcome.lost & after_restart), "lost messages acknowledged after the restart"


def test_a_killed_mosquitto_with_the_connector_behind_loses_at_most_its_autosave_count(
        own) -> None:
    """(c) where it matters, with the default persistence (mqttAutosaveOnChanges, a count of
    mqttAutosaveInterval changes): the connector paused, 2,000 messages queue in Mosquitto for
    its session, Mosquitto is SIGKILLed right after acknowledging the last. What is lost is
    what it queued since its last write, fewer than two counts (Mosquitto compares the count
    once per pass of its event loop, so one pass may go past it). With time-based saving
    (mqttAutosaveInterval 30 s) nearly all of them are lost (bench/faults.py --faults d).

    The source is resumed while the broker is down, so the task reconnects by itself after
    committing what it held while disconnected: this catches a task whose reconnect never
    completes (it received 20 of 2,000 when it still acknowledged while disconnected)."""
    count = 2_000
    with pipeline(own, "fault-mosquitto-queued", workers=1) as p:
        tuning = p.mqtt.tuning
        assert tuning.autosave_on_changes, "the default saves on changes"
        p.create_source()
        crash = p.crash_with_a_queue(count)
        outcome = p.outcome(crash.acknowledged, count, quiet=15)
    _report(outcome, f"(c) Mosquitto SIGKILLed, connector paused, {count} queued, autosave "
            f"every {tuning.autosave_interval} changes")
    assert len(outcome.acknowledged) == count
    assert len(outcome.lost) < 2 * tuning.autosave_interval, (
        f"lost {len(outcome.lost)}, saves while queueing {crash.saves}")
