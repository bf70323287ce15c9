"""Each container's important properties: ports, env, healthcheck, wait, mounts, aliases."""

from __future__ import annotations

import hashlib
import json

import pytest
import yaml

from components.settings import locate_mqtt_source_plugin, locate_snowflake_jar
from devtools.harness import (
    ALL_EXTERNAL,
    ALL_EXTERNAL_SECRETS,
    POSTGRES_CA_FILE,
    PROJECT,
    STUB_JARS,
    ProgramRun,
    contains_secret,
    project_config,
    run_program,
    unwrap,
)

DEV_CONTAINERS = {
    # role: (alias, {internal: external}, {mount path})
    "mosquitto": ("mosquitto", {8883: 8883, 9443: 9443, 1883: 1883, 9001: 9001},
                  {"/mosquitto/data", "/mosquitto/log"}),
    "kafka": ("kafka", {9092: 9092, 8081: 8081, 8083: 8083}, {"/data"}),
    "postgres": ("postgres", {5432: 5432}, {"/var/lib/postgresql/data"}),
    "lenses-hq": ("lenses-hq", {9991: 9991}, set()),
    "lenses-agent": ("lenses-agent", {}, {"/data"}),
    "metabase": ("metabase", {3000: 3000}, set()),
}


def _env(run: ProgramRun, role: str) -> dict[str, str]:
    return dict(e.split("=", 1) for e in run.container(role).get("envs") or [])


@pytest.mark.parametrize("role", sorted(DEV_CONTAINERS))
def test_container_ports_aliases_and_volumes(dev: ProgramRun, role: str) -> None:
    alias, ports, mounts = DEV_CONTAINERS[role]
    c = dev.container(role)
    assert c.get("name") == f"health-pipeline-dev-{role}"
    assert c.get("hostname") == alias
    (network,) = c.get("networksAdvanced")
    assert network["aliases"] == [alias] and network["name"] == "health-pipeline-dev"
    published = {p["internal"]: p["external"] for p in c.get("ports") or []}
    assert published == ports, f"{role} publishes {published}"
    assert all(p["ip"] == "127.0.0.1" for p in c.get("ports") or []), "dev publishes beyond lo"
    volumes = dev.of_type("docker:index/volume:Volume")
    names = {v.get("name") for v in volumes}
    attached = {v["containerPath"]: v["volumeName"] for v in c.get("volumes") or []}
    assert set(attached) == mounts
    assert set(attached.values()) <= names, f"{role} mounts a volume the stack does not own"


@pytest.mark.parametrize("role", sorted(DEV_CONTAINERS))
def test_container_restarts_and_waits_until_healthy(dev: ProgramRun, role: str) -> None:
    c = dev.container(role)
    assert c.get("restart") == "unless-stopped"
    assert c.get("wait") is True and c.get("waitTimeout") == 300
    check = c.get("healthcheck")
    assert check["tests"][0] in ("CMD", "CMD-SHELL") and len(check["tests"]) > 1
    assert check["interval"] and check["retries"] >= 10
    image = dev.one("docker:index/remoteImage:RemoteImage", f"{c.name}-image")
    assert c.get("image").endswith(
        hashlib.sha256(image.get("name").encode()).hexdigest()
    ), f"{role} does not run the pinned image"


def test_prod_publishes_on_all_interfaces_with_longer_wait(prod: ProgramRun) -> None:
    c = prod.container("mosquitto")
    ports = {p["internal"]: p["ip"] for p in c.get("ports")}
    assert ports == {8883: "0.0.0.0", 9443: "0.0.0.0"}, "TLS only"  # noqa: S104
    assert c.get("waitTimeout") == 600


def test_dev_publishes_the_plain_mqtt_listeners_on_loopback_only(dev: ProgramRun) -> None:
    ports = {p["internal"]: p["ip"] for p in dev.container("mosquitto").get("ports")}
    assert ports == {8883: "127.0.0.1", 9443: "127.0.0.1", 1883: "127.0.0.1",
                     9001: "127.0.0.1"}
    exposed = run_program("dev", {f"{PROJECT}:publishIp": "0.0.0.0"})  # noqa: S104
    ports = {p["internal"]: p["ip"] for p in exposed.container("mosquitto").get("ports")}
    assert ports == {8883: "0.0.0.0", 9443: "0.0.0.0", 1883: "127.0.0.1",  # noqa: S104
                     9001: "127.0.0.1"}


def test_kafka_listeners_reach_containers_and_the_host(dev: ProgramRun) -> None:
    env = _env(dev, "kafka")
    assert env["ADV_HOST"] == "kafka"
    assert env["RUNNING_SAMPLEDATA"] == "0" and env["RUNTESTS"] == "0"
    assert env["KAFKA_LISTENERS"] == (
        "PLAINTEXT://:9092,DOCKERCOMPOSE://:19092,CONTROLLER://:16062"
    )
    assert env["KAFKA_ADVERTISED_LISTENERS"] == (
        "PLAINTEXT://localhost:9092,DOCKERCOMPOSE://kafka:19092"
    )
    assert "DOCKERCOMPOSE:PLAINTEXT" in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"]


def test_kafka_sample_data_and_tests_follow_settings() -> None:
    from devtools.harness import run_program

    run = run_program(
        "dev",
        overrides={
            "health-pipeline:kafkaRunningSampleData": True,
            "health-pipeline:kafkaRunTests": True,
            "health-pipeline:kafkaBrokerPort": 29092,
        },
    )
    env = _env(run, "kafka")
    assert env["RUNNING_SAMPLEDATA"] == "1" and env["RUNTESTS"] == "1"
    assert "PLAINTEXT://localhost:29092" in env["KAFKA_ADVERTISED_LISTENERS"]
    ports = {p["internal"]: p["external"] for p in run.container("kafka").get("ports")}
    assert ports[9092] == 29092


def test_snowflake_jar_is_on_the_connect_plugin_path(dev: ProgramRun) -> None:
    upload = unwrap(dev.upload("kafka", "/connectors/snowflake.jar"))
    assert upload["source"] == "build/stubs/connectors/snowflake.jar", (
        "state must not hold abs paths")
    assert upload["sourceHash"] == locate_snowflake_jar(STUB_JARS.snowflake_jar).sha256
    healthcheck = " ".join(dev.container("kafka").get("healthcheck")["tests"])
    assert "SnowflakeSinkConnector" in healthcheck, "healthy must mean the plugin is loaded"


def test_own_mqtt_source_plugin_is_uploaded_to_the_connect_plugin_path() -> None:
    """kafkaMqttSource=health-pipeline in container mode: every jar of the built plugin lands
    in one plugin directory, and healthy means Connect lists the class."""
    run = run_program("dev", {f"{PROJECT}:kafkaMqttSource": "health-pipeline"})
    jars = sorted(STUB_JARS.mqtt_source_plugin.glob("*.jar"))
    assert any(j.name.startswith("mqtt-source-connector-") for j in jars), jars
    for jar in locate_mqtt_source_plugin(STUB_JARS.mqtt_source_plugin):
        upload = unwrap(run.upload("kafka", f"/connectors/mqtt-source/{jar.path.name}"))
        assert upload["source"] == f"build/stubs/connectors/mqtt-source/{jar.path.name}"
        assert upload["sourceHash"] == jar.sha256
    uploads = unwrap(run.container("kafka").get("uploads"))
    assert len(uploads) == len(jars) + 1, "the plugin's jars and the Snowflake jar"
    healthcheck = " ".join(run.container("kafka").get("healthcheck")["tests"])
    assert "grep -q io.healthpipeline.connect.mqtt.MqttSourceConnector" in healthcheck


def test_missing_own_mqtt_source_plugin_names_the_fix(tmp_path) -> None:
    with pytest.raises(FileNotFoundError) as error:
        locate_mqtt_source_plugin(tmp_path)
    assert "scripts/build-mqtt-source" in str(error.value)


def test_missing_connector_jar_names_the_fix(tmp_path) -> None:
    with pytest.raises(FileNotFoundError) as error:
        locate_snowflake_jar(tmp_path / "snowflake.jar")
    assert "scripts/fetch-connectors" in str(error.value)
    assert project_config()["kafkaConnectSnowflakeJar"]["default"].endswith("/snowflake.jar")


@pytest.mark.parametrize(("key", "fix"), [("kafkaConnectSnowflakeJar", "scripts/fetch-connectors"),
                                          ("kafkaConnectMqttSourcePlugin",
                                           "scripts/build-mqtt-source")])
def test_a_missing_jar_setting_is_refused_with_its_key_and_the_fix(key, fix, tmp_path) -> None:
    """The jars are inputs: a path that holds none is a settings error, before any resource."""
    with pytest.raises(Exception, match=f"{PROJECT}:{key} = .*{fix}"):
        run_program("dev", {f"{PROJECT}:{key}": str(tmp_path / "absent"),
                            f"{PROJECT}:kafkaMqttSource": "health-pipeline"})


def test_postgres_superuser_password_is_generated_and_secret(dev: ProgramRun) -> None:
    """In a 0600 file the image's entrypoint reads (POSTGRES_PASSWORD_FILE), not in the
    environment `docker inspect` shows."""
    c = dev.container("postgres")
    assert not contains_secret(c.inputs["envs"])
    env = _env(dev, "postgres")
    assert env == {"POSTGRES_USER": "postgres", "POSTGRES_DB": "postgres",
                   "POSTGRES_PASSWORD_FILE": "/etc/health-pipeline/postgres-password"}
    upload = dev.upload("postgres", "/etc/health-pipeline/postgres-password")
    assert unwrap(upload["content"]) == dev.outputs["postgresAdminPassword"][0]
    assert upload["permissions"] == "0600"
    assert contains_secret(upload["content"]) or contains_secret(c.inputs["uploads"])
    assert c.get("healthcheck")["tests"][:2] == ["CMD", "pg_isready"]
    assert "127.0.0.1" in c.get("healthcheck")["tests"], "the socket is up during initdb"


def test_metabase_uses_its_own_database_and_role(dev: ProgramRun) -> None:
    """The connection URI carries the TLS settings and no credential; the login goes beside
    it (Metabase's configuring-application-database docs)."""
    env = _env(dev, "metabase")
    role = dev.one("postgresql:index/role:Role", "databases-metabaseappdb-role")
    assert env["MB_DB_CONNECTION_URI"] == "postgres://postgres:5432/metabaseappdb?sslmode=disable"
    assert env["MB_DB_USER"] == role.get("name")
    # The password in a 0600 file the image's run_metabase.sh reads as root (MB_DB_PASS_FILE).
    assert env["MB_DB_PASS_FILE"] == "/etc/health-pipeline/metabase-db-password"
    password = dev.upload("metabase", "/etc/health-pipeline/metabase-db-password")
    assert (unwrap(password["content"]), password["permissions"]) == (role.get("password"),
                                                                      "0600")
    assert not {"MB_DB_PASS", "MB_DB_HOST", "MB_DB_PORT", "MB_DB_DBNAME", "MB_DB_TYPE"} & set(env)
    assert "/api/health" in " ".join(dev.container("metabase").get("healthcheck")["tests"])
    assert [unwrap(u["file"]) for u in unwrap(dev.container("metabase").get("uploads"))] == [
        "/etc/health-pipeline/metabase-db-password"]


def test_prod_metabase_verifies_the_managed_postgres_with_its_ca(prod: ProgramRun) -> None:
    env = _env(prod, "metabase")
    assert env["MB_DB_CONNECTION_URI"] == (
        "postgres://pg.health.internal:5432/metabaseappdb"
        "?sslmode=verify-full&sslrootcert=/app/postgres-ca.pem")
    upload = prod.upload("metabase", "/app/postgres-ca.pem")
    assert upload["content"] == POSTGRES_CA_FILE.read_text()
    assert upload["permissions"] == "0644"


def test_lenses_agent_gets_its_heap_and_no_hq_credential(run: ProgramRun) -> None:
    """No HQ login, no DEMO_HQ_* self-registration and no key in the agent's environment: its
    environment's key is in provisioning.yaml (uploaded 0600), and only that."""
    expected_heap = {"dev": "-Xmx1536m -Xms512m", "prod": "-Xmx4g -Xms2g"}[run.stack]
    assert _env(run, "lenses-agent") == {"LENSES_HEAP_OPTS": expected_heap}
    assert not contains_secret(run.container("lenses-agent").inputs["envs"])


def test_the_program_creates_the_hq_environment_and_hands_the_agent_its_key(
    run: ProgramRun,
) -> None:
    (environment,) = run.of_type("pulumi-python:dynamic/lenses:Environment")
    assert environment.name == "lenses-environment"
    assert environment.get("name") == run.stack
    assert environment.get("tier") == {"dev": "development", "prod": "production"}[run.stack]
    assert environment.get("hq_url") == run.outputs["lensesUrl"][0]
    assert environment.get("username") == "admin"
    assert environment.get("password") == run.outputs["lensesAdminPassword"][0]
    assert environment.secret("password")
    assert environment.protect is (run.stack == "prod")
    assert run.container("lenses-hq").urn in environment.dependencies
    assert environment.urn in run.container("lenses-agent").dependencies
    upload = run.upload("lenses-agent", "/mnt/settings/provisioning.yaml")
    hq = yaml.safe_load(unwrap(upload["content"]))["lensesHq"][0]["configuration"]
    assert hq["agentKey"] == {"value": environment.computed["agent_key"]}
    assert "agent_key" in environment.additional_secret_outputs
    assert upload["permissions"] == "0600"
    assert contains_secret(upload["content"]) or contains_secret(
        run.container("lenses-agent").inputs["uploads"])


def test_lenses_hq_starts_with_the_uploaded_config(run: ProgramRun) -> None:
    hq = run.container("lenses-hq")
    assert hq.get("command") == ["/app/config.yaml"]
    assert hq.get("healthcheck")["tests"] == ["CMD", "lenses-hq", "is-up", "127.0.0.1:9991"]
    assert run.upload("lenses-hq", "/app/config.yaml")["permissions"] == "0600"


def test_containers_start_after_what_they_need(dev: ProgramRun) -> None:
    """Depending on a component means depending on every resource in it."""

    def needs(role: str) -> set[str]:
        return set(dev.container(role).dependencies)

    databases = {r.urn for r in dev.resources if r.type.startswith("postgresql:index/")}
    assert len(databases) == 14  # 4 databases, 4 roles, 6 revocations
    assert databases <= needs("lenses-hq")
    assert databases | {dev.container("lenses-hq").urn} <= needs("lenses-agent")
    assert databases <= needs("metabase")


def test_the_hq_environment_name_reaches_the_agent_its_provisioning_and_the_processors() -> None:
    """One name everywhere HQ knows this stack: the agent registers in it, provisioning names
    its Connect cluster after it, the SQL processors are created in it."""
    run = run_program("dev", {f"{PROJECT}:lensesEnvironmentName": "eu-dev-1"})
    (environment,) = run.of_type("pulumi-python:dynamic/lenses:Environment")
    assert environment.get("name") == "eu-dev-1"
    provisioning = yaml.safe_load(
        unwrap(run.upload("lenses-agent", "/mnt/settings/provisioning.yaml")["content"]))
    assert [c["name"] for c in provisioning["connect"]] == ["eu-dev-1"]
    processors = run.of_type("pulumi-python:dynamic/lenses:Processor")
    assert {p.get("environment") for p in processors} == {"eu-dev-1"}


def test_no_stack_gives_the_agent_an_hq_login(runs) -> None:
    """Neither the HQ administrator's name with a password nor the password itself appears
    anywhere in the agent's container: env, command, uploads (dev, prod, and an external HQ)."""
    external = run_program("dev", ALL_EXTERNAL, user_secrets=ALL_EXTERNAL_SECRETS)
    for run, password in ((runs["dev"], runs["dev"].outputs["lensesAdminPassword"][0]),
                          (runs["prod"], runs["prod"].outputs["lensesAdminPassword"][0]),
                          (external, ALL_EXTERNAL_SECRETS["lensesAdminPassword"])):
        agent = json.dumps(unwrap(run.container("lenses-agent").inputs), default=str)
        assert password not in agent, run.stack
        assert "DEMO_HQ" not in agent and "LENSESHQ_AGENT_KEY" not in agent, run.stack
