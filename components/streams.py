"""The pipeline's topics, defined once: the raw device topic and the streams derived from it.
Topics, SQL processors, connectors and tests all read these names from here."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "ALL_TOPICS",
    "DERIVED_STREAMS",
    "DEVICE_KEY_TYPE",
    "DEVICE_TOPIC",
    "DEVICE_VALUE_TYPE",
    "MQTT_TOPICS",
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
