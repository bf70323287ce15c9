"""Kafka Connect configurations of the pipeline's two connectors, as flat string maps."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from components.streams import DERIVED_STREAMS, DEVICE_TOPIC, MQTT_TOPIC, DerivedStream

__all__ = [
    "MQTT_SOURCE_CLASS",
    "SECRET_CONFIG_KEYS",
    "SNOWFLAKE_SINK_CLASS",
    "SinkBuffer",
    "mqtt_source_config",
    "snowflake_sink_config",
]

MQTT_SOURCE_CLASS = "io.lenses.streamreactor.connect.mqtt.source.MqttSourceConnector"
JSON_SOURCE_CONVERTER = "io.lenses.streamreactor.connect.converters.source.JsonSimpleConverter"
SNOWFLAKE_SINK_CLASS = "com.snowflake.kafka.connector.SnowflakeSinkConnector"
SNOWFLAKE_AVRO_CONVERTER = "com.snowflake.kafka.connector.records.SnowflakeAvroConverter"
STRING_CONVERTER = "org.apache.kafka.connect.storage.StringConverter"

SECRET_CONFIG_KEYS = ("connect.mqtt.password", "snowflake.private.key",
                      "snowflake.private.key.passphrase")
"""Keys whose values are masked in every message the connectors provider writes."""


def mqtt_source_config(
    name: str,
    mqtt_url: str,
    username: str,
    password: str,
    client_id: str,
) -> dict[str, str]:
    """Stream Reactor's MQTT source: QoS 1, a persistent session (clean=false) so the broker
    keeps messages while the connector restarts, JSON in and JSON out, keyed by deviceId."""
    kcql = (
        f"INSERT INTO {DEVICE_TOPIC} SELECT * FROM {MQTT_TOPIC} "
        f"WITHCONVERTER=`{JSON_SOURCE_CONVERTER}` WITHKEY(deviceId)"
    )
    return {
        "name": name,
        "connector.class": MQTT_SOURCE_CLASS,
        "tasks.max": "1",
        "connect.mqtt.hosts": mqtt_url,
        "connect.mqtt.username": username,
        "connect.mqtt.password": password,
        "connect.mqtt.service.quality": "1",
        "connect.mqtt.client.id": client_id,
        "connect.mqtt.clean": "false",
        "connect.mqtt.kcql": kcql,
        "key.converter": STRING_CONVERTER,
        "value.converter": "org.apache.kafka.connect.json.JsonConverter",
        "value.converter.schemas.enable": "false",
        "errors.log.enable": "true",
        "errors.log.include.messages": "false",
    }


@dataclass(frozen=True)
class SinkBuffer:
    """When the sink flushes a buffer to Snowflake: whichever limit is reached first."""

    count_records: int
    flush_time_seconds: int
    """At least 10 (the connector's minimum for Snowpipe)."""
    size_bytes: int


def snowflake_sink_config(
    name: str,
    url: str,
    user: str,
    private_key: str,
    database: str,
    schema: str,
    role: str,
    schema_registry_url: str,
    buffer: SinkBuffer,
    streams: Sequence[DerivedStream] = DERIVED_STREAMS,
) -> dict[str, str]:
    """The Snowflake sink for the derived topics, one table per topic, Avro values read with
    the Schema Registry, key-pair authentication."""
    return {
        "name": name,
        "connector.class": SNOWFLAKE_SINK_CLASS,
        "tasks.max": "1",
        "topics": ",".join(s.topic for s in streams),
        "snowflake.topic2table.map": ",".join(f"{s.topic}:{s.table}" for s in streams),
        "snowflake.url.name": url,
        "snowflake.user.name": user,
        "snowflake.private.key": private_key,
        "snowflake.database.name": database,
        "snowflake.schema.name": schema,
        "snowflake.role.name": role,
        "buffer.count.records": str(buffer.count_records),
        "buffer.flush.time": str(buffer.flush_time_seconds),
        "buffer.size.bytes": str(buffer.size_bytes),
        "key.converter": STRING_CONVERTER,
        "value.converter": SNOWFLAKE_AVRO_CONVERTER,
        "value.converter.schema.registry.url": schema_registry_url,
    }
