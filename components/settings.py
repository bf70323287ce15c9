"""Typed stack settings: read once from the stack config into frozen dataclasses and validated
before any resource is registered, so a bad value costs nothing but one clear message."""

from __future__ import annotations

import hashlib
import ipaddress
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Protocol, TypeVar
from urllib.parse import urlsplit

import pulumi

from components.config_keys import configured_keys, declared_keys, undeclared_problems
from components.mqtt_urls import MQTT_SCHEMES
from components.render.keys import (
    KeyFileError,
    load_ca_bundle,
    load_private_key,
    load_truststore,
)

__all__ = [
    "ConnectorJar",
    "DockerHost",
    "Endpoint",
    "KafkaSettings",
    "LensesSettings",
    "MetabaseSettings",
    "Mode",
    "MqttSettings",
    "MqttSource",
    "PostgresSettings",
    "Settings",
    "SettingsError",
    "SnowflakeKeySlot",
    "SnowflakeSettings",
    "TopicSettings",
    "load_settings",
    "locate_mqtt_source_plugin",
    "locate_snowflake_jar",
    "parse_duration_ms",
]


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
    device_password: pulumi.Output[str] | None
    """External mode only; in container mode passwords are generated."""
    connector_password: pulumi.Output[str] | None


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
    min_insync_replicas: int
    compression: str


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
    buffer_count_records: int
    buffer_flush_time_seconds: int
    buffer_size_bytes: int

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


# --- value parsers ---------------------------------------------------------------------------

_DURATION = re.compile(r"^(\d+)(ms|s|m|h|d)$")
_DURATION_MS = {"ms": 1, "s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
_IMAGE = re.compile(
    r"^(?P<repo>[a-z0-9]+(?:[._/-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*)"
    r"(?::(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?(?:@(?P<digest>sha256:[a-f0-9]{64}))?$"
)
_REGISTRY_PREFIX = re.compile(
    # A registry is a first path part with a dot or a port, or localhost.
    r"^(?:localhost|[a-z0-9-]+(?:\.[a-z0-9-]+)+)(?::\d+)?/|^[a-z0-9-]+:\d+/"
)
_HEAP_FLAG = re.compile(r"^-(Xm[sx]\d+[kKmMgG]?|Xss\d+[kKmMgG]?|XX:[+-]?[A-Za-z0-9]+(=\S+)?)$")
_HOST = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$")


def parse_duration_ms(text: str) -> int:
    """`90s`, `1m`, `12h`, `7d` or `60000ms` to milliseconds; ValueError on anything else."""
    match = _DURATION.match(text.strip())
    if not match or int(match.group(1)) <= 0:
        raise ValueError(text)
    return int(match.group(1)) * _DURATION_MS[match.group(2)]


def _image_problem(ref: str) -> str | None:
    rest = _REGISTRY_PREFIX.sub("", ref, count=1)
    match = _IMAGE.match(rest)
    if not match:
        return "must be an image reference such as 'postgres:16.4'"
    if not match.group("tag") and not match.group("digest"):
        return "needs an explicit tag (e.g. 'postgres:16.4'); untagged images drift"
    if match.group("tag") == "latest":
        return "must not use the 'latest' tag; pin a version"
    return None


def _host_port(text: str) -> Endpoint | None:
    host, sep, port = text.rpartition(":")
    if not sep or not _HOST.match(host) or not port.isdigit() or not 0 < int(port) < 65536:
        return None
    return Endpoint(host, int(port))


def _docker_host_problem(url: str) -> str | None:
    parts = urlsplit(url)
    if parts.scheme in ("unix", "npipe") and parts.path:
        return None
    if parts.scheme in ("tcp", "ssh") and _url_problem(url, ("tcp", "ssh")) is None:
        return None
    return "must be a Docker host URL: unix:///path/to/docker.sock, tcp://host:port or ssh://user@host"


def _ipv4_problem(text: str) -> str | None:
    try:
        ipaddress.IPv4Address(text)
    except ValueError:
        return "must be an IPv4 address such as 127.0.0.1 or 0.0.0.0"
    return None


def _show(value: object) -> str:
    """A value as the stack config holds it: true/false, numbers and lists as text."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return json.dumps(list(value))
    return str(value)


SECRET_KEYS = (
    "mqttDevicePassword",
    "mqttConnectorPassword",
    "kafkaSaslPassword",
    "postgresAdminPassword",
    "lensesAgentKey",
    "lensesLicenseKey",
    "lensesAdminPassword",
    "lensesHqAgentsTruststorePassword",
    "mqttTlsPrivateKey",
    "lensesTlsPrivateKey",
    "metabaseTlsPrivateKey",
    "snowflakeAdminPrivateKey",
    "snowflakeAdminPrivateKeyPassphrase",
    "snowflakeKey1Passphrase",
    "snowflakeKey2Passphrase",
)
"""Keys a user sets with `pulumi config set --secret`; never in plain text."""


def _url_problem(url: str, schemes: Sequence[str]) -> str | None:
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = -1
    if parts.scheme not in schemes or not parts.hostname or not _HOST.match(parts.hostname):
        return f"must be a URL like '{schemes[0]}://host:port' (schemes: {', '.join(schemes)})"
    if port == -1:
        return "has an invalid port"
    return None


# --- the reader -----------------------------------------------------------------------------


_Choice = TypeVar("_Choice", bound=StrEnum)


class _Reader:
    """Reads typed values and records every problem instead of stopping at the first."""

    def __init__(self, config: ConfigSource, stack: str) -> None:
        self.config = config
        self.stack = stack
        self.problems: list[str] = []
        self.failed: set[str] = set()

    def key(self, key: str) -> str:
        return f"{self.config.name}:{key}"

    def fail(self, key: str, value: object, allowed: str) -> None:
        shown = "[secret]" if pulumi.runtime.is_config_secret(self.key(key)) else _show(value)
        self.problems.append(f"{self.key(key)} = {shown!r}: {allowed}")
        self.failed.add(key)

    def raw(self, key: str) -> str:
        value = self.config.get(key)
        if value is None:
            # Pulumi.yaml declares a default for every optional key, so only a CLI older than
            # 3.44 (which ignores those defaults) or a hand-made config gets here.
            self.problems.append(
                f"{self.key(key)} is not set; Pulumi.yaml declares its default, which needs "
                "Pulumi CLI >= 3.44"
            )
            return ""
        return value

    def text(self, key: str, check: Callable[[str], str | None] | None = None) -> str:
        value = self.raw(key)
        if check and value:
            problem = check(value)
            if problem:
                self.fail(key, value, problem)
        return value

    def integer(self, key: str, low: int, high: int) -> int:
        value = self.raw(key)
        try:
            number = int(value)
        except ValueError:
            self.fail(key, value, f"must be a whole number from {low} to {high}")
            return low
        if not low <= number <= high:
            self.fail(key, value, f"must be a whole number from {low} to {high}")
        return number

    def port(self, key: str) -> int:
        return self.integer(key, 1, 65535)

    def boolean(self, key: str) -> bool:
        value = self.raw(key)
        if value.lower() not in ("true", "false"):
            self.fail(key, value, "must be true or false")
        return value.lower() == "true"

    def choice(self, key: str, allowed: Sequence[str]) -> str:
        value = self.raw(key)
        if value not in allowed:
            self.fail(key, value, f"must be one of: {', '.join(allowed)}")
        return value

    def member(self, key: str, allowed: Sequence[_Choice]) -> _Choice:
        """One of `allowed` (string enum members); the first after a reported problem."""
        value = self.choice(key, [m.value for m in allowed])
        return next((m for m in allowed if m.value == value), allowed[0])

    def mode(self, key: str, allowed: Sequence[Mode]) -> Mode:
        return self.member(key, allowed)

    def image(self, key: str) -> str:
        return self.text(key, _image_problem)

    def strings(self, key: str) -> tuple[str, ...]:
        value = self.raw(key) or "[]"
        try:
            items = json.loads(value)
        except json.JSONDecodeError:
            items = None
        if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
            self.fail(key, value, "must be a list of strings")
            return ()
        return tuple(items)

    def secret(
        self, key: str, needed_because: str | None, how: str = ""
    ) -> pulumi.Output[str] | None:
        """A secret the user sets (plain-text ones are refused by `plaintext_secrets`); a
        missing one is an error only when `needed_because` says why it is needed."""
        full = self.key(key)
        if not self.config.get(key):
            if needed_because:
                self.problems.append(
                    f"{full} is not set; it is required because {needed_because}. Set it with: "
                    f"pulumi config set --secret --stack {self.stack} {key}{how}"
                )
            return None
        return self.config.get_secret(key)

    def plaintext_secrets(self) -> None:
        """Refuse every secret key stored in plain text, whether this stack reads it or not."""
        for key in SECRET_KEYS:
            if self.config.get(key) and not pulumi.runtime.is_config_secret(self.key(key)):
                self.problems.append(
                    f"{self.key(key)} is stored in plain text; encrypt it with: "
                    f"pulumi config set --secret --stack {self.stack} {key}"
                )

    def placement(
        self, mode: Mode, host_key: str, default_host: str, alias: str
    ) -> ContainerPlacement | None:
        """The engine a container runs on: `host_key` if set, else the stack's dockerHost
        (which load_settings has validated already)."""
        own = self.text(host_key, _docker_host_problem)
        if mode is not Mode.CONTAINER:
            return None
        # A bad own URL is reported already; fall back so it causes no second problem.
        url = own if own and host_key not in self.failed else default_host
        if urlsplit(url).scheme in ("tcp", "ssh"):
            url = url.rstrip("/")
        return ContainerPlacement(DockerHost(url), alias)


# --- loading --------------------------------------------------------------------------------


def load_settings(config: ConfigSource, stack: str) -> Settings:
    """Read and validate every setting; raise SettingsError listing all problems."""
    r = _Reader(config, stack)
    r.problems += undeclared_problems(config.name, configured_keys(config.name), declared_keys())
    r.plaintext_secrets()
    docker_host = r.text("dockerHost", _docker_host_problem)

    mqtt = _load_mqtt(r, docker_host)
    kafka = _load_kafka(r, docker_host)
    topics = _load_topics(r, kafka)
    postgres = _load_postgres(r, docker_host)
    lenses = _load_lenses(r, docker_host)
    metabase = _load_metabase(r, docker_host)
    settings = Settings(
        project=config.name,
        stack=stack,
        protect=r.boolean("protectStatefulResources"),
        publish_ip=r.text("publishIp", _ipv4_problem),
        wait_timeout=r.integer("containerWaitTimeout", 10, 3600),
        mqtt=mqtt,
        kafka=kafka,
        topics=topics,
        postgres=postgres,
        lenses=lenses,
        metabase=metabase,
        snowflake=_load_snowflake(r),
    )
    _check_cross_service(r, settings)
    if r.problems:
        raise SettingsError(stack, r.problems)
    return settings


def _load_mqtt(r: _Reader, docker_host: str) -> MqttSettings:
    mode = r.mode("mqttMode", [Mode.CONTAINER, Mode.EXTERNAL])
    external = mode is Mode.EXTERNAL
    endpoint = r.text("mqttEndpoint", lambda v: _url_problem(v, MQTT_SCHEMES))
    if external and not endpoint:
        r.fail("mqttEndpoint", endpoint, "must be set when mqttMode is external")
    users = {}
    for key in ("mqttDeviceUsername", "mqttConnectorUsername"):
        users[key] = r.text(
            key,
            lambda v: None
            if re.match(r"^[A-Za-z0-9_.-]{1,64}$", v)
            else "must be 1-64 letters, digits, '.', '_' or '-'",
        )
    if users["mqttDeviceUsername"] == users["mqttConnectorUsername"]:
        r.fail("mqttConnectorUsername", users["mqttConnectorUsername"],
               "must differ from mqttDeviceUsername (their ACLs differ)")
    why = "mqttMode is external" if external else None
    names = r.strings("mqttTlsServerNames")
    for name in names:
        if not _SERVER_NAME.match(name) and _ip_problem(name):
            r.fail("mqttTlsServerNames", name, "each entry must be a DNS name or an IP address")
    return MqttSettings(
        mode=mode,
        placement=r.placement(mode, "mqttDockerHost", docker_host, "mosquitto"),
        image=r.image("mqttImage"),
        port=r.port("mqttPort"),
        websocket_port=r.port("mqttWebsocketPort"),
        tls_port=r.port("mqttTlsPort"),
        secure_websocket_port=r.port("mqttSecureWebsocketPort"),
        plaintext=r.boolean("mqttPlaintext"),
        tls_server_names=names,
        brought_tls=_load_brought_tls(r, "mqtt"),
        endpoint=endpoint,
        device_username=users["mqttDeviceUsername"],
        connector_username=users["mqttConnectorUsername"],
        device_password=r.secret("mqttDevicePassword", why) if external else None,
        connector_password=r.secret("mqttConnectorPassword", why) if external else None,
    )


_SERVER_NAME = re.compile(r"^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)"
                          r"(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$")


def _ip_problem(text: str) -> str | None:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return "not an IP address"
    return None


def _load_brought_tls(r: _Reader, service: str) -> BroughtTls | None:
    """`<service>TlsCertificateFile`, `<service>TlsCaFile` and the secret
    `<service>TlsPrivateKey`, all or none."""
    cert_key, ca_key, private_key = (f"{service}TlsCertificateFile", f"{service}TlsCaFile",
                                     f"{service}TlsPrivateKey")
    cert_text, ca_text = r.raw(cert_key), r.raw(ca_key)
    if not cert_text:
        if ca_text:
            r.fail(ca_key, ca_text, f"is only used with {cert_key} (a certificate you bring); "
                   "without one the program generates a CA")
        return None
    key = r.secret(private_key, f"{cert_key} is set (its private key)", how=" < server.key")
    if not ca_text:
        r.fail(cert_key, cert_text, f"needs {ca_key}: the CA bundle its clients trust")
    pems: dict[str, str] = {}
    for name, text in ((cert_key, cert_text), (ca_key, ca_text)):
        if not text:
            continue
        try:
            pems[name] = load_ca_bundle(_project_path(text))
        except KeyFileError as error:
            r.fail(name, text, f"{error} (a path, relative to the project or absolute)")
    if len(pems) < 2 or key is None:
        return None
    return BroughtTls(pems[cert_key], key, pems[ca_key])


def _load_kafka(r: _Reader, docker_host: str) -> KafkaSettings:
    mode = r.mode("kafkaMode", [Mode.CONTAINER, Mode.EXTERNAL])
    external = mode is Mode.EXTERNAL
    servers = r.strings("kafkaBootstrapServers")
    for server in servers:
        if _host_port(server) is None:
            r.fail("kafkaBootstrapServers", server, "each entry must be host:port")
    if external and not servers:
        r.fail("kafkaBootstrapServers", list(servers), "must list host:port entries when "
               "kafkaMode is external")
    protocol = r.choice("kafkaSecurityProtocol", ["PLAINTEXT", "SSL", "SASL_PLAINTEXT",
                                                  "SASL_SSL"])
    mechanism = r.choice("kafkaSaslMechanism", ["plain", "scram-sha256", "scram-sha512"])
    sasl = external and protocol.startswith("SASL_")
    username = r.raw("kafkaSaslUsername")
    if sasl and not username:
        r.fail("kafkaSaslUsername", username, f"must be set when kafkaSecurityProtocol is "
               f"{protocol}")
    urls = {}
    for key in ("kafkaSchemaRegistryUrl", "kafkaConnectUrl"):
        urls[key] = r.text(key, lambda v: _url_problem(v, ("http", "https")))
        if external and not urls[key]:
            r.fail(key, urls[key], "must be set when kafkaMode is external")
    mqtt_source = r.member("kafkaMqttSource", list(MqttSource))
    if mode is Mode.CONTAINER and mqtt_source is MqttSource.CAMEL:
        r.fail("kafkaMqttSource", mqtt_source.value,
               "camel needs a Connect cluster with Camel's MQTT 5 source installed "
               "(kafkaMode external); fast-data-dev runs stream-reactor or health-pipeline")
    snowflake_jar, mqtt_source_jars = _load_plugin_jars(r, mode, mqtt_source)
    broker_count = r.integer("kafkaBrokerCount", 1, 1000)
    if mode is Mode.CONTAINER and "kafkaMode" not in r.failed and broker_count != 1:
        r.fail("kafkaBrokerCount", broker_count,
               "must be 1 when kafkaMode is container (fast-data-dev runs one broker)")
    return KafkaSettings(
        mode=mode,
        placement=r.placement(mode, "kafkaDockerHost", docker_host, "kafka"),
        image=r.image("kafkaImage"),
        broker_port=r.port("kafkaBrokerPort"),
        schema_registry_port=r.port("kafkaSchemaRegistryPort"),
        connect_port=r.port("kafkaConnectPort"),
        running_sample_data=r.boolean("kafkaRunningSampleData"),
        run_tests=r.boolean("kafkaRunTests"),
        mqtt_source=mqtt_source,
        connect_mqtt_tls_dir=r.text(
            "kafkaConnectMqttTlsDir",
            lambda v: None if v.startswith("/") else "must be an absolute path on the workers"),
        snowflake_jar=snowflake_jar,
        mqtt_source_jars=mqtt_source_jars,
        broker_count=broker_count,
        bootstrap_servers=servers,
        security_protocol=protocol if external else "PLAINTEXT",
        sasl_mechanism=mechanism,
        sasl_username=username,
        sasl_password=r.secret(
            "kafkaSaslPassword",
            f"kafkaMode is external with kafkaSecurityProtocol {protocol}" if sasl else None,
        ),
        schema_registry_url=urls["kafkaSchemaRegistryUrl"],
        connect_url=urls["kafkaConnectUrl"],
    )


def locate_snowflake_jar(path: Path) -> ConnectorJar:
    """The jar and its hash; a clear error if absent."""
    if not path.is_file():
        raise FileNotFoundError(
            f"Snowflake connector jar not found at {path}. Fetch it (the version is pinned in "
            "scripts/maven/pom.xml) with: scripts/fetch-connectors"
        )
    return ConnectorJar(path, _sha256(path))


def locate_mqtt_source_plugin(directory: Path) -> tuple[ConnectorJar, ...]:
    """The jars of this project's MQTT source plugin, each with its hash; a clear error if it
    has not been built."""
    jars = sorted(directory.glob("*.jar"))
    if not jars:
        raise FileNotFoundError(
            f"kafkaMqttSource is health-pipeline, but {directory} holds no jars. Build the "
            "connector (sources in connectors/mqtt-source) with: scripts/build-mqtt-source"
        )
    return tuple(ConnectorJar(jar, _sha256(jar)) for jar in jars)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as jar:
        for block in iter(lambda: jar.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _load_plugin_jars(r: _Reader, mode: Mode, mqtt_source: MqttSource,
                      ) -> tuple[ConnectorJar | None, tuple[ConnectorJar, ...]]:
    """Container mode: the jars fast-data-dev loads, read and hashed here (an external Connect
    cluster has its connectors installed by its operator)."""
    if mode is not Mode.CONTAINER:
        return None, ()
    snowflake, plugin = None, ()
    text = r.raw("kafkaConnectSnowflakeJar")
    try:
        snowflake = locate_snowflake_jar(_project_path(text))
    except FileNotFoundError as error:
        r.fail("kafkaConnectSnowflakeJar", text, f"{error} (a path, relative to the project "
               "or absolute)")
    if mqtt_source is MqttSource.HEALTH_PIPELINE:
        text = r.raw("kafkaConnectMqttSourcePlugin")
        try:
            plugin = locate_mqtt_source_plugin(_project_path(text))
        except FileNotFoundError as error:
            r.fail("kafkaConnectMqttSourcePlugin", text, f"{error} (a directory, relative to "
                   "the project or absolute)")
    return snowflake, plugin


def _load_topics(r: _Reader, kafka: KafkaSettings) -> TopicSettings:
    partitions = r.integer("topicPartitions", 1, 10_000)
    replication = r.integer("topicReplicationFactor", 1, 32)
    if replication > kafka.broker_count:
        r.fail("topicReplicationFactor", replication,
               f"must not exceed the broker count ({kafka.broker_count}, kafkaBrokerCount)")
    retention = r.raw("topicRetention")
    try:
        retention_ms = parse_duration_ms(retention)
    except ValueError:
        r.fail("topicRetention", retention,
               "must be a positive duration: a number followed by ms, s, m, h or d (e.g. 7d)")
        retention_ms = 0
    min_isr = r.integer("topicMinInsyncReplicas", 1, 32)
    if min_isr > replication:
        r.fail("topicMinInsyncReplicas", min_isr,
               f"must not exceed topicReplicationFactor ({replication})")
    return TopicSettings(
        partitions=partitions,
        replication_factor=replication,
        retention_ms=retention_ms,
        min_insync_replicas=min_isr,
        compression=r.choice("topicCompression",
                             ["producer", "uncompressed", "zstd", "lz4", "snappy", "gzip"]),
    )


def _load_postgres(r: _Reader, docker_host: str) -> PostgresSettings:
    mode = r.mode("postgresMode", [Mode.CONTAINER, Mode.EXTERNAL])
    external = mode is Mode.EXTERNAL
    endpoint_text = r.text("postgresEndpoint",
                           lambda v: _url_problem(v, ("postgresql", "postgres")))
    endpoint = None
    if endpoint_text and not _url_problem(endpoint_text, ("postgresql", "postgres")):
        parts = urlsplit(endpoint_text)
        endpoint = Endpoint(parts.hostname or "", parts.port or 5432)
    if external and not endpoint_text:
        r.fail("postgresEndpoint", endpoint_text, "must be set when postgresMode is external")
    sslmode = r.choice("postgresSslMode", ["disable", "require", "verify-ca", "verify-full"])
    if external and sslmode == "disable":
        r.fail("postgresSslMode", sslmode,
               "must not be disable for an external server: use require, verify-ca or "
               "verify-full")
    ca = _load_postgres_ca(r, sslmode)
    return PostgresSettings(
        mode=mode,
        placement=r.placement(mode, "postgresDockerHost", docker_host, "postgres"),
        image=r.image("postgresImage"),
        port=r.port("postgresPort"),
        endpoint=endpoint,
        admin_username=r.text("postgresAdminUsername"),
        admin_password=r.secret("postgresAdminPassword",
                                "postgresMode is external" if external else None)
        if external else None,
        sslmode=sslmode,
        ca=ca,
        superuser=r.boolean("postgresSuperuser"),
    )


def _project_path(text: str) -> Path:
    path = Path(text)
    return path if path.is_absolute() else PROJECT_ROOT / path


def _load_postgres_ca(r: _Reader, sslmode: str) -> CaFile | None:
    """The CA every Postgres client verifies the server with: needed by verify-ca and
    verify-full (a JDBC or libpq client in a container otherwise looks for
    ~/.postgresql/root.crt, which no image has), refused with the others (pgjdbc's require
    never verifies, so a CA there would promise what it does not do)."""
    text = r.raw("postgresCaFile")
    verifying = sslmode in ("verify-ca", "verify-full")
    if "postgresSslMode" in r.failed:
        return None
    if not text:
        if verifying:
            r.fail("postgresSslMode", sslmode,
                   "needs postgresCaFile: the PEM file of the CA that signed the server's "
                   "certificate (a managed service publishes its CA bundle), which the "
                   "postgresql provider, Lenses HQ, the agent and Metabase verify it with; "
                   f"set it with: pulumi config set --stack {r.stack} postgresCaFile "
                   "keys/postgres-ca.pem")
        return None
    if not verifying:
        r.fail("postgresCaFile", text,
               f"is only used with postgresSslMode verify-ca or verify-full (it is {sslmode}, "
               "where the JDBC clients do not verify the server); set postgresSslMode "
               "verify-full, or clear postgresCaFile")
        return None
    path = _project_path(text)
    try:
        return CaFile(path, load_ca_bundle(path))
    except KeyFileError as error:
        r.fail("postgresCaFile", text, f"{error} (a path, relative to the project or absolute)")
        return None


ENVIRONMENT_TIERS = ("development", "staging", "production")
"""The tiers HQ accepts for an environment (POST /api/v1/environments)."""
ENVIRONMENT_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
"""What HQ takes as an environment name (an hq-resource-name of at most 63 characters:
docs.lenses.io api-reference environments); it also meets provisioning's `connect[].name`
pattern ^[a-zA-Z0-9-]+$ (lensesio/json-schemas agent/provisioning.schema.json)."""


def environment_name_for(stack: str) -> str:
    """The HQ environment name derived from a stack name ("" when nothing usable is left):
    lowercased, every run of other characters one hyphen, no hyphen at either end."""
    name = re.sub(r"[^a-z0-9]+", "-", stack.lower()).strip("-")
    return name[:63].rstrip("-")


def _environment_problem(value: str) -> str | None:
    if ENVIRONMENT_NAME.match(value):
        return None
    return ("must be 1-63 lowercase letters, digits and hyphens, not starting or ending with "
            "a hyphen (HQ's rule for environment names)")


def _load_lenses(r: _Reader, docker_host: str) -> LensesSettings:
    mode = r.mode("lensesMode", [Mode.CONTAINER, Mode.EXTERNAL, Mode.DISABLED])
    external = mode is Mode.EXTERNAL
    hq_url = r.text("lensesHqUrl", lambda v: _url_problem(v, ("https", "http")))
    agents_text = r.raw("lensesHqAgentsAddress")
    agents = _host_port(agents_text) if agents_text else None
    if agents_text and agents is None:
        r.fail("lensesHqAgentsAddress", agents_text, "must be host:port of HQ's agent listener")
    if external:
        if not hq_url:
            r.fail("lensesHqUrl", hq_url, "must be set when lensesMode is external")
        if not agents_text:
            r.fail("lensesHqAgentsAddress", agents_text,
                   "must be set when lensesMode is external")
    heap = r.raw("lensesAgentHeapOpts")
    if not heap.split() or not all(_HEAP_FLAG.match(flag) for flag in heap.split()):
        r.fail("lensesAgentHeapOpts", heap,
               "must be JVM heap flags such as '-Xmx1536m -Xms512m' (-Xmx, -Xms, -Xss, -XX:)")
    accept = r.boolean("lensesAcceptEula")
    if mode is not Mode.DISABLED and "lensesMode" not in r.failed and not accept:
        r.fail("lensesAcceptEula", accept,
               "must be true to run Lenses (HQ and agent refuse to start otherwise); read "
               "https://lenses.io/legals/eula, then: "
               f"pulumi config set --stack {r.stack} lensesAcceptEula true "
               "(or set lensesMode to disabled)")
    environment = (r.text("lensesEnvironmentName", _environment_problem)
                   or environment_name_for(r.stack))
    if not environment:
        r.fail("lensesEnvironmentName", "",
               f"cannot be derived from the stack name {r.stack!r}; name it: pulumi config set "
               f"--stack {r.stack} lensesEnvironmentName <name>")
    # Placement is needed for the agent in both container and external mode.
    placement = r.placement(
        Mode.CONTAINER if mode is not Mode.DISABLED else Mode.DISABLED,
        "lensesDockerHost", docker_host, "lenses-hq",
    )
    return LensesSettings(
        mode=mode,
        placement=placement,
        hq_image=r.image("lensesHqImage"),
        agent_image=r.image("lensesAgentImage"),
        hq_port=r.port("lensesHqPort"),
        hq_url=hq_url,
        hq_agents_endpoint=agents,
        agent_key=r.secret("lensesAgentKey", "lensesMode is external" if external else None),
        license_key=r.secret(
            "lensesLicenseKey",
            "lensesMode is container: HQ's configuration requires license.key (HQ "
            "configuration reference 6.3). Lenses publishes a free community key for demos "
            "and testing on https://docs.lenses.io/latest/devx/6.0/deployment/installation/"
            "docker/hq; production needs your own" if mode is Mode.CONTAINER else None,
        ),
        accept_eula=accept,
        agent_heap_opts=heap,
        admin_username=r.text("lensesAdminUsername"),
        admin_password=r.secret(
            "lensesAdminPassword",
            "lensesMode is external (the SQL processors are managed as lensesAdminUsername)"
            if external
            else None,
        ),
        environment=environment,
        environment_tier=r.choice("lensesEnvironmentTier", ENVIRONMENT_TIERS),
        **_load_hq_agents_tls(r, mode),
        https=_load_https_front(r, "lenses", mode),
    )


def _load_hq_agents_tls(r: _Reader, mode: Mode) -> dict:
    """How the agent reaches HQ's agent listener. Container mode: over the Docker engine's
    own network, where that port is not published and HQ serves it without TLS. External mode:
    TLS as set, optionally against a truststore of the user's."""
    tls = r.boolean("lensesHqAgentsTls")
    truststore_text = r.raw("lensesHqAgentsTruststore")
    if mode is Mode.CONTAINER and tls:
        r.fail("lensesHqAgentsTls", tls,
               "applies to an external HQ (lensesMode external); in container mode the agent "
               "reaches HQ on the Docker engine's own network, where HQ's agent port is not "
               "published")
    truststore = None
    if truststore_text and not tls:
        r.fail("lensesHqAgentsTruststore", truststore_text,
               "is only used with lensesHqAgentsTls true")
    elif truststore_text:
        try:
            truststore = load_truststore(_project_path(truststore_text))
        except KeyFileError as error:
            r.fail("lensesHqAgentsTruststore", truststore_text, str(error))
    password = r.secret(
        "lensesHqAgentsTruststorePassword",
        "lensesHqAgentsTruststore is set (the truststore's password)"
        if truststore_text and tls else None,
    )
    return {"hq_agents_tls": tls, "hq_agents_truststore": truststore,
            "hq_agents_truststore_password": password if truststore else None}


def _load_metabase(r: _Reader, docker_host: str) -> MetabaseSettings:
    mode = r.mode("metabaseMode", [Mode.CONTAINER, Mode.EXTERNAL, Mode.DISABLED])
    url = r.text("metabaseUrl", lambda v: _url_problem(v, ("https", "http")))
    if mode is Mode.EXTERNAL and not url:
        r.fail("metabaseUrl", url, "must be set when metabaseMode is external")
    return MetabaseSettings(
        mode=mode,
        placement=r.placement(mode, "metabaseDockerHost", docker_host, "metabase"),
        image=r.image("metabaseImage"),
        port=r.port("metabasePort"),
        url=url,
        https=_load_https_front(r, "metabase", mode),
    )


def _load_https_front(r: _Reader, service: str, mode: Mode) -> HttpsFront | None:
    """`<service>Https` and `<service>TlsServerNames`; container mode only (an external
    service has its own front)."""
    on = r.boolean(f"{service}Https")
    names = r.strings(f"{service}TlsServerNames")
    for name in names:
        if not _SERVER_NAME.match(name) and _ip_problem(name):
            r.fail(f"{service}TlsServerNames", name,
                   "each entry must be a DNS name or an IP address")
    brought = _load_brought_tls(r, service)
    if not on or mode is not Mode.CONTAINER:
        if brought:
            r.fail(f"{service}TlsCertificateFile", r.raw(f"{service}TlsCertificateFile"),
                   f"is only used with {service}Https true (container mode)")
        return None
    return HttpsFront(r.image("httpsProxyImage"), names, brought)


PROJECT_ROOT = Path(__file__).resolve().parent.parent
WAREHOUSE_SIZES = ("XSMALL", "SMALL", "MEDIUM", "LARGE", "XLARGE", "XXLARGE", "XXXLARGE",
                   "X4LARGE", "X5LARGE", "X6LARGE")
_SNOWFLAKE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


def _load_key_slot(r: _Reader, slot: int) -> SnowflakeKeySlot:
    key = f"snowflakeKey{slot}"
    source = r.raw(key)
    if source in ("generated", "none"):
        return SnowflakeKeySlot(slot, source, None, None)
    path = Path(source)
    path = path if path.is_absolute() else PROJECT_ROOT / path
    passphrase_key = f"snowflakeKey{slot}Passphrase"
    passphrase = r.config.get(passphrase_key) or None
    try:
        material = load_private_key(path, passphrase)
    except KeyFileError as error:
        hint = (
            f"; set it with: pulumi config set --secret --stack {r.stack} {passphrase_key}"
            if "no passphrase" in str(error)
            else ""
        )
        r.fail(key, source, f"{error}{hint} (allowed: generated, none, or a PKCS#8 file path)")
        return SnowflakeKeySlot(slot, source, None, None)
    return SnowflakeKeySlot(
        slot, source, material.public_key_body, pulumi.Output.secret(material.private_key_body)
    )


def _load_snowflake(r: _Reader) -> SnowflakeSettings:
    enabled = r.boolean("snowflakeEnabled")
    names = {}
    for key, example in (
        ("snowflakeOrganizationName", "MYORG"),
        ("snowflakeAccountName", "MYACCOUNT"),
        ("snowflakeAdminUser", "PULUMI"),
    ):
        names[key] = r.text(
            key,
            lambda v: None if _SNOWFLAKE_NAME.match(v) else "must be a Snowflake identifier",
        )
        if enabled and not names[key]:
            r.problems.append(
                f"{r.key(key)} is not set; it is required because snowflakeEnabled is true. "
                f"Set it with: pulumi config set --stack {r.stack} {key} {example} "
                f"(or turn Snowflake off: pulumi config set --stack {r.stack} "
                "snowflakeEnabled false)"
            )
    admin_role = r.text(
        "snowflakeAdminRole",
        lambda v: None if _SNOWFLAKE_NAME.match(v) else "must be a Snowflake role name",
    )
    private_key = r.secret(
        "snowflakeAdminPrivateKey",
        "snowflakeEnabled is true" if enabled else None,
        how=" < admin_key.p8 (the admin user's PEM key file)",
    )
    slots = (_load_key_slot(r, 1), _load_key_slot(r, 2))
    active = r.integer("snowflakeActiveKey", 1, 2)
    if active in (1, 2) and not slots[active - 1].filled:
        r.fail("snowflakeActiveKey", active,
               f"points at key slot {active}, which is none; set snowflakeKey{active} or "
               "switch to the other slot")
    return SnowflakeSettings(
        enabled=enabled,
        organization_name=names["snowflakeOrganizationName"],
        account_name=names["snowflakeAccountName"],
        admin_user=names["snowflakeAdminUser"],
        admin_role=admin_role,
        admin_private_key=private_key,
        admin_private_key_passphrase=r.secret("snowflakeAdminPrivateKeyPassphrase", None),
        warehouse_size=r.choice("snowflakeWarehouseSize", WAREHOUSE_SIZES),
        warehouse_auto_suspend=r.integer("snowflakeWarehouseAutoSuspend", 60, 86_400),
        warehouse_auto_resume=r.boolean("snowflakeWarehouseAutoResume"),
        key_slots=slots,
        active_key=active,
        buffer_count_records=r.integer("snowflakeBufferCountRecords", 1, 100_000_000),
        # The connector refuses less than 10 s with Snowpipe.
        buffer_flush_time_seconds=r.integer("snowflakeBufferFlushTime", 10, 86_400),
        buffer_size_bytes=r.integer("snowflakeBufferSizeBytes", 1, 2_000_000_000),
    )


def _check_cross_service(r: _Reader, s: Settings) -> None:
    """Rules that span services: published ports per engine, and engine names."""
    slugs: dict[str, str] = {}
    for host in s.docker_hosts():
        if slugs.setdefault(host.slug, host.url) != host.url:
            r.problems.append(
                f"Docker hosts {slugs[host.slug]!r} and {host.url!r} are different URLs for "
                f"the same host '{host.address}'; use one URL per engine in every "
                "<service>DockerHost"
            )
    published: dict[tuple[str, int], str] = {}
    candidates: list[tuple[ContainerPlacement | None, str, int]] = [
        (s.mqtt.placement, "mqttPort", s.mqtt.port),
        (s.mqtt.placement, "mqttWebsocketPort", s.mqtt.websocket_port),
        (s.kafka.placement, "kafkaBrokerPort", s.kafka.broker_port),
        (s.kafka.placement, "kafkaSchemaRegistryPort", s.kafka.schema_registry_port),
        (s.kafka.placement, "kafkaConnectPort", s.kafka.connect_port),
        (s.postgres.placement, "postgresPort", s.postgres.port),
        (s.metabase.placement, "metabasePort", s.metabase.port),
    ]
    if s.lenses.mode is Mode.CONTAINER:
        candidates.append((s.lenses.placement, "lensesHqPort", s.lenses.hq_port))
    for placement, key, port in candidates:
        if placement is None:
            continue
        slot = (placement.docker_host.url, port)
        if slot in published:
            r.fail(key, port, f"host port {port} on {placement.docker_host.url} is already "
                              f"taken by {published[slot]}; choose another port")
        else:
            published[slot] = key
