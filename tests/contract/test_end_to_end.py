"""End to end on real servers: the simulator -> Mosquitto (the rendered password file and ACL)
-> the MQTT source connector (the rendered config, created by the connectors provider) on a
real Connect worker -> device_data (created as declared) on a real broker.

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
from devtools.certs import TestCa
from devtools.harness import PROJECT, ProgramRun, run_program
from devtools.health_data import conformance_problems
from devtools.mqtt_client import Client
from devtools.servers import Mosquitto, simulate

MQTT_TOPIC = "health/device_data"
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


def _records(kafka_server, topic: str, count: int, timeout: float = 60) -> list[tuple[str, str]]:
    lines = kafka_server.consume(topic, count, timeout, "print.key=true",
                                 "key.separator=\t")
    return [tuple(line.split("\t", 1)) for line in lines]


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


def test_every_qos1_message_reaches_device_data_keyed_by_device(
    own, kafka_server, connect_server, mqtt_server, source
) -> None:
    _create_topic(kafka_server, own, "device_data")
    props = source()
    assert props["config"]["kafka.topic"] == "device_data"
    connect_server.task_in_state(props["name"], "RUNNING")
    # What the broker delivered, as any QoS 1 subscriber sees it: the reference content.
    watcher = Client(mqtt_server.port, *_credentials(own, "Connector"))
    assert watcher.connect()
    watcher.subscribe(MQTT_TOPIC)
    device = _credentials(own, "Device")
    summary = simulate(mqtt_server, *device, "--count", "1000", "--rate", "0",
                        "--devices", "9", "--seed", "11")
    assert summary.startswith("sent 1000, acknowledged 1000, failed 0,"), summary

    records = _records(kafka_server, "device_data", 1000, timeout=60)
    assert len(records) == 1000, f"{len(records)} records in device_data"
    assert kafka_server.record_count("device_data") == 1000, "duplicates"
    deadline = time.monotonic() + 10
    while len(watcher.received) < 1000 and time.monotonic() < deadline:
        time.sleep(0.1)
    published = collections.Counter(p.decode() for p in watcher.received)
    assert sum(published.values()) == 1000
    assert collections.Counter(value for _, value in records) == published
    for key, value in records:
        assert conformance_problems(value) == [], value
        assert key == json.loads(value)["deviceId"]
    assert len({key for key, _ in records}) == 9


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
    summary = simulate(mqtt_server, *_credentials(own, "Device"), "--count", "50",
                        "--rate", "0", "--seed", "3")
    assert summary.startswith("sent 50, acknowledged 50, failed 0,"), summary
    assert kafka_server.record_count(topic) == 0, "it was not stopped"
    api.request("PUT", f"/connectors/{name}/resume", None, ok=(202, 204))
    records = _records(kafka_server, topic, 50, timeout=60)
    assert len(records) == 50
    assert kafka_server.record_count(topic) == 50
    assert all(key == json.loads(value)["deviceId"] for key, value in records)


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
    """paho reconnects by itself; the connector subscribes again without blocking paho's
    callback thread (a blocking subscribe there stalled delivery for good)."""
    topic = f"device_data_{uuid.uuid4().hex[:6]}"
    _create_topic(kafka_server, own, topic)
    props = source(**{"kafka.topic": topic, "mqtt.client.id": f"e2e-{topic}"})
    connect_server.task_in_state(props["name"], "RUNNING")
    mqtt_server.restart()
    deadline = time.monotonic() + 30
    while f"e2e-{topic}" not in mqtt_server.log.rsplit("mosquitto version", 1)[-1]:
        assert time.monotonic() < deadline, "the connector did not reconnect"
        time.sleep(0.2)
    summary = simulate(mqtt_server, *_credentials(own, "Device"), "--count", "200",
                        "--rate", "0", "--seed", "5")
    assert summary.startswith("sent 200, acknowledged 200, failed 0,"), summary
    records = _records(kafka_server, topic, 200, timeout=60)
    assert len(records) == 200
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
