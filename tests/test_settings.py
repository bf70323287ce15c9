"""Typed stack settings read through the real `pulumi.Config`: the stack files load, and every bad
value is reported with its full key, the value and what is allowed."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import pulumi
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from components.settings import DockerHost, Mode, Settings, SettingsError, load_settings
from components.settings import parse_duration_ms as duration_ms
from components.settings import parse_retention_ms as retention_ms
from components.settings.files import KeyFileError, load_ca_bundle, load_truststore
from devtools.certs import TestCa
from devtools.harness import (
    ALL_EXTERNAL,
    ALL_EXTERNAL_SECRETS,
    PROJECT,
    USER_SECRETS,
    ConfigError,
    merge_config,
)

SECRET_VALUE = "Zebra-Quokka-9931"


def load(
    stack: str,
    overrides: Mapping[str, Any] | None = None,
    user_secrets: Mapping[str, str] | None = None,
) -> Settings:
    config, secret_keys = merge_config(
        stack, overrides, USER_SECRETS[stack] if user_secrets is None else user_secrets
    )
    pulumi.runtime.set_all_config(config, secret_keys)
    return load_settings(pulumi.Config(PROJECT), stack)


def problems(stack: str, overrides: Mapping[str, Any], user_secrets=None) -> list[str]:
    with pytest.raises(SettingsError) as caught:
        load(stack, {f"{PROJECT}:{k}": v for k, v in overrides.items()}, user_secrets)
    return caught.value.problems


def test_dev_stack_runs_everything_as_local_containers() -> None:
    s = load("dev")
    assert s.kafka.mode is Mode.CONTAINER
    assert s.kafka.security_protocol == "PLAINTEXT"
    assert s.postgres.sslmode == "disable"
    assert s.protect is False
    assert s.lenses.accept_eula is True
    assert s.docker_hosts() == [DockerHost("unix:///var/run/docker.sock")]


def test_prod_stack_uses_managed_kafka_and_postgres_and_three_ssh_engines() -> None:
    s = load("prod")
    assert s.kafka.mode is Mode.EXTERNAL
    assert s.kafka.broker_count == 3
    assert len(s.kafka.bootstrap_servers) == 3
    assert s.kafka.security_protocol == "SASL_SSL"
    assert s.topics.retention_ms == 604_800_000
    assert s.topics.dead_letter_retention_ms == 30 * 86_400_000
    assert s.topics.min_insync_replicas == 2
    assert s.protect is True
    assert s.postgres.mode is Mode.EXTERNAL
    # Kafka and Postgres are external, so the default local socket runs nothing in prod.
    assert s.docker_hosts() == [
        DockerHost("ssh://deploy@mqtt.health.internal"),
        DockerHost("ssh://deploy@lenses.health.internal"),
        DockerHost("ssh://deploy@analytics.health.internal"),
    ]


# (stack, overrides, key the message names, value as printed, phrase of what is allowed)
BAD_INPUTS = [
    pytest.param("dev", {"topicPartitions": 0}, "topicPartitions", "'0'",
                 "whole number from 1 to 10000", id="partitions-zero"),
    pytest.param("dev", {"topicPartitions": -3}, "topicPartitions", "'-3'",
                 "whole number from 1 to 10000", id="partitions-negative"),
    pytest.param("dev", {"topicReplicationFactor": 2}, "topicReplicationFactor", "'2'",
                 "must not exceed the broker count (1, kafkaBrokerCount)",
                 id="replication-above-broker-count"),
    pytest.param("dev", {"topicRetention": "7 days"}, "topicRetention", "'7 days'",
                 "a number followed by ms, s, m, h or d", id="retention-with-space"),
    pytest.param("dev", {"topicRetention": "10x"}, "topicRetention", "'10x'",
                 "a number followed by ms, s, m, h or d", id="retention-unknown-unit"),
    pytest.param("dev", {"topicRetention": "0s"}, "topicRetention", "'0s'",
                 "must be a positive duration", id="retention-zero"),
    pytest.param("dev", {"topicDeadLetterRetention": "a week"}, "topicDeadLetterRetention",
                 "'a week'", "or infinite", id="dead-letter-retention"),
    pytest.param("dev", {"snowflakeErrorsTolerance": "some"}, "snowflakeErrorsTolerance",
                 "'some'", "must be one of: all, none", id="errors-tolerance"),
    pytest.param("dev", {"mqttImage": "eclipse-mosquitto"}, "mqttImage", "'eclipse-mosquitto'",
                 "needs an explicit tag", id="image-without-tag"),
    pytest.param("dev", {"postgresImage": "postgres:latest"}, "postgresImage",
                 "'postgres:latest'", "must not use the 'latest' tag", id="image-latest"),
    pytest.param("dev", {"lensesAcceptEula": False}, "lensesAcceptEula", "'false'",
                 "pulumi config set --stack dev lensesAcceptEula true", id="eula-not-accepted"),
    pytest.param("dev", {"metabasePort": 1883}, "metabasePort", "'1883'",
                 "already taken by mqttPort", id="host-port-taken-twice"),
    pytest.param("dev", {"kafkaMode": "cloud"}, "kafkaMode", "'cloud'",
                 "must be one of: container, external", id="unknown-mode"),
    pytest.param("prod", {"postgresEndpoint": "pg.internal:5432"}, "postgresEndpoint",
                 "'pg.internal:5432'", "must be a URL like 'postgresql://host:port'",
                 id="endpoint-without-scheme"),
    pytest.param("prod", {"postgresEndpoint": "postgresql://pg:99999"}, "postgresEndpoint",
                 "'postgresql://pg:99999'", "has an invalid port", id="endpoint-port-too-big"),
    pytest.param("dev", {"lensesHqUrl": "ftp://x"}, "lensesHqUrl", "'ftp://x'",
                 "(schemes: https, http)", id="url-wrong-scheme"),
    pytest.param("dev", {"lensesHqAgentsAddress": "hq"}, "lensesHqAgentsAddress", "'hq'",
                 "must be host:port", id="agents-address-without-port"),
    pytest.param("dev", {"lensesEnvironmentName": "EU_prod"}, "lensesEnvironmentName",
                 "'EU_prod'", "lowercase letters, digits and hyphens", id="environment-name"),
    pytest.param("dev", {"lensesEnvironmentName": "prod-"}, "lensesEnvironmentName",
                 "'prod-'", "not starting or ending with a hyphen",
                 id="environment-name-trailing-hyphen"),
    pytest.param("dev", {"lensesEnvironmentName": "e" * 64}, "lensesEnvironmentName",
                 f"'{'e' * 64}'", "must be 1-63", id="environment-name-too-long"),
    pytest.param("dev", {"lensesAgentHeapOpts": "1536m"}, "lensesAgentHeapOpts", "'1536m'",
                 "must be JVM heap flags", id="heap-size-without-flag"),
    pytest.param("dev", {"lensesAgentHeapOpts": "-Xmx1536m --max-heap"}, "lensesAgentHeapOpts",
                 "'-Xmx1536m --max-heap'", "(-Xmx, -Xms, -Xss, -XX:)", id="heap-non-jvm-flag"),
    pytest.param("dev", {"mqttPort": 70000}, "mqttPort", "'70000'",
                 "whole number from 1 to 65535", id="port-out-of-range"),
    pytest.param("dev", {"topicMinInsyncReplicas": 2}, "topicMinInsyncReplicas", "'2'",
                 "must not exceed topicReplicationFactor (1)", id="min-insync-above-replication"),
    pytest.param("prod", {"kafkaBootstrapServers": []}, "kafkaBootstrapServers", "'[]'",
                 "must list host:port entries when kafkaMode is external",
                 id="external-kafka-without-servers"),
    pytest.param("prod", {"kafkaBootstrapServers": ["b-1.kafka.health.internal"]},
                 "kafkaBootstrapServers", "'b-1.kafka.health.internal'",
                 "each entry must be host:port", id="bootstrap-server-without-port"),
    pytest.param("prod", {"postgresSslMode": "disable"}, "postgresSslMode", "'disable'",
                 "use require, verify-ca or verify-full", id="external-postgres-without-tls"),
    pytest.param("dev", {"mqttConnectorUsername": "device"}, "mqttConnectorUsername",
                 "'device'", "must differ from mqttDeviceUsername", id="same-mqtt-usernames"),
    pytest.param("dev", {"mqttMonitorUsername": "kafka-connect"}, "mqttMonitorUsername",
                 "'kafka-connect'", "must differ from mqttDeviceUsername and "
                 "mqttConnectorUsername", id="monitor-is-the-connector"),
    pytest.param("dev", {"mqttMonitorUsername": "watch er"}, "mqttMonitorUsername",
                 "'watch er'", "must be 1-64 letters, digits", id="monitor-username-characters"),
    pytest.param("dev", {"mqttDockerHost": "docker.internal"}, "mqttDockerHost",
                 "'docker.internal'", "must be a Docker host URL", id="service-docker-host"),
    pytest.param("dev", {"dockerHost": "docker.internal"}, "dockerHost", "'docker.internal'",
                 "tcp://host:port or ssh://user@host", id="docker-host-without-scheme"),
    pytest.param("dev", {"publishIp": "999.1.1.1"}, "publishIp", "'999.1.1.1'",
                 "must be an IPv4 address", id="publish-ip-octet-too-big"),
    pytest.param("dev", {"snowflakeWarehouseSize": "HUGE"}, "snowflakeWarehouseSize", "'HUGE'",
                 "must be one of: XSMALL, SMALL", id="warehouse-size"),
    pytest.param("dev", {"snowflakeWarehouseAutoSuspend": 30}, "snowflakeWarehouseAutoSuspend",
                 "'30'", "whole number from 60 to 86400", id="warehouse-auto-suspend"),
    pytest.param("dev", {"snowflakeActiveKey": 3}, "snowflakeActiveKey", "'3'",
                 "whole number from 1 to 2", id="active-key-slot"),
    pytest.param("dev", {"snowflakeKey1": "keys/absent.p8"}, "snowflakeKey1", "'keys/absent.p8'",
                 "cannot be read", id="brought-key-missing"),
    pytest.param("dev", {"snowflakeAccountName": "my account"}, "snowflakeAccountName",
                 "'my account'", "must be a Snowflake identifier", id="snowflake-account-name"),
    pytest.param("dev", {"kafkaMqttSource": "paho"}, "kafkaMqttSource", "'paho'",
                 "must be one of: stream-reactor, camel, health-pipeline",
                 id="mqtt-source-connector"),
    pytest.param("dev", {"kafkaMqttSource": "camel"}, "kafkaMqttSource", "'camel'",
                 "camel needs a Connect cluster with Camel's MQTT 5 source installed",
                 id="camel-source-on-fast-data-dev"),
    pytest.param("prod", {"kafkaMqttSource": "camel"}, "mqttSourceTasks", "'3'",
                 "must be 1 with kafkaMqttSource camel: Camel's connector gives every task the "
                 "same config", id="camel-with-shared-tasks"),
    pytest.param("dev", {"mqttSourceTasks": 0}, "mqttSourceTasks", "'0'",
                 "must be a whole number from 1 to 32", id="no-mqtt-source-task"),
    pytest.param("prod", {"mqttSourceTasks": 33}, "mqttSourceTasks", "'33'",
                 "must be a whole number from 1 to 32", id="too-many-mqtt-source-tasks"),
    pytest.param("prod", {"kafkaMode": "cloud"}, "kafkaMode", "'cloud'",
                 "must be one of: container, external", id="unknown-mode-adds-no-other-error"),
    pytest.param("dev", {"postgresSslMode": "verify-full"}, "postgresSslMode",
                 "'verify-full'", "needs postgresCaFile: the PEM file of the CA",
                 id="verifying-sslmode-without-ca"),
    pytest.param("dev", {"postgresSslMode": "require", "postgresCaFile": "keys/pg-ca.pem"},
                 "postgresCaFile", "'keys/pg-ca.pem'",
                 "is only used with postgresSslMode verify-ca or verify-full (it is require",
                 id="ca-with-an-sslmode-that-does-not-verify"),
    pytest.param("dev", {"postgresSslMode": "verify-ca", "postgresCaFile": "keys/absent-ca.pem"},
                 "postgresCaFile", "'keys/absent-ca.pem'", "cannot be read",
                 id="ca-file-missing"),
    pytest.param("dev", {"lensesHqAgentsTls": True}, "lensesHqAgentsTls", "'true'",
                 "applies to an external HQ", id="agents-tls-in-container-mode"),
    pytest.param("dev", {"lensesHqAgentsTruststore": "keys/hq.jks"},
                 "lensesHqAgentsTruststore", "'keys/hq.jks'",
                 "is only used with lensesHqAgentsTls true", id="truststore-without-tls"),
    pytest.param("dev", {"lensesEnvironmentTier": "prod"}, "lensesEnvironmentTier", "'prod'",
                 "must be one of: development, staging, production", id="environment-tier"),
    pytest.param("dev", {"metabaseAdminEmail": "admin@localhost"}, "metabaseAdminEmail",
                 "'admin@localhost'", "must be an email address with a dotted domain",
                 id="metabase-admin-email"),
    pytest.param("dev", {"metabaseSiteName": "  "}, "metabaseSiteName", "'  '",
                 "must not be blank", id="metabase-site-name"),
]


@pytest.mark.parametrize(("stack", "overrides", "key", "shown", "allowed"), BAD_INPUTS)
def test_bad_value_is_named_with_key_value_and_what_is_allowed(
    stack: str, overrides: dict[str, Any], key: str, shown: str, allowed: str
) -> None:
    found = problems(stack, overrides)
    assert len(found) == 1, found
    assert found[0].startswith(f"{PROJECT}:{key} = {shown}: "), found[0]
    assert allowed in found[0], found[0]


def test_all_bad_values_are_reported_in_one_error() -> None:
    bad = {"topicPartitions": 0, "mqttPort": 70000, "kafkaMode": "cloud",
           "postgresImage": "postgres:latest"}
    with pytest.raises(SettingsError) as caught:
        load("dev", {f"{PROJECT}:{k}": v for k, v in bad.items()})
    assert len(caught.value.problems) == 4
    assert "stack 'dev' has 4 invalid setting(s)" in str(caught.value)
    for key in bad:
        assert f"{PROJECT}:{key} = " in str(caught.value), key


def test_missing_required_secret_names_key_and_command_to_set_it() -> None:
    secrets = {k: v for k, v in USER_SECRETS["prod"].items() if k != "kafkaSaslPassword"}
    found = problems("prod", {}, secrets)
    assert len(found) == 1, found
    assert found[0].startswith(f"{PROJECT}:kafkaSaslPassword is not set"), found[0]
    assert "pulumi config set --secret --stack prod kafkaSaslPassword" in found[0]


def test_secret_in_plain_text_is_refused_with_command_to_encrypt_it() -> None:
    secrets = {k: v for k, v in USER_SECRETS["prod"].items() if k != "kafkaSaslPassword"}
    found = problems("prod", {"kafkaSaslPassword": SECRET_VALUE}, secrets)
    assert len(found) == 1, found
    assert f"{PROJECT}:kafkaSaslPassword is stored in plain text" in found[0]
    assert "encrypt it with: pulumi config set --secret --stack prod kafkaSaslPassword" in found[0]
    assert SECRET_VALUE not in found[0]


@pytest.mark.parametrize(
    ("overrides", "secrets"),
    [
        pytest.param({"topicPartitions": 0, "kafkaSaslUsername": ""},
                     {**USER_SECRETS["prod"], "kafkaSaslPassword": SECRET_VALUE},
                     id="secret-next-to-bad-keys"),
        pytest.param({}, {**USER_SECRETS["prod"], "lensesHqUrl": f"hq?token={SECRET_VALUE}"},
                     id="bad-value-stored-as-secret"),
    ],
)
def test_error_message_never_contains_a_secret_value(
    overrides: dict[str, Any], secrets: dict[str, str]
) -> None:
    with pytest.raises(SettingsError) as caught:
        load("prod", {f"{PROJECT}:{k}": v for k, v in overrides.items()}, secrets)
    assert caught.value.problems, "the stack must be invalid for this test to mean anything"
    assert SECRET_VALUE not in str(caught.value)


@pytest.mark.parametrize(
    ("text", "ms"),
    [("60000ms", 60_000), ("90s", 90_000), ("1m", 60_000), ("12h", 43_200_000),
     ("7d", 604_800_000)],
)
def test_duration_converts_to_milliseconds(text: str, ms: int) -> None:
    assert duration_ms(text) == ms


@pytest.mark.parametrize("text", ["", "7", "d", "7 days", "7D", "1.5h", "-1s", "0ms", "10x"])
def test_duration_rejects_malformed_text(text: str) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(text)}$"):
        duration_ms(text)


@pytest.mark.parametrize(("text", "ms"), [("infinite", -1), ("7d", 604_800_000),
                                         ("90s", 90_000)])
def test_retention_is_a_duration_or_infinite(text: str, ms: int) -> None:
    assert retention_ms(text) == ms


@pytest.mark.parametrize("text", ["-1", "Infinite", "forever", "unlimited", "0d", ""])
def test_retention_rejects_anything_else(text: str) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(text)}$"):
        retention_ms(text)


def test_a_stack_may_keep_its_topics_forever() -> None:
    """Kafka's retention.ms -1, for raw vitals a compliance team requires to be kept."""
    assert load("prod", {f"{PROJECT}:topicRetention": "infinite"}).topics.retention_ms == -1


def test_a_retention_spelled_as_kafkas_minus_one_is_refused_naming_infinite() -> None:
    (problem,) = problems("dev", {"topicRetention": "-1"})
    assert problem.startswith(f"{PROJECT}:topicRetention = '-1': must be a positive duration")
    assert "or infinite (Kafka's retention.ms -1: never deleted by age)" in problem


def test_the_sink_skips_bad_records_into_a_dead_letter_topic_by_default() -> None:
    for stack in ("dev", "prod"):
        sf = load(stack).snowflake
        assert (sf.errors_tolerance, sf.dead_letter_queue, sf.dead_letter_context_headers,
                sf.errors_log, sf.errors_log_include_messages) == ("all", True, True, True, False)
    assert load("dev").topics.dead_letter_retention_ms == 86_400_000


def test_skipping_bad_records_without_a_dead_letter_topic_is_refused() -> None:
    """errors.tolerance all without a dead-letter queue drops every record the sink cannot
    convert; the stack must keep them or stop."""
    (problem,) = problems("dev", {"snowflakeDeadLetterQueue": False})
    assert problem == (
        f"{PROJECT}:snowflakeErrorsTolerance = 'all': all skips every record the sink cannot "
        "convert, and without snowflakeDeadLetterQueue it would be dropped; turn the "
        "dead-letter queue on (pulumi config set --stack dev snowflakeDeadLetterQueue true) "
        "or stop at the first such record with none")
    s = load("dev", {f"{PROJECT}:snowflakeDeadLetterQueue": False,
                     f"{PROJECT}:snowflakeErrorsTolerance": "none"})
    assert (s.snowflake.errors_tolerance, s.snowflake.dead_letter_queue) == ("none", False)


def test_a_key_not_declared_in_the_project_reaches_the_program_which_refuses_it() -> None:
    config, _ = merge_config("dev", {f"{PROJECT}:topicPartition": 3})
    assert config[f"{PROJECT}:topicPartition"] == "3"
    with pytest.raises(SettingsError, match="topicPartition is not a setting of this project"):
        load("dev", {f"{PROJECT}:topicPartition": 3})


@pytest.mark.parametrize("value", ["six", True, 6.0])
def test_merge_config_refuses_value_of_wrong_type(value: Any) -> None:
    with pytest.raises(ConfigError, match="key 'topicPartitions' must be of type 'integer'"):
        merge_config("dev", {f"{PROJECT}:topicPartitions": value})


def test_plain_text_secret_is_refused_even_where_the_stack_does_not_read_it() -> None:
    found = problems("dev", {"postgresAdminPassword": SECRET_VALUE})
    assert found == [
        f"{PROJECT}:postgresAdminPassword is stored in plain text; encrypt it with: "
        "pulumi config set --secret --stack dev postgresAdminPassword"
    ]


@pytest.mark.parametrize(
    "image", ["localhost:5000/mosquitto:2.0.22", "registry.example.org/team/postgres:16.9",
              "postgres:16.9@sha256:" + "a" * 64]
)
def test_images_from_registries_with_ports_or_digests_are_accepted(image: str) -> None:
    assert load("dev", {f"{PROJECT}:mqttImage": image}).mqtt.image == image


def test_one_engine_reached_through_two_urls_is_refused() -> None:
    found = problems("prod", {"metabaseDockerHost": "tcp://mqtt.health.internal:2376"})
    assert len(found) == 1, found
    assert "different URLs for the same host 'mqtt.health.internal'" in found[0]


def test_trailing_slash_on_an_engine_url_is_the_same_engine() -> None:
    s = load("prod", {f"{PROJECT}:metabaseDockerHost": "ssh://deploy@mqtt.health.internal/"})
    assert len(s.docker_hosts()) == 2


@pytest.mark.parametrize(("stack", "environment"), [
    ("dev", "dev"), ("Prod", "prod"), ("eu_prod", "eu-prod"), ("team.a__b", "team-a-b"),
    ("_x_", "x"), ("a" * 70, "a" * 63),
])
def test_the_hq_environment_name_is_derived_from_the_stack_name(stack, environment) -> None:
    config, secret_keys = merge_config("dev", None, USER_SECRETS["dev"])
    pulumi.runtime.set_all_config(config, secret_keys)
    assert load_settings(pulumi.Config(PROJECT), stack).lenses.environment == environment


def test_a_stack_name_with_nothing_to_derive_asks_for_the_environment_name() -> None:
    config, secret_keys = merge_config("dev", None, USER_SECRETS["dev"])
    pulumi.runtime.set_all_config(config, secret_keys)
    with pytest.raises(SettingsError) as caught:
        load_settings(pulumi.Config(PROJECT), "___")
    assert any("lensesEnvironmentName" in p and "cannot be derived from the stack name '___'"
               in p and "pulumi config set --stack ___ lensesEnvironmentName" in p
               for p in caught.value.problems), caught.value.problems


def test_an_explicit_environment_name_is_used_as_it_is() -> None:
    assert load("prod", {f"{PROJECT}:lensesEnvironmentName": "eu-prod-1"}).lenses.environment == (
        "eu-prod-1")


def test_running_hq_without_a_license_key_is_refused_with_where_to_get_one() -> None:
    secrets = {k: v for k, v in USER_SECRETS["dev"].items() if k != "lensesLicenseKey"}
    (problem,) = problems("dev", {}, secrets)
    assert problem.startswith(f"{PROJECT}:lensesLicenseKey is not set; it is required because "
                              "lensesMode is container")
    assert "docs.lenses.io/latest/devx/6.0/deployment/installation/docker/hq" in problem
    assert "pulumi config set --secret --stack dev lensesLicenseKey" in problem


def test_an_external_hq_needs_no_license_key_from_this_stack() -> None:
    secrets = {k: v for k, v in ALL_EXTERNAL_SECRETS.items() if k != "lensesLicenseKey"}
    assert load("dev", ALL_EXTERNAL, secrets).lenses.license_key is None


def test_a_ca_bundle_holds_certificates_only_and_every_one_is_kept(tmp_path) -> None:
    first, second = TestCa.create("one"), TestCa.create("two")
    bundle = tmp_path / "bundle.pem"
    bundle.write_text(first.pem + second.pem)
    assert load_ca_bundle(bundle) == first.pem + second.pem
    cert, key = first.server("pg.example.org")
    with_key = tmp_path / "with-key.pem"
    with_key.write_text(cert + key)
    with pytest.raises(KeyFileError, match="holds a private key"):
        load_ca_bundle(with_key)
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate")
    with pytest.raises(KeyFileError, match="not a PEM certificate bundle"):
        load_ca_bundle(garbage)


def test_a_truststore_is_a_jks_named_java_keystore(tmp_path) -> None:
    store = pkcs12.serialize_java_truststore(
        [pkcs12.PKCS12Certificate(TestCa.create().certificate, b"ca")],
        serialization.BestAvailableEncryption(b"pw"))
    good = tmp_path / "hq.jks"
    good.write_bytes(store)
    assert load_truststore(good) == store
    jks = tmp_path / "old.jks"
    jks.write_bytes(b"\xfe\xed\xfe\xed\x00\x00\x00\x02")
    assert load_truststore(jks).startswith(b"\xfe\xed")
    wrong_name = tmp_path / "hq.p12"
    wrong_name.write_bytes(store)
    with pytest.raises(KeyFileError, match=r"must be named \*\.jks"):
        load_truststore(wrong_name)
    pem = tmp_path / "pem.jks"
    pem.write_text(TestCa.create().pem)
    with pytest.raises(KeyFileError, match="keytool -importcert"):
        load_truststore(pem)


def test_the_ca_and_the_truststore_settings_read_their_files(tmp_path) -> None:
    ca = TestCa.create()
    (tmp_path / "pg-ca.pem").write_text(ca.pem)
    store = tmp_path / "hq.jks"
    store.write_bytes(b"\xfe\xed\xfe\xed\x00\x00\x00\x02")
    settings = load("dev", {
        f"{PROJECT}:postgresSslMode": "verify-ca",
        f"{PROJECT}:postgresCaFile": str(tmp_path / "pg-ca.pem"),
        **{k: v for k, v in ALL_EXTERNAL.items() if "lenses" in k},
        f"{PROJECT}:lensesHqAgentsTls": True,
        f"{PROJECT}:lensesHqAgentsTruststore": str(store),
    }, {**USER_SECRETS["dev"], **ALL_EXTERNAL_SECRETS, "lensesHqAgentsTruststorePassword": "pw"})
    assert settings.postgres.ca.pem == ca.pem and settings.postgres.verifies_server
    assert settings.lenses.hq_agents_tls
    assert settings.lenses.hq_agents_truststore == store.read_bytes()
    assert settings.lenses.hq_agents_truststore_password is not None


@pytest.mark.parametrize(("key", "hint"), [
    ("topicPartition", "did you mean health-pipeline:topicPartitions?"),
    ("mqttTLSPort", "did you mean health-pipeline:mqttTlsPort?"),
    ("zzzz", "see the settings reference in docs/settings.md"),
])
def test_an_undeclared_key_is_refused_with_the_nearest_declared_one(key, hint) -> None:
    """A typo in a stack file would otherwise be ignored, and the stack would get the
    default (the CLI passes undeclared keys on without a word)."""
    found = problems("dev", {key: 6})
    assert len(found) == 1, found
    assert found[0].startswith(f"{PROJECT}:{key} is not a setting of this project"), found
    assert hint in found[0] and f"pulumi config rm {PROJECT}:{key}" in found[0]


def test_keys_of_other_namespaces_are_not_this_projects_to_judge() -> None:
    load("dev", {"snowflake:role": "X", "docker:host": "unix:///var/run/docker.sock"})


def test_mosquitto_tuning_defaults_to_a_bounded_queue_and_regular_saves() -> None:
    for stack in ("dev", "prod"):
        tuning = load(stack).mqtt.tuning
        assert tuning.max_queued_messages >= 1 and tuning.autosave_interval >= 1, stack


@pytest.mark.parametrize(("key", "meaning"), [
    ("mqttMaxInflightMessages", "0 is Mosquitto's 'no maximum'"),
    ("mqttMaxQueuedMessages", "0 is Mosquitto's 'no maximum' (mosquitto.conf(5): not "
                              "recommended)"),
    ("mqttAutosaveInterval", "0 (changes) turns autosave off"),
])
def test_mosquittos_zero_for_no_limit_is_refused_saying_what_it_would_mean(key, meaning) -> None:
    (problem,) = problems("dev", {key: 0})
    assert problem.startswith(f"{PROJECT}:{key} = '0': must be a whole number from 1 to ")
    assert meaning in problem


def test_an_autosave_interval_of_zero_seconds_is_refused_in_seconds() -> None:
    (problem,) = problems("dev", {"mqttAutosaveOnChanges": False, "mqttAutosaveInterval": 0})
    assert problem.startswith(f"{PROJECT}:mqttAutosaveInterval = '0': must be a whole number "
                              "from 1 to 86400; 0 (seconds) turns autosave off")


@pytest.mark.parametrize(("key", "value", "allowed"), [
    ("mqttMaxInflightMessages", 65_536, "from 1 to 65535"),
    ("mqttMaxQueuedMessages", -5, "from 1 to 100000000"),
    ("mqttAutosaveInterval", 1_000_001, "from 1 to 1000000"),
])
def test_mosquitto_tuning_out_of_range_is_refused_with_the_range(key, value, allowed) -> None:
    (problem,) = problems("dev", {key: value})
    assert problem == f"{PROJECT}:{key} = '{value}': must be a whole number {allowed}"


def test_an_autosave_interval_in_seconds_is_at_most_a_day() -> None:
    (problem,) = problems("dev", {"mqttAutosaveOnChanges": False,
                                  "mqttAutosaveInterval": 86_401})
    assert problem == (f"{PROJECT}:mqttAutosaveInterval = '86401': must be a whole number "
                       "from 1 to 86400")


def test_an_autosave_count_may_exceed_a_day_of_seconds() -> None:
    tuning = load("dev", {f"{PROJECT}:mqttAutosaveInterval": 100_000}).mqtt.tuning
    assert (tuning.autosave_on_changes, tuning.autosave_interval) == (True, 100_000)
