"""Files the program renders into containers: content, secrecy and byte-for-byte stability."""

from __future__ import annotations

import base64
import hmac
import re
import struct

import bcrypt
import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from components.mqtt import container_layout
from components.render.mosquitto import render_conf
from components.settings import MosquittoTuning
from devtools.certs import TestCa
from devtools.harness import (
    ALL_EXTERNAL,
    ALL_EXTERNAL_SECRETS,
    POSTGRES_CA_FILE,
    PROJECT,
    ROOT,
    USER_SECRETS,
    ProgramRun,
    is_secret,
    run_program,
    unwrap,
)
from devtools.servers import tuning_in

MOSQUITTO = "/mosquitto/config"


def _content(run: ProgramRun, role: str, path: str) -> str:
    return unwrap(run.upload(role, path)["content"])


def _pbkdf2_sha512(password: bytes, salt: bytes, iterations: int, length: int) -> bytes:
    """RFC 8018 PBKDF2 written out with hmac, independent of hashlib.pbkdf2_hmac."""
    blocks = []
    for index in range(1, -(-length // 64) + 1):
        u = hmac.new(password, salt + struct.pack(">I", index), "sha512").digest()
        block = bytearray(u)
        for _ in range(iterations - 1):
            u = hmac.new(password, u, "sha512").digest()
            block = bytearray(a ^ b for a, b in zip(block, u, strict=True))
        blocks.append(bytes(block))
    return b"".join(blocks)[:length]


def _verify_mosquitto_line(line: str, username: str, password: str) -> bool:
    name, _, hashed = line.partition(":")
    _, scheme, iterations, salt, digest = hashed.split("$")
    assert scheme == "7", "mosquitto_passwd's PBKDF2-SHA512 format is $7$"
    expected = _pbkdf2_sha512(password.encode(), base64.b64decode(salt), int(iterations), 64)
    return name == username and hmac.compare_digest(expected, base64.b64decode(digest))


def test_password_file_verifies_against_the_generated_passwords(dev: ProgramRun) -> None:
    lines = _content(dev, "mosquitto", f"{MOSQUITTO}/passwd").splitlines()
    users = {line.split(":", 1)[0]: line for line in lines}
    assert set(users) == {"device", "kafka-connect", "monitor", "healthcheck"}
    for user, output in (("device", "mqttDevicePassword"),
                         ("kafka-connect", "mqttConnectorPassword"),
                         ("monitor", "mqttMonitorPassword")):
        password = dev.outputs[output][0]
        assert _verify_mosquitto_line(users[user], user, password)
        assert not _verify_mosquitto_line(users[user], user, password + "x")
    iterations = {line.split("$")[2] for line in lines}
    salts = {line.split("$")[3] for line in lines}
    assert iterations == {"101"} and len(salts) == 4
    assert all(len(base64.b64decode(s)) == 12 for s in salts)


def test_password_file_and_acl_are_secret_or_private(dev: ProgramRun) -> None:
    passwd = dev.upload("mosquitto", f"{MOSQUITTO}/passwd")
    assert is_secret(passwd["content"]) or is_secret(dev.container("mosquitto").inputs["uploads"])
    assert unwrap(passwd["permissions"]) == "0600"
    assert unwrap(dev.upload("mosquitto", f"{MOSQUITTO}/acl")["permissions"]) == "0600"


def test_mosquitto_conf_refuses_anonymous_and_persists(dev: ProgramRun) -> None:
    conf = _content(dev, "mosquitto", f"{MOSQUITTO}/mosquitto.conf").splitlines()
    for line in (
        "allow_anonymous false",
        f"password_file {MOSQUITTO}/passwd",
        f"acl_file {MOSQUITTO}/acl",
        "persistence true",
        "persistence_location /mosquitto/data/",
        "log_dest file /mosquitto/log/mosquitto.log",
        "listener 1883",
        "listener 9001",
        "protocol websockets",
    ):
        assert line in conf, f"mosquitto.conf lacks {line!r}"
    assert conf.index("listener 9001") < conf.index("protocol websockets")


def _tuning_lines(run: ProgramRun) -> list[str]:
    conf = _content(run, "mosquitto", f"{MOSQUITTO}/mosquitto.conf").splitlines()
    keys = ("autosave_interval", "autosave_on_changes", "max_inflight_messages",
            "max_queued_messages")
    return [line for line in conf if line.split(" ", 1)[0] in keys]


def test_mosquitto_conf_queues_and_saves_as_the_pulumi_yaml_defaults_say(dev) -> None:
    defaults = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["config"]
    assert _tuning_lines(dev) == [
        f"autosave_interval {defaults['mqttAutosaveInterval']['default']}",
        f"autosave_on_changes {str(defaults['mqttAutosaveOnChanges']['default']).lower()}",
        f"max_inflight_messages {defaults['mqttMaxInflightMessages']['default']}",
        f"max_queued_messages {defaults['mqttMaxQueuedMessages']['default']}",
    ]


def test_mosquitto_conf_takes_the_queueing_and_persistence_settings() -> None:
    run = run_program("prod", {f"{PROJECT}:mqttMaxInflightMessages": 200,
                               f"{PROJECT}:mqttMaxQueuedMessages": 5000,
                               f"{PROJECT}:mqttAutosaveInterval": 250,
                               f"{PROJECT}:mqttAutosaveOnChanges": True})
    assert _tuning_lines(run) == ["autosave_interval 250", "autosave_on_changes true",
                                  "max_inflight_messages 200", "max_queued_messages 5000"]


def test_a_local_test_broker_reads_back_the_tuning_the_program_rendered() -> None:
    """devtools.servers.Mosquitto.rendered_for runs with what the program's conf says."""
    tuning = MosquittoTuning(max_inflight_messages=7, max_queued_messages=70,
                             autosave_interval=700, autosave_on_changes=True)
    assert tuning_in(render_conf(container_layout(plaintext=False), tuning)) == tuning


def test_acl_lets_devices_publish_and_the_connector_and_monitor_subscribe_only(dev) -> None:
    acl = _content(dev, "mosquitto", f"{MOSQUITTO}/acl")
    rules: dict[str, list[str]] = {}
    user = None
    for line in acl.splitlines():
        if line.startswith("user "):
            user = line.split()[1]
        elif line.startswith("topic "):
            rules.setdefault(user, []).append(line)
    assert rules["device"] == ["topic write health/#"]
    assert rules["kafka-connect"] == ["topic read health/#"]
    assert rules["monitor"] == ["topic read health/#"]
    assert rules["healthcheck"] == ["topic read $SYS/broker/uptime"]
    assert set(rules) == {"device", "kafka-connect", "monitor", "healthcheck"}


def test_rendered_files_are_byte_identical_across_runs(dev_twice) -> None:
    first, second = dev_twice
    files = 0
    for container in first.of_type("docker:index/container:Container"):
        role = container.get("name").rsplit("-dev-", 1)[1]
        for upload in unwrap(container.inputs.get("uploads")) or []:
            if "content" in upload:
                again = _content(second, role, upload["file"])
                assert upload["content"].encode() == again.encode(), upload["file"]
                files += 1
    # Mosquitto's conf, ACL, password file, certificate, key, CA and healthcheck login;
    # Postgres's and Metabase's password files; HQ's config; the agent's conf and provisioning;
    # Stream Reactor's TLS files on fast-data-dev.
    assert files == 15


def test_hq_config_has_database_admin_and_eula(dev: ProgramRun) -> None:
    config = yaml.safe_load(_content(dev, "lenses-hq", "/app/config.yaml"))
    role = dev.one("postgresql:index/role:Role", "databases-hq-role")
    # Plain HTTP in dev: a secure-only session cookie would never reach HQ again.
    assert config["http"] == {"address": ":9991", "secureSessionCookies": False}
    assert config["agents"] == {"address": ":10000"}
    assert config["database"] == {
        "host": "postgres:5432",
        "username": role.get("name"),
        "password": role.get("password"),
        "database": "hq",
        "TLS": False,
        "params": {"sslmode": "disable"},
    }
    assert config["license"] == {"key": "license_key_test", "acceptEULA": True}, (
        "the stack's lensesLicenseKey")
    assert config["logger"] == {"mode": "text"}
    assert config["auth"]["administrators"] == ["admin"]
    (admin,) = config["auth"]["users"]
    password = dev.outputs["lensesAdminPassword"][0]
    assert admin["username"] == "admin"
    assert bcrypt.checkpw(password.encode(), admin["password"].encode())
    assert is_secret(dev.upload("lenses-hq", "/app/config.yaml")["content"]) or is_secret(
        dev.container("lenses-hq").inputs["uploads"]
    )


def test_agent_conf_points_at_its_own_database_and_provisioning(run: ProgramRun) -> None:
    conf = _content(run, "lenses-agent", "/mnt/settings/lenses.conf")
    role = run.one("postgresql:index/role:Role", "databases-agent1-role")
    host = {"dev": "postgres", "prod": "pg.health.internal"}[run.stack]
    sslmode = {"dev": "disable", "prod": "verify-full"}[run.stack]
    for line in (
        "lenses.eula.accept = true",
        'lenses.provisioning.path = "/mnt/settings"',
        f'lenses.storage.postgres.host = "{host}"',
        'lenses.storage.postgres.database = "agent1"',
        f'lenses.storage.postgres.username = "{role.get("name")}"',
        f'lenses.storage.postgres.password = "{role.get("password")}"',
        f'lenses.storage.postgres.properties.sslmode = "{sslmode}"',
        'lenses.sql.execution.mode = "IN_PROC"',
        'lenses.sql.state.dir = "/data/kafka-streams-state"',
        'class.name = "com.snowflake.kafka.connector.SnowflakeSinkConnector"',
    ):
        assert line in conf, f"{run.stack}: agent conf lacks {line!r}"
    assert run.container("lenses-agent").get("volumes")[0]["containerPath"] == "/data"


PG_EXTERNAL = {f"{PROJECT}:postgresMode": "external",
               f"{PROJECT}:postgresEndpoint": "postgresql://pg.example.org:5432"}
PG_SECRETS = {**USER_SECRETS["dev"], "postgresAdminPassword": "test-postgres-admin-password"}


@pytest.mark.parametrize("sslmode", ["require", "verify-ca", "verify-full"])
def test_every_postgres_client_connects_with_the_stacks_sslmode_and_ca(sslmode) -> None:
    """HQ (libpq parameters under database.params, TLS on), the agent (JDBC properties),
    Metabase (MB_DB_CONNECTION_URI) and the postgresql provider: one sslmode, and with the
    verifying modes the stack's CA, copied into each container."""
    verifying = sslmode.startswith("verify")
    ca = {f"{PROJECT}:postgresCaFile": str(POSTGRES_CA_FILE)} if verifying else {}
    run = run_program("dev", {**PG_EXTERNAL, f"{PROJECT}:postgresSslMode": sslmode, **ca},
                      user_secrets=PG_SECRETS)
    expected_params = {"sslmode": sslmode}
    if verifying:
        expected_params["sslrootcert"] = "/app/postgres-ca.pem"
    database = yaml.safe_load(_content(run, "lenses-hq", "/app/config.yaml"))["database"]
    assert (database["TLS"], database["params"]) == (True, expected_params)
    assert database["host"] == "pg.example.org:5432"

    conf = _content(run, "lenses-agent", "/mnt/settings/lenses.conf")
    agent_params = dict(re.findall(r'^lenses\.storage\.postgres\.properties\.(\w+) = "([^"]*)"$',
                                   conf, re.M))
    assert agent_params == {**expected_params, **(
        {"sslrootcert": "/mnt/settings/postgres-ca.pem"} if verifying else {})}

    uri = _env(run, "metabase")["MB_DB_CONNECTION_URI"]
    suffix = "&sslrootcert=/app/postgres-ca.pem" if verifying else ""
    assert uri == f"postgres://pg.example.org:5432/metabaseappdb?sslmode={sslmode}{suffix}"

    provider = run.one("pulumi:providers:postgresql", "postgres-provider")
    assert provider.get("sslmode") == sslmode
    assert provider.get("sslrootcert") == (str(POSTGRES_CA_FILE) if verifying else None)
    for role, path in (("lenses-hq", "/app/postgres-ca.pem"),
                       ("lenses-agent", "/mnt/settings/postgres-ca.pem"),
                       ("metabase", "/app/postgres-ca.pem")):
        files = [unwrap(u["file"]) for u in _uploads(run, role)]
        assert (path in files) is verifying, (role, files)
        if verifying:
            assert run.upload(role, path)["content"] == POSTGRES_CA_FILE.read_text()


def _uploads(run: ProgramRun, role: str) -> list:
    uploads = run.container(role).inputs.get("uploads") or []
    return unwrap(uploads) if is_secret(uploads) else uploads


def _env(run: ProgramRun, role: str) -> dict[str, str]:
    return dict(unwrap(e).split("=", 1) for e in unwrap(run.container(role).get("envs")))


@pytest.mark.parametrize(("source", "registered"), [
    ("stream-reactor", None),
    ("health-pipeline", "io.healthpipeline.connect.mqtt.MqttSourceConnector"),
])
def test_agent_registers_the_mqtt_source_lenses_does_not_know(source, registered) -> None:
    run = run_program("dev", {f"{PROJECT}:kafkaMqttSource": source})
    conf = _content(run, "lenses-agent", "/mnt/settings/lenses.conf")
    classes = re.findall(r'class\.name = "([^"]+)"', conf)
    expected = ["com.snowflake.kafka.connector.SnowflakeSinkConnector"]
    assert classes == expected + ([registered] if registered else [])
    if registered:
        entry = conf.split(registered, 1)[1].split("}", 1)[0]
        # Lenses' topology reads the topic a source writes through this extractor.
        assert "sink = false" in entry
        assert 'extractor.class = "io.lenses.config.kafka.connect.SimpleTopicsExtractor"' in entry
        assert 'property = "kafka.topic"' in entry
    sink = conf.split("SnowflakeSinkConnector", 1)[1].split("}", 1)[0]
    assert "extractor.class" not in sink, "the docs use extractors for sources only"


def test_dev_provisioning_connects_hq_kafka_registry_and_connect(dev: ProgramRun) -> None:
    p = yaml.safe_load(_content(dev, "lenses-agent", "/mnt/settings/provisioning.yaml"))
    hq = p["lensesHq"][0]["configuration"]
    assert p["lensesHq"][0]["name"] == "lenses-hq"
    assert hq == {
        "server": {"value": "lenses-hq"},
        "port": {"value": 10000},
        "agentKey": {"value": dev.one("pulumi-python:dynamic/lenses:Environment",
                                      "lenses-environment").computed["agent_key"]},
        "sslEnabled": {"value": False},
    }
    kafka = p["kafka"][0]["configuration"]
    assert kafka["kafkaBootstrapServers"] == {"value": ["PLAINTEXT://kafka:19092"]}
    assert kafka["protocol"] == {"value": "PLAINTEXT"}
    registry = p["confluentSchemaRegistry"][0]["configuration"]
    assert registry == {"schemaRegistryUrls": {"value": ["http://kafka:8081"]}}
    assert p["connect"][0]["name"] == "dev"
    assert p["connect"][0]["configuration"] == {"workers": {"value": ["http://kafka:8083"]}}
    assert all(entry[0]["version"] == 1 for entry in p.values())


def test_prod_provisioning_uses_sasl_ssl_with_the_secret_password(prod: ProgramRun) -> None:
    upload = prod.upload("lenses-agent", "/mnt/settings/provisioning.yaml")
    p = yaml.safe_load(unwrap(upload["content"]))
    kafka = p["kafka"][0]["configuration"]
    assert kafka["protocol"] == {"value": "SASL_SSL"}
    assert kafka["kafkaBootstrapServers"]["value"][0] == "SASL_SSL://b-1.kafka.health.internal:9096"
    assert kafka["saslMechanism"] == {"value": "SCRAM-SHA-512"}
    jaas = kafka["saslJaasConfig"]["value"]
    assert "ScramLoginModule required" in jaas and '"test-sasl-password"' in jaas
    assert is_secret(upload["content"]) or is_secret(
        prod.container("lenses-agent").inputs["uploads"]
    )


def test_no_generated_or_user_secret_appears_outside_a_secret(run: ProgramRun) -> None:
    secrets = {v for k, (v, s) in run.outputs.items() if s and isinstance(v, str) and v}
    assert len(secrets) >= 4

    def scan(value, where: str) -> None:
        if is_secret(value):
            return
        if isinstance(value, dict):
            for k, v in value.items():
                scan(v, f"{where}.{k}")
        elif isinstance(value, list):
            for i, v in enumerate(value):
                scan(v, f"{where}[{i}]")
        elif isinstance(value, str):
            leaked = [s for s in secrets if s in value]
            assert not leaked, f"{run.stack}: a secret is in plain text at {where}"

    for r in run.resources:
        scan(r.inputs, f"{r.type}::{r.name}")


def test_external_hq_gets_the_agent_key_and_tls_with_the_users_truststore(tmp_path) -> None:
    """External mode: the stack's lensesAgentKey, TLS to HQ's agent listener as set, and the
    truststore uploaded with its password in provisioning (sslTruststore is a file,
    sslTruststorePassword a value: lensesio/json-schemas agent/provisioning.schema.json)."""
    ca = TestCa.create("HQ agents CA")
    truststore = tmp_path / "hq.jks"
    truststore.write_bytes(pkcs12.serialize_java_truststore(
        [pkcs12.PKCS12Certificate(ca.certificate, b"hq-ca")],
        serialization.BestAvailableEncryption(b"store-pass")))
    run = run_program(
        "dev",
        {**ALL_EXTERNAL, f"{PROJECT}:lensesHqAgentsTls": True,
         f"{PROJECT}:lensesHqAgentsTruststore": str(truststore)},
        user_secrets={**ALL_EXTERNAL_SECRETS, "lensesHqAgentsTruststorePassword": "store-pass"},
    )
    assert not run.of_type("pulumi-python:dynamic/lenses:Environment")
    upload = run.upload("lenses-agent", "/mnt/settings/provisioning.yaml")
    hq = yaml.safe_load(unwrap(upload["content"]))["lensesHq"][0]["configuration"]
    assert hq == {
        "server": {"value": "lenses.example.org"},
        "port": {"value": 10000},
        "agentKey": {"value": "agent_key_test"},
        "sslEnabled": {"value": True},
        "sslTruststore": {"file": "/mnt/settings/hq-truststore.jks"},
        "sslTruststorePassword": {"value": "store-pass"},
    }
    assert is_secret(upload["content"]) or is_secret(
        run.container("lenses-agent").inputs["uploads"])
    stored = run.upload("lenses-agent", "/mnt/settings/hq-truststore.jks")
    assert base64.b64decode(stored["contentBase64"]) == truststore.read_bytes()
    assert (stored["permissions"], stored["owner"]) == ("0600", "65534")


def test_external_hq_without_tls_has_no_truststore() -> None:
    run = run_program("dev", ALL_EXTERNAL, user_secrets=ALL_EXTERNAL_SECRETS)
    upload = run.upload("lenses-agent", "/mnt/settings/provisioning.yaml")
    hq = yaml.safe_load(unwrap(upload["content"]))["lensesHq"][0]["configuration"]
    assert hq["sslEnabled"] == {"value": False} and "sslTruststore" not in hq
    assert "/mnt/settings/hq-truststore.jks" not in [
        unwrap(u["file"]) for u in _uploads(run, "lenses-agent")]
