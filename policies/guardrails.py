"""HIPAA-minded guardrails for the health-pipeline stacks, as CrossGuard resource policies.

Importing this module starts nothing; `policies/__main__.py` serves POLICIES to the CLI, and
the tests call each policy directly. Every rule's docstring says why it has its level;
policies/README.md has the table.

Production: a stack is production when its name (read from the resource's URN) is `prod` or
starts with `prod-`, or is listed in HEALTH_PIPELINE_PROD_STACKS (comma-separated).
Production-only rules report nothing elsewhere. CrossGuard levels are per policy, not per
stack, so "mandatory in prod, not in dev" is a mandatory rule that applies to prod only.

About secrets: CrossGuard hands policies every input already decrypted and does not say which
were secrets (pulumi_policy's Analyze deserialises the properties without keeping the secret
marker; pulumi/pulumi-policy#241). So `credentials-are-secret` checks what it can see: that
each property holding a credential is listed in the resource's additionalSecretOutputs, which
keeps it encrypted in state and masked in previews and outputs. That the program also passes
those inputs as secrets is checked by tests/test_policies.py under the mock engine, which
does see the secret envelopes.

During `pulumi preview`, reading a value that is not known yet raises UnknownValueError; the
policy server turns that into an advisory "can't run policy during preview" for that resource
and policy, and the rule runs for real on `pulumi up`, when the inputs are known.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from pulumi_policy import (
    EnforcementLevel,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
)

CONTAINER = "docker:index/container:Container"
REMOTE_IMAGE = "docker:index/remoteImage:RemoteImage"
TOPIC = "kafka:index/topic:Topic"
CONNECTOR = "pulumi-python:dynamic/connect:Connector"
PROCESSOR = "pulumi-python:dynamic/lenses:Processor"
HQ_ENVIRONMENT = "pulumi-python:dynamic/lenses:Environment"
TOPIC_FORMAT = "pulumi-python:dynamic/lenses:TopicFormat"
METABASE_RESOURCES = tuple(f"pulumi-python:dynamic/metabase:{kind}"
                           for kind in ("Setup", "Database", "Dashboard"))
NGINX_TLS_LISTEN = re.compile(r"^\s*listen\s+(?:\S+:)?(\d+)\s+ssl\b", re.MULTILINE)
KAFKA_PROVIDER = "pulumi:providers:kafka"
SERVICE_USERS = ("snowflake:index/serviceUser:ServiceUser",
                 "snowflake:index/legacyServiceUser:LegacyServiceUser")
STATEFUL = ("docker:index/volume:Volume", TOPIC, "postgresql:index/database:Database",
            "postgresql:index/role:Role", "snowflake:index/database:Database",
            "snowflake:index/schema:Schema", HQ_ENVIRONMENT)
"""Resources whose deletion loses data or access: protected in production (an HQ environment
holds the agent's only key, which HQ does not give again)."""

PROVIDER_CREDENTIALS = {
    KAFKA_PROVIDER: ("saslPassword",),
    "pulumi:providers:postgresql": ("password",),
    "pulumi:providers:snowflake": ("password", "privateKey", "privateKeyPassphrase", "token"),
}
CREDENTIAL_ENV = re.compile(r"PASS(WORD)?$|PASSWORD|SECRET|TOKEN|PRIVATE_KEY|API_KEY|AGENT_KEY"
                            r"|CREDENTIAL", re.IGNORECASE)
CREDENTIAL_CONFIG = re.compile(r"password|private\.key|secret|token", re.IGNORECASE)
CREDENTIAL_CONTENT = re.compile(
    r"(password|passwd|secret|token|agent_?key|private[._ ]?key)\s*[:=]"  # key: v / key = v
    r"|^[^\s:#]+:\$\d+\$",  # a Mosquitto/crypt password-file line, user:$7$...
    re.IGNORECASE | re.MULTILINE)
"""A credential assignment in an uploaded file (`password: ...`, `...password = "..."`,
`password="..."` in a JAAS line) or a password-file hash line. `password_file <path>`
is not one."""
MQTT_URL_KEYS = ("connect.mqtt.hosts", "mqtt.server.uri", "camel.kamelet.mqtt5-source.brokerUrl")
WEEK_MS = 7 * 24 * 3600 * 1000
INFINITE_RETENTION_MS = -1
"""Kafka's retention.ms for "never deleted by age"."""
CHANNEL_TAG_WORDS = frozenset({"latest", "preview", "nightly", "edge", "snapshot", "dev",
                               "main", "master", "stable", "current"})
"""Tag words that name a release channel, which moves, rather than a release."""

Validation = Callable[[ResourceValidationArgs, ReportViolation], None]


def stack_of(urn: str) -> str:
    """The stack a URN belongs to: urn:pulumi:<stack>::<project>::<type>::<name>."""
    return urn.split("::", 1)[0].rsplit(":", 1)[-1]


def is_production(stack: str) -> bool:
    extra = {s.strip() for s in os.environ.get("HEALTH_PIPELINE_PROD_STACKS", "").split(",")}
    return stack == "prod" or stack.startswith("prod-") or stack in extra - {""}


def _production_only(validate: Validation) -> Validation:
    def wrapped(args: ResourceValidationArgs, report: ReportViolation) -> None:
        if is_production(stack_of(args.urn)):
            validate(args, report)
    wrapped.__doc__ = validate.__doc__
    return wrapped


def _for(*types: str) -> Callable[[Validation], Validation]:
    def decorate(validate: Validation) -> Validation:
        def wrapped(args: ResourceValidationArgs, report: ReportViolation) -> None:
            if args.resource_type in types:
                validate(args, report)
        wrapped.__doc__ = validate.__doc__
        return wrapped
    return decorate


def _env_names(props: Mapping[str, Any]) -> list[str]:
    return [str(entry).split("=", 1)[0] for entry in props.get("envs") or []]


def _upload_contents(props: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(file, content) of each upload given inline (uploads from a source file have none)."""
    return [(str(u.get("file", "")), str(u.get("content") or ""))
            for u in props.get("uploads") or []]


def _mosquitto_conf(props: Mapping[str, Any]) -> str | None:
    for file, content in _upload_contents(props):
        if file.endswith("mosquitto.conf"):
            return content
    return None


def _conf_lines(conf: str) -> list[list[str]]:
    return [line.split() for line in conf.splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


# 1. Credentials ----------------------------------------------------------------------------

def credential_properties(args: ResourceValidationArgs) -> list[str]:
    """The top-level properties of a resource that hold a credential."""
    props = args.props
    if args.resource_type == CONTAINER:
        found = []
        # NAME_FILE=<path> names where the image reads the credential from, not the credential.
        if any(CREDENTIAL_ENV.search(n) and not n.endswith("_FILE") for n in _env_names(props)):
            found.append("envs")
        if any(CREDENTIAL_CONTENT.search(content) for _, content in _upload_contents(props)):
            found.append("uploads")
        return found
    if args.resource_type == CONNECTOR:
        config = props.get("config") or {}
        return ["config"] if any(CREDENTIAL_CONFIG.search(k) for k in config) else []
    if args.resource_type == PROCESSOR:
        return ["password"] if props.get("password") else []
    return [key for key in PROVIDER_CREDENTIALS.get(args.resource_type, ()) if props.get(key)]


def _credentials_are_secret(args: ResourceValidationArgs, report: ReportViolation) -> None:
    """Mandatory everywhere: a credential in plain text in state or in a preview is a leak
    whatever the stack, and dev stacks hold real Snowflake keys."""
    marked = set(args.opts.additional_secret_outputs or [])
    for prop in credential_properties(args):
        if prop not in marked:
            report(f"{args.resource_type} {args.name}: '{prop}' holds a credential but is not "
                   "in additionalSecretOutputs; pass it as a secret and list it there, so "
                   "state, previews and outputs never show it.")


# 2. Snowflake service users ----------------------------------------------------------------

@_for(*SERVICE_USERS)
def _service_user_has_no_password(args: ResourceValidationArgs, report: ReportViolation) -> None:
    """Mandatory everywhere: a password on a service user is a second, weaker way in to the
    warehouse that holds the patient data, in every account."""
    if args.props.get("password"):
        report(f"{args.name}: a Snowflake service user authenticates with its key pair only; "
               "remove 'password'.")
    if not (args.props.get("rsaPublicKey") or args.props.get("rsaPublicKey2")):
        report(f"{args.name}: a Snowflake service user needs rsaPublicKey (key-pair login).")


# 3. Durable production topics --------------------------------------------------------------

@_for(TOPIC)
@_production_only
def _production_topic_durability(args: ResourceValidationArgs, report: ReportViolation) -> None:
    """Mandatory in production, not applied elsewhere: dev runs one broker with one-minute
    retention on purpose; production must not lose readings to one broker failure, nor to a
    retention shorter than a week. Infinite retention (-1, never deleted by age) is allowed:
    a compliance team may require it for raw vitals."""
    config = args.props.get("config") or {}
    replication = int(args.props.get("replicationFactor") or 0)
    if replication < 3:
        report(f"topic {args.props.get('name')}: replicationFactor {replication}; production "
               "needs at least 3.")
    isr = int(config.get("min.insync.replicas", 1))
    if isr < 2:
        report(f"topic {args.props.get('name')}: min.insync.replicas {isr}; production needs "
               "at least 2.")
    retention = str(config.get("retention.ms", ""))
    if not re.fullmatch(r"-?\d+", retention):
        report(f"topic {args.props.get('name')}: retention.ms {retention or 'not set'}; "
               f"production states it: at least 7 days ({WEEK_MS}) or -1 (infinite).")
    elif int(retention) != INFINITE_RETENTION_MS and int(retention) < WEEK_MS:
        report(f"topic {args.props.get('name')}: retention.ms {retention}; production keeps "
               f"at least 7 days ({WEEK_MS}), or -1 (infinite, e.g. raw vitals a compliance "
               "team must keep).")


# 4. Protected production state -------------------------------------------------------------

@_for(*STATEFUL)
@_production_only
def _production_state_is_protected(args: ResourceValidationArgs, report: ReportViolation) -> None:
    """Mandatory in production, not applied elsewhere: `scripts/down` must be able to tear
    dev down; in production a mistaken delete loses patient data or access to it."""
    if not args.opts.protect:
        report(f"{args.resource_type} {args.name} holds data or access in production; set "
               "protect (protectStatefulResources: true).")


# 5-7. Containers and images ----------------------------------------------------------------

@_for(CONTAINER)
def _not_privileged(args: ResourceValidationArgs, report: ReportViolation) -> None:
    """Mandatory everywhere: no service here needs it, and a privileged container owns the
    host, dev laptops included."""
    if args.props.get("privileged"):
        report(f"container {args.props.get('name')}: privileged containers may not run patient "
               "data services.")


@_for(CONTAINER)
def _has_healthcheck(args: ResourceValidationArgs, report: ReportViolation) -> None:
    """Mandatory everywhere (stricter than prod-only): `pulumi up` waits for each container to
    report healthy, on dev too, so a container without a check would be 'up' while broken."""
    tests = (args.props.get("healthcheck") or {}).get("tests") or []
    if not tests or tests[0] == "NONE":
        report(f"container {args.props.get('name')}: needs a healthcheck, so `pulumi up` waits "
               "for a service that works and Docker restarts one that does not.")


def _split_reference(reference: str) -> tuple[str | None, str | None]:
    """(tag, digest) of an image reference; a registry port is not a tag."""
    name, _, digest = reference.partition("@")
    last = name.rsplit("/", 1)[-1]
    tag = last.rsplit(":", 1)[1] if ":" in last else None
    return tag, digest or None


def _image_reference(args: ResourceValidationArgs) -> str | None:
    key = "name" if args.resource_type == REMOTE_IMAGE else "image"
    reference = str(args.props.get(key) or "")
    if args.resource_type == CONTAINER and reference.startswith("sha256:"):
        return None  # an image id: the RemoteImage it came from is checked itself
    return reference


@_for(REMOTE_IMAGE, CONTAINER)
def _image_is_pinned(args: ResourceValidationArgs, report: ReportViolation) -> None:
    """Mandatory everywhere: an untagged or :latest image changes under the stack without a
    diff, in dev as much as in prod (the settings refuse both already)."""
    reference = _image_reference(args)
    if reference is None:
        return
    tag, digest = _split_reference(reference)
    if digest:
        return
    if tag is None:
        report(f"image {reference!r} has no tag (it means :latest); pin an explicit version "
               "tag or a digest.")
    elif tag == "latest":
        report(f"image {reference!r} uses the moving tag :latest; pin an explicit version tag "
               "or a digest.")


@_for(REMOTE_IMAGE, CONTAINER)
def _image_is_a_release(args: ResourceValidationArgs, report: ReportViolation) -> None:
    """Advisory: a tag such as `6-preview` is explicit but names a release channel that the
    vendor moves. Advisory because the Lenses 6 images are published only that way; pin them
    by digest (`lensting/lenses-hq:6-preview@sha256:...`) to clear it, then make it
    mandatory."""
    reference = _image_reference(args)
    if reference is None:
        return
    tag, digest = _split_reference(reference)
    if digest or tag is None or tag == "latest":
        return  # a digest is exact; no tag or latest is image-pinned's (mandatory) finding
    words = set(re.split(r"[-_.+]", tag.lower()))
    if not re.search(r"\d+\.\d+", tag) or words & CHANNEL_TAG_WORDS:
        report(f"image {reference!r}: tag {tag!r} names a release channel, not a release "
               "(no major.minor version, or a channel word); add the digest it resolves to.")


# 8. MQTT access ----------------------------------------------------------------------------

@_for(CONTAINER)
def _mqtt_not_anonymous(args: ResourceValidationArgs, report: ReportViolation) -> None:
    """Mandatory everywhere: devices publish patient vitals; an anonymous client could read
    or forge them, and dev listens on the same ports."""
    conf = _mosquitto_conf(args.props)
    if conf is None:
        return
    lines = _conf_lines(conf)
    anonymous = [line[1:2] for line in lines if line[0] == "allow_anonymous"]
    if anonymous != [["false"]]:
        report(f"container {args.props.get('name')}: mosquitto.conf must say "
               "'allow_anonymous false' exactly once (found "
               f"{[' '.join(a) for a in anonymous] or 'none'}).")
    if not any(line[0] == "password_file" for line in lines):
        report(f"container {args.props.get('name')}: mosquitto.conf has no password_file.")


# 9. Transport security in production -------------------------------------------------------

@_for(KAFKA_PROVIDER)
@_production_only
def _production_kafka_tls(args: ResourceValidationArgs, report: ReportViolation) -> None:
    """Mandatory in production, not applied elsewhere: the local fast-data-dev broker is
    PLAINTEXT on 127.0.0.1; production Kafka is a managed cluster reached over the network."""
    # Provider inputs arrive JSON-encoded ("true") from the engine, plain (true) from code.
    if str(args.props.get("tlsEnabled")).lower() != "true":
        report(f"{args.name}: production Kafka traffic must use TLS (kafkaSecurityProtocol SSL "
               "or SASL_SSL).")


def _tls_ports(props: Mapping[str, Any]) -> set[int]:
    """Container ports that speak TLS, by the configuration the container is given: a
    Mosquitto listener with a certfile, an nginx `listen <port> ssl`."""
    ports: set[int] = set()
    for file, content in _upload_contents(props):
        if file.endswith("mosquitto.conf"):
            listener = None
            for line in _conf_lines(content):
                if line[0] == "listener" and len(line) > 1:
                    listener = int(line[1])
                elif line[0] == "certfile" and listener is not None:
                    ports.add(listener)
        elif file.startswith("/etc/nginx/"):
            ports |= {int(port) for port in NGINX_TLS_LISTEN.findall(content)}
    return ports


def _loopback(ip: str) -> bool:
    try:
        return ipaddress.ip_address(ip or "0.0.0.0").is_loopback  # noqa: S104 - Docker's default
    except ValueError:
        return False


@_for(CONNECTOR, CONTAINER, PROCESSOR, HQ_ENVIRONMENT, TOPIC_FORMAT, *METABASE_RESOURCES)
@_production_only
def _production_no_plaintext_endpoint(args: ResourceValidationArgs,
                                      report: ReportViolation) -> None:
    """Mandatory in production, not applied elsewhere: patient vitals, device passwords and
    HQ logins cross the network there. A container publishes beyond loopback only ports that
    speak TLS; connectors reach MQTT over ssl:// and Connect over https://; HQ's API is
    reached over https://, and so is Metabase's, where the program signs in as its admin and
    hands it the REPORTING key."""
    props = args.props
    if args.resource_type in METABASE_RESOURCES:
        url = str(props.get("url") or "")
        if url.startswith("http://") and not _loopback(_host(url)):
            report(f"{args.name}: Metabase is reached at {url} with its admin login and the "
                   "Snowflake key; production Metabase must be https:// (metabaseHttps).")
        return
    if args.resource_type == CONTAINER:
        tls = _tls_ports(props)
        for port in props.get("ports") or []:
            internal, ip = int(port.get("internal")), str(port.get("ip") or "")
            if not _loopback(ip) and internal not in tls:
                report(f"container {props.get('name')} publishes port {internal} on "
                       f"{ip or 'all addresses'} without TLS; publish it on 127.0.0.1, or "
                       "serve TLS there (a TLS listener, or the HTTPS front).")
        return
    if args.resource_type == CONNECTOR:
        config = props.get("config") or {}
        for key in MQTT_URL_KEYS:
            url = str(config.get(key) or "")
            if url and not url.startswith(("ssl://", "mqtts://")):
                report(f"connector {config.get('name')}: {key} is {url}; production MQTT must "
                       "use ssl://.")
        url = str(props.get("connect_url") or "")
        if url.startswith("http://") and not _loopback(_host(url)):
            report(f"connector {config.get('name')}: Connect is reached at {url}; production "
                   "Connect REST must use https://.")
        return
    url = str(props.get("hq_url") or "")
    if url.startswith("http://") and not _loopback(_host(url)):
        report(f"{args.name}: Lenses HQ is reached at {url} with its admin login; production "
               "HQ must be https:// (lensesHttps).")


def _host(url: str) -> str:
    host = urlsplit(url).hostname or ""
    return "127.0.0.1" if host == "localhost" else host


# 10. Records a connector skips -------------------------------------------------------------

@_for(CONNECTOR)
def _tolerated_errors_are_kept(args: ResourceValidationArgs, report: ReportViolation) -> None:
    """Mandatory everywhere: with errors.tolerance all, Kafka Connect skips a record its
    converter or transforms fail on, and only a sink's dead-letter topic keeps it (KIP-298:
    Connect has none for a source); a skipped reading is a lost reading on any stack. A sink
    is told by its class name, which ends in SinkConnector by convention (Kafka's, the
    Snowflake connector's)."""
    config = args.props.get("config") or {}
    if str(config.get("errors.tolerance", "none")).strip().lower() != "all":
        return
    connector_class = str(config.get("connector.class", ""))
    name = config.get("name") or args.name
    if not connector_class.endswith("SinkConnector"):
        report(f"connector {name}: errors.tolerance all on a source connector drops every "
               "record its converter or transforms fail on (Kafka Connect keeps none); use none.")
    elif not str(config.get("errors.deadletterqueue.topic.name", "")).strip():
        report(f"connector {name}: errors.tolerance all without "
               "errors.deadletterqueue.topic.name drops every record the sink cannot convert; "
               "name a declared dead-letter topic (snowflakeDeadLetterQueue) or use none.")


def _policy(name: str, description: str, level: EnforcementLevel,
            validate: Validation) -> ResourceValidationPolicy:
    return ResourceValidationPolicy(name=name, description=description,
                                    enforcement_level=level, validate=validate)


MANDATORY, ADVISORY = EnforcementLevel.MANDATORY, EnforcementLevel.ADVISORY

POLICIES = [
    _policy("credentials-are-secret",
            "Credentials in container env and uploaded files, connector configs, processors "
            "and provider settings are secrets (listed in additionalSecretOutputs).",
            MANDATORY, _credentials_are_secret),
    _policy("snowflake-service-user-key-pair-only",
            "Snowflake service users have no password and log in with an RSA key.",
            MANDATORY, _service_user_has_no_password),
    _policy("prod-topic-durability",
            "Production topics: replication factor >= 3, min.insync.replicas >= 2, "
            "retention >= 7 days or infinite (-1).",
            MANDATORY, _production_topic_durability),
    _policy("prod-stateful-resources-protected",
            "Production volumes, topics, databases, roles and schemas are protected.",
            MANDATORY, _production_state_is_protected),
    _policy("container-not-privileged", "No container runs privileged.",
            MANDATORY, _not_privileged),
    _policy("container-has-healthcheck", "Every container has a healthcheck.",
            MANDATORY, _has_healthcheck),
    _policy("image-pinned", "Images are pinned to a version tag or digest, never latest.",
            MANDATORY, _image_is_pinned),
    _policy("image-tag-is-a-release",
            "Image tags name a release (major.minor), not a channel such as 6-preview; "
            "advisory until the Lenses images are pinned by digest.",
            ADVISORY, _image_is_a_release),
    _policy("mqtt-no-anonymous-access",
            "The MQTT broker refuses anonymous clients and has a password file.",
            MANDATORY, _mqtt_not_anonymous),
    _policy("prod-kafka-tls", "Production Kafka traffic uses TLS.",
            MANDATORY, _production_kafka_tls),
    _policy("prod-no-plaintext-endpoint",
            "Production carries no plaintext MQTT or HTTP endpoint on a non-loopback address: "
            "published container ports speak TLS, connectors use ssl:// and https://, HQ and "
            "Metabase are reached over https://.",
            MANDATORY, _production_no_plaintext_endpoint),
    _policy("connector-tolerated-errors-kept",
            "A connector that skips records it cannot convert (errors.tolerance all) is a sink "
            "that keeps them in a dead-letter topic.",
            MANDATORY, _tolerated_errors_are_kept),
]
