"""One loader per service: reads its keys into its model, checking each value."""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from urllib.parse import urlsplit

import pulumi

from components.config_keys import configured_keys, declared_keys, undeclared_problems
from components.mqtt_urls import MQTT_SCHEMES
from components.settings.checks import check_cross_service
from components.settings.files import (
    KeyFileError,
    load_ca_bundle,
    load_private_key,
    load_truststore,
    locate_mqtt_source_plugin,
    locate_snowflake_jar,
    project_path,
)
from components.settings.model import (
    PROJECT_ROOT,
    BroughtTls,
    CaFile,
    ConfigSource,
    ConnectorJar,
    Endpoint,
    HttpsFront,
    KafkaSettings,
    LensesSettings,
    MetabaseSettings,
    Mode,
    MosquittoTuning,
    MqttSettings,
    MqttSource,
    PostgresSettings,
    Settings,
    SettingsError,
    SnowflakeKeySlot,
    SnowflakeSettings,
    TopicSettings,
)
from components.settings.reader import (
    HEAP_FLAG,
    INFINITE,
    Reader,
    _ipv4_problem,
    docker_host_problem,
    host_port,
    parse_retention_ms,
    url_problem,
)

# --- loading --------------------------------------------------------------------------------


def load_settings(config: ConfigSource, stack: str) -> Settings:
    """Read and validate every setting; raise SettingsError listing all problems."""
    r = Reader(config, stack)
    r.problems += undeclared_problems(config.name, configured_keys(config.name), declared_keys())
    r.plaintext_secrets()
    docker_host = r.text("dockerHost", docker_host_problem)

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
    check_cross_service(r, settings)
    if r.problems:
        raise SettingsError(stack, r.problems)
    return settings


def _load_mqtt(r: Reader, docker_host: str) -> MqttSettings:
    mode = r.mode("mqttMode", [Mode.CONTAINER, Mode.EXTERNAL])
    external = mode is Mode.EXTERNAL
    endpoint = r.text("mqttEndpoint", lambda v: url_problem(v, MQTT_SCHEMES))
    if external and not endpoint:
        r.fail("mqttEndpoint", endpoint, "must be set when mqttMode is external")
    users = {}
    for key in ("mqttDeviceUsername", "mqttConnectorUsername", "mqttMonitorUsername"):
        users[key] = r.text(
            key,
            lambda v: None
            if re.match(r"^[A-Za-z0-9_.-]{1,64}$", v)
            else "must be 1-64 letters, digits, '.', '_' or '-'",
        )
    if users["mqttDeviceUsername"] == users["mqttConnectorUsername"]:
        r.fail("mqttConnectorUsername", users["mqttConnectorUsername"],
               "must differ from mqttDeviceUsername (their ACLs differ)")
    monitor = users["mqttMonitorUsername"]
    if monitor in (users["mqttDeviceUsername"], users["mqttConnectorUsername"]):
        r.fail("mqttMonitorUsername", monitor,
               "must differ from mqttDeviceUsername and mqttConnectorUsername (their ACLs "
               "differ)")
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
        monitor_username=monitor,
        device_password=r.secret("mqttDevicePassword", why) if external else None,
        connector_password=r.secret("mqttConnectorPassword", why) if external else None,
        tuning=_load_mosquitto_tuning(r),
    )


def _load_mosquitto_tuning(r: Reader) -> MosquittoTuning:
    """Mosquitto takes 0 for these as "no maximum" or "never save while running"; both leave
    a crash or a stalled connector unbounded, so 0 is refused with what it would mean."""
    on_changes = r.boolean("mqttAutosaveOnChanges")
    unit = "changes" if on_changes else "seconds"
    return MosquittoTuning(
        max_inflight_messages=_at_least_one(
            r, "mqttMaxInflightMessages", 65_535,
            "is Mosquitto's 'no maximum': one slow subscriber could hold every message in "
            "flight"),
        max_queued_messages=_at_least_one(
            r, "mqttMaxQueuedMessages", 100_000_000,
            "is Mosquitto's 'no maximum' (mosquitto.conf(5): not recommended): an offline "
            "subscriber's queue would grow until the broker runs out of memory"),
        autosave_interval=_at_least_one(
            r, "mqttAutosaveInterval", 1_000_000 if on_changes else 86_400,
            f"({unit}) turns autosave off: the broker would write its state only when it "
            "stops cleanly, so a crash would lose every queued message and persistent "
            "session since it started"),
        autosave_on_changes=on_changes,
    )


def _at_least_one(r: Reader, key: str, high: int, zero_means: str) -> int:
    if r.raw(key).strip() == "0":
        r.fail(key, "0", f"must be a whole number from 1 to {high}; 0 {zero_means}")
        return 1
    return r.integer(key, 1, high)


_SERVER_NAME = re.compile(r"^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)"
                          r"(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$")


def _ip_problem(text: str) -> str | None:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return "not an IP address"
    return None


def _load_brought_tls(r: Reader, service: str) -> BroughtTls | None:
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
            pems[name] = load_ca_bundle(project_path(text))
        except KeyFileError as error:
            r.fail(name, text, f"{error} (a path, relative to the project or absolute)")
    if len(pems) < 2 or key is None:
        return None
    return BroughtTls(pems[cert_key], key, pems[ca_key])


MAX_MQTT_SOURCE_TASKS = 32
"""More MQTT source tasks are likelier a typo than a plan: each keeps a persistent session on
the broker, which outlives the task when the count is lowered."""


def _load_kafka(r: Reader, docker_host: str) -> KafkaSettings:
    mode = r.mode("kafkaMode", [Mode.CONTAINER, Mode.EXTERNAL])
    external = mode is Mode.EXTERNAL
    servers = r.strings("kafkaBootstrapServers")
    for server in servers:
        if host_port(server) is None:
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
        urls[key] = r.text(key, lambda v: url_problem(v, ("http", "https")))
        if external and not urls[key]:
            r.fail(key, urls[key], "must be set when kafkaMode is external")
    mqtt_source = r.member("kafkaMqttSource", list(MqttSource))
    if mode is Mode.CONTAINER and mqtt_source is MqttSource.CAMEL:
        r.fail("kafkaMqttSource", mqtt_source.value,
               "camel needs a Connect cluster with Camel's MQTT 5 source installed "
               "(kafkaMode external); fast-data-dev runs stream-reactor or health-pipeline")
    mqtt_source_tasks = r.integer("mqttSourceTasks", 1, MAX_MQTT_SOURCE_TASKS)
    if mqtt_source is MqttSource.CAMEL and mqtt_source_tasks > 1:
        r.fail("mqttSourceTasks", mqtt_source_tasks,
               "must be 1 with kafkaMqttSource camel: Camel's connector gives every task the "
               "same config (CamelSourceConnector.taskConfigs), so its tasks would connect with "
               "one MQTT client id and the broker would keep disconnecting one for another; "
               "use health-pipeline or stream-reactor to share the subscriptions among tasks")
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
        mqtt_source_tasks=mqtt_source_tasks,
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


def _load_plugin_jars(r: Reader, mode: Mode, mqtt_source: MqttSource,
                      ) -> tuple[ConnectorJar | None, tuple[ConnectorJar, ...]]:
    """Container mode: the jars fast-data-dev loads, read and hashed here (an external Connect
    cluster has its connectors installed by its operator)."""
    if mode is not Mode.CONTAINER:
        return None, ()
    snowflake, plugin = None, ()
    text = r.raw("kafkaConnectSnowflakeJar")
    try:
        snowflake = locate_snowflake_jar(project_path(text))
    except FileNotFoundError as error:
        r.fail("kafkaConnectSnowflakeJar", text, f"{error} (a path, relative to the project "
               "or absolute)")
    if mqtt_source is MqttSource.HEALTH_PIPELINE:
        text = r.raw("kafkaConnectMqttSourcePlugin")
        try:
            plugin = locate_mqtt_source_plugin(project_path(text))
        except FileNotFoundError as error:
            r.fail("kafkaConnectMqttSourcePlugin", text, f"{error} (a directory, relative to "
                   "the project or absolute)")
    return snowflake, plugin


def _load_topics(r: Reader, kafka: KafkaSettings) -> TopicSettings:
    partitions = r.integer("topicPartitions", 1, 10_000)
    replication = r.integer("topicReplicationFactor", 1, 32)
    if replication > kafka.broker_count:
        r.fail("topicReplicationFactor", replication,
               f"must not exceed the broker count ({kafka.broker_count}, kafkaBrokerCount)")
    retention_ms = _retention_ms(r, "topicRetention")
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
        dead_letter_retention_ms=_retention_ms(r, "topicDeadLetterRetention"),
    )


def _retention_ms(r: Reader, key: str) -> int:
    """A retention setting as retention.ms: a duration, or `infinite` (-1)."""
    text = r.raw(key)
    try:
        return parse_retention_ms(text)
    except ValueError:
        r.fail(key, text, "must be a positive duration: a number followed by ms, s, m, h or d "
               f"(e.g. 7d), or {INFINITE} (Kafka's retention.ms -1: never deleted by age)")
        return 0


def _load_postgres(r: Reader, docker_host: str) -> PostgresSettings:
    mode = r.mode("postgresMode", [Mode.CONTAINER, Mode.EXTERNAL])
    external = mode is Mode.EXTERNAL
    endpoint_text = r.text("postgresEndpoint",
                           lambda v: url_problem(v, ("postgresql", "postgres")))
    endpoint = None
    if endpoint_text and not url_problem(endpoint_text, ("postgresql", "postgres")):
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


def _load_postgres_ca(r: Reader, sslmode: str) -> CaFile | None:
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
    path = project_path(text)
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


def _load_lenses(r: Reader, docker_host: str) -> LensesSettings:
    mode = r.mode("lensesMode", [Mode.CONTAINER, Mode.EXTERNAL, Mode.DISABLED])
    external = mode is Mode.EXTERNAL
    hq_url = r.text("lensesHqUrl", lambda v: url_problem(v, ("https", "http")))
    agents_text = r.raw("lensesHqAgentsAddress")
    agents = host_port(agents_text) if agents_text else None
    if agents_text and agents is None:
        r.fail("lensesHqAgentsAddress", agents_text, "must be host:port of HQ's agent listener")
    if external:
        if not hq_url:
            r.fail("lensesHqUrl", hq_url, "must be set when lensesMode is external")
        if not agents_text:
            r.fail("lensesHqAgentsAddress", agents_text,
                   "must be set when lensesMode is external")
    heap = r.raw("lensesAgentHeapOpts")
    if not heap.split() or not all(HEAP_FLAG.match(flag) for flag in heap.split()):
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


def _load_hq_agents_tls(r: Reader, mode: Mode) -> dict:
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
            truststore = load_truststore(project_path(truststore_text))
        except KeyFileError as error:
            r.fail("lensesHqAgentsTruststore", truststore_text, str(error))
    password = r.secret(
        "lensesHqAgentsTruststorePassword",
        "lensesHqAgentsTruststore is set (the truststore's password)"
        if truststore_text and tls else None,
    )
    return {"hq_agents_tls": tls, "hq_agents_truststore": truststore,
            "hq_agents_truststore_password": password if truststore else None}


def _load_metabase(r: Reader, docker_host: str) -> MetabaseSettings:
    mode = r.mode("metabaseMode", [Mode.CONTAINER, Mode.EXTERNAL, Mode.DISABLED])
    url = r.text("metabaseUrl", lambda v: url_problem(v, ("https", "http")))
    if mode is Mode.EXTERNAL and not url:
        r.fail("metabaseUrl", url, "must be set when metabaseMode is external")
    site_name = r.text("metabaseSiteName")
    if not site_name.strip():
        r.fail("metabaseSiteName", site_name, "must not be blank (Metabase's setup needs it)")
    return MetabaseSettings(
        mode=mode,
        placement=r.placement(mode, "metabaseDockerHost", docker_host, "metabase"),
        image=r.image("metabaseImage"),
        port=r.port("metabasePort"),
        url=url,
        https=_load_https_front(r, "metabase", mode),
        admin_email=r.text("metabaseAdminEmail", _email_problem),
        admin_password=r.secret("metabaseAdminPassword", None),
        site_name=site_name,
        dashboard=r.boolean("metabaseDashboard"),
    )


_EMAIL = re.compile(r"^[^@\s]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)+$")


def _email_problem(value: str) -> str | None:
    return None if _EMAIL.match(value) else (
        "must be an email address with a dotted domain, e.g. admin@example.org (Metabase "
        "refuses other logins)")


def _load_https_front(r: Reader, service: str, mode: Mode) -> HttpsFront | None:
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


WAREHOUSE_SIZES = ("XSMALL", "SMALL", "MEDIUM", "LARGE", "XLARGE", "XXLARGE", "XXXLARGE",
                   "X4LARGE", "X5LARGE", "X6LARGE")
_SNOWFLAKE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


def _load_key_slot(r: Reader, slot: int, prefix: str) -> SnowflakeKeySlot:
    """`<prefix>Key<slot>`: generated, none, or a PKCS#8 file (with `<prefix>Key<slot>Passphrase`
    when it is encrypted)."""
    key = f"{prefix}Key{slot}"
    source = r.raw(key)
    if source in ("generated", "none"):
        return SnowflakeKeySlot(slot, source, None, None)
    path = Path(source)
    path = path if path.is_absolute() else PROJECT_ROOT / path
    passphrase_key = f"{prefix}Key{slot}Passphrase"
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


def _load_key_rotation(r: Reader, prefix: str,
                       ) -> tuple[tuple[SnowflakeKeySlot, SnowflakeKeySlot], int]:
    """A service user's two key slots (`<prefix>Key1/2`) and the active one
    (`<prefix>ActiveKey`), which must be filled."""
    slots = (_load_key_slot(r, 1, prefix), _load_key_slot(r, 2, prefix))
    active = r.integer(f"{prefix}ActiveKey", 1, 2)
    if active in (1, 2) and not slots[active - 1].filled:
        r.fail(f"{prefix}ActiveKey", active,
               f"points at key slot {active}, which is none; set {prefix}Key{active} or "
               "switch to the other slot")
    return slots, active


def _load_snowflake(r: Reader) -> SnowflakeSettings:
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
    slots, active = _load_key_rotation(r, "snowflake")
    reporting = r.boolean("snowflakeReporting")
    reporting_slots, reporting_active = _load_key_rotation(r, "snowflakeReporting")
    tolerance = r.choice("snowflakeErrorsTolerance", ["all", "none"])
    dead_letter_queue = r.boolean("snowflakeDeadLetterQueue")
    if tolerance == "all" and not dead_letter_queue and "snowflakeDeadLetterQueue" not in r.failed:
        r.fail("snowflakeErrorsTolerance", tolerance,
               "all skips every record the sink cannot convert, and without "
               "snowflakeDeadLetterQueue it would be dropped; turn the dead-letter queue on "
               f"(pulumi config set --stack {r.stack} snowflakeDeadLetterQueue true) or stop "
               "at the first such record with none")
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
        reporting=reporting,
        reporting_key_slots=reporting_slots,
        reporting_active_key=reporting_active,
        buffer_count_records=r.integer("snowflakeBufferCountRecords", 1, 100_000_000),
        # The connector refuses less than 10 s with Snowpipe.
        buffer_flush_time_seconds=r.integer("snowflakeBufferFlushTime", 10, 86_400),
        buffer_size_bytes=r.integer("snowflakeBufferSizeBytes", 1, 2_000_000_000),
        errors_tolerance=tolerance,
        dead_letter_queue=dead_letter_queue,
        dead_letter_context_headers=r.boolean("snowflakeDeadLetterContextHeaders"),
        errors_log=r.boolean("snowflakeErrorsLog"),
        errors_log_include_messages=r.boolean("snowflakeErrorsLogIncludeMessages"),
    )


