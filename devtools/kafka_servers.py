"""A real single-node Kafka (KRaft) and a Kafka Connect worker for the contract tests, run from
the jars scripts/fetch-kafka puts in build/kafka/lib, on free loopback ports."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from components.render.connectors import HEALTH_PIPELINE_MQTT_SOURCE_CLASS, SNOWFLAKE_SINK_CLASS
from devtools.harness import ROOT
from devtools.servers import Missing, binary, free_port

__all__ = ["FILE_SINK", "FILE_SOURCE", "KAFKA_LIB", "MQTT_SOURCE", "MQTT_SOURCE_PLUGIN",
           "SNOWFLAKE_JAR", "SNOWFLAKE_SINK", "ConnectWorker", "Kafka", "Record",
           "kafka_version", "mqtt_source_plugin", "snowflake_jar"]

KAFKA_LIB = ROOT / "build" / "kafka" / "lib"
SNOWFLAKE_JAR = ROOT / "build" / "connectors" / "snowflake.jar"
"""Where scripts/fetch-connectors puts the pinned jar (kafkaConnectSnowflakeJar's default)."""
MQTT_SOURCE_PLUGIN = ROOT / "build" / "connectors" / "mqtt-source"
"""Where scripts/build-mqtt-source builds this project's MQTT source (the default of
kafkaConnectMqttSourcePlugin)."""

SNOWFLAKE_SINK = SNOWFLAKE_SINK_CLASS
FILE_SOURCE = "org.apache.kafka.connect.file.FileStreamSourceConnector"
FILE_SINK = "org.apache.kafka.connect.file.FileStreamSinkConnector"
MQTT_SOURCE = HEALTH_PIPELINE_MQTT_SOURCE_CLASS

_LOG4J = """\
log4j.rootLogger={level}, stderr
log4j.appender.stderr=org.apache.log4j.ConsoleAppender
log4j.appender.stderr.Target=System.err
log4j.appender.stderr.layout=org.apache.log4j.PatternLayout
log4j.appender.stderr.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.org.reflections=ERROR
"""
"""Kafka 3.9 logs through reload4j; without a config it prints nothing but a warning."""

# Short-lived CLI JVMs: no JIT tiers beyond C1 and a small serial heap start in well under 1 s.
_TOOL_JVM = ("-Xmx256m", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC")


def kafka_version() -> str:
    """The Kafka version in build/kafka/lib, or Missing, saying how to fetch them."""
    jars = sorted(KAFKA_LIB.glob("kafka_2.13-*.jar"))
    if not jars:
        raise Missing(f"no Kafka jars in {KAFKA_LIB.relative_to(ROOT)}; "
                    "scripts/fetch-kafka fetches them with Maven")
    return jars[-1].name.removeprefix("kafka_2.13-").removesuffix(".jar")


def task_client_ids(client_id: str, tasks: int) -> list[str]:
    """The MQTT client ids this project's source connects as with `tasks` tasks: its
    mqtt.client.id itself for one, suffixed by each task's index for more."""
    return [client_id] if tasks == 1 else [f"{client_id}-{i}" for i in range(tasks)]


def mqtt_source_plugin() -> Path:
    """This project's MQTT source connector (a directory of jars), or Missing."""
    if not any(MQTT_SOURCE_PLUGIN.glob("mqtt-source-connector-*.jar")):
        raise Missing(f"{MQTT_SOURCE_PLUGIN.relative_to(ROOT)} is missing; "
                    "scripts/build-mqtt-source builds it with Maven")
    return MQTT_SOURCE_PLUGIN


def snowflake_jar() -> Path:
    if not SNOWFLAKE_JAR.is_file():
        raise Missing(f"{SNOWFLAKE_JAR.relative_to(ROOT)} is missing; "
                    "scripts/fetch-connectors fetches it with Maven")
    return SNOWFLAKE_JAR


@cache
def main_class(*candidates: str) -> str:
    """The first of `candidates` the jars hold: Kafka moves its CLI tools between releases
    (TopicCommand is org.apache.kafka.tools in 3.9 and 4.x; kafka.admin before 3.6)."""
    names: set[str] = set()
    for jar in (*KAFKA_LIB.glob("kafka_2.13-*.jar"), *KAFKA_LIB.glob("kafka-tools-*.jar")):
        with zipfile.ZipFile(jar) as z:
            names.update(z.namelist())
    for candidate in candidates:
        if candidate.replace(".", "/") + ".class" in names:
            return candidate
    raise LookupError(f"none of {candidates} is in {KAFKA_LIB}")


def topic_command() -> str:
    return main_class("org.apache.kafka.tools.TopicCommand", "kafka.admin.TopicCommand")


def console_producer() -> str:
    return main_class("org.apache.kafka.tools.ConsoleProducer", "kafka.tools.ConsoleProducer")


def console_consumer() -> str:
    return main_class("org.apache.kafka.tools.consumer.ConsoleConsumer",
                      "kafka.tools.ConsoleConsumer")


def config_command() -> str:
    return main_class("org.apache.kafka.tools.ConfigCommand", "kafka.admin.ConfigCommand")


def _cluster_id() -> str:
    """What `StorageTool random-uuid` prints (a url-safe base64 UUID), without a JVM."""
    while True:
        value = base64.urlsafe_b64encode(os.urandom(16)).decode().rstrip("=")
        if not value.startswith("-"):
            return value


def _properties(values: dict[str, object]) -> str:
    return "".join(f"{key}={value}\n" for key, value in values.items())


def _read(path: Path) -> str:
    """A log file so far ("" before the process has written one)."""
    return path.read_text(errors="replace") if path.exists() else ""


def _size(plugin: Path) -> int:
    """Bytes of a plugin: one jar, or a directory of them."""
    if plugin.is_dir():
        return sum(jar.stat().st_size for jar in plugin.rglob("*.jar"))
    return plugin.stat().st_size


def _wait(ready: Callable[[], bool], process: subprocess.Popen, timeout: float, what: str,
          log: Callable[[], str]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what}: the JVM exited with code {process.returncode}; "
                               f"its log ends:\n{log()[-3000:]}")
        if ready():
            return
        time.sleep(0.25)
    raise TimeoutError(f"{what} after {timeout:g} s; the log ends:\n{log()[-3000:]}")


def _stop(process: subprocess.Popen | None) -> None:
    if process and process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@dataclass(frozen=True)
class Record:
    """One record as it is stored: raw key (None for none), value and headers."""

    key: bytes | None
    value: bytes | None
    headers: dict[str, bytes]


class _Server:
    """A JVM server process: `stop` ends it as `docker stop` does (SIGTERM, then SIGKILL
    after 30 s); `kill` ends it as a crash does (SIGKILL: nothing flushed, nobody told)."""

    process: subprocess.Popen | None

    def stop(self) -> None:
        _stop(self.process)
        self.process = None

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None


@dataclass
class Kafka(_Server):
    """One broker that is also its own KRaft controller (static quorum), data in `root`."""

    root: Path
    port: int = field(default_factory=free_port)
    controller_port: int = field(default_factory=free_port)
    heap: str = "-Xmx512m"
    process: subprocess.Popen | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def log(self) -> str:
        return _read(self.root / "broker.log")

    def java(self, main: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        """Run one of Kafka's command-line classes (what bin/kafka-*.sh run) from the jars."""
        return subprocess.run(
            [binary("java"), *_TOOL_JVM, f"-Dlog4j.configuration=file:{self.root}/tools.log4j",
             "-cp", f"{KAFKA_LIB}/*", main, *args],
            capture_output=True, text=True, timeout=timeout, check=False,
        )

    def topics(self, *args: str) -> subprocess.CompletedProcess:
        return self.java(topic_command(), "--bootstrap-server", self.bootstrap, *args)

    def create_topic(self, name: str, partitions: int, config: dict[str, Any],
                     replication: int = 1, if_not_exists: bool = False
                     ) -> subprocess.CompletedProcess:
        """TopicCommand --create with these topic-level configs (as declared)."""
        configs = [arg for key, value in config.items() for arg in ("--config", f"{key}={value}")]
        return self.topics("--create", *(["--if-not-exists"] if if_not_exists else []),
                           "--topic", name, "--partitions", str(int(partitions)),
                           "--replication-factor", str(replication), *configs)

    def configs(self, *args: str) -> subprocess.CompletedProcess:
        return self.java(config_command(), "--bootstrap-server", self.bootstrap, *args)

    def consume(self, topic: str, count: int, timeout: float = 60,
                *properties: str) -> list[str]:
        """The first `count` records of `topic` as ConsoleConsumer prints them (one line
        each; `properties` are its --property options), or fewer if `timeout` passes."""
        done = self.java(
            console_consumer(), "--bootstrap-server", self.bootstrap, "--topic", topic,
            "--from-beginning", "--max-messages", str(count),
            "--timeout-ms", str(int(timeout * 1000)),
            *[arg for p in properties for arg in ("--property", p)],
            timeout=timeout + 60,
        )
        if done.returncode and "TimeoutException" not in done.stderr:
            raise RuntimeError(f"ConsoleConsumer on {topic} failed: {done.stderr[-2000:]}")
        return done.stdout.splitlines()

    def records(self, topic: str, count: int, timeout: float = 60) -> list[Record]:
        """The first `count` records of `topic` byte for byte, headers included (or fewer if
        `timeout` passes): ConsoleConsumer's raw output, its separators made unique so that
        no payload (binary, empty, with newlines) can be mistaken for one."""
        token = os.urandom(8).hex()
        field_sep, record_sep, header_sep, null = (f"<{kind}{token}>" for kind in "FRHN")
        properties = {"print.key": "true", "print.headers": "true", "key.separator": field_sep,
                      "line.separator": record_sep, "headers.separator": header_sep,
                      "null.literal": null}
        done = subprocess.run(
            [binary("java"), *_TOOL_JVM, f"-Dlog4j.configuration=file:{self.root}/tools.log4j",
             "-cp", f"{KAFKA_LIB}/*", console_consumer(), "--bootstrap-server", self.bootstrap,
             "--topic", topic, "--from-beginning", "--max-messages", str(count),
             "--timeout-ms", str(int(timeout * 1000)),
             *[arg for key, value in properties.items() for arg in ("--property",
                                                                     f"{key}={value}")]],
            capture_output=True, timeout=timeout + 60, check=False)
        if done.returncode and b"TimeoutException" not in done.stderr:
            raise RuntimeError(f"ConsoleConsumer on {topic} failed: "
                               f"{done.stderr[-2000:].decode(errors='replace')}")
        records = []
        for raw in done.stdout.split(record_sep.encode())[:-1]:
            headers_raw, key, value = raw.split(field_sep.encode(), 2)
            headers = {}
            if headers_raw != b"NO_HEADERS":
                for pair in headers_raw.split(header_sep.encode()):
                    name, _, header = pair.partition(b":")
                    headers[name.decode()] = header
            records.append(Record(None if key == null.encode() else key,
                                  None if value == null.encode() else value, headers))
        return records

    def produce(self, topic: str, lines: list[str]) -> None:
        """Each line a record (no key), through ConsoleProducer with acks=all."""
        assert all("\n" not in line for line in lines)
        done = subprocess.run(
            [binary("java"), *_TOOL_JVM, f"-Dlog4j.configuration=file:{self.root}/tools.log4j",
             "-cp", f"{KAFKA_LIB}/*", console_producer(), "--bootstrap-server", self.bootstrap,
             "--topic", topic, "--producer-property", "acks=all"],
            input="".join(f"{line}\n" for line in lines), capture_output=True, text=True,
            timeout=120, check=False)
        if done.returncode:
            raise RuntimeError(f"ConsoleProducer on {topic} failed: {done.stderr[-2000:]}")

    def record_count(self, topic: str) -> int:
        """Records in `topic` (sum of its partitions' end offsets; nothing is deleted here)."""
        done = self.java(main_class("org.apache.kafka.tools.GetOffsetShell"),
                         "--bootstrap-server", self.bootstrap, "--topic", topic)
        if done.returncode:
            raise RuntimeError(f"GetOffsetShell on {topic} failed: {done.stderr[-2000:]}")
        return sum(int(line.rsplit(":", 1)[1]) for line in done.stdout.split())

    def start(self, timeout: float = 60) -> Kafka:
        kafka_version()
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "broker.log4j").write_text(_LOG4J.format(level="INFO"))
        (self.root / "tools.log4j").write_text(_LOG4J.format(level="WARN"))
        server = self.root / "server.properties"
        server.write_text(_properties({
            "process.roles": "broker,controller",
            "node.id": 1,
            "controller.quorum.voters": f"1@127.0.0.1:{self.controller_port}",
            "listeners": f"PLAINTEXT://127.0.0.1:{self.port},"
                         f"CONTROLLER://127.0.0.1:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{self.port}",
            "inter.broker.listener.name": "PLAINTEXT",
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "log.dirs": self.root / "data",
            "num.partitions": 1,
            "num.network.threads": 2,
            "num.io.threads": 2,
            "offsets.topic.replication.factor": 1,
            "offsets.topic.num.partitions": 1,
            "transaction.state.log.replication.factor": 1,
            "transaction.state.log.min.isr": 1,
            "group.initial.rebalance.delay.ms": 0,
        }))
        if not (self.root / "data" / "meta.properties").exists():  # a restart keeps its data
            formatted = self.java("kafka.tools.StorageTool", "format", "-t", _cluster_id(),
                                  "-c", str(server))
            if formatted.returncode:
                raise RuntimeError(
                    f"StorageTool format failed: {formatted.stdout}{formatted.stderr}")
        with (self.root / "broker.log").open("ab") as log:
            self.process = subprocess.Popen(
                [binary("java"), self.heap, f"-Dlog4j.configuration=file:{self.root}/broker.log4j",
                 "-cp", f"{KAFKA_LIB}/*", "kafka.Kafka", str(server)],
                stdout=log, stderr=log, stdin=subprocess.DEVNULL,
            )
        # Listening is not serving: metadata requests fail until the broker has caught up
        # with its controller, so wait for a real admin call.
        _wait(lambda: self.topics("--list").returncode == 0, self.process, timeout,
              f"Kafka on {self.bootstrap} did not answer TopicCommand --list", lambda: self.log)
        return self


@dataclass
class ConnectWorker(_Server):
    """A distributed-mode Connect worker with `plugins` on its plugin.path (fast-data-dev has
    the Snowflake jar on its plugin path the same way) and Kafka's own connect-file on its
    classpath."""

    root: Path
    bootstrap: str
    plugins: tuple[Path, ...]
    expected_plugins: tuple[str, ...] = (SNOWFLAKE_SINK, FILE_SOURCE)
    port: int = field(default_factory=free_port)
    heap: str = "-Xmx768m"
    jvm_options: tuple[str, ...] = ()
    group_id: str = "health-pipeline-contract"
    """Workers with the same group (and Kafka) form one cluster and share its tasks."""
    properties: dict[str, Any] = field(default_factory=dict)
    """More worker properties, over the defaults below."""
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def worker_id(self) -> str:
        """How the connector status API names this worker (rest.advertised host:port)."""
        return f"127.0.0.1:{self.port}"

    @property
    def log(self) -> str:
        return _read(self.root / "connect.log")

    def get(self, path: str) -> tuple[int, Any]:
        """Status and JSON body; (0, None) while nothing answers. Jetty answers 404 in HTML
        until the worker has registered its REST resources."""
        try:
            with urllib.request.urlopen(self.url + path, timeout=10) as reply:  # noqa: S310
                status, raw = reply.status, reply.read()
        except urllib.error.HTTPError as error:
            status, raw = error.code, error.read()
        except OSError:
            return 0, None
        try:
            return status, json.loads(raw or b"null")
        except ValueError:
            return status, raw.decode(errors="replace")

    def task_in_state(self, name: str, want: str, timeout: float = 60) -> dict[str, Any]:
        """Connector `name`'s status once its first task is in state `want` (RUNNING,
        FAILED...)."""
        deadline = time.monotonic() + timeout
        status: Any = None
        while time.monotonic() < deadline:
            code, status = self.get(f"/connectors/{name}/status")
            if code == 200 and status["tasks"] and status["tasks"][0]["state"] == want:
                return status
            time.sleep(0.2)
        raise AssertionError(f"{name}: task not {want} after {timeout} s: {status}")

    def _ready(self) -> bool:
        status, plugins = self.get("/connector-plugins")
        listed = {p["class"] for p in plugins} if status == 200 else set()
        # /connector-plugins answers before the worker has joined its group; /connectors
        # answers once it has read the config topic and can take writes.
        return set(self.expected_plugins) <= listed and self.get("/connectors")[0] == 200

    def start(self, timeout: float = 180) -> ConnectWorker:
        kafka_version()
        plugin_path = self.root / "plugins"
        plugin_path.mkdir(parents=True, exist_ok=True)
        for jar in self.plugins:
            link = plugin_path / jar.name
            if not link.exists():
                link.symlink_to(jar)
        (self.root / "connect.log4j").write_text(_LOG4J.format(level="INFO"))
        worker = self.root / "worker.properties"
        json_converter = "org.apache.kafka.connect.json.JsonConverter"
        worker.write_text(_properties({
            "bootstrap.servers": self.bootstrap,
            "group.id": self.group_id,
            "key.converter": json_converter,
            "value.converter": json_converter,
            "key.converter.schemas.enable": "false",
            "value.converter.schemas.enable": "false",
            "config.storage.topic": "connect-configs",
            "offset.storage.topic": "connect-offsets",
            "status.storage.topic": "connect-status",
            "config.storage.replication.factor": 1,
            "offset.storage.replication.factor": 1,
            "status.storage.replication.factor": 1,
            "offset.storage.partitions": 1,
            "status.storage.partitions": 1,
            "offset.flush.interval.ms": 1000,
            "listeners": self.url,
            "rest.advertised.host.name": "127.0.0.1",
            "rest.advertised.port": self.port,
            "plugin.path": plugin_path,
            **self.properties,
        }))
        with (self.root / "connect.log").open("ab") as log:
            self.process = subprocess.Popen(
                [binary("java"), self.heap, *self.jvm_options,
                 f"-Dlog4j.configuration=file:{self.root}/connect.log4j",
                 "-cp", f"{KAFKA_LIB}/*", "org.apache.kafka.connect.cli.ConnectDistributed",
                 str(worker)],
                stdout=log, stderr=log, stdin=subprocess.DEVNULL,
            )
        scanned = ", ".join(f"{plugin.name} ({_size(plugin) // 2**20} MB)"
                            for plugin in self.plugins)
        _wait(self._ready, self.process, timeout,
              f"Connect on {self.url} did not list {', '.join(self.expected_plugins)} and "
              f"answer /connectors (on start it scans its plugin path, {scanned}: about 10 s "
              "on a fast machine, up to a few minutes on a slow one)", lambda: self.log)
        return self

