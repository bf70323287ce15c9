"""MQTT -> device_data to the ceiling, in one run: the highest sustained QoS 1 rate with its
p50/p99 latency for each connector configuration (tasks.max) on a Connect cluster, against the
ceiling of Mosquitto alone with the same publishers and plain subscribers, on real local
servers: Mosquitto with the dev stack's rendered files, a KRaft broker, --workers Connect
workers in one group, and this project's MQTT source from its rendered config.

    .venv/bin/python bench/pipeline.py [--generator c|python] [--publishers 4] \\
        [--tasks 1,2,4] [--workers 2] [--subscribers 1,4] [--seconds 5] \\
        [--p99-limit-ms 250] [--rates R,...]

Generators: `c` runs --publishers `mosquitto_pub -l` processes (Debian's mosquitto-clients),
fed pre-generated lines at the schedule; `python` runs --publishers processes of paho-mqtt (the
simulator's client). The broker alone is received, with the `c` generator, by groups of
--subscribers `mosquitto_sub` processes sharing one subscription (`$share/...`, as the tasks
do: each member has its own max_inflight_messages window, so one subscriber is a ceiling of its
own), by one paho subscriber with `python`; the ratio column divides by the best of them.
Latency is from the moment a message is handed to its publisher to the broker's append time of
its record in Kafka (topics with message.timestamp.type=LogAppendTime, whole milliseconds) or
to mosquitto_sub's receive time (%U), on one clock. Each rate runs --seconds through a
connector of its own: its own client id (so its own MQTT sessions and share group) and Kafka
topic, warmed up by 200 messages that are not counted (a new task's first records wait for its
producer), deleted after the step with its sessions dropped from the broker, so a rate the
pipeline could not carry leaves no backlog for the next one; a step whose publishers are not
acknowledged within 60 s of the last message, or whose topic stays without a new record for 30
s before all are in, is not sustained. Without --rates: --start-rate, doubling until a rate is
not sustained, then bisecting the last gap twice. Sustained: the publishers kept 95 % of the
rate, every message arrived, p99 <= --p99-limit-ms.

tasks.max goes into the rendered connector config; the table says how many tasks Connect
actually ran, since an MQTT source without shared subscriptions runs one. Each step also says
how many cores Mosquitto, Kafka and the Connect workers (their process trees) used while the
publishers ran, the rest of the machine (publishers, subscribers, this script) and what was
left idle: the component that runs out at the first rate not sustained is the ceiling.
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
from devtools.kafka_servers import (
    MQTT_SOURCE,
    ConnectWorker,
    Kafka,
    mqtt_source_plugin,
    task_client_ids,
)
from devtools.mqtt_client import Client
from devtools.servers import Missing, Mosquitto, binary
from simulator.vitals import make_devices

TOPIC = MQTT_TOPICS[0]
PUBLISH_DRAIN_SECONDS = 60
"""How long publishers may wait for the broker's last acknowledgements before a step fails."""
WARM_UP = [json.dumps({"deviceId": f"bench-warm-up-{i}"}).encode() for i in range(200)]
"""Published through each new connector before its measured messages, and not counted."""
RECEIVE_SECONDS = 30
"""How long a step waits for the next record of its topic before it counts what is there."""


@dataclass
class Step:
    rate: int
    sent: int
    publish_seconds: float
    arrived: int
    latencies_ms: list[float]
    tasks: int | None = None
    """How many connector tasks were RUNNING when the publishers started (None: no connector)."""
    failure: str | None = None
    """Why the step could not be measured to its end (then it is not sustained)."""
    cpu: dict[str, float] | None = None
    """Cores each server used while the publishers ran (CpuMeter), and the machine's rest."""

    @property
    def achieved(self) -> float:
        return self.sent / self.publish_seconds if self.publish_seconds else 0.0

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] if ordered else 0.0

    def sustained(self, p99_limit_ms: float) -> bool:
        return (self.failure is None and self.achieved >= 0.95 * self.rate
                and self.arrived == self.sent and self.percentile(99) <= p99_limit_ms)


class CpuMeter:
    """CPU time of the servers' process trees (/proc/<pid>/stat utime + stime, children
    included) and of the whole machine (/proc/stat), so a step can say which component used
    how many of the cores while the publishers ran: the ceiling is the one that runs out."""

    def __init__(self, servers: dict[str, list[int]]) -> None:
        self.servers = servers
        self.tick = os.sysconf("SC_CLK_TCK")

    def _tree(self, pid: int) -> list[int]:
        found = [pid]
        for task in Path(f"/proc/{pid}/task").glob("*/children"):
            for child in task.read_text().split():
                found += self._tree(int(child))
        return found

    def _seconds(self, pid: int) -> float:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            return 0.0  # ended meanwhile
        return (int(fields[11]) + int(fields[12])) / self.tick

    def read(self) -> tuple[float, dict[str, float], float]:
        """(monotonic time, CPU seconds per server, the machine's busy CPU seconds)."""
        per_server = {name: sum(self._seconds(tree_pid) for pid in pids
                                for tree_pid in self._tree(pid))
                      for name, pids in self.servers.items()}
        values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
        busy = (sum(values) - values[3] - values[4]) / self.tick  # all but idle and iowait
        return time.monotonic(), per_server, busy

    def since(self, before: tuple[float, dict[str, float], float]) -> dict[str, float]:
        """Cores used since `before` per server, by the rest of the machine (publishers,
        subscribers, this script) and left idle."""
        at, per_server, busy = self.read()
        wall = max(at - before[0], 1e-6)
        used = {name: (seconds - before[1][name]) / wall for name, seconds in per_server.items()}
        total = (busy - before[2]) / wall
        used["rest"] = max(0.0, total - sum(used.values()))
        used["idle"] = max(0.0, (os.cpu_count() or 1) - total)
        return used


def _pid(server: Mosquitto | Kafka | ConnectWorker) -> int:
    if server.process is None:
        raise RuntimeError(f"{type(server).__name__} is not running")
    return server.process.pid


def describe_cpu(cpu: dict[str, float] | None) -> str:
    return ("cores " + ", ".join(f"{name} {cores:.2f}" for name, cores in cpu.items())
            if cpu else "")


class StepFailed(Exception):
    """A step that could not run to its end: recorded as not sustained, and the search goes on
    (a new connector and new sessions per step, so nothing of it reaches the next)."""


@dataclass
class Configuration:
    name: str
    tasks_asked: int | None
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
    deadline = time.monotonic() + PUBLISH_DRAIN_SECONDS
    for proc in procs:
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            for other in procs:
                other.kill()
                other.wait()
            raise StepFailed(f"the publishers still waited for acknowledgements "
                             f"{PUBLISH_DRAIN_SECONDS} s after the last message") from None
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
        if not acked.acquire(timeout=PUBLISH_DRAIN_SECONDS):
            raise StepFailed(f"no acknowledgement for {PUBLISH_DRAIN_SECONDS} s")
    client.disconnect()
    client.loop_stop()
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
                      seconds: float, publishers: int, subscribers: int,
                      meter: CpuMeter) -> Step:
    """The same publishers, and plain subscribers in place of the connector: with the `c`
    generator a group of `subscribers` mosquitto_sub processes sharing one subscription
    ($share/bench-alone/..., as the tasks share theirs; one subscribes to the topic itself),
    each with its own window of max_inflight_messages; with `python`, one paho subscriber."""
    count = int(rate * seconds) // subscribers * subscribers  # the group's equal shares
    messages = payloads(rate, count)
    received: dict[bytes, float] = {}
    if generator == "c":
        # Mosquitto hands a share group's messages round in strict rotation: equal shares.
        topic = TOPIC if subscribers == 1 else f"$share/bench-alone/{TOPIC}"
        subs = [subprocess.Popen(
            [binary("mosquitto_sub"), "-h", "127.0.0.1", "-p", str(broker.port), "-q", "1",
             "-i", f"bench-sub-{n}", "-t", topic, "-C", str(count // subscribers),
             "-W", str(int(seconds) + 60), "-F", "%U %p"],
            stdout=subprocess.PIPE, env={**os.environ, "XDG_CONFIG_HOME": str(logins["reader"])})
            for n in range(subscribers)]
        lines: list[bytes] = []
        readers = [threading.Thread(target=lambda sub=sub: lines.extend(sub.stdout or []),
                                    daemon=True) for sub in subs]
        for thread in readers:
            thread.start()
        time.sleep(1.0)  # subscribed
        before = meter.read()
        sent_at = c_publishers(broker.port, logins["device"], messages, rate, publishers)
        cpu = meter.since(before)
        for sub in subs:
            sub.wait(timeout=seconds + 90)
        for thread in readers:
            thread.join(timeout=10)
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
        before = meter.read()
        sent_at = python_publishers(broker.port, *device, messages, rate, publishers)
        cpu = meter.since(before)
        done.wait(timeout=60)
        client.disconnect()
        client.loop_stop()
    published = dict(zip(messages, sent_at, strict=True))
    latencies = [(at - published[p]) * 1000 for p, at in received.items() if p in published]
    return Step(rate, count, max(sent_at) - min(sent_at) if count > 1 else 1.0,
                len(latencies), latencies, cpu=cpu)


@dataclass
class Cluster:
    """What every pipeline step shares: Kafka, the Connect workers and the connector's base
    config; each step declares its own connector, client id and topic on them."""
    kafka: Kafka
    workers: list[ConnectWorker]
    base: dict
    login: tuple[str, str]
    declared: dict
    meter: CpuMeter


def pipeline_step(generator: str, cluster: Cluster, tasks: int, broker: Mosquitto,
                  device: tuple[str, str], logins: dict[str, Path], rate: int, seconds: float,
                  publishers: int, label: str) -> Step:
    """One rate through a connector created for it, with a client id (so MQTT sessions and
    share group) and a Kafka topic of its own; deleted afterwards, and its sessions dropped
    from the broker. A step that overloads the pipeline thus leaves nothing queued for the
    next one."""
    topic = f"bench_{label}_{rate}"
    done = cluster.kafka.create_topic(
        topic, 1, {**cluster.declared, "message.timestamp.type": "LogAppendTime"},
        if_not_exists=True)
    if done.returncode:
        raise RuntimeError(done.stderr)
    client_id = f"{cluster.base['mqtt.client.id']}-{label}-{rate}"
    config = {**cluster.base, "name": f"{cluster.base['name']}-{label}-{rate}",
              "tasks.max": str(tasks), "mqtt.client.id": client_id, "kafka.topic": topic,
              # A new client id has no earlier sessions to adopt: no scan in the measured time.
              "mqtt.orphans.scan": "0"}
    props = {"connect_url": cluster.workers[0].url, "name": config["name"], "config": config,
             "timeout_seconds": 60}
    ConnectorProvider().create(props)
    try:
        running = tasks_running(cluster.workers[0], config["name"], tasks)
        time.sleep(1)  # each task's SUBSCRIBE is answered

        def publish(messages: list[bytes], rate: float) -> list[float]:
            if generator == "c":
                return c_publishers(broker.port, logins["device"], messages, rate, publishers)
            return python_publishers(broker.port, *device, messages, rate, publishers)

        # A new task's first records wait for its producer's metadata of the new topic; not
        # part of the rate it carries.
        publish(WARM_UP, len(WARM_UP))
        if len(cluster.kafka.consume(topic, len(WARM_UP), RECEIVE_SECONDS)) < len(WARM_UP):
            raise StepFailed(f"the {len(WARM_UP)} warm-up messages did not all arrive")
        count = int(rate * seconds)
        messages = payloads(rate, count)
        before = cluster.meter.read()
        published = dict(zip(messages, publish(messages, rate), strict=True))
        cpu = cluster.meter.since(before)
        lines = cluster.kafka.consume(topic, len(WARM_UP) + count, RECEIVE_SECONDS,
                                      "print.timestamp=true", "print.value=true")
    finally:
        ConnectorProvider().delete(props["name"], props)
        forget_sessions(broker.port, cluster.login,
                        task_client_ids(client_id, tasks))
    latencies = []
    for line in lines:
        stamp, value = line.split("\t", 1)
        appended = int(stamp.removeprefix("LogAppendTime:")) / 1000
        if value.encode() in WARM_UP:
            continue
        if value.encode() not in published:
            raise RuntimeError(f"{topic} holds a record this step did not publish: {value}")
        latencies.append((appended - published[value.encode()]) * 1000)
    sent_at = list(published.values())
    return Step(rate, count, max(sent_at) - min(sent_at) if count > 1 else 1.0,
                len(latencies), latencies, tasks=running, cpu=cpu)


def search(measure: Callable[[int], Step], rates: list[int] | None, start: int, max_rate: int,
           p99_limit_ms: float, label: str) -> list[Step]:
    """Fixed rates, or doubling from `start` until one is not sustained, then bisecting the
    last gap twice."""
    steps: list[Step] = []

    def run(rate: int) -> bool:
        began = time.monotonic()
        try:
            step = measure(rate)
        except StepFailed as failed:
            step = Step(rate, 0, 0.0, 0, [], failure=str(failed))
        steps.append(step)
        print(f"  {label}: {rate:>6} msg/s: published at {step.achieved:,.0f} msg/s, arrived "
              f"{step.arrived}/{step.sent}, p50 {step.percentile(50):.1f} ms, p99 "
              f"{step.percentile(99):.1f} ms{f', tasks {step.tasks}' if step.tasks else ''}"
              f"{f', FAILED: {step.failure}' if step.failure else ''} "
              f"({time.monotonic() - began:.0f} s) {describe_cpu(step.cpu)}", file=sys.stderr,
              flush=True)
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
    message for nobody (and load the broker) through the next steps."""
    for client_id in client_ids:
        client = Client(port, *login, client_id=client_id, clean=True)
        if not client.connect():
            raise RuntimeError(f"Mosquitto refused {client_id}: {client.reason}")
        client.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--generator", choices=("c", "python"), default="c")
    parser.add_argument("--publishers", type=int, default=4, help="publishing processes")
    parser.add_argument("--tasks", default="1,2,4", help="tasks.max of each configuration")
    parser.add_argument("--workers", type=int, default=2, help="Connect workers in the cluster")
    parser.add_argument("--subscribers", help="comma-separated sizes of the subscriber group "
                        "of the broker alone (c generator); default: 1 and the most tasks")
    parser.add_argument("--max-inflight", type=int,
                        help="mqttMaxInflightMessages for the broker (default: the stack's)")
    parser.add_argument("--no-broker-alone", action="store_true",
                        help="skip the ceiling of Mosquitto alone")
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--rates", help="comma-separated msg/s; default: doubling")
    parser.add_argument("--start-rate", type=int, default=2000)
    parser.add_argument("--max-rate", type=int, default=128000)
    parser.add_argument("--p99-limit-ms", type=float, default=250)
    args = parser.parse_args()
    tasks = [int(t) for t in args.tasks.split(",") if t]
    subscribers = ([int(n) for n in args.subscribers.split(",") if n] if args.subscribers
                   else sorted({1, max(tasks)}))
    if args.generator == "python":
        subscribers = [1]
    rates = [int(r) for r in args.rates.split(",")] if args.rates else None
    try:
        plugin = mqtt_source_plugin()
        if args.generator == "c":
            binary("mosquitto_pub")
            binary("mosquitto_sub")
    except Missing as missing:
        print(f"error: {missing}", file=sys.stderr)
        return 2
    run = run_program("dev", {f"{PROJECT}:kafkaMqttSource": "health-pipeline",
                              **({f"{PROJECT}:mqttMaxInflightMessages": args.max_inflight}
                                 if args.max_inflight is not None else {})})
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
        alone_meter = CpuMeter({"mosquitto": [_pid(broker)]})
        for n in [] if args.no_broker_alone else subscribers:
            # First, while no connector session exists to queue for.
            name = f"Mosquitto alone, {n} sub{'s' if n > 1 else ''}"
            steps = search(lambda rate, n=n: broker_alone_step(
                args.generator, broker, device, reader, logins, rate, args.seconds,
                args.publishers, n, alone_meter), rates, args.start_rate, args.max_rate,
                args.p99_limit_ms, name)
            results.append(Configuration(name, None, steps))
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
        cluster = Cluster(kafka, workers, base,
                          (run.outputs["mqttConnectorUsername"][0],
                           run.outputs["mqttConnectorPassword"][0]), declared,
                          CpuMeter({"mosquitto": [_pid(broker)], "kafka": [_pid(kafka)],
                                    "connect": [_pid(worker) for worker in workers]}))
        for n in tasks:
            print(f"tasks.max={n} on {args.workers} workers", file=sys.stderr, flush=True)
            steps = search(lambda rate, n=n: pipeline_step(
                args.generator, cluster, n, broker, device, logins, rate, args.seconds,
                args.publishers, f"t{n}"), rates, args.start_rate, args.max_rate,
                args.p99_limit_ms, f"tasks.max={n}")
            results.append(Configuration(f"pipeline, tasks.max={n}", n, steps))
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
                  f"{'sustained' if step.sustained(args.p99_limit_ms) else 'NOT sustained'}"
                  f"{f' ({step.failure})' if step.failure else ''}  {describe_cpu(step.cpu)}")
    # The ratio's base: the best the broker alone carried, with any of its subscriber groups.
    alone = max((best for c in results if c.tasks_asked is None
                 if (best := c.best(args.p99_limit_ms))), key=lambda s: s.rate, default=None)
    print(f"\n  {'configuration':<26} {'tasks run':>9} {'sustained':>10} {'p50 ms':>7} "
          f"{'p99 ms':>7} {'/ broker alone':>15}")
    for config in results:
        best = config.best(args.p99_limit_ms)
        ratio = (f"{best.rate / alone.rate:.2f}" if best and alone else "-")
        print(f"  {config.name:<26} {(best.tasks if best else None) or '-':>9} "
              f"{best.rate if best else 0:>10,} "
              f"{best.percentile(50) if best else 0:>7.1f} "
              f"{best.percentile(99) if best else 0:>7.1f} {ratio:>15}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
