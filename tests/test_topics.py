"""Kafka topics per stack, through an explicit kafka provider built from settings."""

from __future__ import annotations

import json

import pytest

from components.streams import (
    ALL_TOPICS,
    DEAD_LETTER_TOPICS,
    DERIVED_STREAMS,
    DEVICE_DEAD_LETTER_TOPIC,
    DEVICE_TOPIC,
    SINK_DEAD_LETTER_TOPIC,
)
from devtools.harness import PROJECT, ProgramRun, run_program

TOPIC = "kafka:index/topic:Topic"
EXPECTED = {
    # stack: partitions, replication, retention.ms, compression, min.insync.replicas
    "dev": (1, 1, "60000", "producer", "1"),
    "prod": (6, 3, "604800000", "zstd", "2"),
}
DEAD_LETTER_RETENTION = {"dev": "86400000", "prod": "2592000000"}
"""topicDeadLetterRetention: a day in dev, thirty in prod."""


def test_topic_names_come_from_one_definition() -> None:
    assert ALL_TOPICS == (
        "device_data",
        "blood_pressure_device_topic",
        "heart_rate_device_topic",
        "oxygen_saturation_device_topic",
        "temperature_device_topic",
    )
    assert ALL_TOPICS[0] == DEVICE_TOPIC
    assert {s.topic for s in DERIVED_STREAMS} == set(ALL_TOPICS[1:])


def test_dead_letter_topic_names_come_from_one_definition() -> None:
    assert DEAD_LETTER_TOPICS == ("device_data_dlq", "snowflake_sink_dlq")
    assert not set(DEAD_LETTER_TOPICS) & set(ALL_TOPICS)


def test_every_topic_has_the_stack_settings(run: ProgramRun) -> None:
    partitions, replication, retention, compression, min_isr = EXPECTED[run.stack]
    topics = [t for t in run.of_type(TOPIC) if t.get("name") not in DEAD_LETTER_TOPICS]
    assert sorted(t.get("name") for t in topics) == sorted(ALL_TOPICS)
    for topic in topics:
        assert topic.get("partitions") == partitions, topic.name
        assert topic.get("replicationFactor") == replication, topic.name
        assert topic.get("config") == {
            "cleanup.policy": "delete",
            "retention.ms": retention,
            "max.message.bytes": "1000012",
            "compression.type": compression,
            "min.insync.replicas": min_isr,
        }, topic.name
        assert all(isinstance(v, str) for v in topic.get("config").values())


def test_the_sinks_dead_letter_topic_has_one_partition_and_its_own_retention(run) -> None:
    """Default stacks run Stream Reactor's MQTT source, which has no dead-letter routing: only
    the Snowflake sink's dead-letter topic is declared."""
    _, replication, _, compression, min_isr = EXPECTED[run.stack]
    dead = [t for t in run.of_type(TOPIC) if t.get("name") in DEAD_LETTER_TOPICS]
    assert [t.get("name") for t in dead] == [SINK_DEAD_LETTER_TOPIC]
    (topic,) = dead
    assert topic.name == f"topics-{SINK_DEAD_LETTER_TOPIC}"
    assert topic.get("partitions") == 1
    assert topic.get("replicationFactor") == replication
    assert topic.get("config") == {
        "cleanup.policy": "delete",
        "retention.ms": DEAD_LETTER_RETENTION[run.stack],
        "max.message.bytes": "1000012",
        "compression.type": compression,
        "min.insync.replicas": min_isr,
    }
    assert topic.protect is (run.stack == "prod")


@pytest.mark.parametrize(("overrides", "declared"), [
    ({"kafkaMqttSource": "health-pipeline"}, [DEVICE_DEAD_LETTER_TOPIC, SINK_DEAD_LETTER_TOPIC]),
    ({"kafkaMqttSource": "health-pipeline", "snowflakeEnabled": False},
     [DEVICE_DEAD_LETTER_TOPIC]),
    ({"snowflakeDeadLetterQueue": False, "snowflakeErrorsTolerance": "none"}, []),
    ({"snowflakeEnabled": False}, []),
], ids=["own-source", "own-source-no-snowflake", "sink-without-dlq", "no-snowflake"])
def test_a_dead_letter_topic_is_declared_when_a_connector_writes_to_it(overrides,
                                                                       declared) -> None:
    run = run_program("dev", {f"{PROJECT}:{k}": v for k, v in overrides.items()})
    names = [t.get("name") for t in run.of_type(TOPIC) if t.get("name") in DEAD_LETTER_TOPICS]
    assert names == declared
    written = {c.get("config").get(key)
               for c in run.of_type("pulumi-python:dynamic/connect:Connector")
               for key in ("errors.deadletterqueue.topic.name",)} - {None}
    assert written == set(declared), "a connector writes to an undeclared topic, or none does"


def test_dead_letter_retention_may_be_infinite_too() -> None:
    run = run_program("prod", {f"{PROJECT}:topicDeadLetterRetention": "infinite"})
    topic = run.one(TOPIC, f"topics-{SINK_DEAD_LETTER_TOPIC}")
    assert topic.get("config")["retention.ms"] == "-1"
    assert run.one(TOPIC, "topics-device_data").get("config")["retention.ms"] == "604800000"


def test_topics_use_the_explicit_kafka_provider(run: ProgramRun) -> None:
    provider = run.one("pulumi:providers:kafka", "kafka-provider")
    for topic in run.of_type(TOPIC):
        assert topic.provider_urn == provider.urn, topic.name


def test_dev_provider_reaches_the_published_plaintext_listener_once_healthy(dev) -> None:
    provider = dev.one("pulumi:providers:kafka", "kafka-provider")
    assert json.loads(provider.get("bootstrapServers")) == ["localhost:9092"]
    assert provider.get("tlsEnabled") == "false", "the provider defaults to TLS; set it"
    assert "saslUsername" not in provider.inputs
    assert dev.container("kafka").urn in provider.dependencies


def test_prod_provider_uses_sasl_ssl_with_a_secret_password(prod) -> None:
    provider = prod.one("pulumi:providers:kafka", "kafka-provider")
    assert json.loads(provider.get("bootstrapServers")) == [
        "b-1.kafka.health.internal:9096",
        "b-2.kafka.health.internal:9096",
        "b-3.kafka.health.internal:9096",
    ]
    assert provider.get("tlsEnabled") == "true"
    assert provider.get("saslMechanism") == "scram-sha512"
    assert provider.get("saslUsername") == "health-pipeline"
    assert provider.secret("saslPassword")
    assert provider.get("saslPassword") == "test-sasl-password"


def test_prod_topics_are_protected_so_fewer_partitions_cannot_drop_them() -> None:
    """Kafka cannot shrink a topic: the provider replaces it, deleting its data. In prod the
    topics are protected, so a lowered topicPartitions stops at preview instead."""
    run = run_program("prod", overrides={"health-pipeline:topicPartitions": 3})
    for topic in run.of_type(TOPIC):
        assert topic.get("partitions") == (1 if topic.get("name") in DEAD_LETTER_TOPICS else 3)
        assert topic.protect is True, topic.name


def test_infinite_retention_is_kafkas_minus_one_on_every_pipeline_topic() -> None:
    run = run_program("prod", overrides={"health-pipeline:topicRetention": "infinite"})
    for topic in run.of_type(TOPIC):
        if topic.get("name") in ALL_TOPICS:
            assert topic.get("config")["retention.ms"] == "-1", topic.name


def test_dev_topics_are_not_protected(dev: ProgramRun) -> None:
    assert not any(t.protect for t in dev.of_type(TOPIC))


def test_topics_output_lists_every_topic(run: ProgramRun) -> None:
    value, secret = run.outputs["topics"]
    assert sorted(value) == sorted([*ALL_TOPICS, SINK_DEAD_LETTER_TOPIC]) and secret is False
