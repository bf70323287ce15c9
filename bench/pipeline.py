"""MQTT -> device_data to the ceiling, in one run: the highest sustained QoS 1 rate with its
p50/p99 latency for each connector configuration (tasks.max) on a Connect cluster, against the
ceiling of Mosquitto alone with the same publishers and a plain subscriber, on real local
servers: Mosquitto with the dev stack's rendered files, a KRaft broker, --workers Connect
workers in one group, and this project's MQTT source from its rendered config.

    .venv/bin/python bench/pipeline.py [--generator c|python] [--publishers 4] \\
        [--tasks 1,2,4] [--workers 2] [--seconds 5] [--p99-limit-ms 250] [--rates R,...]

Generators: `c` runs --publishers `mosquitto_pub -l` processes (Debian's mosquitto-clients),
fed pre-generated lines at the schedule; `python` runs --publishers processes of paho-mqtt
(the simulator's client). The broker alone is received by one `mosquitto_sub` (C) with the
`c` generator, by one paho subscriber with `python`. Latency is from the moment a message is
handed to its publisher to the broker's append time of its record in Kafka (topics with
message.timestamp.type=LogAppendTime, whole milliseconds) or to mosquitto_sub's receive time
(%U), on one clock. Each rate runs --seconds into a Kafka topic of its own (the connector is
re-pointed between steps). Without --rates: --start-rate, doubling until a rate is not
sustained, then bisecting the last gap twice. Sustained: the publishers kept 95 % of the rate,
every message arrived, p99 <= --p99-limit-ms.

tasks.max goes into the rendered connector config; the table says how many tasks Connect
actually ran, since an MQTT source without shared subscriptions runs one.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from components.connectors import ConnectorProvider
from components.render.mosquitto import render_client_options
from components.streams import MQTT_TOPICS
from devtools.harness import PROJECT, run_program
from devtools.kafka_servers import MQTT_SOURCE, ConnectWorker, Kafka, mqtt_source_plugin
from devtools.servers import Missing, Mosquitto, binary
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


@dataclass
class Configuration:
    name: str
    tasks_asked: int | None
    tasks_running: int | None
    steps: list[Step]

    def best(self, p99_limit_ms: float) -> Step | None:
        good = [s for s in self.steps if s.sustained(p99_limit_ms)]
        return max(good, key=lambda s: s.rate) if good else None


def payloads(rate: int, count: int) -> list[bytes]:
    devices = make_devices(50, seed=rate)
    out = []
    for i in range(count):
        reading = devices[i % 50].reading()
        reading["deviceId"] = f"{reading['deviceId']}-{i}"  # unique, to match each record
        out.append(json.dumps(reading).encode())
    return out


# --- generators: each returns the wall-clock moment each payload was handed over -----------


def c_publishers(port: int, login_dir: Path, messages: list[bytes], rate: int,
                 publishers: int) -> list[float]:
    """`publishers` mosquitto_pub -l processes (QoS 1, one message per stdin line), message i
    to publisher i % publishers at start + i / rate, written in small batches."""
    command = [binary("mosquitto_pub"), "-h", "127.0.0.1", "-p", str(port), "-q", "1",
               "-t", TOPIC, "-l"]
    env = {**os.environ, "XDG_CONFIG_HOME": str(login_dir)}
    procs = [subprocess.Popen([*command, "-i", f"bench-pub-{n}"], stdin=subprocess.PIPE,
                              env=env) for n in range(publishers)]
    time.sleep(0.5)  # connected
    sent_at = [0.0] * len(messages)
    start = time.perf_counter()
    i = 0
    while i < len(messages):
        due = min(len(messages), int((time.perf_counter() - start) * rate) + 1)
        if due <= i:
            time.sleep(0.001)
            continue
        now = time.time()
        batches: list[list[bytes]] = [[] for _ in procs]
        for j in range(i, due):
            batches[j % publishers].append(messages[j])
            sent_at[j] = now
        for proc, batch in zip(procs, batches, strict=True):
            if batch:
                assert proc.stdin is not None
                proc.stdin.write(b"\n".join(batch) + b"\n")
                proc.stdin.flush()
        i = due
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.close()
    for proc in procs:
        proc.wait(timeout=120)
    return sent_at


def _paho_publish(port: int, user: str, password: str, messages: list[bytes], rate: float,
                  client_id: str) -> list[float]:
    """One paho publisher at `rate`, paced against a schedule; waits for every PUBACK."""
    acked = threading.Semaphore(0)
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id)
    client.username_pw_set(user, password)
    client.max_inflight_messages_set(1000)
    client.on_publish = lambda *args: acked.release()
    client.connect("127.0.0.1", port)
    client.loop_start()
    sent_at: list[float] = []
    start = time.perf_counter()
    for i, payload in enumerate(messages):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        sent_at.append(time.time())
        client.publish(TOPIC, payload, qos=1)
    for _ in messages:
        if not acked.acquire(timeout=60):
            raise RuntimeError("the broker stopped acknowledging")
    client.loop_stop()
    client.disconnect()
    return sent_at


def python_publishers(port: int, user: str, password: str, messages: list[bytes], rate: int,
                      publishers: int) -> list[float]:
    with ProcessPoolExecutor(max_workers=publishers) as pool:
        parts = [pool.submit(_paho_publish, port, user, password, messages[n::publishers],
                             rate / publishers, f"bench-pub-{n}") for n in range(publishers)]
        times = [part.result() for part in parts]
    sent_at = [0.0] * len(messages)
    for n, part in enumerate(times):
        sent_at[n::publishers] = part
    return sent_at


# --- receivers ----------------------------------------------------------------------------


def broker_alone_step(generator: str, broker: Mosquitto, device: tuple[str, str],
                      reader: tuple[str, str], logins: dict[str, Path], rate: int,
                      seconds: float, publishers: int) -> Step:
    """The same publishers, and one plain subscriber in place of the connector."""
    count = int(rate * seconds)
    messages = payloads(rate, count)
    received: dict[bytes, float] = {}
    if generator == "c":
        sub = subprocess.Popen(
            [binary("mosquitto_sub"), "-h", "127.0.0.1", "-p", str(broker.port), "-q", "1",
             "-t", TOPIC, "-C", str(count), "-W", str(int(seconds) + 60), "-F", "%U %p"],
            stdout=subprocess.PIPE, env={**os.environ, "XDG_CONFIG_HOME": str(logins["reader"])})
        lines: list[bytes] = []
        reader_thread = threading.Thread(
            target=lambda: lines.extend(sub.stdout or []), daemon=True)
        reader_thread.start()
        time.sleep(1.0)  # subscribed
        sent_at = c_publishers(broker.port, logins["device"], messages, rate, publishers)
        sub.wait(timeout=seconds + 90)
        reader_thread.join(timeout=10)
        for line in lines:
            stamp, payload = line.rstrip(b"\n").split(b" ", 1)
            received[payload] = float(stamp)
    else:
        done = threading.Event()
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-sub")
        client.username_pw_set(*reader)

        def on_message(_client, _userdata, message) -> None:
            received[message.payload] = time.time()
            if len(received) >= count:
                done.set()

        client.on_message = on_message
        client.connect("127.0.0.1", broker.port)
        client.subscribe(TOPIC, qos=1)
        client.loop_start()
        time.sleep(1.0)
        sent_at = python_publishers(broker.port, *device, messages, rate, publishers)
        done.wait(timeout=60)
        client.loop_stop()
        client.disconnect()
    published = dict(zip(messages, sent_at, strict=True))
    latencies = [(at - published[p]) * 1000 for p, at in received.items() if p in published]
    return Step(rate, count, max(sent_at) - min(sent_at) if count > 1 else 1.0,
                len(latencies), latencies)


def pipeline_step(generator: str, kafka: Kafka, props: dict, broker: Mosquitto,
                  device: tuple[str, str], logins: dict[str, Path], rate: int, seconds: float,
                  publishers: int, declared: dict, label: str) -> Step:
    _drain(kafka, props)
    topic = f"bench_{label}_{rate}"
    done = kafka.create_topic(topic, 1, {**declared, "message.timestamp.type": "LogAppendTime"},
                              if_not_exists=True)
    if done.returncode:
        raise RuntimeError(done.stderr)
    news = {**props, "config": {**props["config"], "kafka.topic": topic}}
    ConnectorProvider().update(props["name"], props, news)
    props.update(news)
    time.sleep(3)  # the tasks restart with the new topic
    count = int(rate * seconds)
    messages = payloads(rate, count)
    if generator == "c":
        sent_at = c_publishers(broker.port, logins["device"], messages, rate, publishers)
    else:
        sent_at = python_publishers(broker.port, *device, messages, rate, publishers)
    published = dict(zip(messages, sent_at, strict=True))
    lines = kafka.consume(topic, count, 30, "print.timestamp=true", "print.value=true")
    latencies = []
    for line in lines:
        stamp, value = line.split("\t", 1)
        if value.encode() not in published:
            continue  # an earlier step's backlog, delivered after the topic changed
        appended = int(stamp.removeprefix("LogAppendTime:")) / 1000
        latencies.append((appended - published[value.encode()]) * 1000)
    return Step(rate, count, max(sent_at) - min(sent_at) if count > 1 else 1.0,
                len(latencies), latencies)


def _drain(kafka: Kafka, props: dict, quiet: float = 2.0, timeout: float = 180.0) -> None:
    """Before the next step, let the last step's topic stop growing: a rate that was not
    sustained leaves a backlog in the broker for the connector's session, which would
    otherwise arrive in the next step's topic and its latencies."""
    topic = props["config"].get("kafka.topic", "")
    if not topic.startswith("bench_"):
        return
    deadline = time.monotonic() + timeout
    last = -1
    while time.monotonic() < deadline:
        now = kafka.record_count(topic)
        if now == last:
            return
        last = now
        time.sleep(quiet)


def search(measure: Callable[[int], Step], rates: list[int] | None, start: int, max_rate: int,
           p99_limit_ms: float, label: str) -> list[Step]:
    """Fixed rates, or doubling from `start` until one is not sustained, then bisecting the
    last gap twice."""
    steps: list[Step] = []

    def run(rate: int) -> bool:
        step = measure(rate)
        steps.append(step)
        print(f"  {label}: {rate:>6} msg/s: published at {step.achieved:,.0f} msg/s, arrived "
              f"{step.arrived}/{step.sent}, p50 {step.percentile(50):.1f} ms, p99 "
              f"{step.percentile(99):.1f} ms", file=sys.stderr, flush=True)
        return step.sustained(p99_limit_ms)

    if rates is not None:
        for rate in rates:
            run(rate)
        return steps
    good, bad, rate = 0, 0, start
    while rate <= max_rate:
        if not run(rate):
            bad = rate
            break
        good, rate = rate, rate * 2
    for _ in range(2 if good and bad else 0):
        middle = (good + bad) // 2
        if run(middle):
            good = middle
        else:
            bad = middle
    return steps


def tasks_running(worker: ConnectWorker, name: str, expected: int, timeout: float = 60) -> int:
    """How many tasks run once `expected` of them are RUNNING (the status lists them as they
    start), or, after `timeout`, how many do then."""
    deadline = time.monotonic() + timeout
    status: object = None
    running = 0
    while time.monotonic() < deadline:
        code, status = worker.get(f"/connectors/{name}/status")
        if code == 200:
            running = sum(t["state"] == "RUNNING" for t in status["tasks"])
            if running >= expected:
                return running
        time.sleep(0.5)
    if running:
        return running
    raise RuntimeError(f"{name}: tasks not running after {timeout} s: {status}")


def forget_sessions(port: int, login: tuple[str, str], client_ids: list[str]) -> None:
    """Connect once with a clean session as each of `client_ids`: the broker drops what it kept
    for the deleted connector's persistent sessions, which would otherwise keep queueing every
    message for nobody (and load the broker) through the next configurations."""
    for client_id in client_ids:
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                             clean_session=True, protocol=mqtt.MQTTv311)
        client.username_pw_set(*login)
        client.connect("127.0.0.1", port)
        client.loop_start()
        time.sleep(0.5)
        client.loop_stop()
        client.disconnect()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--generator", choices=("c", "python"), default="c")
    parser.add_argument("--publishers", type=int, default=4, help="publishing processes")
    parser.add_argument("--tasks", default="1,2,4", help="tasks.max of each configuration")
    parser.add_argument("--workers", type=int, default=2, help="Connect workers in the cluster")
    parser.add_argument("--no-broker-alone", action="store_true",
                        help="skip the ceiling of Mosquitto alone")
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--rates", help="comma-separated msg/s; default: doubling")
    parser.add_argument("--start-rate", type=int, default=2000)
    parser.add_argument("--max-rate", type=int, default=128000)
    parser.add_argument("--p99-limit-ms", type=float, default=250)
    args = parser.parse_args()
    tasks = [int(t) for t in args.tasks.split(",") if t]
    rates = [int(r) for r in args.rates.split(",")] if args.rates else None
    try:
        plugin = mqtt_source_plugin()
        if args.generator == "c":
            binary("mosquitto_pub")
            binary("mosquitto_sub")
    except Missing as missing:
        print(f"error: {missing}", file=sys.stderr)
        return 2
    run = run_program("dev", {f"{PROJECT}:kafkaMqttSource": "health-pipeline"})
    declared = run.one("kafka:index/topic:Topic", "topics-device_data").get("config")
    device = (run.outputs["mqttDeviceUsername"][0], run.outputs["mqttDevicePassword"][0])
    reader = (run.outputs["mqttMonitorUsername"][0], run.outputs["mqttMonitorPassword"][0])
    root = Path(tempfile.mkdtemp(prefix="health-pipeline-bench-pipeline-"))
    root.chmod(0o755)  # Mosquitto runs as its own user and must reach its directory
    logins = {}
    for who, (user, password) in (("device", device), ("reader", reader)):
        # mosquitto_pub/_sub read their login from $XDG_CONFIG_HOME, off the command line.
        folder = root / f"login-{who}"
        folder.mkdir(mode=0o700)
        for tool in ("mosquitto_pub", "mosquitto_sub"):
            (folder / tool).write_text(render_client_options(user, password))
        logins[who] = folder
    servers: list = []
    results: list[Configuration] = []
    try:
        broker = Mosquitto.rendered_for(run, root / "mosquitto").start()
        servers.append(broker)
        print(f"generator {args.generator} x {args.publishers}; {args.seconds:g} s per rate; "
              f"Mosquitto :{broker.port}", file=sys.stderr, flush=True)
        if not args.no_broker_alone:
            # First, while no connector session exists to queue for.
            steps = search(lambda rate: broker_alone_step(
                args.generator, broker, device, reader, logins, rate, args.seconds,
                args.publishers), rates, args.start_rate, args.max_rate, args.p99_limit_ms,
                "Mosquitto alone")
            results.append(Configuration("Mosquitto alone", None, None, steps))
        kafka = Kafka(root / "kafka").start()
        servers.append(kafka)
        workers = []
        for n in range(args.workers):
            worker = ConnectWorker(root / f"connect-{n}", kafka.bootstrap, plugins=(plugin,),
                                   expected_plugins=(MQTT_SOURCE,), group_id="bench-pipeline",
                                   heap="-Xmx512m").start()
            servers.append(worker)
            workers.append(worker)
        # The plain listener, as for the broker alone: the rendered source without the
        # broker's CA (which it takes only with ssl://).
        rendered = run.one("pulumi-python:dynamic/connect:Connector",
                           "connectors-mqtt-source").get("config")
        base = {**{k: v for k, v in rendered.items() if k != "mqtt.ssl.ca.pem"},
                "mqtt.server.uri": f"tcp://127.0.0.1:{broker.port}"}
        connector = (run.outputs["mqttConnectorUsername"][0],
                     run.outputs["mqttConnectorPassword"][0])
        for n in tasks:
            # A client id (and share group) per configuration: no session carries over.
            client_id = f"{base['mqtt.client.id']}-bench{n}"
            config = {**base, "tasks.max": str(n), "mqtt.client.id": client_id}
            props = {"connect_url": workers[0].url, "name": config["name"], "config": config,
                     "timeout_seconds": 60}
            ConnectorProvider().create(props)
            running = tasks_running(workers[0], config["name"], n)
            label = f"tasks.max={n} ({running} running, {args.workers} workers)"
            print(f"{label}", file=sys.stderr, flush=True)
            steps = search(lambda rate, props=props, n=n: pipeline_step(
                args.generator, kafka, props, broker, device, logins, rate, args.seconds,
                args.publishers, declared, f"t{n}"), rates, args.start_rate, args.max_rate,
                args.p99_limit_ms, f"tasks.max={n}")
            results.append(Configuration(f"pipeline, tasks.max={n}", n, running, steps))
            ConnectorProvider().delete(props["name"], props)
            forget_sessions(broker.port, connector,
                            [client_id] if n == 1 else [f"{client_id}-{i}" for i in range(n)])
    finally:
        for server in reversed(servers):
            server.stop()
        shutil.rmtree(root, ignore_errors=True)
    print(f"summary: MQTT QoS 1, generator {args.generator} ({args.publishers} publishing "
          f"processes: {'mosquitto_pub -l' if args.generator == 'c' else 'paho-mqtt'}), "
          f"{args.workers} Connect workers, {args.seconds:g} s per rate; sustained = kept the "
          f"rate, all arrived, p99 <= {args.p99_limit_ms:g} ms")
    for config in results:
        for step in config.steps:
            print(f"  {config.name:<26} {step.rate:>7} msg/s  achieved {step.achieved:>8,.0f}  "
                  f"arrived {step.arrived:>7}/{step.sent:<7} p50 {step.percentile(50):>7.1f} ms"
                  f"  p99 {step.percentile(99):>7.1f} ms  "
                  f"{'sustained' if step.sustained(args.p99_limit_ms) else 'NOT sustained'}")
    alone = next((c.best(args.p99_limit_ms) for c in results if c.tasks_asked is None), None)
    print(f"\n  {'configuration':<26} {'tasks run':>9} {'sustained':>10} {'p50 ms':>7} "
          f"{'p99 ms':>7} {'/ broker alone':>15}")
    for config in results:
        best = config.best(args.p99_limit_ms)
        ratio = (f"{best.rate / alone.rate:.2f}" if best and alone else "-")
        print(f"  {config.name:<26} {config.tasks_running or '-':>9} "
              f"{best.rate if best else 0:>10,} "
              f"{best.percentile(50) if best else 0:>7.1f} "
              f"{best.percentile(99) if best else 0:>7.1f} {ratio:>15}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
