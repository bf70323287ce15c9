"""Lenses 6 HQ `config.yaml`, agent `lenses-agent.conf` (HOCON) and `provisioning.yaml`.

These replace the seed's busybox `create-configs` container: the program renders them and
uploads them into the containers before they start."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import yaml

from components.render.connectors import (
    CAMEL_MQTT_SOURCE_CLASS,
    HEALTH_PIPELINE_MQTT_SOURCE_CLASS,
)
from components.settings import MqttSource

__all__ = [
    "AgentConnections",
    "DatabaseLogin",
    "KafkaConnection",
    "render_agent_conf",
    "render_hq_config",
    "render_provisioning",
]

AGENT_KEY_ENV = "LENSESHQ_AGENT_KEY"
"""The agent's start script exports the key of its HQ environment under this name."""

SNOWFLAKE_CONNECTOR_CLASS = "com.snowflake.kafka.connector.SnowflakeSinkConnector"


@dataclass(frozen=True)
class DatabaseLogin:
    host: str
    port: int
    database: str
    username: str
    password: str
    sslmode: str = "disable"


@dataclass(frozen=True)
class KafkaConnection:
    bootstrap_servers: Sequence[str]
    """With the protocol prefix, e.g. PLAINTEXT://kafka:19092."""
    protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    """Kafka's spelling: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512."""
    sasl_username: str | None = None
    sasl_password: str | None = None


@dataclass(frozen=True)
class AgentConnections:
    hq_host: str
    hq_port: int
    hq_tls: bool
    kafka: KafkaConnection
    schema_registry_urls: Sequence[str]
    connect_cluster: str
    connect_workers: Sequence[str]


def _dump(document: dict) -> str:
    header = "# Rendered by health-pipeline; edit the program, not this file.\n"
    return header + yaml.safe_dump(document, sort_keys=False, default_flow_style=False)


def render_hq_config(
    database: DatabaseLogin,
    admin_username: str,
    admin_bcrypt: str,
    accept_eula: bool,
    license_key: str | None,
    http_port: int,
    agents_port: int,
) -> str:
    license_block: dict = {"acceptEULA": accept_eula}
    if license_key:
        license_block = {"key": license_key, **license_block}
    return _dump(
        {
            "http": {"address": f":{http_port}"},
            "agents": {"address": f":{agents_port}"},
            "database": {
                "host": f"{database.host}:{database.port}",
                "username": database.username,
                "password": database.password,
                "database": database.database,
            },
            "license": license_block,
            # Plain-text log lines, as the upstream compose configures HQ (the Helm chart's
            # logger.mode is text or json).
            "logger": {"mode": "text"},
            "auth": {
                "administrators": [admin_username],
                "users": [{"username": admin_username, "password": admin_bcrypt}],
            },
        }
    )


def _hocon(key: str, value: object) -> str:
    return f"{key} = {json.dumps(value)}"


def _custom_connectors(mqtt_source: MqttSource) -> list[tuple[str, str, bool, str, str]]:
    """Connectors Lenses does not know by itself: (class, name, sink, description, author)."""
    found = [(SNOWFLAKE_CONNECTOR_CLASS, "Snowflake Kafka Connector", True,
              "Writes Kafka data into Snowflake for analytics.", "Snowflake")]
    if mqtt_source is MqttSource.HEALTH_PIPELINE:
        found.append((HEALTH_PIPELINE_MQTT_SOURCE_CLASS, "health-pipeline MQTT source", False,
                      "Copies device vitals from MQTT into device_data, at least once.",
                      "health-pipeline"))
    elif mqtt_source is MqttSource.CAMEL:
        found.append((CAMEL_MQTT_SOURCE_CLASS, "Camel MQTT 5 source", False,
                      "Copies device vitals from MQTT into device_data.", "Apache Camel"))
    return found


def _connector_info(cls: str, name: str, sink: bool, description: str, author: str) -> str:
    return "\n".join([
        "  {",
        f"    {_hocon('class.name', cls)}",
        f"    {_hocon('name', name)}",
        f"    {_hocon('sink', sink)}",
        f"    {_hocon('description', description)}",
        f"    {_hocon('author', author)}",
        "  }",
    ])


def render_agent_conf(
    database: DatabaseLogin, accept_eula: bool, http_port: int, provisioning_dir: str,
    mqtt_source: MqttSource = MqttSource.STREAM_REACTOR,
) -> str:
    """Database, EULA, where provisioning.yaml lives, and the registration of the connectors
    Lenses does not ship (Snowflake's; the MQTT source unless it is Stream Reactor) for its
    topology view."""
    lines = [
        "# Rendered by health-pipeline; edit the program, not this file.",
        _hocon("lenses.eula.accept", accept_eula),
        _hocon("lenses.port", http_port),
        _hocon("lenses.provisioning.path", provisioning_dir),
        _hocon("lenses.storage.postgres.host", database.host),
        _hocon("lenses.storage.postgres.port", database.port),
        _hocon("lenses.storage.postgres.database", database.database),
        _hocon("lenses.storage.postgres.username", database.username),
        _hocon("lenses.storage.postgres.password", database.password),
        _hocon("lenses.storage.postgres.properties.sslmode", database.sslmode),
        _hocon("lenses.sql.execution.mode", "IN_PROC"),
        "lenses.connectors.info = [",
        ",\n".join(_connector_info(*info) for info in _custom_connectors(mqtt_source)),
        "]",
    ]
    return "\n".join(lines) + "\n"


def _values(**settings: object) -> dict:
    return {key: {"value": value} for key, value in settings.items()}


def render_provisioning(c: AgentConnections) -> str:
    kafka = _values(kafkaBootstrapServers=list(c.kafka.bootstrap_servers),
                    protocol=c.kafka.protocol)
    if c.kafka.sasl_mechanism:
        module = (
            "org.apache.kafka.common.security.plain.PlainLoginModule"
            if c.kafka.sasl_mechanism == "PLAIN"
            else "org.apache.kafka.common.security.scram.ScramLoginModule"
        )
        jaas = (
            f"{module} required username={json.dumps(c.kafka.sasl_username)} "
            f"password={json.dumps(c.kafka.sasl_password)};"
        )
        kafka.update(_values(saslMechanism=c.kafka.sasl_mechanism, saslJaasConfig=jaas))
    return _dump(
        {
            "lensesHq": [
                {
                    "name": "lenses-hq",
                    "version": 1,
                    "configuration": _values(
                        server=c.hq_host,
                        port=c.hq_port,
                        agentKey=f"${{{AGENT_KEY_ENV}}}",
                        sslEnabled=c.hq_tls,
                    ),
                }
            ],
            "kafka": [{"name": "kafka", "version": 1, "configuration": kafka}],
            "confluentSchemaRegistry": [
                {
                    "name": "schema-registry",
                    "version": 1,
                    "configuration": _values(schemaRegistryUrls=list(c.schema_registry_urls)),
                }
            ],
            "connect": [
                {
                    "name": c.connect_cluster,
                    "version": 1,
                    "configuration": _values(workers=list(c.connect_workers)),
                }
            ],
        }
    )
