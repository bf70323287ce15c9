"""The policy pack: each policy against compliant and violating resources, then every policy
over what the real program declares for dev and prod."""

from __future__ import annotations

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

from policies.guardrails import POLICIES, WEEK_MS, is_production, stack_of
from tests.harness import ROOT, ProgramRun, Registered, unwrap

BY_NAME = {p.name: p for p in POLICIES}
CONF_OK = "listener 1883\nallow_anonymous false\npassword_file /mosquitto/config/passwd\n"


def _args(typ: str, props: dict[str, Any], stack: str = "prod", name: str = "r",
          protect: bool = False, secret_outputs: list[str] | None = None):
    opts = PolicyResourceOptions(protect, [], None, [], PolicyCustomTimeouts(0, 0, 0),
                                 secret_outputs or [])
    urn = f"urn:pulumi:{stack}::health-pipeline::{typ}::{name}"
    return ResourceValidationArgs(typ, props, urn, name, opts, None)


def violations(policy_name: str, args: ResourceValidationArgs) -> list[str]:
    found: list[str] = []
    BY_NAME[policy_name].validate(args, lambda message, urn=None: found.append(message))
    return found


def _container(**props: Any) -> dict[str, Any]:
    return {"name": "hp-prod-x", "image": "sha256:abc",
            "healthcheck": {"tests": ["CMD", "true"]}, **props}


CASES = [
    # policy, compliant args, violating args, words the violation must contain
    ("credentials-are-secret",
     _args("docker:index/container:Container", _container(envs=["MB_DB_PASS=x", "MB_DB_PORT=1"]),
           secret_outputs=["envs"]),
     _args("docker:index/container:Container", _container(envs=["MB_DB_PASS=x"])),
     "'envs' holds a credential"),
    ("credentials-are-secret",
     _args("pulumi-python:dynamic/connect:Connector",
           {"config": {"connect.mqtt.password": "p"}}, secret_outputs=["config"]),
     _args("pulumi-python:dynamic/connect:Connector", {"config": {"snowflake.private.key": "k"}}),
     "'config' holds a credential"),
    ("credentials-are-secret",
     _args("pulumi:providers:kafka", {"saslPassword": "p"}, secret_outputs=["saslPassword"]),
     _args("pulumi:providers:kafka", {"saslPassword": "p"}),
     "'saslPassword' holds a credential"),
    ("credentials-are-secret",
     _args("pulumi-python:dynamic/lenses:Processor", {"password": "p"},
           secret_outputs=["password"]),
     _args("pulumi-python:dynamic/lenses:Processor", {"password": "p"}),
     "'password' holds a credential"),
    ("snowflake-service-user-key-pair-only",
     _args("snowflake:index/serviceUser:ServiceUser", {"rsaPublicKey": "MIIB"}),
     _args("snowflake:index/serviceUser:ServiceUser", {"rsaPublicKey": "MIIB", "password": "x"}),
     "remove 'password'"),
    ("prod-topic-durability",
     _args("kafka:index/topic:Topic", {"name": "t", "replicationFactor": 3, "config": {
         "min.insync.replicas": "2", "retention.ms": str(WEEK_MS)}}),
     _args("kafka:index/topic:Topic", {"name": "t", "replicationFactor": 3, "config": {
         "min.insync.replicas": "2", "retention.ms": str(WEEK_MS - 1)}}),
     "at least 7 days"),
    ("prod-topic-durability",
     _args("kafka:index/topic:Topic", {"name": "t", "replicationFactor": 1, "config": {}},
           stack="dev"),
     _args("kafka:index/topic:Topic", {"name": "t", "replicationFactor": 2, "config": {
         "min.insync.replicas": "2", "retention.ms": "-1"}}),
     "replicationFactor 2"),
    ("prod-stateful-resources-protected",
     _args("postgresql:index/database:Database", {"name": "hq"}, protect=True),
     _args("postgresql:index/database:Database", {"name": "hq"}),
     "set protect"),
    ("container-not-privileged",
     _args("docker:index/container:Container", _container(privileged=False)),
     _args("docker:index/container:Container", _container(privileged=True)),
     "privileged"),
    ("container-has-healthcheck",
     _args("docker:index/container:Container", _container()),
     _args("docker:index/container:Container", _container(healthcheck={"tests": ["NONE"]})),
     "needs a healthcheck"),
    ("image-pinned",
     _args("docker:index/remoteImage:RemoteImage", {"name": "registry:5000/pg@sha256:ab"}),
     _args("docker:index/remoteImage:RemoteImage", {"name": "registry:5000/postgres"}),
     "has no tag"),
    ("image-pinned",
     _args("docker:index/remoteImage:RemoteImage", {"name": "postgres:16.9"}),
     _args("docker:index/container:Container", _container(image="postgres:latest")),
     "moving tag :latest"),
    ("mqtt-no-anonymous-access",
     _args("docker:index/container:Container", _container(uploads=[
         {"file": "/mosquitto/config/mosquitto.conf", "content": CONF_OK}])),
     _args("docker:index/container:Container", _container(uploads=[
         {"file": "/mosquitto/config/mosquitto.conf",
          "content": CONF_OK + "allow_anonymous true\n"}])),
     "'allow_anonymous false' exactly once"),
    ("prod-kafka-tls",
     _args("pulumi:providers:kafka", {"tlsEnabled": "true"}),
     _args("pulumi:providers:kafka", {"tlsEnabled": False}),
     "must use TLS"),
    ("prod-mqtt-tls",
     _args("pulumi-python:dynamic/connect:Connector",
           {"config": {"name": "s", "mqtt.server.uri": "ssl://mqtt:8883"}}),
     _args("pulumi-python:dynamic/connect:Connector",
           {"config": {"name": "s", "connect.mqtt.hosts": "tcp://mqtt:1883"}}),
     "should use ssl://"),
]


@pytest.mark.parametrize(("policy", "good", "bad", "words"), CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_policy_passes_the_compliant_and_flags_the_violating(policy, good, bad, words) -> None:
    assert violations(policy, good) == []
    found = violations(policy, bad)
    assert found and words in found[0], found


def test_every_policy_has_a_case_and_a_deliberate_level() -> None:
    assert {c[0] for c in CASES} == set(BY_NAME)
    advisory = {p.name for p in POLICIES if p.enforcement_level is EnforcementLevel.ADVISORY}
    assert advisory == {"prod-mqtt-tls"}
    assert all(p.enforcement_level in (EnforcementLevel.ADVISORY, EnforcementLevel.MANDATORY)
               for p in POLICIES)


def test_production_is_recognised_from_the_urn(monkeypatch) -> None:
    assert stack_of("urn:pulumi:prod-eu::health-pipeline::kafka:index/topic:Topic::t") == "prod-eu"
    assert is_production("prod") and is_production("prod-eu") and not is_production("dev")
    monkeypatch.setenv("HEALTH_PIPELINE_PROD_STACKS", "hospital-a, hospital-b")
    assert is_production("hospital-b")


def _declared_args(resource: Registered, stack: str) -> ResourceValidationArgs:
    """A resource as the engine hands it to a policy: inputs decrypted, options alongside."""
    return _args(resource.type, unwrap(resource.inputs), stack, resource.name,
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


def test_prod_has_no_mandatory_violation_and_only_the_known_advisories(prod) -> None:
    found = _findings(prod)
    mandatory = {name: f for name, f in found.items()
                 if f and BY_NAME[name].enforcement_level is EnforcementLevel.MANDATORY}
    assert mandatory == {}
    assert sorted(found["prod-mqtt-tls"]) == sorted([
        "connector health_mqtt_source: connect.mqtt.hosts is tcp://mqtt.health.internal:1883; "
        "production MQTT should use ssl://.",
        "container health-pipeline-prod-mosquitto: mosquitto.conf has no TLS listener "
        "(certfile); production devices should connect over TLS.",
    ])


def test_dev_has_findings_only_where_a_rule_is_advisory(dev) -> None:
    found = _findings(dev)
    assert {name for name, f in found.items()
            if f and BY_NAME[name].enforcement_level is EnforcementLevel.MANDATORY} == set()
    assert found["prod-topic-durability"] == [], "production rules do not apply to dev"


def test_the_real_program_exercises_every_resource_rule(prod) -> None:
    """The rules are not vacuous over the real program: each type they inspect is declared."""
    types = {r.type for r in prod.resources}
    for typ in ("docker:index/container:Container", "docker:index/remoteImage:RemoteImage",
                "kafka:index/topic:Topic", "pulumi-python:dynamic/connect:Connector",
                "pulumi:providers:kafka", "snowflake:index/serviceUser:ServiceUser",
                "postgresql:index/database:Database"):
        assert typ in types, typ


def test_the_pack_entry_point_serves_every_policy_at_its_level() -> None:
    """`policies/__main__.py` as the CLI runs it: it prints its gRPC port and answers the
    analyzer's GetAnalyzerInfo with the pack's policies and their levels."""
    import grpc
    from google.protobuf import empty_pb2
    from pulumi.runtime.proto import analyzer_pb2_grpc

    server = subprocess.Popen([sys.executable, "policies/__main__.py"], cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
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
    assert levels["prod-mqtt-tls"] != levels["credentials-are-secret"]
