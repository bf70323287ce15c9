"""The pipeline's topics, defined once: the raw device topic, the streams derived from it and
the dead-letter topics. Topics, SQL processors, connectors and tests all read these names from
here."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "ALL_TOPICS",
    "DEAD_LETTER_TOPICS",
    "DERIVED_STREAMS",
    "DEVICE_DEAD_LETTER_TOPIC",
    "DEVICE_KEY_TYPE",
    "DEVICE_TOPIC",
    "DEVICE_VALUE_TYPE",
    "MQTT_TOPICS",
    "SINK_DEAD_LETTER_TOPIC",
    "DerivedStream",
]

MQTT_TOPICS = ("health/device_data", "health/health_data")
"""Where devices publish their JSON vitals: the seed's primary topic and its alternative. The
MQTT source reads every one of them into device_data; the first is the simulator's default."""

DEVICE_TOPIC = "device_data"
"""Kafka topic the MQTT source connector writes every message to."""

DEVICE_KEY_TYPE = "STRING"
"""device_data's key, in Lenses' names of formats: the device id as text (or none)."""
DEVICE_VALUE_TYPE = "JSON"
"""device_data's value: the device's JSON text, whose schema is schemas/health_data.avsc."""


@dataclass(frozen=True)
class DerivedStream:
    """One vital sign split out of `device_data` by a Lenses SQL processor."""

    name: str
    topic: str
    fields: tuple[tuple[str, str], ...]
    """(field in device_data, field in the derived topic) for the measurement."""

    @property
    def table(self) -> str:
        """Snowflake table the sink connector loads the topic into."""
        return self.name.upper()


DERIVED_STREAMS = (
    DerivedStream(
        "blood_pressure",
        "blood_pressure_device_topic",
        (("systolic", "systolic"), ("diastolic", "diastolic")),
    ),
    DerivedStream("heart_rate", "heart_rate_device_topic", (("heartRate", "value"),)),
    DerivedStream(
        "oxygen_saturation", "oxygen_saturation_device_topic", (("oxygenSaturation", "value"),)
    ),
    DerivedStream("temperature", "temperature_device_topic", (("bodyTemperature", "value"),)),
)

ALL_TOPICS = (DEVICE_TOPIC, *(stream.topic for stream in DERIVED_STREAMS))
"""The Kafka topics the readings flow through, with per-stack partitions, replication and
retention (the dead-letter topics are DEAD_LETTER_TOPICS)."""

DEVICE_DEAD_LETTER_TOPIC = "device_data_dlq"
"""Where this project's MQTT source writes a payload it cannot key (not JSON, or no deviceId),
byte for byte as published, with the reason in its headers, instead of into device_data."""
SINK_DEAD_LETTER_TOPIC = "snowflake_sink_dlq"
"""Kafka Connect's dead-letter queue of the Snowflake sink: records its converter or transforms
failed on, with the error in `__connect.errors.*` headers."""
DEAD_LETTER_TOPICS = (DEVICE_DEAD_LETTER_TOPIC, SINK_DEAD_LETTER_TOPIC)
