"""Kafka, Schema Registry and Kafka Connect: fast-data-dev as a container with the Snowflake
connector on Connect's plugin path, or an existing cluster."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_docker as docker
import pulumi_kafka

from components.docker_host import (
    ContainerDefaults,
    ContainerSpec,
    DockerEngine,
    Healthcheck,
    Port,
    run_container,
)
from components.render.connectors import HEALTH_PIPELINE_MQTT_SOURCE_CLASS, SNOWFLAKE_SINK_CLASS
from components.settings import (
    ConnectorJar,
    ContainerPlacement,
    DockerHost,
    KafkaSettings,
    Mode,
    MqttSource,
)

__all__ = [
    "CONNECTOR_JAR_PATH",
    "MQTT_SOURCE_PLUGIN_PATH",
    "KafkaCluster",
    "KafkaClusterArgs",
    "KafkaEndpoints",
]

CONNECTOR_JAR_PATH = "/connectors/snowflake.jar"
"""On fast-data-dev's default CONNECT_PLUGIN_PATH."""

BROKER_PORT = 9092
CONTROLLER_PORT = 16062
SCHEMA_REGISTRY_PORT = 8081
CONNECT_PORT = 8083

MQTT_SOURCE_PLUGIN_PATH = "/connectors/mqtt-source"
"""This project's MQTT source plugin directory in the container: its jar and its libraries."""


@dataclass(frozen=True)
class KafkaEndpoints:
    """Plain addresses as one particular client sees them."""

    bootstrap_servers: tuple[str, ...]
    security_protocol: str
    schema_registry_url: str
    connect_url: str


@dataclass(frozen=True)
class KafkaClusterArgs:
    settings: KafkaSettings
    """The stack's kafka* settings: mode, image, ports, or the external cluster."""
    engine: DockerEngine | None
    """The engine fast-data-dev runs on; None in external mode."""
    defaults: ContainerDefaults
    """Stack-wide container choices (name prefix, publish address, protect)."""
    snowflake_jar: ConnectorJar | None
    """The Snowflake sink's jar and hash (kafkaConnectSnowflakeJar); required in container
    mode."""
    extra_plugins: tuple[ConnectorJar, ...] = ()
    """More jars for Connect's plugin path in container mode: this project's MQTT source
    (kafkaConnectMqttSourcePlugin)."""
    expected_classes: tuple[str, ...] = ()
    """Connector classes Connect must list before the container counts as healthy, besides
    the Snowflake sink."""
    connector_files: tuple[docker.ContainerUploadArgs, ...] = ()
    """Files the connectors read on the worker in container mode (the MQTT source's TLS
    files)."""

    def __post_init__(self) -> None:
        if self.settings.mode is Mode.EXTERNAL:
            return
        if self.engine is None or self.settings.placement is None:
            raise ValueError(
                "KafkaClusterArgs.engine: container mode needs a Docker engine (the one of "
                "kafkaDockerHost, else dockerHost), or set kafkaMode to external")
        if self.snowflake_jar is None:
            raise ValueError(
                "KafkaClusterArgs.snowflake_jar: container mode needs the connector jar on "
                "Connect's plugin path (kafkaConnectSnowflakeJar, after scripts/fetch-connectors)")

    @classmethod
    def for_stack(cls, settings: KafkaSettings, engine: DockerEngine | None,
                  defaults: ContainerDefaults,
                  connector_files: Sequence[docker.ContainerUploadArgs] = ()) -> KafkaClusterArgs:
        """In container mode: the Snowflake connector's jar, and this project's MQTT source
        on the plugin path when it is the chosen source, both as the settings loader found
        and hashed them (an external Connect cluster must have its connectors installed)."""
        if settings.mode is not Mode.CONTAINER:
            return cls(settings, engine, defaults, None)
        own = settings.mqtt_source is MqttSource.HEALTH_PIPELINE
        return cls(settings, engine, defaults, settings.snowflake_jar,
                   settings.mqtt_source_jars if own else (),
                   (HEALTH_PIPELINE_MQTT_SOURCE_CLASS,) if own else (),
                   tuple(connector_files))


def _flag(value: bool) -> str:
    return "1" if value else "0"


class KafkaCluster(pulumi.ComponentResource):
    """The Kafka side of the pipeline, wherever it runs."""

    bootstrap_servers: pulumi.Output[list[str]]
    """Brokers as reached from the machine running Pulumi (kafka provider, simulator)."""
    schema_registry_url: pulumi.Output[str]
    connect_url: pulumi.Output[str]
    provider: pulumi_kafka.Provider
    """Explicit kafka provider for topics; in container mode it waits for the healthy broker."""

    def __init__(
        self, name: str, args: KafkaClusterArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("healthpipe:kafka:KafkaCluster", name, None, opts)
        s = args.settings
        self._settings = s
        self._container: docker.Container | None = None
        if s.mode is not Mode.EXTERNAL:
            # Checked in KafkaClusterArgs.__post_init__.
            assert args.engine is not None and args.snowflake_jar is not None
            assert s.placement is not None
            jars = ((args.snowflake_jar, CONNECTOR_JAR_PATH),
                    *((jar, f"{MQTT_SOURCE_PLUGIN_PATH}/{jar.path.name}")
                      for jar in args.extra_plugins))
            self._run(name, s, s.placement, args.engine, args.defaults, jars,
                      args.expected_classes, args.connector_files)
        # The machine running Pulumi is in no Docker engine of the stack.
        ours = self.endpoints_for(None)
        self.bootstrap_servers = pulumi.Output.from_input(list(ours.bootstrap_servers))
        self.schema_registry_url = pulumi.Output.from_input(ours.schema_registry_url)
        self.connect_url = pulumi.Output.from_input(ours.connect_url)
        self.provider = self._kafka_provider(name, s)
        self.register_outputs(
            {
                "bootstrapServers": self.bootstrap_servers,
                "schemaRegistryUrl": self.schema_registry_url,
                "connectUrl": self.connect_url,
            }
        )

    def _kafka_provider(self, name: str, s: KafkaSettings) -> pulumi_kafka.Provider:
        sasl = s.security_protocol.startswith("SASL_")
        return pulumi_kafka.Provider(
            f"{name}-provider",
            bootstrap_servers=self.bootstrap_servers,
            # Explicit: the provider's own default is TLS on, which a local broker lacks.
            tls_enabled=s.security_protocol in ("SSL", "SASL_SSL"),
            sasl_mechanism=s.sasl_mechanism if sasl else None,
            sasl_username=s.sasl_username if sasl else None,
            sasl_password=pulumi.Output.secret(s.sasl_password)
            if sasl and s.sasl_password is not None
            else None,
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=[self._container] if self._container else [],
                # The kafka SDK does not mark it itself (the postgresql and snowflake SDKs do).
                additional_secret_outputs=["saslPassword"] if sasl else None,
            ),
        )

    def stack_outputs(self) -> dict[str, pulumi.Output]:
        return {"kafkaBootstrapServers": self.bootstrap_servers,
                "schemaRegistryUrl": self.schema_registry_url, "connectUrl": self.connect_url}

    def endpoints_for(self, consumer: DockerHost | None) -> KafkaEndpoints:
        """Broker, Schema Registry and Connect as a container on `consumer` reaches them."""
        s = self._settings
        if s.placement is None:
            return KafkaEndpoints(
                s.bootstrap_servers, s.security_protocol, s.schema_registry_url, s.connect_url
            )
        broker, registry, connect = (
            s.placement.reached_from(consumer, internal, published)
            for internal, published in ((s.INTERNAL_LISTENER_PORT, s.broker_port),
                                        (SCHEMA_REGISTRY_PORT, s.schema_registry_port),
                                        (CONNECT_PORT, s.connect_port)))
        # A consumer elsewhere uses the published broker port, whose listener advertises the
        # engine's address; one on the same engine the internal listener.
        return KafkaEndpoints((str(broker),), "PLAINTEXT", f"http://{registry}",
                              f"http://{connect}")

    def _run(
        self,
        name: str,
        s: KafkaSettings,
        placement: ContainerPlacement,
        engine: DockerEngine,
        defaults: ContainerDefaults,
        jars: tuple[tuple[ConnectorJar, str], ...],
        expected_classes: tuple[str, ...],
        connector_files: tuple[docker.ContainerUploadArgs, ...],
    ) -> None:
        alias = placement.alias
        # Two listeners, advertised as endpoints_for reaches them: PLAINTEXT at the engine's
        # address and published port for clients elsewhere; DOCKERCOMPOSE at the alias for
        # containers on the same engine.
        broker = (s.INTERNAL_LISTENER_PORT, s.broker_port)
        elsewhere = placement.reached_from(None, *broker)
        same_engine = placement.reached_from(placement.docker_host, *broker)
        envs = [
            f"ADV_HOST={alias}",
            f"SAMPLEDATA={_flag(s.running_sample_data)}",
            f"RUNNING_SAMPLEDATA={_flag(s.running_sample_data)}",
            f"RUNTESTS={_flag(s.run_tests)}",
            "FORWARDLOGS=0",
            "WEB_PORT=0",
            "CONNECTORS=mqtt",
            f"KAFKA_LISTENERS=PLAINTEXT://:{BROKER_PORT},"
            f"DOCKERCOMPOSE://:{s.INTERNAL_LISTENER_PORT},CONTROLLER://:{CONTROLLER_PORT}",
            f"KAFKA_ADVERTISED_LISTENERS=PLAINTEXT://{elsewhere},DOCKERCOMPOSE://{same_engine}",
            "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP=DOCKERCOMPOSE:PLAINTEXT,CONTROLLER:PLAINTEXT,"
            "PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL",
        ]
        # Healthy means every connector class the stack uses is loaded.
        plugins = f"curl -fsS http://127.0.0.1:{CONNECT_PORT}/connector-plugins"
        probe = " && ".join([
            f"curl -fsS -o /dev/null http://127.0.0.1:{SCHEMA_REGISTRY_PORT}/subjects",
            *(f"{plugins} | grep -q {cls}" for cls in (SNOWFLAKE_SINK_CLASS, *expected_classes)),
        ])
        self._container = run_container(
            self,
            name,
            engine,
            defaults,
            ContainerSpec(
                role="kafka",
                image=s.image,
                alias=alias,
                ports=[
                    Port(BROKER_PORT, s.broker_port),
                    Port(SCHEMA_REGISTRY_PORT, s.schema_registry_port),
                    Port(CONNECT_PORT, s.connect_port),
                ],
                envs=envs,
                volumes={"kafka-data": "/data"},
                uploads=[
                    docker.ContainerUploadArgs(
                        file=target,
                        source=jar.source,
                        source_hash=jar.sha256,
                        permissions="0644",
                    )
                    for jar, target in jars
                ] + list(connector_files),
                healthcheck=Healthcheck(
                    command=["CMD-SHELL", probe],
                    interval="10s",
                    retries=30,
                    start_period="60s",
                ),
            ),
        ).container
