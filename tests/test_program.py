"""The whole program under mocks, per stack: inventory, wiring, providers, parents, protect."""

from __future__ import annotations

import pytest

from devtools.harness import ALL_EXTERNAL, ALL_EXTERNAL_SECRETS, ProgramRun, run_program

CONTAINER = "docker:index/container:Container"
VOLUME = "docker:index/volume:Volume"
IMAGE = "docker:index/remoteImage:RemoteImage"
NETWORK = "docker:index/network:Network"
PASSWORD = "random:index/randomPassword:RandomPassword"
SALT = "random:index/randomBytes:RandomBytes"
PG_ROLE = "postgresql:index/role:Role"
PG_DB = "postgresql:index/database:Database"
PG_GRANT = "postgresql:index/grant:Grant"

APPS = ("hq", "agent1", "agent2", "metabaseappdb")


def _engine(slug: str) -> set[tuple[str, str]]:
    return {
        ("healthpipe:docker:DockerEngine", f"docker-{slug}"),
        ("pulumi:providers:docker", f"docker-{slug}-provider"),
        (NETWORK, f"docker-{slug}-network"),
    }


def _service(component: str, role: str, volumes: tuple[str, ...] = ()) -> set[tuple[str, str]]:
    return {
        (IMAGE, f"{component}-{role}-image"),
        (CONTAINER, f"{component}-{role}"),
        *((VOLUME, f"{component}-{v}") for v in volumes),
    }


def _https_front(component: str, role: str) -> set[tuple[str, str]]:
    """The nginx proxy in front of a service and its generated certificate."""
    tls = f"{component}-{role}-https"
    return {
        *_service(component, f"{role}-https"),
        ("tls:index/privateKey:PrivateKey", f"{tls}-ca-key"),
        ("tls:index/selfSignedCert:SelfSignedCert", f"{tls}-ca"),
        ("tls:index/privateKey:PrivateKey", f"{tls}-key"),
        ("tls:index/certRequest:CertRequest", f"{tls}-request"),
        ("tls:index/locallySignedCert:LocallySignedCert", f"{tls}-certificate"),
    }


MQTT_TLS = {
    ("tls:index/privateKey:PrivateKey", "mqtt-tls-ca-key"),
    ("tls:index/selfSignedCert:SelfSignedCert", "mqtt-tls-ca"),
    ("tls:index/privateKey:PrivateKey", "mqtt-tls-key"),
    ("tls:index/certRequest:CertRequest", "mqtt-tls-request"),
    ("tls:index/locallySignedCert:LocallySignedCert", "mqtt-tls-certificate"),
    # Stream Reactor's source insists on a client certificate of its own.
    ("tls:index/privateKey:PrivateKey", "mqtt-connector-tls-key"),
    ("tls:index/selfSignedCert:SelfSignedCert", "mqtt-connector-tls-certificate"),
}
MQTT = {
    *MQTT_TLS,
    ("healthpipe:mqtt:MqttBroker", "mqtt"),
    *_service("mqtt", "mosquitto", ("mosquitto-data", "mosquitto-log")),
    *((PASSWORD, f"mqtt-{u}-password") for u in ("device", "connector", "monitor", "health")),
    *((SALT, f"mqtt-{u}-salt") for u in ("device", "connector", "monitor", "health")),
}
DATABASES = {
    ("healthpipe:postgres:AppDatabases", "databases"),
    *((PASSWORD, f"databases-{a}-password") for a in APPS),
    *((PG_ROLE, f"databases-{a}-role") for a in APPS),
    *((PG_DB, f"databases-{a}") for a in APPS),
    *((PG_GRANT, f"databases-{a}-revoke-public") for a in APPS),
}
LENSES = {
    ("healthpipe:lenses:SqlProcessors", "processors"),
    *(("pulumi-python:dynamic/lenses:Processor", f"processors-{s}")
      for s in ("blood_pressure", "heart_rate", "oxygen_saturation", "temperature")),
    ("pulumi-python:dynamic/lenses:TopicFormat", "processors-device_data-format"),
    ("healthpipe:lenses:Lenses", "lenses"),
    (PASSWORD, "lenses-admin-password"),
    ("pulumi-python:dynamic/lenses:Environment", "lenses-environment"),
    *_service("lenses", "lenses-hq"),
    *_service("lenses", "lenses-agent", ("lenses-agent-data",)),
}
METABASE = {
    ("healthpipe:metabase:Metabase", "metabase"),
    *_service("metabase", "metabase"),
    (PASSWORD, "metabase-admin-password"),
    ("pulumi-python:dynamic/metabase:Setup", "metabase-setup"),
    ("pulumi-python:dynamic/metabase:Database", "metabase-snowflake"),
    ("pulumi-python:dynamic/metabase:Dashboard", "metabase-dashboard"),
}
TOPIC_NAMES = (
    "device_data",
    "blood_pressure_device_topic",
    "heart_rate_device_topic",
    "oxygen_saturation_device_topic",
    "temperature_device_topic",
    "snowflake_sink_dlq",
)
KAFKA = {
    ("healthpipe:kafka:KafkaCluster", "kafka"),
    ("pulumi:providers:kafka", "kafka-provider"),
    ("healthpipe:topics:Topics", "topics"),
    *(("kafka:index/topic:Topic", f"topics-{t}") for t in TOPIC_NAMES),
}
SNOWFLAKE = {
    ("healthpipe:snowflake:ConnectorKeys", "snowflake-keys"),
    ("tls:index/privateKey:PrivateKey", "snowflake-keys-slot1"),
    ("healthpipe:snowflake:SnowflakeIngest", "snowflake"),
    ("pulumi:providers:snowflake", "snowflake-provider"),
    ("snowflake:index/warehouse:Warehouse", "snowflake-warehouse"),
    ("snowflake:index/accountRole:AccountRole", "snowflake-role"),
    ("snowflake:index/grantAccountRole:GrantAccountRole", "snowflake-role-to-admin"),
    ("snowflake:index/grantPrivilegesToAccountRole:GrantPrivilegesToAccountRole",
     "snowflake-warehouse-usage"),
    ("snowflake:index/database:Database", "snowflake-database"),
    ("snowflake:index/schema:Schema", "snowflake-schema"),
    ("snowflake:index/grantOwnership:GrantOwnership", "snowflake-schema-ownership"),
    ("snowflake:index/grantOwnership:GrantOwnership", "snowflake-database-ownership"),
    ("snowflake:index/serviceUser:ServiceUser", "snowflake-user"),
    ("snowflake:index/grantAccountRole:GrantAccountRole", "snowflake-role-to-user"),
    ("healthpipe:snowflake:ConnectorKeys", "snowflake-reporting-keys"),
    ("tls:index/privateKey:PrivateKey", "snowflake-reporting-keys-slot1"),
    ("snowflake:index/accountRole:AccountRole", "snowflake-reporting-role"),
    ("snowflake:index/grantAccountRole:GrantAccountRole", "snowflake-reporting-role-to-admin"),
    *(("snowflake:index/grantPrivilegesToAccountRole:GrantPrivilegesToAccountRole",
       f"snowflake-reporting-{grant}")
      for grant in ("warehouse-usage", "database-usage", "schema-usage", "tables-select",
                    "future-tables-select")),
    ("snowflake:index/serviceUser:ServiceUser", "snowflake-reporting-user"),
    ("snowflake:index/grantAccountRole:GrantAccountRole", "snowflake-reporting-role-to-user"),
}
CONNECTORS = {
    ("healthpipe:connectors:StreamConnectors", "connectors"),
    ("pulumi-python:dynamic/connect:Connector", "connectors-mqtt-source"),
    ("pulumi-python:dynamic/connect:Connector", "connectors-snowflake-sink"),
}
POSTGRES_EXTERNAL = {
    ("healthpipe:postgres:PostgresServer", "postgres"),
    ("pulumi:providers:postgresql", "postgres-provider"),
}

EXPECTED = {
    "dev": {
        *_engine("local"),
        *MQTT,
        *KAFKA,
        *_service("kafka", "kafka", ("kafka-data",)),
        *POSTGRES_EXTERNAL,
        (PASSWORD, "postgres-admin-password"),
        *_service("postgres", "postgres", ("postgres-data",)),
        *DATABASES,
        *((PG_GRANT, f"databases-{db}-revoke-public") for db in ("postgres", "template1")),
        *LENSES,
        *METABASE,
        *SNOWFLAKE,
        *CONNECTORS,
    },
    "prod": {
        *_https_front("lenses", "lenses-hq"),
        *_https_front("metabase", "metabase"),
        *_engine("mqtt-health-internal"),
        *_engine("lenses-health-internal"),
        *_engine("analytics-health-internal"),
        *MQTT,
        *KAFKA,
        *POSTGRES_EXTERNAL,
        *DATABASES,
        *LENSES,
        *METABASE,
        *SNOWFLAKE,
        *CONNECTORS,
    },
}


def test_inventory_is_exactly_what_the_stack_declares(run: ProgramRun) -> None:
    declared = [(r.type, r.name) for r in run.resources]
    assert len(declared) == len(set(declared)), f"{run.stack}: duplicate resource names"
    assert set(declared) == EXPECTED[run.stack]


def test_every_child_has_its_component_as_parent(run: ProgramRun) -> None:
    for r in run.resources:
        parent_type = r.parent.split("::")[2].split("$")[-1]
        if r.type.startswith("healthpipe:"):
            assert parent_type == "pulumi:pulumi:Stack", f"{r.name} is not top level"
        else:
            assert parent_type.startswith("healthpipe:"), f"{r.name} has parent {r.parent}"
            component = r.parent.rpartition("::")[2]
            assert r.name.startswith(f"{component}-"), f"{r.name} is not named for {component}"


def test_every_resource_in_the_remote_system_is_named_explicitly(run: ProgramRun) -> None:
    for r in run.resources:
        if r.type.split(":")[0] in ("docker", "postgresql") and r.type != PG_GRANT:
            assert r.get("name"), f"{r.type} {r.name} would be auto-named"


def test_docker_resources_use_the_explicit_provider_of_their_engine(run: ProgramRun) -> None:
    providers = {r.urn: r for r in run.of_type("pulumi:providers:docker")}
    for r in run.resources:
        if r.type.startswith("docker:"):
            provider = providers.get(r.provider_urn)
            assert provider is not None, f"{r.name} uses no explicit docker provider"
            engine = provider.name.removesuffix("-provider")
            if r.type == NETWORK:
                assert r.name == f"{engine}-network"


def test_prod_engines_are_the_ssh_hosts_from_the_stack_file(prod: ProgramRun) -> None:
    hosts = {p.get("host") for p in prod.of_type("pulumi:providers:docker")}
    assert hosts == {
        "ssh://deploy@mqtt.health.internal",
        "ssh://deploy@lenses.health.internal",
        "ssh://deploy@analytics.health.internal",
    }


def test_dev_engine_is_the_local_socket(dev: ProgramRun) -> None:
    (provider,) = dev.of_type("pulumi:providers:docker")
    assert provider.get("host") == "unix:///var/run/docker.sock"


def test_postgres_resources_use_the_admin_provider(run: ProgramRun) -> None:
    provider = run.one("pulumi:providers:postgresql", "postgres-provider")
    for r in run.resources:
        if r.type.startswith("postgresql:"):
            assert r.provider_urn == provider.urn, f"{r.name} bypasses the admin provider"


def test_postgres_provider_waits_for_the_healthy_container(dev: ProgramRun) -> None:
    provider = dev.one("pulumi:providers:postgresql", "postgres-provider")
    container = dev.container("postgres")
    assert container.urn in provider.dependencies
    assert container.get("wait") is True
    assert provider.get("sslmode") == "disable"
    assert provider.get("host") == "localhost" and provider.get("port") == "5432"


def test_prod_postgres_provider_is_the_managed_server_over_tls(prod: ProgramRun) -> None:
    provider = prod.one("pulumi:providers:postgresql", "postgres-provider")
    assert provider.get("host") == "pg.health.internal"
    assert provider.get("sslmode") == "verify-full"
    assert provider.get("superuser") == "false"
    assert provider.get("username") == "pipeline_admin"
    assert provider.secret("password")


def test_each_database_is_owned_by_its_own_login_role(run: ProgramRun) -> None:
    owners = {}
    for app in APPS:
        role = run.one(PG_ROLE, f"databases-{app}-role")
        database = run.one(PG_DB, f"databases-{app}")
        assert database.get("name") == app
        assert database.get("owner") == role.get("name")
        owners[app] = role.get("name")
    assert len(set(owners.values())) == len(APPS), "roles are shared between applications"


def test_no_application_role_has_elevated_rights(run: ProgramRun) -> None:
    for role in run.of_type(PG_ROLE):
        assert role.get("login") is True, role.name
        for right in ("superuser", "createDatabase", "createRole", "replication",
                      "bypassRowLevelSecurity"):
            assert role.get(right) is False, f"{role.name}.{right}"
        assert role.secret("password"), f"{role.name} password is not secret"


def test_public_loses_connect_on_every_application_database(run: ProgramRun) -> None:
    for app in APPS:
        grant = run.one(PG_GRANT, f"databases-{app}-revoke-public")
        assert grant.get("database") == app
        assert grant.get("role") == "public"
        assert grant.get("objectType") == "database"
        assert grant.get("privileges") == []


def test_public_loses_connect_on_the_maintenance_databases_of_our_own_server(runs) -> None:
    """dev runs its own Postgres: postgres and template1 are closed to the application roles.
    prod's managed server is its administrator's (docs/components.md says what to run)."""
    for db in ("postgres", "template1"):
        grant = runs["dev"].one(PG_GRANT, f"databases-{db}-revoke-public")
        assert (grant.get("database"), grant.get("role"), grant.get("objectType"),
                grant.get("privileges")) == (db, "public", "database", [])
    prod = {g.get("database") for g in runs["prod"].of_type(PG_GRANT)}
    assert not prod & {"postgres", "template1"}


def test_prod_protects_stateful_resources_and_dev_does_not(runs) -> None:
    for stack, expected in (("dev", False), ("prod", True)):
        stateful = [r for r in runs[stack].resources if r.type in (VOLUME, PG_ROLE, PG_DB)]
        assert stateful
        for r in stateful:
            assert r.protect is expected, f"{stack}: {r.name} protect={r.protect}"


def test_stack_outputs_expose_endpoints_and_only_secret_credentials(run: ProgramRun) -> None:
    # prod's Connect is external: its operator places the Stream Reactor source's TLS files.
    https = {"lensesCaCertificate", "metabaseCaCertificate", "mqttConnectorCertificate",
             "mqttConnectorKey"} if run.stack == "prod" else set()
    assert set(run.outputs) == https | {
        "mqttUrl", "mqttWebsocketUrl", "mqttCaCertificate", "mqttDeviceUsername",
        "mqttDevicePassword",
        "mqttConnectorUsername", "mqttConnectorPassword", "mqttMonitorUsername",
        "mqttMonitorPassword", "kafkaBootstrapServers",
        "schemaRegistryUrl", "connectUrl", "postgresHost", "postgresPort",
        "postgresAdminUsername", "postgresAdminPassword", "lensesUrl", "lensesAdminUsername",
        "lensesAdminPassword", "metabaseUrl", "topics", "snowflakeUrl", "snowflakeUser",
        "snowflakeDatabase", "snowflakeSchema", "snowflakeRole", "snowflakeWarehouse",
        "snowflakePrivateKey", "snowflakeReportingUser", "snowflakeReportingRole",
        "snowflakeReportingPrivateKey", "metabaseAdminEmail", "metabaseAdminPassword",
        "connectors", "sqlProcessors",
    }
    # The snowflake SDK marks every login name secret itself.
    secret_keys = {k for k in run.outputs if k.endswith(("Password", "PrivateKey", "Key"))}
    secret_keys |= {"snowflakeUser", "snowflakeReportingUser"}
    for key, (value, secret) in run.outputs.items():
        assert value not in (None, ""), f"{run.stack}: output {key} is empty"
        assert secret is (key in secret_keys), f"{run.stack}: {key} secret={secret}"


def test_dev_outputs_point_at_the_published_local_ports(dev: ProgramRun) -> None:
    values = {k: v for k, (v, _) in dev.outputs.items()}
    assert values["mqttUrl"] == "ssl://localhost:8883"
    assert values["mqttWebsocketUrl"] == "wss://localhost:9443"
    assert values["mqttCaCertificate"].startswith("-----BEGIN CERTIFICATE-----")
    assert values["kafkaBootstrapServers"] == ["localhost:9092"]
    assert values["schemaRegistryUrl"] == "http://localhost:8081"
    assert values["connectUrl"] == "http://localhost:8083"
    assert values["lensesUrl"] == "http://localhost:9991"
    assert values["metabaseUrl"] == "http://localhost:3000"


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_images_are_pinned_to_explicit_tags(runs, stack: str) -> None:
    for image in runs[stack].of_type(IMAGE):
        name = image.get("name")
        tag = name.rpartition(":")[2]
        assert ":" in name and "/" not in tag and tag != "latest", name
        assert image.get("keepLocally") is True


def test_a_stack_of_external_services_declares_only_the_lenses_agent_and_databases() -> None:
    run = run_program("dev", overrides=ALL_EXTERNAL, user_secrets=ALL_EXTERNAL_SECRETS)
    containers = {c.get("name") for c in run.of_type(CONTAINER)}
    assert containers == {"health-pipeline-dev-lenses-agent"}
    env = dict(e.split("=", 1) for e in run.container("lenses-agent").get("envs"))
    assert set(env) == {"LENSES_HEAP_OPTS"}, "the agent key is in provisioning.yaml, not here"
    assert not run.of_type("pulumi-python:dynamic/lenses:Environment"), "HQ's own to manage"
    assert len(run.of_type(PG_DB)) == 4
    values = {k: v for k, (v, _) in run.outputs.items()}
    assert values["mqttUrl"] == "ssl://mqtt.example.org:8883"
    assert values["mqttDevicePassword"] == "test-device-password"
    assert values["lensesUrl"] == "https://lenses.example.org"
    assert values["metabaseUrl"] == "https://metabase.example.org"
    assert not {"lensesAdminUsername", "lensesAdminPassword"} & set(run.outputs)
    assert not {"mqttMonitorUsername", "mqttMonitorPassword"} & set(run.outputs), (
        "an external broker's users are its own")


def test_disabled_lenses_and_metabase_declare_nothing() -> None:
    run = run_program(
        "dev",
        overrides={"health-pipeline:lensesMode": "disabled",
                   "health-pipeline:metabaseMode": "disabled"},
    )
    types = {r.type for r in run.resources}
    assert not types & {"healthpipe:lenses:Lenses", "healthpipe:metabase:Metabase"}
    assert not {"lensesUrl", "metabaseUrl"} & set(run.outputs)
    assert len(run.of_type(PG_DB)) == 4
