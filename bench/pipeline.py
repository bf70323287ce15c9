"""MQTT -> device_data latency (p50/p99) and the sustained rate, on real local servers: Mosquitto
with the dev stack's rendered password file and ACL, a KRaft broker and a Connect worker from
the Maven jars, and the MQTT source connector from its rendered config (kafkaMqttSource=
health-pipeline, the implementation that builds from Maven Central jars).

    .venv/bin/python bench/pipeline.py [--seconds S] [--rates 1000,2000,...] [--max-rate R]

Latency is the broker's append time of each record (its topic has message.timestamp.type=
LogAppendTime, whole milliseconds, so a value can read up to 1 ms low) minus the moment the
publisher handed the message to paho, on one clock. Each
rate runs for --seconds into a topic of its own (the connector is re-pointed between steps,
its persistent session keeps anything in between). Without --rates it runs 1,000 msg/s, then
doubles until a rate is not sustained and bisects the last gap twice: sustained means the
publisher kept the rate (95 %), every message arrived, and p99 stayed under --p99-limit-ms.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from components.connectors import ConnectorProvider
from components.streams import MQTT_TOPICS
from devtools.harness import PROJECT, run_program
from devtools.kafka_servers import MQTT_SOURCE, MQTT_SOURCE_PLUGIN, ConnectWorker, Kafka
from devtools.servers import Mosquitto
from simulator.vitals import make_devices

TOPIC = MQTT_TOPICS[0]


@dataclass
class Step:
    rate: int
    sent: int
    publish_seconds: float
    arrived: int
    latencies_ms: list[float]

    @property
    def achieved(self) -> float:
        return self.sent / self.publish_seconds

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] if ordered else 0.0

    def sustained(self, p99_limit_ms: float) -> bool:
        return (self.achieved >= 0.95 * self.rate and self.arrived == self.sent
                and self.percentile(99) <= p99_limit_ms)


def publish(port: int, user: str, password: str, payloads: list[bytes], rate: int) -> list[float]:
    """Publish at `rate` msg/s (QoS 1, paced against a schedule so a late message does not
    shift the others); the wall-clock moment of each publish call; waits for every PUBACK."""
    acked = threading.Semaphore(0)
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-pipeline")
    client.username_pw_set(user, password)
    client.max_inflight_messages_set(1000)
    client.on_publish = lambda *args: acked.release()
    client.connect("127.0.0.1", port)
    client.loop_start()
    sent_at: list[float] = []
    start = time.perf_counter()
    for i, payload in enumerate(payloads):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        sent_at.append(time.time())
        client.publish(TOPIC, payload, qos=1)
    for _ in payloads:
        if not acked.acquire(timeout=60):
            raise RuntimeError("the broker stopped acknowledging")
    client.loop_stop()
    client.disconnect()
    return sent_at


def run_step(kafka: Kafka, connect: ConnectWorker, props: dict, mqtt_port: int,
             device: tuple[str, str], rate: int, seconds: float, declared: dict) -> Step:
    topic = f"bench_{rate}"
    done = kafka.create_topic(topic, 1, {**declared, "message.timestamp.type": "LogAppendTime"},
                              if_not_exists=True)
    if done.returncode:
        raise RuntimeError(done.stderr)
    news = {**props, "config": {**props["config"], "kafka.topic": topic}}
    ConnectorProvider().update(props["name"], props, news)
    props.update(news)
    time.sleep(3)  # the task restarts with the new topic
    devices = make_devices(50, seed=rate)
    count = int(rate * seconds)
    messages = []
    for i in range(count):
        reading = devices[i % 50].reading()
        reading["deviceId"] = f"{reading['deviceId']}-{i}"  # unique, to match each record
        messages.append(json.dumps(reading).encode())
    sent_at = publish(mqtt_port, *device, messages, rate)
    publish_seconds = sent_at[-1] - sent_at[0] if count > 1 else 1.0
    published = dict(zip(messages, sent_at, strict=True))
    lines = kafka.consume(topic, count, 30, "print.timestamp=true", "print.value=true")
    latencies = []
    for line in lines:
        stamp, value = line.split("\t", 1)
        appended = int(stamp.removeprefix("LogAppendTime:")) / 1000
        latencies.append((appended - published[value.encode()]) * 1000)
    return Step(rate, count, publish_seconds, len(lines), latencies)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--rates", help="comma-separated msg/s; default: 1000 and doubling")
    parser.add_argument("--max-rate", type=int, default=64000)
    parser.add_argument("--p99-limit-ms", type=float, default=1000)
    args = parser.parse_args()
    if not any(MQTT_SOURCE_PLUGIN.glob("mqtt-source-connector-*.jar")):
        print(f"error: {MQTT_SOURCE_PLUGIN} is empty; run scripts/build-mqtt-source",
              file=sys.stderr)
        return 2
    run = run_program("dev", {f"{PROJECT}:kafkaMqttSource": "health-pipeline"})
    declared = run.one("kafka:index/topic:Topic", "topics-device_data").get("config")
    root = Path(tempfile.mkdtemp(prefix="health-pipeline-bench-pipeline-"))
    root.chmod(0o755)  # Mosquitto runs as its own user and must reach its directory
    servers: list = []
    try:
        broker = Mosquitto.rendered_for(run, root / "mosquitto").start()
        servers.append(broker)
        kafka = Kafka(root / "kafka").start()
        servers.append(kafka)
        connect = ConnectWorker(root / "connect", kafka.bootstrap, plugins=(MQTT_SOURCE_PLUGIN,),
                                expected_plugins=(MQTT_SOURCE,)).start()
        servers.append(connect)
        # The plain listener, as the earlier measurements: the rendered source without the
        # broker's CA (which it takes only with ssl://).
        rendered = run.one("pulumi-python:dynamic/connect:Connector",
                           "connectors-mqtt-source").get("config")
        config = {**{k: v for k, v in rendered.items() if k != "mqtt.ssl.ca.pem"},
                  "mqtt.server.uri": f"tcp://127.0.0.1:{broker.port}"}
        props = {"connect_url": connect.url, "name": config["name"], "config": config,
                 "timeout_seconds": 30}
        ConnectorProvider().create(props)
        device = (run.outputs["mqttDeviceUsername"][0], run.outputs["mqttDevicePassword"][0])
        rates = ([int(r) for r in args.rates.split(",")] if args.rates else None)
        print(f"{args.seconds:g} s per rate; Mosquitto :{broker.port}, Kafka {kafka.bootstrap}, "
              f"Connect {connect.url}", file=sys.stderr)
        steps: list[Step] = []

        def measure(rate: int) -> bool:
            step = run_step(kafka, connect, props, broker.port, device, rate, args.seconds,
                            declared)
            steps.append(step)
            print(f"  {rate:>6} msg/s: published at {step.achieved:,.0f} msg/s, arrived "
                  f"{step.arrived}/{step.sent}, p50 {step.percentile(50):.1f} ms, p99 "
                  f"{step.percentile(99):.1f} ms, max "
                  f"{max(step.latencies_ms, default=0):.1f} ms", file=sys.stderr)
            return step.sustained(args.p99_limit_ms)

        if rates is not None:
            for rate in rates:
                measure(rate)
        else:
            # Double from 1,000 msg/s until a rate fails, then halve the gap twice.
            good, bad, rate = 0, 0, 1000
            while rate <= args.max_rate:
                if not measure(rate):
                    bad = rate
                    break
                good, rate = rate, rate * 2
            for _ in range(2 if good and bad else 0):
                middle = (good + bad) // 2
                if measure(middle):
                    good = middle
                else:
                    bad = middle
    finally:
        for server in reversed(servers):
            server.stop()
        shutil.rmtree(root, ignore_errors=True)
    print(f"summary: MQTT (QoS 1) -> device_data, {args.seconds:g} s per rate, "
          f"sustained = kept the rate, all arrived, p99 <= {args.p99_limit_ms:g} ms")
    for step in steps:
        print(f"  {step.rate:>6} msg/s  achieved {step.achieved:>8,.0f}  arrived "
              f"{step.arrived:>7}/{step.sent:<7} p50 {step.percentile(50):>7.1f} ms  "
              f"p99 {step.percentile(99):>7.1f} ms  "
              f"{'sustained' if step.sustained(args.p99_limit_ms) else 'NOT sustained'}")
    best = [s.rate for s in steps if s.sustained(args.p99_limit_ms)]
    print(f"  highest sustained rate: {max(best):,} msg/s" if best
          else "  no rate was sustained")
    return 0


if __name__ == "__main__":
    sys.exit(main())
