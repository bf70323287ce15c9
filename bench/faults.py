"""A longer soak of the fault tests (tests/contract/test_faults.py): numbered QoS 1 messages
at a steady rate through Mosquitto (the rendered files) and this project's MQTT source (the
rendered config) on a two-worker Connect cluster into device_data, while, in separate runs,
(a) the worker running the task is SIGKILLed, (b) the Kafka broker is stopped and restarted,
(c) Mosquitto is SIGKILLed and restarted, each halfway through. Per fault it prints what the
broker acknowledged to the devices and, as ratios of that, what device_data holds, what was
lost and what came twice; all from one run.

(d), with --persistence, is Mosquitto SIGKILLed while the connector does not keep up: the
source is paused (Connect's PUT /connectors/<name>/pause), --queued messages are published as
fast as the broker acknowledges them (so they queue in Mosquitto for the connector's
persistent session), Mosquitto is SIGKILLed right after the last acknowledgement and
restarted, the source resumed meanwhile (its task reconnects by itself); once device_data
stops growing, what is missing is what the broker had acknowledged but not yet written. Once
per persistence setting (each a program run with mqttAutosaveInterval and
mqttAutosaveOnChanges set), with the publish rate each allowed and how often the broker wrote
its file meanwhile: the cost of saving often.

    .venv/bin/python bench/faults.py [--count 60000] [--rate 2000] [--faults abc]
    .venv/bin/python bench/faults.py --faults d [--queued 10000] \
        [--persistence seconds:30,changes:1,changes:100,changes:1000]
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from devtools.fault_pipeline import Outcome, Pipeline, pipeline
from devtools.harness import PROJECT, run_program
from devtools.servers import Missing


def _worker(p: Pipeline) -> None:
    p.task_worker(p.workers).kill()


def _kafka(p: Pipeline) -> None:
    p.kafka.stop()
    time.sleep(2)
    p.kafka.start()


def _mosquitto(p: Pipeline) -> None:
    p.mqtt.kill()
    time.sleep(1)
    p.mqtt.start()


FAULTS = {
    "a": ("Connect worker running the task SIGKILLed", _worker),
    "b": ("Kafka broker stopped and restarted", _kafka),
    "c": ("Mosquitto SIGKILLed and restarted (saved once before)", _mosquitto),
}


@dataclass(frozen=True)
class Persisted:
    setting: str
    outcome: Outcome
    publish_rate: float
    """Acknowledged messages per second while the queue grew."""
    saves: int
    """Writes of the persistence file while publishing."""
    since_save: float
    """Seconds from the last write before the kill to the kill (-1: none since the start)."""


def persistence_setting(text: str) -> dict[str, object]:
    unit, _, number = text.partition(":")
    if unit not in ("seconds", "changes") or not number.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r}: expected seconds:N or changes:N")
    return {f"{PROJECT}:mqttAutosaveInterval": int(number),
            f"{PROJECT}:mqttAutosaveOnChanges": unit == "changes"}


def paused_crash(setting: str, count: int) -> Persisted:
    """(d) for one persistence setting, on servers of its own."""
    own = run_program("dev", {f"{PROJECT}:kafkaMqttSource": "health-pipeline",
                              **persistence_setting(setting)})
    with pipeline(own, "bench-fault-d", workers=1) as p:
        p.create_source()
        p.mqtt.save()  # the connector's session is on disk, as in a broker that ran a while
        crash = p.crash_with_a_queue(count)
        outcome = p.outcome(crash.acknowledged, count, quiet=15)
    return Persisted(setting, outcome, len(crash.acknowledged) / max(crash.seconds, 1e-3),
                     crash.saves, crash.since_save)


def persistence_table(rows: list[Persisted]) -> None:
    print(f"\n{'(d) paused connector, Mosquitto SIGKILLed':<42} {'acked':>7} {'msg/s':>8} "
          f"{'saves':>6} {'s since save':>13} {'lost':>8} {'twice':>8}")
    for r in rows:
        acked = len(r.outcome.acknowledged) or 1
        print(f"{'autosave ' + r.setting:<42} {len(r.outcome.acknowledged):>7} "
              f"{r.publish_rate:>8,.0f} {r.saves:>6} {r.since_save:>13.1f} "
              f"{len(r.outcome.lost) / acked:>8.4f} {r.outcome.duplicated / acked:>8.4f}")
    print("(lost and twice are ratios of what Mosquitto acknowledged; msg/s is the rate it "
          "acknowledged them while queueing; saves are writes of its file meanwhile)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=60_000)
    parser.add_argument("--rate", type=float, default=2_000.0)
    parser.add_argument("--faults", default="abc", help="which of a, b, c, d (default abc)")
    parser.add_argument("--queued", type=int, default=10_000,
                        help="(d): messages published while the connector is paused")
    parser.add_argument("--persistence", default="seconds:30,changes:1,changes:100,changes:1000",
                        help="(d): the autosave settings to compare, seconds:N or changes:N")
    args = parser.parse_args(argv)
    settings = args.persistence.split(",")
    for setting in settings:
        try:
            persistence_setting(setting)
        except argparse.ArgumentTypeError as error:
            parser.error(f"--persistence: {error}")
    own = run_program("dev", {f"{PROJECT}:kafkaMqttSource": "health-pipeline"})
    rows: list[tuple[str, Outcome]] = []
    persisted: list[Persisted] = []
    for letter in args.faults:
        if letter == "d":
            for setting in settings:
                print(f"(d) paused connector, autosave {setting}: {args.queued} messages, "
                      "Mosquitto SIGKILLed ...", flush=True)
                try:
                    persisted.append(paused_crash(setting, args.queued))
                except Missing as missing:
                    print(f"error: {missing}", file=sys.stderr)
                    return 2
                print("   " + persisted[-1].outcome.summary(f"(d) {setting}"), flush=True)
            continue
        what, fault = FAULTS[letter]
        print(f"({letter}) {what}: {args.count} messages at {args.rate:.0f}/s ...", flush=True)
        try:
            with pipeline(own, f"bench-fault-{letter}", workers=2) as p:
                p.create_source()
                p.mqtt.save()
                outcome = p.publish_with(lambda p=p, fault=fault: fault(p),
                                         after=args.count / args.rate / 2, count=args.count,
                                         rate=args.rate)
        except Missing as missing:
            print(f"error: {missing}", file=sys.stderr)
            return 2
        print("   " + outcome.summary(f"({letter})"), flush=True)
        rows.append((f"({letter}) {what}", outcome))
    if rows:
        print(f"\n{'fault':<58} {'acked':>7} {'arrived':>8} {'lost':>8} {'twice':>8}")
        for name, o in rows:
            acked = len(o.acknowledged) or 1
            print(f"{name:<58} {len(o.acknowledged):>7} {len(o.received) / acked:>8.4f} "
                  f"{len(o.lost) / acked:>8.4f} {o.duplicated / acked:>8.4f}")
        print("(arrived, lost and twice are ratios of what Mosquitto acknowledged to the "
              "devices)")
    if persisted:
        persistence_table(persisted)
    return 0


if __name__ == "__main__":
    sys.exit(main())
