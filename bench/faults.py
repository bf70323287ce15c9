"""A longer soak of the fault tests (tests/contract/test_faults.py): numbered QoS 1 messages
at a steady rate through Mosquitto (the rendered files) and this project's MQTT source (the
rendered config) on a two-worker Connect cluster into device_data, while, in separate runs,
(a) the worker running the task is SIGKILLed, (b) the Kafka broker is stopped and restarted,
(c) Mosquitto is SIGKILLed and restarted, each halfway through. Per fault it prints what the
broker acknowledged to the devices and, as ratios of that, what device_data holds, what was
lost and what came twice; all from one run.

    .venv/bin/python bench/faults.py [--count 60000] [--rate 2000] [--faults abc]
"""

from __future__ import annotations

import argparse
import sys
import time
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=60_000)
    parser.add_argument("--rate", type=float, default=2_000.0)
    parser.add_argument("--faults", default="abc", help="which of a, b, c (default all)")
    args = parser.parse_args(argv)
    own = run_program("dev", {f"{PROJECT}:kafkaMqttSource": "health-pipeline"})
    rows: list[tuple[str, Outcome]] = []
    for letter in args.faults:
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
    print(f"\n{'fault':<58} {'acked':>7} {'arrived':>8} {'lost':>8} {'twice':>8}")
    for name, o in rows:
        acked = len(o.acknowledged) or 1
        print(f"{name:<58} {len(o.acknowledged):>7} {len(o.received) / acked:>8.4f} "
              f"{len(o.lost) / acked:>8.4f} {o.duplicated / acked:>8.4f}")
    print("(arrived, lost and twice are ratios of what Mosquitto acknowledged to the devices)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
