"""The Kafka Connect connectors as Pulumi resources: a dynamic provider over Connect's REST API,
and the component that declares the MQTT source and the Snowflake sink."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import pulumi
from pulumi import Input
from pulumi.dynamic import CreateResult, ReadResult, UpdateResult

from components.connect_api import ConnectClient
from components.dynamic import ArgsResource, RestProvider
from components.kafka import KafkaCluster
from components.mqtt import MQTT_SOURCE_TLS_DIR, MqttBroker
from components.render.connectors import (
    SECRET_CONFIG_KEYS,
    SinkBuffer,
    SinkErrors,
    mqtt_source_configs,
    snowflake_sink_config,
)
from components.settings import Mode, MqttSource, Settings
from components.snowflake import SnowflakeIngest
from components.topics import DeadLetterTopics

__all__ = [
    "Connector",
    "ConnectorArgs",
    "ConnectorProvider",
    "SnowflakeTarget",
    "StreamConnectors",
    "StreamConnectorsArgs",
    "client_for",
]

MQTT_SOURCE_NAME = "health_mqtt_source"
SNOWFLAKE_SINK_NAME = "health_snowflake_sink"
"""Snowflake's connector takes its name as an identifier: letters, digits and underscores."""


class ConnectorProvider(RestProvider):
    """One Kafka Connect connector (see RestProvider for what the provider holds). Create and
    update are the same idempotent PUT, after Connect validated the config; read returns the
    live config so that `pulumi preview --refresh` shows drift."""

    INPUTS = ("connect_url", "name", "config", "timeout_seconds")
    REPLACED_BY = ("connect_url", "name")
    """A connector renamed or moved to another cluster is a new connector."""

    def _client(self, props: dict[str, Any]) -> ConnectClient:
        """A client for the cluster in `props`, masking the config's secret values in errors;
        the resource's own timeout_seconds bounds each call."""
        config = props.get("config") or {}
        secrets = [str(config[k]) for k in SECRET_CONFIG_KEYS if config.get(k)]
        return ConnectClient(self._api(
            str(props["connect_url"]), secrets=secrets,
            timeout=float(props.get("timeout_seconds") or self.timeout)))

    def _outs(self, props: dict[str, Any], config: Mapping[str, str]) -> dict[str, Any]:
        return {**self._inputs(props), "config": dict(config),
                "timeout_seconds": props.get("timeout_seconds") or 30}

    def create(self, props: dict[str, Any]) -> CreateResult:
        self._apply(props)
        return CreateResult(props["name"], self._outs(props, props["config"]))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        live = self._client(props).get_config(id_)
        if live is None:
            return ReadResult(None, {})
        outs = self._outs(props, live)
        return ReadResult(id_, outs, self._inputs(outs))

    def update(self, id_: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        self._apply(news)
        return UpdateResult(self._outs(news, news["config"]))

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        self._client(props).delete(id_)

    def _apply(self, props: dict[str, Any]) -> None:
        client = self._client(props)
        client.validate(props["config"])
        client.put_config(props["name"], props["config"])


def client_for(props: Mapping[str, Any], backoff: float = 0.5) -> ConnectClient:
    """The provider's client for the cluster in `props`, for tools and tests that call Connect
    as the provider does."""
    return ConnectorProvider(backoff=backoff)._client(dict(props))


@dataclass(frozen=True)
class ConnectorArgs:
    connect_url: pulumi.Input[str]
    """Connect REST URL as reached from the machine running Pulumi."""
    name: str
    """The connector's name on the cluster; a new name is a new connector."""
    config: Mapping[str, Input[str]]
    """Flat string map. The values of SECRET_CONFIG_KEYS are kept secret one by one (as is any
    value that comes from a secret), the rest stay readable, so a preview names the keys that
    changed and shows only credentials as [secret]."""
    timeout_seconds: int = 30
    """Seconds each REST call may take before the operation fails."""


class Connector(ArgsResource, module="connect", name="Connector"):
    """One Kafka Connect connector, managed through the REST API."""

    config: pulumi.Output[dict[str, str]]
    """Secret as a whole: the config as applied (or, after a refresh, as live on the cluster).
    The inputs keep only the credentials secret."""

    def __init__(
        self,
        name: str,
        args: ConnectorArgs,
        opts: pulumi.ResourceOptions | None = None,
        provider: ConnectorProvider | None = None,
    ) -> None:
        config = {key: pulumi.Output.secret(value) if key in SECRET_CONFIG_KEYS else value
                  for key, value in args.config.items()}
        super().__init__(provider or ConnectorProvider(), name, replace(args, config=config),
                         opts, secret_outputs=("config",))


@dataclass(frozen=True)
class SnowflakeTarget:
    """Where the sink loads, and as whom."""

    url: Input[str]
    """`<org>-<account>.snowflakecomputing.com:443` (snowflake.url.name)."""
    user: Input[str]
    """The service user the sink logs in as (snowflake.user.name)."""
    private_key: Input[str]
    """Secret: the PKCS#8 private key body (snowflake.private.key)."""
    database: Input[str]
    """Where the sink creates its tables (snowflake.database.name)."""
    schema: Input[str]
    """The schema in `database` (snowflake.schema.name)."""
    role: Input[str]
    """The role the sink works as (snowflake.role.name)."""
    after: tuple[pulumi.Resource, ...] = ()
    """What the sink waits for (the Snowflake user, its role and grants)."""

    @classmethod
    def of(cls, ingest: SnowflakeIngest) -> SnowflakeTarget:
        """The objects this stack declares in Snowflake."""
        return cls(ingest.url, ingest.user, ingest.private_key, ingest.database, ingest.schema,
                   ingest.role, after=(ingest,))


@dataclass(frozen=True)
class StreamConnectorsArgs:
    connect_url: Input[str]
    """Connect REST URL from the machine running Pulumi."""
    client_id: str
    """MQTT client id of the source; unique per broker, so per stack."""
    mqtt_source: MqttSource
    """Which MQTT source connector class the Connect cluster runs."""
    mqtt_url: str
    """The broker as Connect's workers reach it."""
    mqtt_username: Input[str]
    """The broker login of the MQTT source."""
    mqtt_password: Input[str]
    """Secret: that login's password."""
    schema_registry_url: str
    """Schema Registry as Connect's workers reach it."""
    buffer: SinkBuffer
    """When the Snowflake sink flushes (records, seconds, bytes)."""
    sink_errors: SinkErrors
    """What the Snowflake sink does with a record it cannot convert (errors.*)."""
    snowflake: SnowflakeTarget | None
    """None when the stack has Snowflake off: then there is no sink."""
    source_dead_letter_topic: str | None = None
    """Where this project's MQTT source puts a payload it cannot key (DeadLetterTopics.source);
    None keeps such payloads in device_data without a key."""
    mqtt_ca_pem: Input[str] = ""
    """The CA the broker's certificate chains to, for a TLS mqtt_url (this project's source
    takes it in its config)."""
    mqtt_tls_dir: str | None = None
    """Where Stream Reactor's source finds its TLS files on the workers; None: it trusts the
    worker JVM's truststore."""
    after: tuple[pulumi.Resource, ...] = ()
    """What every connector waits for (the topics); a component's own depends_on does not
    reach its children."""
    mqtt_source_tasks: int = 1
    """The MQTT source's tasks.max (mqttSourceTasks); above 1 they share the subscriptions."""
    source_after: tuple[pulumi.Resource, ...] = ()
    """What the MQTT source(s) wait for besides `after`: the broker they read (MqttBroker, whose
    container is created only once its healthcheck passes), so that a source never starts
    against a broker still coming up, as it could in prod with Mosquitto on its own host."""

    @classmethod
    def for_stack(cls, settings: Settings, mqtt: MqttBroker, kafka: KafkaCluster,
                  snowflake: SnowflakeIngest | None,
                  after: tuple[pulumi.Resource, ...]) -> StreamConnectorsArgs:
        """Connect's workers run in the Kafka container (container mode) or in the external
        cluster. This project's source (the broker's CA in its config) and Stream Reactor's
        with its TLS files use TLS even where a plain listener exists; Camel's where no plain
        one does."""
        k, sf = settings.kafka, settings.snowflake
        dead_letters = DeadLetterTopics.for_stack(settings)
        connect_host = k.placement.docker_host if k.placement else None
        tls_dir = source_tls_dir(settings) if mqtt.connector_tls else None
        tls = k.mqtt_source is MqttSource.HEALTH_PIPELINE or tls_dir is not None
        return cls(
            connect_url=kafka.connect_url,
            client_id=f"{settings.name_prefix}-mqtt-source",
            mqtt_source=k.mqtt_source,
            mqtt_url=mqtt.url_for(connect_host, tls=tls),
            mqtt_username=mqtt.connector_username,
            mqtt_password=mqtt.connector_password,
            schema_registry_url=kafka.endpoints_for(connect_host).schema_registry_url,
            buffer=SinkBuffer(sf.buffer_count_records, sf.buffer_flush_time_seconds,
                              sf.buffer_size_bytes),
            sink_errors=SinkErrors(
                sf.errors_tolerance, dead_letters.sink, settings.topics.replication_factor,
                sf.dead_letter_context_headers, sf.errors_log, sf.errors_log_include_messages),
            snowflake=SnowflakeTarget.of(snowflake) if snowflake else None,
            source_dead_letter_topic=dead_letters.source,
            mqtt_ca_pem=mqtt.ca_certificate,
            mqtt_tls_dir=tls_dir,
            after=after,
            mqtt_source_tasks=k.mqtt_source_tasks,
            source_after=(mqtt,),
        )


def source_tls_dir(settings: Settings) -> str | None:
    """Where Stream Reactor's source reads its TLS files: placed by the program on
    fast-data-dev, by the operator on an external cluster (kafkaConnectMqttTlsDir)."""
    if settings.kafka.mode is Mode.CONTAINER:
        return MQTT_SOURCE_TLS_DIR
    return settings.kafka.connect_mqtt_tls_dir or None


class StreamConnectors(pulumi.ComponentResource):
    """MQTT (every topic of MQTT_TOPICS) -> device_data, and the derived topics -> Snowflake."""

    names: pulumi.Output[list[str]]

    def __init__(
        self, name: str, args: StreamConnectorsArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("healthpipe:connectors:StreamConnectors", name, None, opts)
        # The credentials are placed in the maps as they are (Outputs), so the keys are known
        # here and each secret value stays a secret of its own.
        source_configs = mqtt_source_configs(
            args.mqtt_source, MQTT_SOURCE_NAME, args.mqtt_url, args.mqtt_username,
            args.mqtt_password, args.client_id, args.mqtt_ca_pem, args.mqtt_tls_dir,
            dead_letter_topic=args.source_dead_letter_topic, tasks=args.mqtt_source_tasks)
        connectors = [
            Connector(
                f"{name}-{role}",
                ConnectorArgs(args.connect_url, str(config["name"]), config),
                pulumi.ResourceOptions(parent=self,
                                       depends_on=[*args.after, *args.source_after]),
            )
            for role, config in source_configs.items()
        ]
        if args.snowflake is not None:
            sf = args.snowflake
            sink_config = snowflake_sink_config(
                SNOWFLAKE_SINK_NAME, sf.url, sf.user, sf.private_key, sf.database, sf.schema,
                sf.role, schema_registry_url=args.schema_registry_url, buffer=args.buffer,
                errors=args.sink_errors,
            )
            connectors.append(
                Connector(
                    f"{name}-snowflake-sink",
                    ConnectorArgs(args.connect_url, SNOWFLAKE_SINK_NAME, sink_config),
                    pulumi.ResourceOptions(parent=self, depends_on=[*args.after, *sf.after]),
                )
            )
        names = [str(c["name"]) for c in source_configs.values()] + (
            [SNOWFLAKE_SINK_NAME] if args.snowflake else [])
        # Known up front; published once every connector exists.
        self.names = pulumi.Output.all(*[c.id for c in connectors]).apply(lambda _: names)
        self.register_outputs({"names": self.names})

    def stack_outputs(self) -> dict[str, pulumi.Output]:
        return {"connectors": self.names}
