"""The part of the program the real engine can run on this machine, as an inline program: the
Kafka Connect connectors, and in Lenses HQ the stack's environment, device_data's formats and
the SQL processors (dynamic providers), wired by the project's own components as __main__.py
and components/lenses.py wire them, against endpoints given here instead of
containers (whose providers cannot be had here). Outputs carry __main__.py's names."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pulumi

from components.connectors import SnowflakeTarget, StreamConnectors, StreamConnectorsArgs
from components.lenses_resources import Environment, EnvironmentArgs
from components.processors import SQL_DIR, SqlProcessors, SqlProcessorsArgs
from components.render.connectors import SinkBuffer, SinkErrors
from components.settings import MqttSource
from components.streams import DEVICE_DEAD_LETTER_TOPIC, SINK_DEAD_LETTER_TOPIC

__all__ = ["PipelineTargets", "SnowflakeAccount", "pipeline_program"]


@dataclass(frozen=True)
class SnowflakeAccount:
    """Where the sink would load, as SnowflakeIngest's outputs give it."""

    url: str
    private_key: str
    user: str = "kafka_user"
    database: str = "INGEST"
    schema: str = "INGEST"
    role: str = "INGEST"


@dataclass(frozen=True)
class PipelineTargets:
    """The endpoints and credentials the program's connectors and processors use."""

    connect_url: str
    """Kafka Connect's REST API."""
    mqtt_url: str
    """The broker as Connect's workers reach it."""
    mqtt_username: str
    mqtt_password: str
    hq_url: str
    """Lenses HQ's HTTP API."""
    lenses_username: str
    lenses_password: str
    client_id: str = "health-pipeline-dev-mqtt-source"
    environment: str = "dev"
    environment_tier: str = "development"
    sql_dir: Path = SQL_DIR
    mqtt_source: MqttSource = MqttSource.HEALTH_PIPELINE
    """The one implementation a Connect worker here can run (built from Maven Central jars)."""
    schema_registry_url: str = "http://127.0.0.1:8081"
    buffer: SinkBuffer = field(default_factory=lambda: SinkBuffer(1_000_000, 10, 250_000_000))
    """The seed's sink buffers (dev's)."""
    sink_errors: SinkErrors = field(default_factory=lambda: SinkErrors(
        "all", SINK_DEAD_LETTER_TOPIC, 1, True, True, False))
    """Dev's: skip to the dead-letter topic, with context headers, logged without the record."""
    source_dead_letter_topic: str | None = DEVICE_DEAD_LETTER_TOPIC
    """As the program renders this project's source (the broker creates the topic if a payload
    ever goes there)."""
    snowflake: SnowflakeAccount | None = None
    """None: Snowflake off, no sink (as `snowflakeEnabled: false`)."""


def pipeline_program(targets: PipelineTargets) -> Callable[[], None]:
    """An inline program for `targets`; secrets enter it as secrets, as pulumi.Config's
    require_secret and pulumi-random's outputs give them to __main__.py."""

    def program() -> None:
        sf = targets.snowflake
        connectors = StreamConnectors(
            "connectors",
            StreamConnectorsArgs(
                connect_url=targets.connect_url,
                client_id=targets.client_id,
                mqtt_source=targets.mqtt_source,
                mqtt_url=targets.mqtt_url,
                mqtt_username=targets.mqtt_username,
                mqtt_password=pulumi.Output.secret(targets.mqtt_password),
                schema_registry_url=targets.schema_registry_url,
                buffer=targets.buffer,
                sink_errors=targets.sink_errors,
                source_dead_letter_topic=targets.source_dead_letter_topic,
                snowflake=None if sf is None else SnowflakeTarget(
                    sf.url, sf.user, pulumi.Output.secret(sf.private_key), sf.database,
                    sf.schema, sf.role),
            ),
        )
        lenses_password = pulumi.Output.secret(targets.lenses_password)
        # In the program, a child of the Lenses component, created once HQ is healthy.
        environment = Environment(
            "lenses-environment",
            EnvironmentArgs(hq_url=targets.hq_url, username=targets.lenses_username,
                            password=lenses_password, name=targets.environment,
                            tier=targets.environment_tier),
        )
        processors = SqlProcessors(
            "processors",
            SqlProcessorsArgs(
                hq_url=targets.hq_url,
                environment=targets.environment,
                username=targets.lenses_username,
                password=lenses_password,
                sql_dir=targets.sql_dir,
                after=(environment,),
            ),
        )
        pulumi.export("connectors", connectors.names)
        pulumi.export("sqlProcessors", processors.processor_ids)
        pulumi.export("mqttConnectorPassword", pulumi.Output.secret(targets.mqtt_password))
        pulumi.export("lensesAdminPassword", pulumi.Output.secret(targets.lenses_password))
        if sf is not None:
            pulumi.export("snowflakePrivateKey", pulumi.Output.secret(sf.private_key))

    return program
