"""A whole pipeline of real local servers for fault tests and soaks: Mosquitto with the files
the program renders, one Kafka broker and a cluster of Connect workers running this project's
MQTT source with the config the program renders, plus a publisher whose every message can be
accounted for (acknowledged by the broker, then found in device_data or not)."""

from __future__ import annotations

import collections
import json
import re
import shutil
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from components.connectors import ConnectorProvider
from components.streams import MQTT_TOPICS
from devtools.harness import ProgramRun
from devtools.kafka_servers import MQTT_SOURCE, ConnectWorker, Kafka, mqtt_source_plugin
from devtools.mqtt_client import Client, CountingPublisher
from devtools.servers import Mosquitto

SOURCE = ("pulumi-python:dynamic/connect:Connector", "connectors-mqtt-source")
TOPIC = "kafka:index/topic:Topic"

HAND_OVER = {"scheduled.rebalance.max.delay.ms": 2000}
"""How long the cluster keeps a vanished worker's tasks for it before giving them to the
others (Connect's default is 5 minutes, for a worker that restarts): short here, so a fault
shows the hand-over, as an operator who wants it quick would set it."""


@dataclass(frozen=True)
class Outcome:
    acknowledged_at: dict[int, float]
    """Sequence number -> when Mosquitto acknowledged it to the device (monotonic)."""
    received: collections.Counter
    """Sequence number -> how often it is in device_data."""
    sent: int

    @property
    def acknowledged(self) -> set[int]:
        return set(self.acknowledged_at)

    @property
    def lost(self) -> set[int]:
        return self.acknowledged - set(self.received)

    @property
    def duplicated(self) -> int:
        return sum(n - 1 for n in self.received.values())

    def summary(self, fault: str) -> str:
        return (f"{fault}: acknowledged {len(self.acknowledged)} of {self.sent}, in device_data "
                f"{len(self.received)} distinct, lost {len(self.lost)}, "
                f"duplicated {self.duplicated}")


SAVED = re.compile(r"Saving in-memory database to ")
"""What Mosquitto logs (log_type information) each time it writes its persistence file."""


@dataclass(frozen=True)
class QueueCrash:
    acknowledged: dict[int, float]
    """Sequence number -> when Mosquitto acknowledged it (monotonic)."""
    seconds: float
    """From the first publish to the last acknowledgement."""
    saves: int
    """Writes of the persistence file while the messages queued."""
    since_save: float
    """Seconds from the last write of the persistence file to the kill."""


@dataclass
class Pipeline:
    own: ProgramRun
    mqtt: Mosquitto
    kafka: Kafka
    workers: list[ConnectWorker]
    name: str = ""

    def source_config(self, overrides: Mapping[str, str] | None = None) -> dict[str, str]:
        """The source's config as the program run renders it, pointed at this Mosquitto."""
        return {**self.own.one(*SOURCE).get("config"), "mqtt.server.uri": self.mqtt.tls_url,
                **(overrides or {})}

    def create_source(self, overrides: Mapping[str, str] | None = None,
                      topic_config: Mapping[str, str] | None = None) -> str:
        """device_data as declared (with `topic_config` over its config), then the source as
        rendered (with `overrides`), once its first task runs."""
        declared = self.own.one(TOPIC, "topics-device_data")
        done = self.kafka.create_topic("device_data", declared.get("partitions"),
                                       {**declared.get("config"), **(topic_config or {})})
        assert done.returncode == 0, done.stdout + done.stderr
        config = self.source_config(overrides)
        ConnectorProvider().create({"connect_url": self.workers[0].url, "name": config["name"],
                                    "config": config, "timeout_seconds": 60})
        self.name = config["name"]
        self.workers[0].task_in_state(self.name, "RUNNING", timeout=90)
        return self.name

    def update_source(self, overrides: Mapping[str, str]) -> None:
        """The source's rendered config with `overrides` (e.g. another tasks.max) put over the
        running one as `pulumi up` does: the provider's update, Connect's validate and then
        PUT /connectors/<name>/config. (Another program run would bring other generated
        credentials and CA than this Mosquitto's.)"""
        config = self.source_config(overrides)
        assert config["name"] == self.name, f"{config['name']} is another connector"
        ConnectorProvider().update(self.name, {}, {
            "connect_url": self.workers[0].url, "name": self.name, "config": config,
            "timeout_seconds": 60})

    def session_held(self, client_id: str) -> bool:
        """Whether Mosquitto holds a persistent session for `client_id`, as the CONNACK of a
        connect with clean session false says; the session (or the empty one that connect
        made) is then removed with a clean-session connect."""
        user, password = (self.own.outputs["mqttConnectorUsername"][0],
                          self.own.outputs["mqttConnectorPassword"][0])
        present = None
        for clean in (False, True):
            client = Client(self.mqtt.tls_port, user, password, client_id=client_id,
                            clean=clean, ca_file=self.mqtt.ca_file)
            assert client.connect(), f"{client_id}: {client.reason}"
            if not clean:
                present = client.session_present
            client.close()
        assert present is not None
        return present

    def task_worker(self, among: list[ConnectWorker], timeout: float = 120) -> ConnectWorker:
        """The worker of `among` that runs the source's task, once one does."""
        deadline = time.monotonic() + timeout
        status = None
        while time.monotonic() < deadline:
            for worker in among:
                code, status = worker.get(f"/connectors/{self.name}/status")
                if code == 200 and status["tasks"] and status["tasks"][0]["state"] == "RUNNING":
                    running_on = status["tasks"][0]["worker_id"]
                    found = [w for w in among if w.worker_id == running_on]
                    if found:
                        return found[0]
            time.sleep(0.5)
        raise AssertionError(f"no worker of {[w.worker_id for w in among]} runs the task: "
                             f"{status}")

    def task_placement(self, tasks: int, timeout: float = 120) -> dict[int, str]:
        """Task id -> the worker running it, once all `tasks` of the source are RUNNING."""
        deadline = time.monotonic() + timeout
        status = None
        while time.monotonic() < deadline:
            code, status = self.workers[0].get(f"/connectors/{self.name}/status")
            running = [t for t in status.get("tasks", []) if t["state"] == "RUNNING"] if (
                code == 200) else []
            if len(running) == tasks == len(status["tasks"]):
                return {t["id"]: t["worker_id"] for t in running}
            time.sleep(0.5)
        raise AssertionError(f"{self.name}: not {tasks} RUNNING tasks: {status}")

    def _send(self, method: str, path: str) -> None:
        request = urllib.request.Request(self.workers[0].url + path,  # noqa: S310 - loopback
                                         method=method)
        with urllib.request.urlopen(request, timeout=30) as reply:  # noqa: S310 - loopback
            assert reply.status in (200, 202, 204), f"{method} {path}: {reply.status}"

    def pause_source(self) -> None:
        """PUT /connectors/<name>/pause (Kafka Connect's REST API): the task stays connected
        but is no longer polled, so it acknowledges nothing more to Mosquitto, which queues
        what devices publish for the connector's persistent session (beyond the
        max_inflight_messages it has sent the task): a connector that does not keep up."""
        self._send("PUT", f"/connectors/{self.name}/pause")
        self.workers[0].task_in_state(self.name, "PAUSED", timeout=60)

    def resume_source(self) -> None:
        self._send("PUT", f"/connectors/{self.name}/resume")
        self.workers[0].task_in_state(self.name, "RUNNING", timeout=60)

    def crash_with_a_queue(self, count: int) -> QueueCrash:
        """With the source paused, `count` messages as fast as Mosquitto acknowledges them (so
        they queue for the connector's session), Mosquitto SIGKILLed right after the last
        acknowledgement and started again, with the source resumed while the broker is down:
        the task commits what it held to Kafka while disconnected, between two of paho's
        reconnect attempts (1 s, then 2 s after the loss), and must then reconnect by itself
        (no task restart here). Before the task stopped acknowledging while disconnected, this
        order stopped its reconnect for good (paho 1.2.5 queued the PUBACKs, and its next
        connection never sent CONNECT): 20 of 2,000 arrived."""
        saves_before = len(SAVED.findall(self.mqtt.log))
        self.pause_source()
        publisher = self.publisher()
        started = time.monotonic()
        thread = threading.Thread(target=publisher.run, args=(count, 1e9), daemon=True)
        thread.start()
        thread.join(timeout=900)
        assert not thread.is_alive(), "the publisher did not finish"
        acknowledged = dict(publisher.acked)
        seconds = max(acknowledged.values(), default=started) - started
        saved_at = (Path(self.mqtt.layout.data_dir) / "mosquitto.db").stat().st_mtime
        saves = len(SAVED.findall(self.mqtt.log)) - saves_before
        self.mqtt.kill()
        since_save = time.time() - saved_at
        time.sleep(1.5)  # paho's first reconnect attempt (1 s after the loss) has failed
        self.resume_source()
        time.sleep(1)
        self.mqtt.start()  # before its second attempt, 3 s after the loss
        return QueueCrash(acknowledged, seconds, saves, since_save)

    def publisher(self) -> CountingPublisher:
        device = (self.own.outputs["mqttDeviceUsername"][0],
                  self.own.outputs["mqttDevicePassword"][0])
        return CountingPublisher(self.mqtt.tls_port, *device, self.mqtt.ca_file,
                                 MQTT_TOPICS[0])

    def publish_with(self, fault: Callable[[], None], after: float, count: int,
                     rate: float) -> Outcome:
        """Publish `count` numbered messages at `rate` per second; `after` seconds in, cause
        `fault`; then count what device_data holds."""
        publisher = self.publisher()
        thread = threading.Thread(target=publisher.run, args=(count, rate), daemon=True)
        thread.start()
        time.sleep(after)
        fault()
        thread.join(timeout=count / rate + 180)
        assert not thread.is_alive(), "the publisher did not finish"
        return self.outcome(dict(publisher.acked), count)

    def outcome(self, acknowledged: dict[int, float], sent: int,
                quiet: float | None = None) -> Outcome:
        """What device_data holds of `acknowledged`, once it holds as many records, or two
        minutes pass, or (with `quiet`) its count has not grown for `quiet` seconds (where
        loss is expected, so that waiting longer shows nothing new)."""
        deadline = time.monotonic() + 120
        last, grew_at = -1, time.monotonic()
        while (count := self.kafka.record_count("device_data")) < len(acknowledged):
            now = time.monotonic()
            if count != last:
                last, grew_at = count, now
            if now > deadline or (quiet is not None and now - grew_at > quiet):
                break
            time.sleep(2)
        total = self.kafka.record_count("device_data")
        values = self.kafka.consume("device_data", total, timeout=120)
        received = collections.Counter(json.loads(value)["seq"] for value in values)
        return Outcome(acknowledged, received, sent)


@contextmanager
def pipeline(own: ProgramRun, purpose: str, workers: int) -> Iterator[Pipeline]:
    """Mosquitto, one Kafka broker and `workers` Connect workers in one group, all new."""
    root = Path(tempfile.mkdtemp(prefix=f"health-pipeline-{purpose}-"))
    root.chmod(0o755)  # Mosquitto runs as its own user
    (root / "mosquitto").mkdir()
    started: list = []
    try:
        mqtt = Mosquitto.rendered_for(own, root / "mosquitto").start()
        started.append(mqtt)
        kafka = Kafka(root / "kafka").start()
        started.append(kafka)
        cluster = []
        for i in range(workers):
            worker = ConnectWorker(root / f"connect-{i}", kafka.bootstrap,
                                   plugins=(mqtt_source_plugin(),),
                                   expected_plugins=(MQTT_SOURCE,), group_id=f"{purpose}",
                                   properties=HAND_OVER, heap="-Xmx384m").start()
            started.append(worker)
            cluster.append(worker)
        yield Pipeline(own, mqtt, kafka, cluster)
    finally:
        for server in reversed(started):
            server.stop()
        shutil.rmtree(root, ignore_errors=True)
