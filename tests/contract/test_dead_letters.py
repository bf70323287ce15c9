"""Dead-letter topics on real servers: a mix of good and malformed MQTT payloads through
Mosquitto (the rendered files) and this project's MQTT source (the rendered config, created by
the connectors provider) on a real Connect worker, into device_data and device_data_dlq
(created as declared); and Kafka Connect's own dead-letter queue with the error keys the
program renders for the Snowflake sink.

The Snowflake sink itself cannot run here: its task logs in to Snowflake when it starts, so
it never reaches a record. Its rendered errors.* keys are applied to Kafka's own
FileStreamSink instead, with a converter that fails on what is not JSON: that is Connect's
error handling (the same for every sink), the declared topic and the headers, not the
Snowflake connector's (whose SnowflakeAvroConverter does not throw on unreadable bytes, see
components/render/connectors.py)."""

from __future__ import annotations

import collections
import json
import random
import time
import uuid
from typing import Any

import pytest

from components.connect_api import ValidationFailed
from components.connectors import ConnectorProvider, client_for
from components.streams import DEVICE_DEAD_LETTER_TOPIC, MQTT_TOPICS, SINK_DEAD_LETTER_TOPIC
from devtools.harness import PROJECT, ProgramRun, run_program
from devtools.kafka_servers import FILE_SINK, Record
from devtools.mqtt_client import Client
from devtools.servers import Mosquitto
from simulator.vitals import make_devices

SOURCE = ("pulumi-python:dynamic/connect:Connector", "connectors-mqtt-source")
SINK = ("pulumi-python:dynamic/connect:Connector", "connectors-snowflake-sink")
TOPIC = "kafka:index/topic:Topic"
BYTE_ARRAY_CONVERTER = "org.apache.kafka.connect.converters.ByteArrayConverter"
STRING_CONVERTER = "org.apache.kafka.connect.storage.StringConverter"


def _not_json(i: int) -> list[bytes]:
    """Payloads that are not one JSON document."""
    return [f"not json {i}".encode(), b"", bytes([0xFF, 0xFE, 0x00, i, 0x80]),
            f'{{"deviceId": "device-{i:04d}", "heartRate": 7'.encode(),
            f'{{"deviceId": "device-{i:04d}"}} and more'.encode(), f"deviceId=d{i}".encode()]


def _unkeyable_json(i: int) -> list[bytes]:
    """JSON documents without a usable deviceId."""
    return [json.dumps(doc).encode() for doc in (
        {"heartRate": 60 + i}, [{"deviceId": f"device-{i:04d}"}], 40 + i, {"deviceId": None},
        {"deviceId": " " * (i % 3)}, {"deviceId": {"id": i}}, f"device-{i:04d}")]


@pytest.fixture(scope="module")
def own() -> ProgramRun:
    """dev with this project's MQTT source: the one that routes to a dead-letter topic (and
    the one a Connect worker here can run)."""
    return run_program("dev", {f"{PROJECT}:kafkaMqttSource": "health-pipeline"})


@pytest.fixture(scope="module")
def mqtt_server(own):
    with Mosquitto.temporary(own, "dlq") as server:
        yield server


def _create_like(kafka_server, run: ProgramRun, declared: str, name: str) -> dict[str, Any]:
    """Topic `name` with the partitions and config the program declares for `declared`."""
    topic = run.one(TOPIC, f"topics-{declared}")
    done = kafka_server.create_topic(name, topic.get("partitions"), topic.get("config"))
    assert done.returncode == 0, done.stdout + done.stderr
    return topic.get("config")


@pytest.fixture
def connectors(connect_server):
    """Creates connectors through the provider; deletes them afterwards whatever happened."""
    created: list[dict] = []

    def make(config: dict[str, str]) -> dict:
        props = {"connect_url": connect_server.url, "name": config["name"], "config": config,
                 "timeout_seconds": 30}
        created.append(props)
        ConnectorProvider().create(props)
        return props

    yield make
    for props in created:
        client_for(props).delete(props["name"])


def _publish(mqtt_server, run: ProgramRun, payloads: list[bytes]) -> None:
    """As the device user, QoS 1, each acknowledged by the broker."""
    device = Client(mqtt_server.port, run.outputs["mqttDeviceUsername"][0],
                    run.outputs["mqttDevicePassword"][0])
    assert device.connect()
    try:
        for payload in payloads:
            device.c.publish(MQTT_TOPICS[0], payload, qos=1).wait_for_publish(10)
    finally:
        device.close()


def _wait_for(kafka_server, topic: str, count: int, timeout: float = 60) -> list[Record]:
    """All `count` records of `topic`, and no more arrive a moment later."""
    records = kafka_server.records(topic, count, timeout)
    assert len(records) == count, f"{len(records)} of {count} records in {topic}"
    time.sleep(2)
    assert kafka_server.record_count(topic) == count, f"more than {count} records in {topic}"
    return records


def _source_config(run: ProgramRun, mqtt_server, tag: str, **changes: str) -> dict[str, str]:
    """The rendered config over TLS, on topics and a client id of this test's own."""
    return {**run.one(*SOURCE).get("config"), "mqtt.server.uri": mqtt_server.tls_url,
            "mqtt.client.id": f"dlq-{tag}", **changes}


def test_the_rendered_source_routes_to_the_declared_dead_letter_topic(own) -> None:
    config = own.one(*SOURCE).get("config")
    assert config["errors.deadletterqueue.topic.name"] == DEVICE_DEAD_LETTER_TOPIC
    assert config["value.converter"] == BYTE_ARRAY_CONVERTER
    assert own.one(TOPIC, f"topics-{DEVICE_DEAD_LETTER_TOPIC}").get("name") == (
        DEVICE_DEAD_LETTER_TOPIC)


def test_malformed_payloads_land_in_the_dead_letter_topic_and_none_is_lost(
    own, kafka_server, connect_server, mqtt_server, connectors
) -> None:
    """Good readings in device_data keyed by deviceId, every malformed payload in the
    dead-letter topic byte for byte with its reason, the two counts adding up to what the
    broker acknowledged."""
    tag = uuid.uuid4().hex[:6]
    topic, dead = f"device_data_{tag}", f"{DEVICE_DEAD_LETTER_TOPIC}_{tag}"
    _create_like(kafka_server, own, "device_data", topic)
    _create_like(kafka_server, own, DEVICE_DEAD_LETTER_TOPIC, dead)
    props = connectors(_source_config(own, mqtt_server, tag, **{
        "kafka.topic": topic, "errors.deadletterqueue.topic.name": dead}))
    connect_server.task_in_state(props["name"], "RUNNING")

    devices = make_devices(7, seed=14)
    good = [json.dumps(devices[i % 7].reading()).encode() for i in range(300)]
    reasons = {p: "not-json" for i in range(4) for p in _not_json(i)}
    reasons |= {p: "no-key-field" for i in range(4) for p in _unkeyable_json(i)}
    bad = list(reasons)
    mixed = good + bad
    random.Random(14).shuffle(mixed)  # noqa: S311 - an arrival order, not a secret
    _publish(mqtt_server, own, mixed)

    kept = _wait_for(kafka_server, topic, len(good))
    assert collections.Counter(r.value for r in kept) == collections.Counter(good)
    assert all(r.key == json.loads(r.value)["deviceId"].encode() for r in kept)
    assert all(r.headers == {"mqtt.topic": MQTT_TOPICS[0].encode()} for r in kept)

    dead_letters = _wait_for(kafka_server, dead, len(bad))
    assert collections.Counter(r.value for r in dead_letters) == collections.Counter(bad)
    for record in dead_letters:
        assert record.key is None
        assert record.headers["health.error.reason"].decode() == reasons[record.value]
        assert record.headers["mqtt.topic"] == MQTT_TOPICS[0].encode()
        assert record.headers["mqtt.qos"] == b"1"
        assert int(record.headers["mqtt.message.id"]) > 0
        message = record.headers["health.error.message"].decode()
        assert message in ("the payload is not one JSON document", "the payload is empty",
                           "the JSON has no top-level field deviceId holding a non-blank "
                           "string or a number"), message
    assert len(kept) + len(dead_letters) == len(mixed)


def test_without_a_dead_letter_topic_unkeyable_payloads_go_to_device_data_unkeyed(
    own, kafka_server, connect_server, mqtt_server, connectors
) -> None:
    """The connector's behaviour before dead letters, still what it does without the key:
    every payload in the one topic as UTF-8 text, keyed by deviceId where it has one."""
    tag = uuid.uuid4().hex[:6]
    topic = f"device_data_{tag}"
    _create_like(kafka_server, own, "device_data", topic)
    config = _source_config(own, mqtt_server, tag, **{"kafka.topic": topic,
                                                      "value.converter": STRING_CONVERTER})
    del config["errors.deadletterqueue.topic.name"]
    props = connectors(config)
    connect_server.task_in_state(props["name"], "RUNNING")
    good = [json.dumps(d.reading()).encode() for d in make_devices(5, seed=3)]
    bad = [b"not json", b'{"heartRate": 70}', b'{"deviceId": "device-0001"} and more']
    _publish(mqtt_server, own, good + bad)
    records = _wait_for(kafka_server, topic, len(good) + len(bad))
    keys = {r.value: r.key for r in records}
    assert set(keys) == set(good + bad)
    assert all(keys[p] == json.loads(p)["deviceId"].encode() for p in good)
    # Jackson reads the first document of the last one, as it always did: keyed.
    assert [keys[p] for p in bad] == [None, None, b"device-0001"]


@pytest.mark.parametrize(("changes", "message"), [
    ({"value.converter": STRING_CONVERTER},
     f"needs value.converter={BYTE_ARRAY_CONVERTER} (it is '{STRING_CONVERTER}')"),
    ({"errors.deadletterqueue.topic.name": "device_data"}, "must differ from kafka.topic"),
])
def test_connect_refuses_a_dead_letter_topic_the_records_cannot_reach(
    own, connect_server, mqtt_server, changes, message
) -> None:
    """The provider validates first, so `pulumi up` stops with the connector's own words."""
    config = _source_config(own, mqtt_server, "refused", **changes)
    props = {"connect_url": connect_server.url, "name": config["name"], "config": config}
    with pytest.raises(ValidationFailed) as failed:
        client_for(props).validate(config)
    assert f"errors.deadletterqueue.topic.name: {message}" in str(failed.value)


def test_a_sink_with_the_rendered_error_keys_dead_letters_what_it_cannot_convert(
    tmp_path, kafka_server, connect_server, connectors
) -> None:
    """The dev sink's errors.* keys exactly as rendered, on Kafka's FileStreamSink with
    JsonConverter: each record that is not JSON goes to the dead-letter topic (declared config)
    with Connect's context headers, the task keeps running, every JSON one reaches the sink."""
    dev = run_program("dev")
    errors = {k: v for k, v in dev.one(*SINK).get("config").items() if k.startswith("errors.")}
    assert errors["errors.deadletterqueue.topic.name"] == SINK_DEAD_LETTER_TOPIC
    tag = uuid.uuid4().hex[:6]
    source, dead = f"heart_rate_device_topic_{tag}", f"{SINK_DEAD_LETTER_TOPIC}_{tag}"
    _create_like(kafka_server, dev, "heart_rate_device_topic", source)
    _create_like(kafka_server, dev, SINK_DEAD_LETTER_TOPIC, dead)
    out = tmp_path / "sink.txt"
    props = connectors({
        "name": f"dlq_sink_{tag}", "connector.class": FILE_SINK, "tasks.max": "1",
        "topics": source, "file": str(out),
        "key.converter": STRING_CONVERTER,
        "value.converter": "org.apache.kafka.connect.json.JsonConverter",
        "value.converter.schemas.enable": "false",
        **errors, "errors.deadletterqueue.topic.name": dead,
    })
    connect_server.task_in_state(props["name"], "RUNNING")
    good = [json.dumps({"deviceId": f"device-{i:04d}", "value": 60 + i}) for i in range(40)]
    bad = [f"not json {i}" for i in range(10)] + ['{"deviceId": "device-0001", "value"']
    lines = good + bad
    random.Random(3).shuffle(lines)  # noqa: S311 - an arrival order, not a secret
    kafka_server.produce(source, lines)

    dead_letters = _wait_for(kafka_server, dead, len(bad))
    assert sorted(r.value.decode() for r in dead_letters) == sorted(bad)
    for record in dead_letters:
        assert record.headers["__connect.errors.topic"] == source.encode()
        assert record.headers["__connect.errors.connector.name"] == props["name"].encode()
        assert record.headers["__connect.errors.stage"] == b"VALUE_CONVERTER"
        assert record.headers["__connect.errors.exception.class.name"] == (
            b"org.apache.kafka.connect.errors.DataException")
    deadline = time.monotonic() + 30
    while len(_lines(out)) < len(good) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert len(_lines(out)) == len(good), "every JSON record reached the sink"
    status = connect_server.task_in_state(props["name"], "RUNNING")
    assert status["connector"]["state"] == "RUNNING"


def _lines(path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []
