"""The connectors the program declares, per stack: configs, secrecy and ordering."""

from __future__ import annotations

import functools
import re

import pytest

from components.render.connectors import (
    SECRET_CONFIG_KEYS,
    SinkBuffer,
    SinkErrors,
    mqtt_source_configs,
    snowflake_sink_config,
)
from components.settings import MqttSource
from components.settings.loaders import MAX_MQTT_SOURCE_TASKS
from components.streams import DERIVED_STREAMS, MQTT_TOPICS
from devtools.harness import PROJECT, ROOT, ProgramRun, run_program, unwrap
from policies.guardrails import CREDENTIAL_CONFIG

CONNECTOR = "pulumi-python:dynamic/connect:Connector"


def _connector(run: ProgramRun, role: str):
    return run.one(CONNECTOR, f"connectors-{role}")


def test_connectors_are_managed_through_the_stack_connect_url(run: ProgramRun) -> None:
    url = {"dev": "http://localhost:8083", "prod": "https://connect.health.internal:8083"}
    for role in ("mqtt-source", "snowflake-sink"):
        connector = _connector(run, role)
        assert connector.get("connect_url") == url[run.stack]
        # Under mocks a map holding a secret reads back secret as a whole (the SDK lifts it);
        # that only the credentials are secret is checked on the real engine's state.
        assert connector.secret("config"), f"{role}: the config holds credentials"
        assert connector.secret("__provider")


def test_both_mqtt_topics_are_defined_once() -> None:
    assert MQTT_TOPICS == ("health/device_data", "health/health_data")


def test_mqtt_source_reads_both_topics_with_qos1_keyed_by_device(run) -> None:
    source = _connector(run, "mqtt-source")
    config = source.get("config")
    # TLS in both: on dev's stack network with the files the program places on fast-data-dev;
    # prod's external workers trust the broker's CA in their JVM unless
    # kafkaConnectMqttTlsDir says where the operator put the files.
    hosts = {"dev": "ssl://mosquitto:8883", "prod": "ssl://mqtt.health.internal:8883"}
    assert source.get("name") == config["name"] == "health_mqtt_source"
    assert config["connector.class"] == (
        "io.lenses.streamreactor.connect.mqtt.source.MqttSourceConnector"
    )
    assert config["connect.mqtt.hosts"] == hosts[run.stack]
    assert config["connect.mqtt.username"] == "kafka-connect"
    assert config["connect.mqtt.password"] == run.outputs["mqttConnectorPassword"][0]
    assert config["connect.mqtt.service.quality"] == "1"
    assert config["connect.mqtt.clean"] == "false"
    assert config["connect.mqtt.client.id"] == f"health-pipeline-{run.stack}-mqtt-source"
    # One statement per topic, separated by ";" as Stream Reactor's docs say; prod's three
    # tasks share each subscription.
    shared = {"dev": "{}", "prod": "'$share/health-pipeline-prod-mqtt-source/{}'"}[run.stack]
    assert config["connect.mqtt.kcql"].split(";") == [
        f"INSERT INTO device_data SELECT * FROM {shared.format(topic)} WITHCONVERTER="
        "`io.lenses.streamreactor.connect.converters.source.JsonSimpleConverter` "
        "WITHKEY(deviceId)"
        for topic in ("health/device_data", "health/health_data")
    ]
    assert config["key.converter"] == "org.apache.kafka.connect.storage.StringConverter"
    assert config["value.converter"] == "org.apache.kafka.connect.json.JsonConverter"
    # Its one choice for a payload it cannot convert, stated: dropped (its default), not a
    # failed task; it has no dead-letter routing.
    assert config["connect.mqtt.converter.throw.on.error"] == "false"
    assert "errors.deadletterqueue.topic.name" not in config
    tls = {k: v for k, v in config.items() if k.startswith("connect.mqtt.ssl.")}
    assert tls == ({"connect.mqtt.ssl.ca.cert": "/connectors/mqtt-tls/ca.pem",
                    "connect.mqtt.ssl.cert": "/connectors/mqtt-tls/client.pem",
                    "connect.mqtt.ssl.key": "/connectors/mqtt-tls/client.key"}
                   if run.stack == "dev" else {})


def test_stream_reactor_reads_its_tls_files_where_fast_data_dev_has_them(dev) -> None:
    """Stream Reactor's source takes a CA, a client certificate and its key as files, all
    three (MqttSourceSettings); the program uploads the broker's CA and a client certificate
    of the connector's own into the Connect container."""
    kafka = dev.container("kafka")
    files = {unwrap(u["file"]): u for u in unwrap(kafka.inputs["uploads"])
             if unwrap(u["file"]).startswith("/connectors/mqtt-tls/")}
    assert set(files) == {"/connectors/mqtt-tls/ca.pem", "/connectors/mqtt-tls/client.pem",
                          "/connectors/mqtt-tls/client.key"}
    assert unwrap(files["/connectors/mqtt-tls/ca.pem"]["content"]) == (
        dev.outputs["mqttCaCertificate"][0])
    assert files["/connectors/mqtt-tls/client.key"]["permissions"] == "0600"
    assert unwrap(files["/connectors/mqtt-tls/client.key"]["content"]).startswith(
        "-----BEGIN RSA PRIVATE KEY-----")


def test_external_workers_read_the_files_where_their_operator_put_them(prod) -> None:
    run = run_program("prod", {f"{PROJECT}:kafkaConnectMqttTlsDir": "/etc/kafka/mqtt"})
    config = _connector(run, "mqtt-source").get("config")
    assert config["connect.mqtt.ssl.ca.cert"] == "/etc/kafka/mqtt/ca.pem"
    assert config["connect.mqtt.ssl.key"] == "/etc/kafka/mqtt/client.key"
    value, secret = run.outputs["mqttConnectorKey"]
    assert secret and value.startswith("-----BEGIN RSA PRIVATE KEY-----")


def _source_with(stack: str, implementation: str,
                 tasks: int | None = None) -> tuple[ProgramRun, dict[str, str]]:
    overrides: dict[str, object] = {f"{PROJECT}:kafkaMqttSource": implementation}
    if tasks is not None:
        overrides[f"{PROJECT}:mqttSourceTasks"] = tasks
    other = run_program(stack, overrides)
    source = _connector(other, "mqtt-source")
    assert source.secret("config"), "the config holds the MQTT password"
    return other, source.get("config")


def test_camel_mqtt_source_is_one_connector_per_topic_into_device_data(prod) -> None:
    """kafkaMqttSource=camel (external Connect only): the same broker, user and client id as
    Stream Reactor, with Camel's class and keys; the JSON bytes are the value, unchanged. Its
    kamelet's `topic` is one topic, so each topic has a connector (and client id) of its own."""
    camel, first = _source_with("prod", "camel", tasks=1)
    second = _connector(camel, "mqtt-source-health-data").get("config")
    reference = _connector(prod, "mqtt-source").get("config")
    client_id = reference["connect.mqtt.client.id"]
    common = {
        "tasks.max": "1",
        "connector.class":
            "org.apache.camel.kafkaconnector.mqtt5source.CamelMqtt5sourceSourceConnector",
        "topics": "device_data",
        "camel.kamelet.mqtt5-source.brokerUrl": reference["connect.mqtt.hosts"],
        "camel.kamelet.mqtt5-source.username": "kafka-connect",
        "camel.kamelet.mqtt5-source.password": camel.outputs["mqttConnectorPassword"][0],
        "camel.component.paho-mqtt5.qos": "1",
        "camel.source.maxPollDuration": "100",
        "key.converter": "org.apache.kafka.connect.storage.StringConverter",
        "value.converter": "org.apache.kafka.connect.converters.ByteArrayConverter",
        "errors.log.enable": "true",
        "errors.log.include.messages": "false",
    }
    assert first == {**common, "name": "health_mqtt_source",
                     "camel.kamelet.mqtt5-source.topic": "health/device_data",
                     "camel.kamelet.mqtt5-source.clientId": client_id}
    assert second == {**common, "name": "health_mqtt_source_health_data",
                      "camel.kamelet.mqtt5-source.topic": "health/health_data",
                      "camel.kamelet.mqtt5-source.clientId": f"{client_id}-health-data"}
    assert camel.outputs["connectors"][0] == [
        "health_mqtt_source", "health_mqtt_source_health_data", "health_snowflake_sink"]
    topics = {t.urn for t in camel.of_type("kafka:index/topic:Topic")}
    assert topics <= set(_connector(camel, "mqtt-source-health-data").dependencies)


def test_own_mqtt_source_is_keyed_by_device_with_a_persistent_qos1_session(run) -> None:
    """It takes the broker's CA, so it connects over TLS in every stack, checking the broker's
    name: the alias on dev's stack network, the Docker host's name in prod."""
    own, config = _source_with(run.stack, "health-pipeline")
    reference = _connector(run, "mqtt-source").get("config")
    hosts = {"dev": "ssl://mosquitto:8883", "prod": "ssl://mqtt.health.internal:8883"}
    assert config == {
        "name": "health_mqtt_source",
        "tasks.max": {"dev": "1", "prod": "3"}[run.stack],
        "connector.class": "io.healthpipeline.connect.mqtt.MqttSourceConnector",
        "mqtt.server.uri": hosts[run.stack],
        "mqtt.ssl.ca.pem": own.outputs["mqttCaCertificate"][0],
        "mqtt.topics": "health/device_data,health/health_data",
        "mqtt.qos": "1",
        "mqtt.client.id": reference["connect.mqtt.client.id"],
        "mqtt.username": "kafka-connect",
        "mqtt.password": own.outputs["mqttConnectorPassword"][0],
        "mqtt.clean.session": "false",
        "kafka.topic": "device_data",
        "record.key.field": "deviceId",
        "errors.deadletterqueue.topic.name": "device_data_dlq",
        "key.converter": "org.apache.kafka.connect.storage.StringConverter",
        "value.converter": "org.apache.kafka.connect.converters.ByteArrayConverter",
        "errors.log.enable": "true",
        "errors.log.include.messages": "false",
    }


@pytest.mark.parametrize("kind", list(MqttSource))
def test_every_source_implementation_reads_exactly_the_topics_it_is_given(kind) -> None:
    """Whatever the implementation, the topics read are the ones passed, each once."""
    def read(configs) -> list[str]:
        topics: list[str] = []
        for config in configs.values():
            if "connect.mqtt.kcql" in config:
                topics += [re.search(r"FROM (\S+) ", kcql)[1]
                           for kcql in config["connect.mqtt.kcql"].split(";")]
            elif "mqtt.topics" in config:
                topics += config["mqtt.topics"].split(",")
            else:
                topics.append(config["camel.kamelet.mqtt5-source.topic"])
        return topics

    render = functools.partial(mqtt_source_configs, kind, "n", "tcp://h:1883", "u", "p", "c")
    assert read(render()) == list(MQTT_TOPICS)
    assert read(render(topics=["health/one"])) == ["health/one"]
    assert list(render(topics=["health/one"])) == ["mqtt-source"]


@pytest.mark.parametrize("topics, message", [
    ([], "one or more distinct MQTT topics"),
    (["health/a", "health/a"], "one or more distinct MQTT topics"),
])
def test_source_topics_must_be_distinct_and_present(topics, message) -> None:
    for kind in MqttSource:
        with pytest.raises(ValueError, match=message):
            mqtt_source_configs(kind, "n", "tcp://h:1883", "u", "p", "c", topics=topics)


def test_own_source_refuses_a_topic_its_comma_separated_list_cannot_hold() -> None:
    with pytest.raises(ValueError, match="has a comma"):
        mqtt_source_configs(MqttSource.HEALTH_PIPELINE, "n", "tcp://h:1883", "u", "p", "c",
                            topics=["health/a,b"])


def test_only_the_own_mqtt_source_can_be_given_a_dead_letter_topic() -> None:
    """Stream Reactor's and Camel's MQTT sources have no dead-letter routing, and Kafka
    Connect has no dead-letter queue for sources: a topic given to them would promise what
    nothing does."""
    for kind in (MqttSource.STREAM_REACTOR, MqttSource.CAMEL):
        with pytest.raises(ValueError, match=f"the {kind.value} MQTT source has no dead-letter"):
            mqtt_source_configs(kind, "n", "tcp://h:1883", "u", "p", "c",
                                dead_letter_topic="device_data_dlq")
    config = mqtt_source_configs(MqttSource.HEALTH_PIPELINE, "n", "tcp://h:1883", "u", "p",
                                 "c")["mqtt-source"]
    assert "errors.deadletterqueue.topic.name" not in config, "without one, today's behaviour"
    assert config["value.converter"] == "org.apache.kafka.connect.storage.StringConverter"


SINK_ERRORS = {
    "dev": {"errors.tolerance": "all",
            "errors.deadletterqueue.topic.name": "snowflake_sink_dlq",
            "errors.deadletterqueue.topic.replication.factor": "1",
            "errors.deadletterqueue.context.headers.enable": "true",
            "errors.log.enable": "true",
            "errors.log.include.messages": "false"},
}
SINK_ERRORS["prod"] = {**SINK_ERRORS["dev"],
                       "errors.deadletterqueue.topic.replication.factor": "3"}


def test_the_sink_skips_what_it_cannot_convert_into_its_dead_letter_topic(run) -> None:
    """Kafka Connect's own keys (KIP-298), from the snowflake* error settings; the replication
    factor Connect would create the topic with, were it missing, is the stack's."""
    config = _connector(run, "snowflake-sink").get("config")
    assert {k: v for k, v in config.items() if k.startswith("errors.")} == SINK_ERRORS[run.stack]
    assert config["errors.deadletterqueue.topic.name"] not in config["topics"].split(",")


def test_the_sink_error_settings_reach_its_config() -> None:
    run = run_program("dev", {f"{PROJECT}:snowflakeErrorsTolerance": "none",
                              f"{PROJECT}:snowflakeDeadLetterQueue": False,
                              f"{PROJECT}:snowflakeErrorsLog": False,
                              f"{PROJECT}:snowflakeErrorsLogIncludeMessages": True})
    config = _connector(run, "snowflake-sink").get("config")
    assert {k: v for k, v in config.items() if k.startswith("errors.")} == {
        "errors.tolerance": "none", "errors.log.enable": "false",
        "errors.log.include.messages": "true"}
    run = run_program("dev", {f"{PROJECT}:snowflakeDeadLetterContextHeaders": False})
    config = _connector(run, "snowflake-sink").get("config")
    assert config["errors.deadletterqueue.context.headers.enable"] == "false"


def test_snowflake_sink_loads_every_derived_topic_into_its_table(run: ProgramRun) -> None:
    config = _connector(run, "snowflake-sink").get("config")
    outputs = {k: v for k, (v, _) in run.outputs.items()}
    assert config["connector.class"] == "com.snowflake.kafka.connector.SnowflakeSinkConnector"
    assert config["topics"].split(",") == [s.topic for s in DERIVED_STREAMS]
    assert config["snowflake.topic2table.map"] == (
        "blood_pressure_device_topic:BLOOD_PRESSURE,heart_rate_device_topic:HEART_RATE,"
        "oxygen_saturation_device_topic:OXYGEN_SATURATION,temperature_device_topic:TEMPERATURE"
    )
    assert config["snowflake.url.name"] == outputs["snowflakeUrl"]
    assert config["snowflake.user.name"] == "kafka_user"
    assert config["snowflake.private.key"] == outputs["snowflakePrivateKey"]
    assert (config["snowflake.database.name"], config["snowflake.schema.name"],
            config["snowflake.role.name"]) == ("INGEST", "INGEST", "INGEST")
    assert config["value.converter"] == (
        "com.snowflake.kafka.connector.records.SnowflakeAvroConverter"
    )
    registry = {"dev": "http://kafka:8081", "prod": "https://schema-registry.health.internal:8081"}
    assert config["value.converter.schema.registry.url"] == registry[run.stack]


def test_sink_buffers_are_the_seed_values_in_dev_and_tuned_in_prod(run: ProgramRun) -> None:
    config = _connector(run, "snowflake-sink").get("config")
    expected = {"dev": ("1000000", "10", "250000000"), "prod": ("50000", "30", "50000000")}
    assert (config["buffer.count.records"], config["buffer.flush.time"],
            config["buffer.size.bytes"]) == expected[run.stack]


def test_connectors_start_after_the_topics_and_the_sink_after_the_snowflake_user(run) -> None:
    topics = {t.urn for t in run.of_type("kafka:index/topic:Topic")}
    assert len(topics) == 6, "five pipeline topics and the sink's dead-letter topic"
    for role in ("mqtt-source", "snowflake-sink"):
        assert topics <= set(_connector(run, role).dependencies), role
    user_grant = run.one("snowflake:index/grantAccountRole:GrantAccountRole",
                         "snowflake-role-to-user")
    assert user_grant.urn in _connector(run, "snowflake-sink").dependencies


def test_without_snowflake_only_the_mqtt_source_is_declared() -> None:
    run = run_program("dev", overrides={f"{PROJECT}:snowflakeEnabled": False})
    assert [c.name for c in run.of_type(CONNECTOR)] == ["connectors-mqtt-source"]
    assert run.outputs["connectors"][0] == ["health_mqtt_source"]


def test_every_credential_a_connector_config_holds_is_kept_secret_on_its_own() -> None:
    """The Connector resource makes the values of SECRET_CONFIG_KEYS secret one by one and
    leaves the rest readable (so previews name changed keys): every key the policy pack counts
    as a credential, in every config the program renders, must be among them."""
    configs = [config for kind in MqttSource
               for config in mqtt_source_configs(kind, "n", "tcp://h:1883", "u", "p",
                                                 "c").values()]
    configs.append(snowflake_sink_config("n", "u", "user", "key", "db", "s", "r",
                                         "http://sr:8081", SinkBuffer(1, 10, 1),
                                         SinkErrors("all", "dlq", 1, True, True, False)))
    for config in configs:
        credentials = {key for key in config if CREDENTIAL_CONFIG.search(key)}
        assert credentials, config["connector.class"]
        assert credentials <= set(SECRET_CONFIG_KEYS), config["connector.class"]


def test_mqtt_sources_start_only_after_the_broker_is_healthy(run) -> None:
    """Every MQTT source waits for the broker's container, which Pulumi creates only once its
    healthcheck passes (wait), so in prod, with Mosquitto on a host of its own, no source
    starts against a broker still coming up."""
    broker = run.one("docker:index/container:Container", "mqtt-mosquitto")
    assert broker.get("wait") is True, "the broker's container is not waited for"
    sources = [r for r in run.of_type(CONNECTOR) if "mqtt-source" in r.name]
    assert sources
    for source in sources:
        assert broker.urn in source.dependencies, source.name
    assert broker.urn not in _connector(run, "snowflake-sink").dependencies


def test_mqtt_source_tasks_are_one_in_dev_and_three_in_prod(run) -> None:
    config = _connector(run, "mqtt-source").get("config")
    assert config["tasks.max"] == {"dev": "1", "prod": "3"}[run.stack]


def test_stream_reactor_shares_each_kcql_source_among_its_tasks(prod) -> None:
    """Prod's three tasks: every KCQL source is the shared subscription in single quotes (its
    docs), replicated to every task (connect.mqtt.share.replicate) so that each task joins
    the group for both topics; the group is the client id, Stream Reactor suffixes it per
    task."""
    config = _connector(prod, "mqtt-source").get("config")
    group = config["connect.mqtt.client.id"]
    assert config["connect.mqtt.kcql"].split(";") == [
        f"INSERT INTO device_data SELECT * FROM '$share/{group}/{topic}' WITHCONVERTER="
        "`io.lenses.streamreactor.connect.converters.source.JsonSimpleConverter` "
        "WITHKEY(deviceId)"
        for topic in MQTT_TOPICS]
    assert config["connect.mqtt.share.replicate"] == "true"
    assert config["tasks.max"] == "3"


def test_one_stream_reactor_task_subscribes_to_the_topics_themselves(dev) -> None:
    config = _connector(dev, "mqtt-source").get("config")
    assert "$share" not in config["connect.mqtt.kcql"]
    assert "connect.mqtt.share.replicate" not in config
    assert [s.split(" FROM ")[1].split(" ")[0] for s in config["connect.mqtt.kcql"].split(";")
            ] == list(MQTT_TOPICS)


def test_own_mqtt_source_gets_tasks_max_and_leaves_sharing_to_the_connector() -> None:
    """The connector derives each task's client id and $share subscriptions from tasks.max;
    the rest of the config is the same as with one task (no share key: the group defaults to
    the client id)."""
    def render(tasks: int) -> dict:
        return mqtt_source_configs(MqttSource.HEALTH_PIPELINE, "src", "ssl://broker:8883", "u",
                                   "p", "stack-mqtt-source", tasks=tasks)["mqtt-source"]

    one, three = render(1), render(3)
    assert (one["tasks.max"], three["tasks.max"]) == ("1", "3")
    assert {k: v for k, v in three.items() if k != "tasks.max"} == {
        k: v for k, v in one.items() if k != "tasks.max"}
    assert three["mqtt.topics"] == ",".join(MQTT_TOPICS)
    assert three["mqtt.client.id"] == "stack-mqtt-source"


def test_own_mqtt_source_looks_for_the_sessions_of_every_task_count_the_program_allows(
) -> None:
    """mqtt.orphans.scan is not rendered: the connector's default (MqttSourceConfig) must reach
    mqttSourceTasks' maximum, or a change from a count above it would leave sessions behind."""
    config = mqtt_source_configs(MqttSource.HEALTH_PIPELINE, "src", "ssl://broker:8883", "u",
                                 "p", "stack-mqtt-source", tasks=3)["mqtt-source"]
    assert not [key for key in config if key.startswith("mqtt.orphans.")], config
    java = (ROOT / "connectors/mqtt-source/src/main/java/io/healthpipeline/connect/mqtt"
            / "MqttSourceConfig.java").read_text()
    default = re.search(r"\.define\(ORPHANS_SCAN, Type\.INT, (\d+),", java)
    assert default, "MqttSourceConfig defines no ORPHANS_SCAN"
    assert int(default.group(1)) == MAX_MQTT_SOURCE_TASKS


def test_camel_mqtt_source_refuses_more_than_one_task() -> None:
    with pytest.raises(ValueError, match=r"tasks: the camel MQTT source cannot share its "
                                         r"subscriptions among 2 tasks .*same MQTT client id"):
        mqtt_source_configs(MqttSource.CAMEL, "src", "ssl://broker:8883", "u", "p", "id",
                            tasks=2)


def test_a_share_group_must_be_one_topic_level() -> None:
    with pytest.raises(ValueError, match="client_id: a/b names the MQTT share group"):
        mqtt_source_configs(MqttSource.STREAM_REACTOR, "src", "ssl://broker:8883", "u", "p",
                            "a/b", tasks=2)
