"""Simulator throughput against a bare paho publish loop, at QoS 0 and QoS 1, on one local
Mosquitto configured as the program configures it (password file, ACL, persistence).

    .venv/bin/python bench/simulator.py [--messages N] [--runs R]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import secrets
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from components.render.mosquitto import MqttUser, render_acl, render_password_file
from components.streams import MQTT_TOPICS
from devtools.servers import Mosquitto
from simulator.publisher import Broker, Publisher
from simulator.vitals import make_devices

TOPIC = MQTT_TOPICS[0]


def bare_loop(port: int, password: str, payloads: list[bytes], qos: int) -> float:
    """The least a publisher can do: publish pre-encoded payloads, wait for every ack."""
    done = threading.Event()
    acked = 0

    def on_publish(client, userdata, mid, reason_code, properties) -> None:
        nonlocal acked
        acked += 1
        if acked == len(payloads):
            done.set()

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bare-loop")
    client.username_pw_set("device", password)
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    client.on_publish = on_publish
    client.connect("127.0.0.1", port)
    client.loop_start()
    start = time.perf_counter()
    for payload in payloads:
        client.publish(TOPIC, payload, qos=qos)
    if not done.wait(120):
        raise RuntimeError(f"bare loop: {acked} of {len(payloads)} acknowledged")
    seconds = time.perf_counter() - start
    client.disconnect()
    client.loop_stop()
    return len(payloads) / seconds


def simulator_run(port: int, password: str, count: int, qos: int) -> float:
    publisher = Publisher(Broker("127.0.0.1", port, "device", password, "bench-simulator"),
                          qos=qos)
    publisher.connect()
    devices = make_devices(20, seed=1, anomaly_rate=0.01, jitter_degrees=0.001)
    stream = (devices[i % 20].reading() for i in range(count))
    stats = publisher.run(TOPIC, stream, rate=0)
    publisher.close()
    if stats.failed or stats.acknowledged != count:
        raise RuntimeError(f"simulator: {stats}")
    return count / stats.seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    password = secrets.token_urlsafe(16)
    users = [MqttUser(name, password, base64.b64encode(os.urandom(12)).decode())
             for name in ("device", "kafka-connect", "healthcheck", "monitor")]
    root = Path(tempfile.mkdtemp(prefix="health-pipeline-bench-"))
    broker = Mosquitto(root, render_password_file(users),
                       render_acl("device", "kafka-connect", "monitor", "healthcheck")).start()
    sample = make_devices(20, seed=1)
    payloads = [json.dumps(sample[i % 20].reading()).encode() for i in range(args.messages)]
    print(f"{args.messages} messages per run, {args.runs} runs, Mosquitto on 127.0.0.1:"
          f"{broker.port}, payload ~{len(payloads[0])} bytes", file=sys.stderr)
    try:
        results: dict[tuple[str, int], float] = {}
        for qos in (0, 1):
            cases = (
                ("bare paho loop", lambda q=qos: bare_loop(broker.port, password, payloads, q)),
                ("simulator",
                 lambda q=qos: simulator_run(broker.port, password, args.messages, q)),
            )
            for label, run in cases:
                rates = []
                for i in range(args.runs):
                    rates.append(run())
                    print(f"  QoS {qos} {label}: run {i + 1}/{args.runs} {rates[-1]:,.0f} msg/s",
                          file=sys.stderr)
                results[(label, qos)] = statistics.median(rates)
    finally:
        broker.stop()
        shutil.rmtree(root)
    print("summary: median msg/s (fresh connection per run)")
    for qos in (0, 1):
        bare, sim = results[("bare paho loop", qos)], results[("simulator", qos)]
        print(f"  QoS {qos}: bare paho {bare:>9,.0f}  simulator {sim:>9,.0f}  "
              f"simulator/bare {sim / bare:.2f}")


if __name__ == "__main__":
    main()
