"""End to end on real servers: the simulator, publishing to both MQTT topics -> Mosquitto (the
rendered password file and ACL) -> the MQTT source connector (the rendered config, created by
the connectors provider) on a real Connect worker -> device_data (created as declared) on a
real broker.

The stack here is dev with kafkaMqttSource=health-pipeline: this project's MQTT source is the
one implementation that can be built from Maven Central jars (Stream Reactor and Camel's
connector are not served there). The only change to the rendered connector config is the
broker address as this worker reaches it (tcp://127.0.0.1:<port> for tcp://mosquitto:1883)."""

from __future__ import annotations

import collections
import json
import re
import time
import uuid

import pytest

from components.connectors import ConnectorProvider, client_for
from components.http_api import JsonApi
from components.render.connectors import HEALTH_PIPELINE_MQTT_SOURCE_CLASS
from components.streams import MQTT_TOPICS
from devtools.certs import TestCa
from devtools.harness import PROJECT, ProgramRun, run_program
from devtools.health_data import conformance_problems
from devtools.mqtt_client import Client
from devtools.servers import Mosquitto, simulate

HEADER = "mqtt.topic:"
"""How ConsoleConsumer prints the source's header naming the topic a record came on."""
SOURCE = ("pulumi-python:dynamic/connect:Connector", "connectors-mqtt-source")
TOPIC = "kafka:index/topic:Topic"


@pytest.fixture(scope="module")
def own() -> ProgramRun:
    return run_program("dev", {f"{PROJECT}:kafkaMqttSource": "health-pipeline"})


@pytest.fixture(scope="module")
def mqtt_server(own):
    with Mosquitto.temporary(own, "e2e") as server:
        yield server


def _credentials(run: ProgramRun, who: str) -> tuple[str, str]:
    return run.outputs[f"mqtt{who}Username"][0], run.outputs[f"mqtt{who}Password"][0]


def _create_topic(kafka_server, run: ProgramRun, name: str) -> None:
    """`name` with device_data's declared partitions and config."""
    declared = run.one(TOPIC, "topics-device_data")
    done = kafka_server.create_topic(name, declared.get("partitions"), declared.get("config"))
    assert done.returncode == 0, done.stdout + done.stderr


def _source_props(run: ProgramRun, connect_server, mqtt_server, **changes: str) -> dict:
    # Over TLS, as the program renders it: the broker's CA in the config, its name checked
    # (the program's certificate names 127.0.0.1).
    config = {**run.one(*SOURCE).get("config"), "mqtt.server.uri": mqtt_server.tls_url,
              **changes}
    return {"connect_url": connect_server.url, "name": config["name"], "config": config,
            "timeout_seconds": 30}


def _records(kafka_server, topic: str, count: int,
             timeout: float = 60) -> list[tuple[str, str, str]]:
    """(MQTT topic from the record's header, key, value) of the first `count` records."""
    lines = kafka_server.consume(topic, count, timeout, "print.headers=true", "print.key=true",
                                 "key.separator=\t")
    records = []
    for line in lines:
        header, key, value = line.split("\t", 2)
        assert header.startswith(HEADER), line
        records.append((header.removeprefix(HEADER), key, value))
    return records


def _publish_to_every_topic(mqtt_server, run: ProgramRun, count: int, *args: str) -> None:
    """`count` simulated readings to each MQTT topic, every one acknowledged by the broker."""
    for index, mqtt_topic in enumerate(MQTT_TOPICS):
        summary = simulate(mqtt_server, *_credentials(run, "Device"), "--topic", mqtt_topic,
                           "--count", str(count), "--rate", "0", "--seed", str(11 + index),
                           *args)
        assert summary.startswith(f"sent {count}, acknowledged {count}, failed 0,"), summary


@pytest.fixture
def source(own, connect_server, mqtt_server):
    """A connector made from the rendered config; deleted afterwards whatever happened."""
    created: list[dict] = []

    def make(**changes: str) -> dict:
        props = _source_props(own, connect_server, mqtt_server, **changes)
        ConnectorProvider().create(props)
        created.append(props)
        return props

    yield make
    for props in created:
        client_for(props).delete(props["name"])


def test_every_qos1_message_on_both_topics_reaches_device_data_keyed_by_device(
    own, kafka_server, connect_server, mqtt_server, source
) -> None:
    _create_topic(kafka_server, own, "device_data")
    props = source()
    assert props["config"]["kafka.topic"] == "device_data"
    assert props["config"]["mqtt.topics"].split(",") == list(MQTT_TOPICS)
    connect_server.task_in_state(props["name"], "RUNNING")
    # What the broker delivered, as any QoS 1 subscriber sees it: the reference content.
    watcher = Client(mqtt_server.port, *_credentials(own, "Connector"))
    assert watcher.connect()
    for mqtt_topic in MQTT_TOPICS:
        watcher.subscribe(mqtt_topic)
    _publish_to_every_topic(mqtt_server, own, 500, "--devices", "9")

    total = 500 * len(MQTT_TOPICS)
    records = _records(kafka_server, "device_data", total, timeout=60)
    assert len(records) == total, f"{len(records)} records in device_data"
    assert kafka_server.record_count("device_data") == total, "duplicates"
    deadline = time.monotonic() + 10
    while len(watcher.received) < total and time.monotonic() < deadline:
        time.sleep(0.1)
    published = collections.Counter(
        (mqtt_topic, payload.decode())
        for mqtt_topic, payload in zip(watcher.topics, watcher.received, strict=False))
    assert sum(published.values()) == total
    # Every message of each topic, byte for byte, with the topic it came on in its header.
    assert collections.Counter((t, value) for t, _, value in records) == published
    assert collections.Counter(t for t, _, _ in records) == dict.fromkeys(MQTT_TOPICS, 500)
    for _, key, value in records:
        assert conformance_problems(value) == [], value
        assert key == json.loads(value)["deviceId"]
    assert len({key for _, key, _ in records}) == 9


def test_messages_sent_while_the_connector_is_stopped_arrive_when_it_resumes(
    own, kafka_server, connect_server, mqtt_server, source
) -> None:
    """The connector's session is persistent (mqtt.clean.session=false) and it acknowledges
    only what Kafka has: the broker keeps what arrives meanwhile and hands it over later."""
    topic = f"device_data_{uuid.uuid4().hex[:6]}"
    _create_topic(kafka_server, own, topic)
    props = source(**{"kafka.topic": topic, "mqtt.client.id": f"e2e-{topic}"})
    name = props["name"]
    connect_server.task_in_state(name, "RUNNING")
    api = JsonApi(connect_server.url)
    api.request("PUT", f"/connectors/{name}/stop", None, ok=(202, 204))
    deadline = time.monotonic() + 30
    while connect_server.get(f"/connectors/{name}/status")[1]["connector"]["state"] != "STOPPED":
        assert time.monotonic() < deadline, "the connector did not stop"
        time.sleep(0.2)
    _publish_to_every_topic(mqtt_server, own, 25)
    assert kafka_server.record_count(topic) == 0, "it was not stopped"
    api.request("PUT", f"/connectors/{name}/resume", None, ok=(202, 204))
    records = _records(kafka_server, topic, 50, timeout=60)
    assert len(records) == 50
    assert kafka_server.record_count(topic) == 50
    assert collections.Counter(t for t, _, _ in records) == dict.fromkeys(MQTT_TOPICS, 25)
    assert all(key == json.loads(value)["deviceId"] for _, key, value in records)


def test_a_wrong_mqtt_password_fails_the_task_with_the_brokers_reason(
    own, connect_server, mqtt_server, source
) -> None:
    wrong = "not-the-password"
    props = source(**{"mqtt.password": wrong, "mqtt.client.id": "e2e-wrong-password",
                      "kafka.topic": "device_data_unused"})
    trace = connect_server.task_in_state(props["name"], "FAILED")["tasks"][0]["trace"]
    assert mqtt_server.tls_url in trace
    assert "Not authorized" in trace
    assert wrong not in trace


def test_after_a_broker_restart_the_connector_resubscribes_and_delivers(
    own, kafka_server, connect_server, mqtt_server, source
) -> None:
    """paho reconnects by itself; the connector subscribes again, to every topic, without
    blocking paho's callback thread (a blocking subscribe there stalled delivery for good)."""
    topic = f"device_data_{uuid.uuid4().hex[:6]}"
    _create_topic(kafka_server, own, topic)
    props = source(**{"kafka.topic": topic, "mqtt.client.id": f"e2e-{topic}"})
    connect_server.task_in_state(props["name"], "RUNNING")
    mqtt_server.restart()
    deadline = time.monotonic() + 30
    # The task's own connection ("... as <client id> (p2, ..."), not its look for orphaned
    # sessions as <client id>-0, -1, ...
    while f" as e2e-{topic} (" not in mqtt_server.log.rsplit("mosquitto version", 1)[-1]:
        assert time.monotonic() < deadline, "the connector did not reconnect"
        time.sleep(0.2)
    _publish_to_every_topic(mqtt_server, own, 100)
    records = _records(kafka_server, topic, 200, timeout=60)
    assert len(records) == 200
    assert collections.Counter(t for t, _, _ in records) == dict.fromkeys(MQTT_TOPICS, 100)
    assert connect_server.task_in_state(props["name"], "RUNNING")["connector"]["state"] == "RUNNING"


def test_the_source_refuses_a_broker_its_ca_did_not_sign(
    own, connect_server, mqtt_server, source
) -> None:
    """The connector checks the broker: with another CA in its config, the task fails on the
    handshake and nothing is read."""
    stranger = TestCa.create("someone else's CA").pem
    props = source(**{"mqtt.ssl.ca.pem": stranger, "mqtt.client.id": "e2e-wrong-ca",
                      "kafka.topic": "device_data_unused"})
    trace = connect_server.task_in_state(props["name"], "FAILED")["tasks"][0]["trace"]
    assert mqtt_server.tls_url in trace
    assert re.search(r"(?i)PKIX|certification path|SSLHandshake", trace), trace[-2000:]


@pytest.mark.parametrize(("topics", "problem"), [
    ("", "must name at least one MQTT topic filter"),
    ("health/device_data,,health/health_data", "must not hold an empty topic filter"),
    ("health/device_data,health/device_data", "must not name a topic filter twice"),
])
def test_the_source_refuses_a_topic_list_it_cannot_subscribe_with(
    own, connect_server, topics, problem
) -> None:
    """The connector's own validation, through the worker's validate endpoint (as the
    connectors provider calls it before every create and update)."""
    config = {**own.one(*SOURCE).get("config"), "mqtt.topics": topics}
    response = JsonApi(connect_server.url, timeout=60).request(
        "PUT", f"/connector-plugins/{HEALTH_PIPELINE_MQTT_SOURCE_CLASS}/config/validate", config)
    assert response is not None
    errors = {item["value"]["name"]: item["value"]["errors"]
              for item in response.body["configs"] if item["value"]["errors"]}
    assert list(errors) == ["mqtt.topics"], errors
    assert any(problem in error for error in errors["mqtt.topics"]), errors
