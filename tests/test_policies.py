"""The policy pack: each policy against compliant and violating resources, then every policy
over what the real program declares for dev and prod, the docs' table against the pack, and
the pack's entry point as the CLI runs it.

Resources reach a policy the way the policy server hands them over: properties through
pulumi_policy's own deserialize_properties (which drops the secret envelopes, as Analyze
does) and wrapped in its unknown_checking_proxy."""

from __future__ import annotations

import re
import select
import subprocess
import sys
from typing import Any

import pytest
from pulumi_policy import (
    EnforcementLevel,
    PolicyCustomTimeouts,
    PolicyResourceOptions,
    ResourceValidationArgs,
)
from pulumi_policy.deserialize import deserialize_properties
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, UnknownValueError, unknown_checking_proxy

from components.streams import ALL_TOPICS, DEAD_LETTER_TOPICS
from devtools.harness import (
    PROJECT,
    ROOT,
    SECRET,
    ProgramRun,
    Registered,
    contains_secret,
    run_program,
)
from policies.guardrails import POLICIES, WEEK_MS, credential_properties, is_production, stack_of

BY_NAME = {p.name: p for p in POLICIES}
MANDATORY = {p.name for p in POLICIES if p.enforcement_level is EnforcementLevel.MANDATORY}
CONTAINER = "docker:index/container:Container"
CONNECTOR = "pulumi-python:dynamic/connect:Connector"
IMAGE = "docker:index/remoteImage:RemoteImage"
TOPIC = "kafka:index/topic:Topic"
CONF_OK = "listener 1883\nallow_anonymous false\npassword_file /mosquitto/config/passwd\n"
CONF_FILE = "/mosquitto/config/mosquitto.conf"
EVERYWHERE = "0.0.0.0"  # noqa: S104 - the address a published port binds to, as data


def _args(typ: str, props: dict[str, Any], stack: str = "prod", name: str = "r",
          protect: bool = False, secret_outputs: list[str] | None = None):
    """A resource as the policy server builds it from the engine's request."""
    opts = PolicyResourceOptions(protect, [], None, [], PolicyCustomTimeouts(0, 0, 0),
                                 secret_outputs or [])
    urn = f"urn:pulumi:{stack}::health-pipeline::{typ}::{name}"
    return ResourceValidationArgs(typ, unknown_checking_proxy(deserialize_properties(props)),
                                  urn, name, opts, None)


def violations(policy_name: str, args: ResourceValidationArgs) -> list[str]:
    found: list[str] = []
    BY_NAME[policy_name].validate(args, lambda message, urn=None: found.append(message))
    return found


def _container(**props: Any) -> dict[str, Any]:
    return {"name": "hp-prod-x", "image": "sha256:abc",
            "healthcheck": {"tests": ["CMD", "true"]}, **props}


def _topic(replication: int, isr: str, retention: str) -> dict[str, Any]:
    return {"name": "t", "replicationFactor": float(replication),
            "config": {"min.insync.replicas": isr, "retention.ms": retention}}


def _mosquitto(conf: str) -> dict[str, Any]:
    return _container(uploads=[{"file": CONF_FILE, "content": conf}])


SNOWFLAKE_SINK_CLASS = "com.snowflake.kafka.connector.SnowflakeSinkConnector"
OWN_MQTT_SOURCE_CLASS = "io.healthpipeline.connect.mqtt.MqttSourceConnector"


def _connector(connector_class: str, **config: str) -> dict[str, Any]:
    return {"config": {"name": "c", "connector.class": connector_class, **config}}


CASES = [
    # policy, compliant args, violating args, words the violation must contain
    ("connector-tolerated-errors-kept",
     _args(CONNECTOR, _connector(SNOWFLAKE_SINK_CLASS, **{
         "errors.tolerance": "all", "errors.deadletterqueue.topic.name": "snowflake_sink_dlq"})),
     _args(CONNECTOR, _connector(SNOWFLAKE_SINK_CLASS, **{"errors.tolerance": "all"}),
           stack="dev"),
     "without errors.deadletterqueue.topic.name drops every record"),
    ("connector-tolerated-errors-kept",
     _args(CONNECTOR, _connector(OWN_MQTT_SOURCE_CLASS, **{
         "errors.deadletterqueue.topic.name": "device_data_dlq"})),
     _args(CONNECTOR, _connector(OWN_MQTT_SOURCE_CLASS, **{
         "errors.tolerance": "all", "errors.deadletterqueue.topic.name": "device_data_dlq"})),
     "on a source connector drops every record"),
    ("credentials-are-secret",
     _args(CONTAINER, _container(envs=["MB_DB_PASS=x", "MB_DB_PORT=1"]), secret_outputs=["envs"]),
     _args(CONTAINER, _container(envs=["MB_DB_PASS=x"])),
     "'envs' holds a credential"),
    ("credentials-are-secret",
     _args(CONTAINER, _container(envs=["MB_DB_PORT=1"], uploads=[
         {"file": CONF_FILE, "content": CONF_OK}])),
     _args(CONTAINER, _container(uploads=[
         {"file": "/app/config.yaml", "content": "database:\n  password: hunter2\n"}])),
     "'uploads' holds a credential"),
    ("credentials-are-secret",
     _args(CONTAINER, _container(uploads=[
         {"file": "/mosquitto/config/passwd", "content": "device:$7$101$salt$hash\n"}]),
         secret_outputs=["uploads"]),
     _args(CONTAINER, _container(uploads=[
         {"file": "/mosquitto/config/passwd", "content": "device:$7$101$salt$hash\n"}])),
     "'uploads' holds a credential"),
    ("credentials-are-secret",
     _args(CONNECTOR, {"config": {"connect.mqtt.password": "p"}}, secret_outputs=["config"]),
     _args(CONNECTOR, {"config": {"snowflake.private.key": "k"}}),
     "'config' holds a credential"),
    ("credentials-are-secret",
     _args("pulumi:providers:kafka", {"saslPassword": "p"}, secret_outputs=["saslPassword"]),
     _args("pulumi:providers:kafka", {"saslPassword": "p"}),
     "'saslPassword' holds a credential"),
    ("credentials-are-secret",
     _args("pulumi:providers:snowflake", {"user": "PULUMI_DEPLOY"}),
     _args("pulumi:providers:snowflake", {"privateKey": "-----BEGIN PRIVATE KEY-----"}),
     "'privateKey' holds a credential"),
    ("credentials-are-secret",
     _args("pulumi:providers:postgresql", {"password": "p"}, secret_outputs=["password"]),
     _args("pulumi:providers:postgresql", {"password": "p"}, stack="dev"),
     "'password' holds a credential"),
    ("credentials-are-secret",
     _args("pulumi-python:dynamic/lenses:Processor", {"password": "p"},
           secret_outputs=["password"]),
     _args("pulumi-python:dynamic/lenses:Processor", {"password": "p"}),
     "'password' holds a credential"),
    ("snowflake-service-user-key-pair-only",
     _args("snowflake:index/serviceUser:ServiceUser", {"rsaPublicKey": "MIIB"}),
     _args("snowflake:index/serviceUser:ServiceUser", {"rsaPublicKey": "MIIB", "password": "x"},
           stack="dev"),
     "remove 'password'"),
    ("snowflake-service-user-key-pair-only",
     _args("snowflake:index/serviceUser:ServiceUser", {"rsaPublicKey2": "MIIB"}),
     _args("snowflake:index/serviceUser:ServiceUser", {"loginName": "kafka_user"}),
     "needs rsaPublicKey"),
    ("prod-topic-durability",
     _args(TOPIC, _topic(3, "2", str(WEEK_MS))),
     _args(TOPIC, _topic(3, "2", str(WEEK_MS - 1))),
     "at least 7 days"),
    ("prod-topic-durability",
     _args(TOPIC, _topic(1, "1", "60000"), stack="dev"),
     _args(TOPIC, _topic(2, "2", "-1")),
     "replicationFactor 2"),
    ("prod-topic-durability",
     _args(TOPIC, _topic(3, "2", "-1")),
     _args(TOPIC, {"name": "t", "replicationFactor": 3.0,
                   "config": {"min.insync.replicas": "2"}}),
     "retention.ms not set"),
    ("prod-topic-durability",
     _args(TOPIC, _topic(3, "2", "-1"), stack="prod-eu"),
     _args(TOPIC, _topic(3, "1", str(WEEK_MS)), stack="prod-eu"),
     "min.insync.replicas 1"),
    ("prod-stateful-resources-protected",
     _args("postgresql:index/database:Database", {"name": "hq"}, protect=True),
     _args("postgresql:index/database:Database", {"name": "hq"}),
     "set protect"),
    ("prod-stateful-resources-protected",
     _args("docker:index/volume:Volume", {"name": "v"}, stack="dev"),
     _args("snowflake:index/schema:Schema", {"name": "INGEST"}),
     "set protect"),
    ("container-not-privileged",
     _args(CONTAINER, _container(privileged=False)),
     _args(CONTAINER, _container(privileged=True), stack="dev"),
     "privileged"),
    ("container-has-healthcheck",
     _args(CONTAINER, _container()),
     _args(CONTAINER, _container(healthcheck={"tests": ["NONE"]})),
     "needs a healthcheck"),
    ("container-has-healthcheck",
     _args(CONTAINER, _container(), stack="dev"),
     _args(CONTAINER, {"name": "hp-dev-x", "image": "sha256:abc"}, stack="dev"),
     "needs a healthcheck"),
    ("image-pinned",
     _args(IMAGE, {"name": "registry:5000/pg@sha256:ab"}),
     _args(IMAGE, {"name": "registry:5000/postgres"}),
     "has no tag"),
    ("image-pinned",
     _args(IMAGE, {"name": "postgres:16.9"}),
     _args(CONTAINER, _container(image="postgres:latest"), stack="dev"),
     "moving tag :latest"),
    ("image-tag-is-a-release",
     _args(IMAGE, {"name": "lensting/lenses-hq:6-preview@sha256:ab"}),
     _args(IMAGE, {"name": "lensting/lenses-hq:6-preview"}),
     "names a release channel"),
    ("image-tag-is-a-release",
     _args(IMAGE, {"name": "metabase/metabase:v0.64.2.2"}),
     _args(IMAGE, {"name": "example/app:1.2-nightly"}, stack="dev"),
     "names a release channel"),
    ("image-tag-is-a-release",
     _args(IMAGE, {"name": "registry:5000/postgres:16.9-alpine"}),
     _args(IMAGE, {"name": "registry:5000/postgres:16"}),
     "names a release channel"),
    ("mqtt-no-anonymous-access",
     _args(CONTAINER, _mosquitto(CONF_OK)),
     _args(CONTAINER, _mosquitto(CONF_OK + "allow_anonymous true\n"), stack="dev"),
     "'allow_anonymous false' exactly once"),
    ("mqtt-no-anonymous-access",
     _args(CONTAINER, _container(uploads=[{"file": "/app/config.yaml", "content": "a: 1"}])),
     _args(CONTAINER, _mosquitto("listener 1883\nallow_anonymous false\n")),
     "has no password_file"),
    ("prod-kafka-tls",
     _args("pulumi:providers:kafka", {"tlsEnabled": "true"}),
     _args("pulumi:providers:kafka", {"tlsEnabled": False}),
     "must use TLS"),
    ("prod-kafka-tls",
     _args("pulumi:providers:kafka", {"tlsEnabled": "false"}, stack="dev"),
     _args("pulumi:providers:kafka", {}, stack="prod-eu"),
     "must use TLS"),
    ("prod-no-plaintext-endpoint",
     _args(CONNECTOR, {"config": {"name": "s", "mqtt.server.uri": "ssl://mqtt:8883"}}),
     _args(CONNECTOR, {"config": {"name": "s", "connect.mqtt.hosts": "tcp://mqtt:1883"}}),
     "must use ssl://"),
    ("prod-no-plaintext-endpoint",
     _args(CONNECTOR, {"config": {"name": "s"}, "connect_url": "https://connect:8083"}),
     _args(CONNECTOR, {"config": {"name": "s"}, "connect_url": "http://connect:8083"}),
     "must use https://"),
    ("prod-no-plaintext-endpoint",
     _args(CONTAINER, {**_mosquitto(CONF_OK + "listener 8883\ncertfile /c/server.crt\n"
                                    "listener 1883\n"),
                       "ports": [{"internal": 8883, "external": 8883, "ip": EVERYWHERE},
                                 {"internal": 1883, "external": 1883, "ip": "127.0.0.1"}]}),
     _args(CONTAINER, {**_mosquitto(CONF_OK + "listener 8883\ncertfile /c/server.crt\n"
                                    "listener 1883\n"),
                       "ports": [{"internal": 1883, "external": 1883, "ip": EVERYWHERE}]}),
     "publishes port 1883 on 0.0.0.0 without TLS"),
    ("prod-no-plaintext-endpoint",
     _args(CONTAINER, _container(
         uploads=[{"file": "/etc/nginx/conf.d/default.conf",
                   "content": "server {\n    listen 8443 ssl;\n}\n"}],
         ports=[{"internal": 8443, "external": 9991, "ip": EVERYWHERE}])),
     _args(CONTAINER, _container(ports=[{"internal": 9991, "external": 9991}])),
     "publishes port 9991 on all addresses without TLS"),
    ("prod-no-plaintext-endpoint",
     _args("pulumi-python:dynamic/lenses:Processor", {"hq_url": "https://hq:9991"}),
     _args("pulumi-python:dynamic/lenses:Environment", {"hq_url": "http://hq:9991"}),
     "production HQ must be https://"),
    ("prod-no-plaintext-endpoint",
     _args("pulumi-python:dynamic/metabase:Database", {"url": "https://metabase:3443"}),
     _args("pulumi-python:dynamic/metabase:Setup", {"url": "http://metabase.example.org:3000"}),
     "production Metabase must be https://"),
]


@pytest.mark.parametrize(("policy", "good", "bad", "words"), CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_policy_passes_the_compliant_and_flags_the_violating(policy, good, bad, words) -> None:
    assert violations(policy, good) == []
    found = violations(policy, bad)
    assert found and words in found[0], found


def test_every_policy_has_cases_and_a_deliberate_level() -> None:
    assert {c[0] for c in CASES} == set(BY_NAME)
    advisory = {p.name for p in POLICIES if p.enforcement_level is EnforcementLevel.ADVISORY}
    assert advisory == {"image-tag-is-a-release"}
    assert set(BY_NAME) - advisory == MANDATORY


def test_production_is_recognised_from_the_urn(monkeypatch) -> None:
    assert stack_of("urn:pulumi:prod-eu::health-pipeline::kafka:index/topic:Topic::t") == "prod-eu"
    assert is_production("prod") and is_production("prod-eu") and not is_production("dev")
    assert not is_production("production-like") and not is_production("")
    monkeypatch.setenv("HEALTH_PIPELINE_PROD_STACKS", "hospital-a, hospital-b")
    assert is_production("hospital-b") and not is_production("")
    found = violations("prod-topic-durability", _args(TOPIC, _topic(1, "1", "1"), "hospital-a"))
    assert len(found) == 3, found


def test_a_value_unknown_in_preview_is_left_to_the_policy_server() -> None:
    """Reading an unknown input raises UnknownValueError, which the server reports as an
    advisory "can't run policy during preview"; `pulumi up` runs the rule on known values."""
    args = _args(CONTAINER, _container(envs=[UNKNOWN_STRING_VALUE]))
    with pytest.raises(UnknownValueError):
        violations("credentials-are-secret", args)


def _declared_args(resource: Registered, stack: str) -> ResourceValidationArgs:
    """A resource as the engine hands it to a policy: inputs decrypted, options alongside."""
    return _args(resource.type, resource.inputs, stack, resource.name,
                 resource.protect, resource.additional_secret_outputs)


def _findings(run: ProgramRun) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {p.name: [] for p in POLICIES}
    for resource in run.resources:
        if resource.type.startswith("healthpipe:"):
            continue  # components hold no inputs of their own
        args = _declared_args(resource, run.stack)
        for policy in POLICIES:
            policy.validate(args, lambda m, urn=None, p=policy.name: found[p].append(m))
    return found


LENSES_CHANNEL_TAGS = sorted(
    f"image 'lensting/lenses-{part}:6-preview': tag '6-preview' names a release channel, not "
    "a release (no major.minor version, or a channel word); add the digest it resolves to."
    for part in ("hq", "agent"))


def test_prod_has_no_mandatory_violation_and_only_the_known_advisories(prod) -> None:
    found = _findings(prod)
    assert {name: f for name, f in found.items() if f and name in MANDATORY} == {}
    assert found["prod-no-plaintext-endpoint"] == [], "TLS everywhere prod publishes"
    assert sorted(found["image-tag-is-a-release"]) == LENSES_CHANNEL_TAGS
    assert {name for name, f in found.items() if f} == {"image-tag-is-a-release"}


def test_dev_has_findings_only_where_a_rule_is_advisory(dev) -> None:
    found = _findings(dev)
    assert {name: f for name, f in found.items() if f and name in MANDATORY} == {}
    assert {name: sorted(f) for name, f in found.items() if f} == {
        "image-tag-is-a-release": LENSES_CHANNEL_TAGS}


def test_the_real_program_exercises_every_resource_rule(prod) -> None:
    """The rules are not vacuous over the real program: each type they inspect is declared,
    and the production-only ones see a production stack."""
    types = {r.type for r in prod.resources}
    for typ in (CONTAINER, IMAGE, TOPIC, CONNECTOR, "pulumi:providers:kafka",
                "pulumi-python:dynamic/lenses:Processor",
                "snowflake:index/serviceUser:ServiceUser", "postgresql:index/database:Database"):
        assert typ in types, typ
    assert is_production(stack_of(prod.of_type(TOPIC)[0].urn))


@pytest.mark.parametrize(("key", "governs"), [("topicRetention", ALL_TOPICS),
                                             ("topicDeadLetterRetention", DEAD_LETTER_TOPICS)])
def test_prod_may_keep_its_topics_forever_but_not_for_less_than_a_week(key, governs) -> None:
    """Infinite retention (retention.ms -1) passes the durability rule on every topic the
    setting governs; six days does not. (This project's own MQTT source, so that both
    dead-letter topics are declared.)"""
    for retention, expected in (("infinite", 0), ("6d", 1)):
        run = run_program("prod", {f"{PROJECT}:{key}": retention,
                                   f"{PROJECT}:kafkaMqttSource": "health-pipeline"})
        topics = [t for t in run.of_type(TOPIC) if t.get("name") in governs]
        assert len(topics) == len(governs)
        for topic in topics:
            found = violations("prod-topic-durability", _declared_args(topic, "prod"))
            assert len(found) == expected, (retention, topic.name, found)
            assert all("at least 7 days" in f for f in found), found


def test_prod_without_protect_would_be_flagged_on_every_stateful_resource(prod) -> None:
    """Were `protect` dropped (protectStatefulResources: false), the rule would stop prod on
    each volume, topic, database, role and Snowflake schema the program declares."""
    flagged: set[tuple[str, str]] = set()
    for r in prod.resources:
        args = _args(r.type, r.inputs, "prod", r.name, False, r.additional_secret_outputs)
        if violations("prod-stateful-resources-protected", args):
            flagged.add((r.type, r.name))
    assert flagged == {(r.type, r.name) for r in prod.resources if r.protect}
    assert {typ for typ, _ in flagged} == {
        "docker:index/volume:Volume", TOPIC, "postgresql:index/database:Database",
        "postgresql:index/role:Role", "snowflake:index/database:Database",
        "snowflake:index/schema:Schema", "pulumi-python:dynamic/lenses:Environment"}


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_what_the_credentials_rule_inspects_the_program_passes_as_secrets(runs, stack) -> None:
    """The policy sees decrypted values, so it checks additionalSecretOutputs; this closes the
    loop under mocks, which see the secret envelopes: every property the rule counts as a
    credential is also passed as a secret."""
    checked = []
    for resource in runs[stack].resources:
        for prop in credential_properties(_declared_args(resource, stack)):
            checked.append((resource.name, prop))
            assert contains_secret(resource.inputs[prop]), (resource.name, prop)
    # Mosquitto's password file, Lenses HQ's config and the agent's, both connectors'
    # configs, the processors' HQ password, the Postgres provider's. (No container env holds
    # a credential: tests/test_inspection.py.)
    assert {("mqtt-mosquitto", "uploads"), ("lenses-lenses-hq", "uploads"),
            ("lenses-lenses-agent", "uploads"),
            ("connectors-mqtt-source", "config"), ("connectors-snowflake-sink", "config"),
            ("processors-heart_rate", "password"), ("postgres-provider", "password"),
            ("snowflake-provider", "privateKey")} <= set(checked)
    if stack == "prod":
        assert ("kafka-provider", "saslPassword") in checked


def test_the_secret_envelope_is_what_the_server_drops() -> None:
    """A policy never sees the envelope: the server's deserialisation unwraps it, so a secret
    credential without additionalSecretOutputs is still flagged."""
    args = _args("pulumi:providers:kafka", {"saslPassword": {**SECRET, "value": "p"}})
    assert args.props["saslPassword"] == "p"
    assert violations("credentials-are-secret", args)


def test_the_readme_documents_every_policy_at_its_level() -> None:
    readme = (ROOT / "policies" / "README.md").read_text()
    rows = dict(re.findall(r"^\| `([a-z0-9-]+)` \| (\w+)", readme, flags=re.MULTILINE))
    assert rows == {p.name: p.enforcement_level.value for p in POLICIES}
    assert "pulumi preview --stack prod --policy-pack policies" in readme


def test_the_pack_entry_point_serves_every_policy_at_its_level() -> None:
    """`policies/__main__.py` as the CLI runs it: it prints its gRPC port and answers the
    analyzer's GetAnalyzerInfo with the pack's policies and their levels."""
    import grpc
    from google.protobuf import empty_pb2
    from pulumi.runtime.proto import analyzer_pb2_grpc

    # pulumi_policy writes the port without a flush: run unbuffered (`-u`, as policies/analyzer
    # does), so the test does not depend on PYTHONUNBUFFERED in the caller's environment, and
    # fail rather than hang when no port comes.
    server = subprocess.Popen([sys.executable, "-u", "policies/__main__.py"], cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        ready, _, _ = select.select([server.stdout], [], [], 60)
        assert ready, f"policies/__main__.py printed no port in 60 s: {server.poll()=}"
        port = int(server.stdout.readline().strip())
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            info = analyzer_pb2_grpc.AnalyzerStub(channel).GetAnalyzerInfo(
                empty_pb2.Empty(), timeout=30)
    finally:
        server.kill()
        server.wait(timeout=10)
    assert info.name == "health-pipeline-guardrails"
    levels = {p.name: p.enforcementLevel for p in info.policies}
    assert set(levels) == set(BY_NAME)
    assert levels["prod-no-plaintext-endpoint"] == levels["credentials-are-secret"]
    assert levels["prod-no-plaintext-endpoint"] != levels["image-tag-is-a-release"]
