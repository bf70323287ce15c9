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
    SNOWFLAKE_SINK_CLASS,
)
from components.settings import MqttSource

__all__ = [
    "AgentConnections",
    "ConnectorInfo",
    "DatabaseConnection",
    "HqConnection",
    "KafkaConnection",
    "render_agent_conf",
    "render_hq_config",
    "render_provisioning",
]



@dataclass(frozen=True)
class DatabaseConnection:
    """How a Lenses component reaches its database, resolved (components.postgres.DatabaseLogin
    is the login as the program declares it, with its password still an Output)."""

    host: str
    port: int
    database: str
    username: str
    password: str
    sslmode: str = "disable"
    ca_path: str | None = None
    """Where the container finds the CA bundle it verifies the server with (verify-ca and
    verify-full)."""

    def tls_parameters(self) -> dict[str, str]:
        """libpq's and pgjdbc's names for the TLS settings (they share them)."""
        return {"sslmode": self.sslmode, **({"sslrootcert": self.ca_path} if self.ca_path
                                              else {})}


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
class HqConnection:
    """How the agent reaches HQ's agent listener, and the key of its environment."""

    host: str
    port: int
    agent_key: str
    """Secret: the only HQ credential the agent holds."""
    tls: bool = False
    truststore_path: str | None = None
    """In the container: a JKS truststore with the CA of HQ's agent listener."""
    truststore_password: str | None = None

    def configuration(self) -> dict:
        settings = _values(server=self.host, port=self.port, agentKey=self.agent_key,
                           sslEnabled=self.tls)
        if self.truststore_path:
            settings["sslTruststore"] = {"file": self.truststore_path}
            settings.update(_values(sslTruststorePassword=self.truststore_password))
        return settings


@dataclass(frozen=True)
class AgentConnections:
    hq: HqConnection
    kafka: KafkaConnection
    schema_registry_urls: Sequence[str]
    connect_cluster: str
    connect_workers: Sequence[str]


def _dump(document: dict) -> str:
    header = "# Rendered by health-pipeline; edit the program, not this file.\n"
    return header + yaml.safe_dump(document, sort_keys=False, default_flow_style=False)


def render_hq_config(
    database: DatabaseConnection,
    admin_username: str,
    admin_bcrypt: str,
    accept_eula: bool,
    license_key: str | None,
    http_port: int,
    agents_port: int,
    secure_cookies: bool = False,
) -> str:
    """`secure_cookies`: HQ is reached over HTTPS (its front), so its session cookie is sent
    over HTTPS only; over plain HTTP a browser would drop it (http.secureSessionCookies,
    lenses-helm-charts _helper.tpl and values.yaml)."""
    license_block: dict = {"acceptEULA": accept_eula}
    if license_key:
        license_block = {"key": license_key, **license_block}
    return _dump(
        {
            "http": {"address": f":{http_port}", "secureSessionCookies": secure_cookies},
            "agents": {"address": f":{agents_port}"},
            "database": {
                "host": f"{database.host}:{database.port}",
                "username": database.username,
                "password": database.password,
                "database": database.database,
                # The Helm chart's two keys: TLS false is sslmode disable, true verify-full;
                # params are libpq keywords and their sslmode takes precedence.
                "TLS": database.sslmode != "disable",
                "params": database.tls_parameters(),
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


TOPICS_EXTRACTOR = "io.lenses.config.kafka.connect.SimpleTopicsExtractor"
"""The extractor Lenses' topology docs name for source connectors: it reads the topics a source
writes from the connector config key given as `property` (docs.lenses.io 5.4
installation/configuration-reference/topology; 4.1 configuration/options/topology)."""


@dataclass(frozen=True)
class ConnectorInfo:
    """One `lenses.connectors.info` entry: a connector Lenses does not know by itself."""

    class_name: str
    name: str
    sink: bool
    description: str
    author: str
    topics_property: str | None = None
    """Sources only: the config key naming the topic the connector writes."""

    def render(self) -> str:
        keys = [("class.name", self.class_name), ("name", self.name), ("sink", self.sink),
                ("description", self.description), ("author", self.author)]
        if self.topics_property:
            keys += [("extractor.class", TOPICS_EXTRACTOR), ("property", self.topics_property)]
        return "\n".join(["  {", *(f"    {_hocon(k, v)}" for k, v in keys), "  }"])


def _custom_connectors(mqtt_source: MqttSource) -> list[ConnectorInfo]:
    found = [ConnectorInfo(SNOWFLAKE_SINK_CLASS, "Snowflake Kafka Connector", True,
                           "Writes Kafka data into Snowflake for analytics.", "Snowflake")]
    if mqtt_source is MqttSource.HEALTH_PIPELINE:
        found.append(ConnectorInfo(
            HEALTH_PIPELINE_MQTT_SOURCE_CLASS, "health-pipeline MQTT source", False,
            "Copies device vitals from MQTT into device_data, at least once.",
            "health-pipeline", topics_property="kafka.topic"))
    elif mqtt_source is MqttSource.CAMEL:
        found.append(ConnectorInfo(
            CAMEL_MQTT_SOURCE_CLASS, "Camel MQTT 5 source", False,
            "Copies device vitals from MQTT into device_data.", "Apache Camel",
            topics_property="topics"))
    return found


def render_agent_conf(
    database: DatabaseConnection, accept_eula: bool, http_port: int, provisioning_dir: str,
    sql_state_dir: str, mqtt_source: MqttSource = MqttSource.STREAM_REACTOR,
) -> str:
    """Database (its TLS as JDBC properties), EULA, where provisioning.yaml lives, where the
    processors keep their state, and the registration of the connectors Lenses does not ship
    (Snowflake's; the MQTT source unless it is Stream Reactor) for its topology view."""
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
        *(_hocon(f"lenses.storage.postgres.properties.{key}", value)
          for key, value in database.tls_parameters().items()),
        _hocon("lenses.sql.execution.mode", "IN_PROC"),
        _hocon("lenses.sql.state.dir", sql_state_dir),
        "lenses.connectors.info = [",
        ",\n".join(info.render() for info in _custom_connectors(mqtt_source)),
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
                    "configuration": c.hq.configuration(),
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
