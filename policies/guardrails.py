"""HIPAA-minded guardrails for the health-pipeline stacks, as CrossGuard resource policies.

Importing this module starts nothing; `policies/__main__.py` serves POLICIES to the CLI, and
the tests call each policy directly. A stack is production when its name is `prod` or starts
with `prod-`, or is listed in HEALTH_PIPELINE_PROD_STACKS (comma-separated); production-only
rules do not apply elsewhere.

About secrets: CrossGuard hands policies every input already decrypted and does not say which
were secrets (pulumi/pulumi-policy#241). So `credentials-are-secret` checks what it can see:
that each property holding a credential is listed in the resource's additionalSecretOutputs,
which keeps it encrypted in state and masked in previews and outputs. That the program passes
those inputs as secrets is checked by the unit tests, under the mock engine, which does see it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from typing import Any

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
KAFKA_PROVIDER = "pulumi:providers:kafka"
SERVICE_USERS = ("snowflake:index/serviceUser:ServiceUser",
                 "snowflake:index/legacyServiceUser:LegacyServiceUser")
STATEFUL = ("docker:index/volume:Volume", TOPIC, "postgresql:index/database:Database",
            "postgresql:index/role:Role", "snowflake:index/database:Database",
            "snowflake:index/schema:Schema")
"""Resources whose deletion loses data or access: protected in production."""

PROVIDER_CREDENTIALS = {
    KAFKA_PROVIDER: ("saslPassword",),
    "pulumi:providers:postgresql": ("password",),
    "pulumi:providers:snowflake": ("password", "privateKey", "privateKeyPassphrase", "token"),
}
CREDENTIAL_ENV = re.compile(r"PASS(WORD)?$|PASSWORD|SECRET|TOKEN|PRIVATE_KEY|API_KEY|AGENT_KEY"
                            r"|CREDENTIAL", re.IGNORECASE)
CREDENTIAL_CONFIG = re.compile(r"password|private\.key|secret|token", re.IGNORECASE)
MQTT_URL_KEYS = ("connect.mqtt.hosts", "mqtt.server.uri", "camel.kamelet.mqtt5-source.brokerUrl")
WEEK_MS = 7 * 24 * 3600 * 1000

Validation = Callable[[ResourceValidationArgs, ReportViolation], None]


def stack_of(urn: str) -> str:
    """The stack a URN belongs to: urn:pulumi:<stack>::<project>::<type>::<name>."""
    return urn.split("::", 1)[0].rsplit(":", 1)[-1]


def is_production(stack: str) -> bool:
    extra = {s.strip() for s in os.environ.get("HEALTH_PIPELINE_PROD_STACKS", "").split(",")}
    return stack == "prod" or stack.startswith("prod-") or stack in extra


def _production_only(validate: Validation) -> Validation:
    def wrapped(args: ResourceValidationArgs, report: ReportViolation) -> None:
        if is_production(stack_of(args.urn)):
            validate(args, report)
    return wrapped


def _for(*types: str) -> Callable[[Validation], Validation]:
    def decorate(validate: Validation) -> Validation:
        def wrapped(args: ResourceValidationArgs, report: ReportViolation) -> None:
            if args.resource_type in types:
                validate(args, report)
        return wrapped
    return decorate


def _env_names(props: Mapping[str, Any]) -> list[str]:
    return [str(entry).split("=", 1)[0] for entry in props.get("envs") or []]


def _mosquitto_conf(props: Mapping[str, Any]) -> str | None:
    for upload in props.get("uploads") or []:
        if str(upload.get("file", "")).endswith("mosquitto.conf"):
            return str(upload.get("content") or "")
    return None


def _conf_lines(conf: str) -> list[list[str]]:
    return [line.split() for line in conf.splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


# 1. Credentials ----------------------------------------------------------------------------

def _credential_properties(args: ResourceValidationArgs) -> list[str]:
    props = args.props
    if args.resource_type == CONTAINER:
        return ["envs"] if any(CREDENTIAL_ENV.search(n) for n in _env_names(props)) else []
    if args.resource_type == CONNECTOR:
        config = props.get("config") or {}
        return ["config"] if any(CREDENTIAL_CONFIG.search(k) for k in config) else []
    if args.resource_type == PROCESSOR:
        return ["password"] if props.get("password") else []
    return [key for key in PROVIDER_CREDENTIALS.get(args.resource_type, ()) if props.get(key)]


def _credentials_are_secret(args: ResourceValidationArgs, report: ReportViolation) -> None:
    marked = set(args.opts.additional_secret_outputs or [])
    for prop in _credential_properties(args):
        if prop not in marked:
            report(f"{args.resource_type} {args.name}: '{prop}' holds a credential but is not "
                   "in additionalSecretOutputs; pass it as a secret and list it there, so "
                   "state, previews and outputs never show it.")


# 2. Snowflake service users ----------------------------------------------------------------

@_for(*SERVICE_USERS)
def _service_user_has_no_password(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.props.get("password"):
        report(f"{args.name}: a Snowflake service user authenticates with its key pair only; "
               "remove 'password'.")
    if not (args.props.get("rsaPublicKey") or args.props.get("rsaPublicKey2")):
        report(f"{args.name}: a Snowflake service user needs rsaPublicKey (key-pair login).")


# 3. Durable production topics --------------------------------------------------------------

@_for(TOPIC)
@_production_only
def _production_topic_durability(args: ResourceValidationArgs, report: ReportViolation) -> None:
    config = args.props.get("config") or {}
    replication = int(args.props.get("replicationFactor") or 0)
    if replication < 3:
        report(f"topic {args.props.get('name')}: replicationFactor {replication}; production "
               "needs at least 3.")
    isr = int(config.get("min.insync.replicas", 1))
    if isr < 2:
        report(f"topic {args.props.get('name')}: min.insync.replicas {isr}; production needs "
               "at least 2.")
    retention = int(config.get("retention.ms", 0))
    if retention != -1 and retention < WEEK_MS:
        report(f"topic {args.props.get('name')}: retention.ms {retention}; production keeps "
               f"at least 7 days ({WEEK_MS}).")


# 4. Protected production state -------------------------------------------------------------

@_for(*STATEFUL)
@_production_only
def _production_state_is_protected(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if not args.opts.protect:
        report(f"{args.resource_type} {args.name} holds data or access in production; set "
               "protect (protectStatefulResources: true).")


# 5-7. Containers and images ----------------------------------------------------------------

@_for(CONTAINER)
def _not_privileged(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.props.get("privileged"):
        report(f"container {args.props.get('name')}: privileged containers may not run patient "
               "data services.")


@_for(CONTAINER)
def _has_healthcheck(args: ResourceValidationArgs, report: ReportViolation) -> None:
    tests = (args.props.get("healthcheck") or {}).get("tests") or []
    if not tests or tests[0] == "NONE":
        report(f"container {args.props.get('name')}: needs a healthcheck, so `pulumi up` waits "
               "for a service that works and Docker restarts one that does not.")


def _image_problem(reference: str) -> str | None:
    if "@sha256:" in reference:
        return None
    last = reference.rsplit("/", 1)[-1]
    if ":" not in last:
        return "has no tag (it means :latest)"
    if last.rsplit(":", 1)[1] == "latest":
        return "uses the moving tag :latest"
    return None


@_for(REMOTE_IMAGE, CONTAINER)
def _image_is_pinned(args: ResourceValidationArgs, report: ReportViolation) -> None:
    key = "name" if args.resource_type == REMOTE_IMAGE else "image"
    reference = str(args.props.get(key) or "")
    if args.resource_type == CONTAINER and reference.startswith("sha256:"):
        return  # an image id: the RemoteImage it came from is checked itself
    problem = _image_problem(reference)
    if problem:
        report(f"image {reference!r} {problem}; pin an explicit version tag or a digest.")


# 8. MQTT access ----------------------------------------------------------------------------

@_for(CONTAINER)
def _mqtt_not_anonymous(args: ResourceValidationArgs, report: ReportViolation) -> None:
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
    # Provider inputs arrive JSON-encoded ("true") from the engine, plain (true) from code.
    if str(args.props.get("tlsEnabled")).lower() != "true":
        report(f"{args.name}: production Kafka traffic must use TLS (kafkaSecurityProtocol SSL "
               "or SASL_SSL).")


@_for(CONNECTOR, CONTAINER)
@_production_only
def _production_mqtt_tls(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type == CONNECTOR:
        config = args.props.get("config") or {}
        for key in MQTT_URL_KEYS:
            url = str(config.get(key) or "")
            if url and not url.startswith(("ssl://", "mqtts://")):
                report(f"connector {config.get('name')}: {key} is {url}; production MQTT should "
                       "use ssl://.")
        return
    conf = _mosquitto_conf(args.props)
    if conf is not None and not any(line[0] == "certfile" for line in _conf_lines(conf)):
        report(f"container {args.props.get('name')}: mosquitto.conf has no TLS listener "
               "(certfile); production devices should connect over TLS.")


POLICIES = [
    ResourceValidationPolicy(
        name="credentials-are-secret",
        description="Credentials in container env, connector configs, processors and provider "
                    "settings are secrets (listed in additionalSecretOutputs).",
        enforcement_level=EnforcementLevel.MANDATORY,
        validate=_credentials_are_secret,
    ),
    ResourceValidationPolicy(
        name="snowflake-service-user-key-pair-only",
        description="Snowflake service users have no password and log in with an RSA key.",
        enforcement_level=EnforcementLevel.MANDATORY,
        validate=_service_user_has_no_password,
    ),
    ResourceValidationPolicy(
        name="prod-topic-durability",
        description="Production topics: replication factor >= 3, min.insync.replicas >= 2, "
                    "retention >= 7 days.",
        enforcement_level=EnforcementLevel.MANDATORY,
        validate=_production_topic_durability,
    ),
    ResourceValidationPolicy(
        name="prod-stateful-resources-protected",
        description="Production volumes, topics, databases, roles and schemas are protected.",
        enforcement_level=EnforcementLevel.MANDATORY,
        validate=_production_state_is_protected,
    ),
    ResourceValidationPolicy(
        name="container-not-privileged",
        description="No container runs privileged.",
        enforcement_level=EnforcementLevel.MANDATORY,
        validate=_not_privileged,
    ),
    ResourceValidationPolicy(
        name="container-has-healthcheck",
        description="Every container has a healthcheck.",
        enforcement_level=EnforcementLevel.MANDATORY,
        validate=_has_healthcheck,
    ),
    ResourceValidationPolicy(
        name="image-pinned",
        description="Images are pinned to a version tag or digest, never latest.",
        enforcement_level=EnforcementLevel.MANDATORY,
        validate=_image_is_pinned,
    ),
    ResourceValidationPolicy(
        name="mqtt-no-anonymous-access",
        description="The MQTT broker refuses anonymous clients and has a password file.",
        enforcement_level=EnforcementLevel.MANDATORY,
        validate=_mqtt_not_anonymous,
    ),
    ResourceValidationPolicy(
        name="prod-kafka-tls",
        description="Production Kafka traffic uses TLS.",
        enforcement_level=EnforcementLevel.MANDATORY,
        validate=_production_kafka_tls,
    ),
    ResourceValidationPolicy(
        name="prod-mqtt-tls",
        description="Production MQTT traffic uses TLS (advisory until the broker has a TLS "
                    "listener: prod's Mosquitto is plaintext on the internal network today).",
        enforcement_level=EnforcementLevel.ADVISORY,
        validate=_production_mqtt_tls,
    ),
]
