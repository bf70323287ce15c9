"""The settings model: frozen dataclasses the components take, one per service, and the
enums they use."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

import pulumi

PROJECT_ROOT = Path(__file__).resolve().parent.parent.parent
"""The project folder: relative paths in settings are relative to it."""


class MqttSource(StrEnum):
    """Which Kafka Connect MQTT source connector moves messages into device_data."""

    STREAM_REACTOR = "stream-reactor"
    """Lenses Stream Reactor (fast-data-dev ships it): JSON to Avro-ready structs, keyed by
    deviceId."""
    CAMEL = "camel"
    """Apache Camel's MQTT 5 source (Apache-licensed): the JSON text as the value, no key;
    for a Connect cluster that has it installed."""
    HEALTH_PIPELINE = "health-pipeline"
    """This project's own source (connectors/mqtt-source, built with Maven): the JSON text as
    the value keyed by deviceId, acknowledged to the broker only once Kafka has it."""


class Mode(StrEnum):
    """How a service is provided: run by us as a container, reached at an existing endpoint,
    or not part of this stack at all."""

    CONTAINER = "container"
    EXTERNAL = "external"
    DISABLED = "disabled"


class SettingsError(ValueError):
    """All problems found in the stack settings, reported together so one run shows them all."""

    def __init__(self, stack: str, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(
            f"stack '{stack}' has {len(self.problems)} invalid setting(s):\n{lines}\n"
            "Every key is documented in Pulumi.yaml and in docs/settings.md."
        )


class ConfigSource(Protocol):
    """The subset of `pulumi.Config` the loader uses (so tests can feed a real Config)."""

    name: str

    def get(self, key: str) -> str | None: ...
    def get_secret(self, key: str) -> pulumi.Output[str] | None: ...


@dataclass(frozen=True)
class Endpoint:
    """A host and port as seen by one particular client."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class DockerHost:
    """A Docker engine the stack deploys containers to (`unix://`, `tcp://` or `ssh://`)."""

    url: str

    @property
    def address(self) -> str:
        """Where ports published on this engine are reached from the machine running Pulumi
        and from other engines: the engine's own host name, or localhost for a local socket."""
        parts = urlsplit(self.url)
        if parts.scheme in ("unix", "npipe"):
            return "localhost"
        return parts.hostname or "localhost"

    @property
    def slug(self) -> str:
        """A short, stable token for resource names that tells engines apart."""
        if self.address == "localhost":
            return "local"
        return re.sub(r"[^a-z0-9]+", "-", self.address.lower()).strip("-")


@dataclass(frozen=True)
class ContainerPlacement:
    """Where a containerised service runs and how it is reached."""

    docker_host: DockerHost
    alias: str
    """Stable host name of the container on the stack's Docker network."""

    def reached_from(self, consumer: DockerHost | None, internal_port: int,
                     published_port: int) -> Endpoint:
        """Where a container on `consumer` (None: not in Docker on this stack) reaches the
        service: by its alias and container port on the same engine, else at its engine's
        address and the published port. Every service uses this one rule."""
        if self.docker_host == consumer:
            return Endpoint(self.alias, internal_port)
        return Endpoint(self.docker_host.address, published_port)


@dataclass(frozen=True)
class BroughtTls:
    """A server certificate a user brings, instead of the one the program generates."""

    certificate_pem: str
    """The server certificate, followed by any intermediates."""
    private_key: pulumi.Output[str]
    """Secret PEM."""
    ca_pem: str
    """What clients trust: the CA bundle that issued the certificate."""

    def as_outputs(self) -> tuple[pulumi.Output[str], pulumi.Output[str], pulumi.Output[str]]:
        """(certificate, secret key, CA), as the generated ones come."""
        return (pulumi.Output.from_input(self.certificate_pem),
                pulumi.Output.secret(self.private_key), pulumi.Output.from_input(self.ca_pem))


@dataclass(frozen=True)
class MosquittoTuning:
    """How much Mosquitto holds for a subscriber and how often it writes what it holds to
    disk (mosquitto.conf(5)); the trade-offs and the measurements behind the defaults are in
    the Pulumi.yaml descriptions of mqttMaxInflightMessages, mqttMaxQueuedMessages,
    mqttAutosaveInterval and mqttAutosaveOnChanges."""

    max_inflight_messages: int
    """QoS 1/2 messages sent to one client and not yet acknowledged by it."""
    max_queued_messages: int
    """QoS 1/2 messages held per client beyond those in flight; more are dropped."""
    autosave_interval: int
    """Seconds between saves of the in-memory state, or, with autosave_on_changes, the
    number of changes (queued messages, subscriptions, retained messages) that triggers one."""
    autosave_on_changes: bool


@dataclass(frozen=True)
class MqttSettings:
    mode: Mode
    placement: ContainerPlacement | None
    image: str
    port: int
    websocket_port: int
    tls_port: int
    secure_websocket_port: int
    plaintext: bool
    """Container mode: the plain listeners exist (published on 127.0.0.1 only)."""
    tls_server_names: tuple[str, ...]
    """DNS names and IP addresses of the broker, beside its alias and localhost, for the
    generated certificate."""
    brought_tls: BroughtTls | None
    endpoint: str
    """External mode: the broker URL (one of MQTT_SCHEMES)."""
    device_username: str
    connector_username: str
    monitor_username: str
    """Container mode: the read-only user for watching the flow (mosquitto_sub on health/#)."""
    device_password: pulumi.Output[str] | None
    """External mode only; in container mode passwords are generated."""
    connector_password: pulumi.Output[str] | None
    tuning: MosquittoTuning
    """Container mode: queueing and persistence of the broker the program runs."""


@dataclass(frozen=True)
class KafkaSettings:
    mode: Mode
    placement: ContainerPlacement | None
    image: str
    broker_port: int
    schema_registry_port: int
    connect_port: int
    running_sample_data: bool
    run_tests: bool
    mqtt_source: MqttSource
    mqtt_source_tasks: int
    """The MQTT source's tasks.max (mqttSourceTasks): above 1, its tasks share the MQTT
    subscriptions ($share/<group>/<topic>); always 1 with camel."""
    connect_mqtt_tls_dir: str
    """External Connect with Stream Reactor: where its workers hold the MQTT TLS files."""
    snowflake_jar: ConnectorJar | None
    """Container mode: the Snowflake sink's jar (kafkaConnectSnowflakeJar)."""
    mqtt_source_jars: tuple[ConnectorJar, ...]
    """Container mode with this project's MQTT source: its plugin's jars
    (kafkaConnectMqttSourcePlugin)."""
    broker_count: int
    bootstrap_servers: tuple[str, ...]
    """External mode: the cluster's bootstrap servers (`host:port`)."""
    security_protocol: str
    sasl_mechanism: str
    sasl_username: str
    sasl_password: pulumi.Output[str] | None
    schema_registry_url: str
    connect_url: str

    INTERNAL_LISTENER_PORT = 19092
    """Listener that containers on the stack network use (`kafka:19092`)."""


@dataclass(frozen=True)
class ConnectorJar:
    """A jar for Connect's plugin path, found where a setting says, with its hash (a new jar
    replaces the container that loads it)."""

    path: Path
    sha256: str

    @property
    def source(self) -> str:
        """The path as state records it: relative to the project when inside it, so state
        holds no machine's absolute paths."""
        try:
            return self.path.relative_to(PROJECT_ROOT).as_posix()
        except ValueError:
            return self.path.as_posix()


@dataclass(frozen=True)
class TopicSettings:
    partitions: int
    replication_factor: int
    retention_ms: int
    """retention.ms of device_data and the derived topics; -1 (`infinite`): never deleted by
    age."""
    min_insync_replicas: int
    compression: str
    dead_letter_retention_ms: int
    """retention.ms of the dead-letter topics: how long a record no connector could handle
    waits to be looked at and replayed."""


@dataclass(frozen=True)
class CaFile:
    """A CA bundle a user brings."""

    path: Path
    """Absolute, on the machine running Pulumi (the postgresql provider reads it there)."""
    pem: str
    """Its certificates, uploaded into the containers that connect."""


@dataclass(frozen=True)
class PostgresSettings:
    mode: Mode
    placement: ContainerPlacement | None
    image: str
    port: int
    endpoint: Endpoint | None
    """External mode: the managed server's host and port."""
    admin_username: str
    admin_password: pulumi.Output[str] | None
    """External mode only; in container mode the superuser password is generated."""
    sslmode: str
    ca: CaFile | None
    """verify-ca and verify-full: what every client verifies the server against."""
    superuser: bool

    @property
    def verifies_server(self) -> bool:
        return self.sslmode in ("verify-ca", "verify-full")


@dataclass(frozen=True)
class LensesSettings:
    mode: Mode
    """container: HQ and agent as containers; external: an agent joins an existing HQ."""
    placement: ContainerPlacement | None
    """Where HQ (container mode) and the agent run; both share one Docker engine."""
    hq_image: str
    agent_image: str
    hq_port: int
    hq_url: str
    hq_agents_endpoint: Endpoint | None
    agent_key: pulumi.Output[str] | None
    license_key: pulumi.Output[str] | None
    accept_eula: bool
    agent_heap_opts: str
    admin_username: str
    admin_password: pulumi.Output[str] | None
    """External mode: the HQ user the SQL processors are managed as. Generated otherwise."""
    environment: str
    """This stack's environment in HQ (also its Connect cluster's name in provisioning)."""
    environment_tier: str
    """Container mode: the tier the program creates the environment with."""
    hq_agents_tls: bool
    """External mode: the agent reaches HQ's agent listener over TLS."""
    hq_agents_truststore: bytes | None
    """A JKS/PKCS#12 truststore for that TLS; None trusts the agent JVM's default CAs."""
    hq_agents_truststore_password: pulumi.Output[str] | None
    https: HttpsFront | None
    """Container mode: HQ's web UI and API behind a TLS proxy."""

    HQ_HTTP_PORT = 9991
    HQ_AGENTS_PORT = 10000
    AGENT_ALIAS = "lenses-agent"


@dataclass(frozen=True)
class HttpsFront:
    """Container mode: an nginx proxy terminates TLS in front of a web service on its Docker
    engine and publishes the service's port; the service itself publishes nothing."""

    image: str
    server_names: tuple[str, ...]
    """Names and addresses for the generated certificate, beside the Docker host's."""
    brought: BroughtTls | None = None
    """A certificate the user brings instead."""


@dataclass(frozen=True)
class MetabaseSettings:
    mode: Mode
    placement: ContainerPlacement | None
    image: str
    port: int
    url: str
    https: HttpsFront | None
    admin_email: str
    """The admin the program sets Metabase up with and manages it as."""
    admin_password: pulumi.Output[str] | None
    """metabaseAdminPassword: for a Metabase set up before; None: generated."""
    site_name: str
    """Written by the first-run setup."""
    dashboard: bool
    """Declare the starter dashboard "Patient vitals"."""


@dataclass(frozen=True)
class SnowflakeKeySlot:
    """One of the service user's two public-key slots (RSA_PUBLIC_KEY, RSA_PUBLIC_KEY_2)."""

    slot: int
    source: str
    """`generated` (pulumi-tls, 4096-bit RSA), `none`, or the path of a PKCS#8 file."""
    public_key_body: str | None
    """From the file, for a brought key; None otherwise."""
    private_key_body: pulumi.Output[str] | None
    """Secret; from the file, for a brought key; None otherwise."""

    @property
    def filled(self) -> bool:
        return self.source != "none"

    @property
    def generated(self) -> bool:
        return self.source == "generated"


@dataclass(frozen=True)
class SnowflakeSettings:
    enabled: bool
    organization_name: str
    account_name: str
    admin_user: str
    admin_role: str
    admin_private_key: pulumi.Output[str] | None
    admin_private_key_passphrase: pulumi.Output[str] | None
    warehouse_size: str
    warehouse_auto_suspend: int
    warehouse_auto_resume: bool
    key_slots: tuple[SnowflakeKeySlot, SnowflakeKeySlot]
    active_key: int
    """Slot whose private key the connector uses."""
    reporting: bool
    """Declare the read-only REPORTING role and its service user (snowflakeReporting)."""
    reporting_key_slots: tuple[SnowflakeKeySlot, SnowflakeKeySlot]
    """The REPORTING user's key slots (snowflakeReportingKey1/2), rotated like the
    connector's."""
    reporting_active_key: int
    """Slot whose private key the dashboards use (snowflakeReportingActiveKey)."""
    buffer_count_records: int
    buffer_flush_time_seconds: int
    buffer_size_bytes: int
    errors_tolerance: str
    """Kafka Connect's errors.tolerance for the sink: `all` (skip to the dead-letter topic) or
    `none` (stop the task)."""
    dead_letter_queue: bool
    """Records the sink cannot convert go to the dead-letter topic."""
    dead_letter_context_headers: bool
    errors_log: bool
    errors_log_include_messages: bool

    @property
    def url(self) -> str:
        """Account URL in the form the Kafka connector's snowflake.url.name takes."""
        return f"{self.organization_name}-{self.account_name}.snowflakecomputing.com:443".lower()


@dataclass(frozen=True)
class Settings:
    project: str
    stack: str
    protect: bool
    publish_ip: str
    wait_timeout: int
    mqtt: MqttSettings
    kafka: KafkaSettings
    topics: TopicSettings
    postgres: PostgresSettings
    lenses: LensesSettings
    metabase: MetabaseSettings
    snowflake: SnowflakeSettings

    @property
    def name_prefix(self) -> str:
        """Prefix of every Docker object name, so stacks can share one engine."""
        return f"{self.project}-{self.stack}"

    def docker_hosts(self) -> list[DockerHost]:
        """Distinct engines that run at least one container, in a stable order."""
        hosts: list[DockerHost] = []
        for service in (self.mqtt, self.kafka, self.postgres, self.lenses, self.metabase):
            if service.placement and service.placement.docker_host not in hosts:
                hosts.append(service.placement.docker_host)
        return hosts


