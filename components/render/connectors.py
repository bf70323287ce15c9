"""Kafka Connect configurations of the pipeline's two connectors, as flat string maps."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

from components.mqtt_urls import MQTT_SCHEMES, paho_url, parse_mqtt_url
from components.settings import MqttSource
from components.streams import DERIVED_STREAMS, DEVICE_TOPIC, MQTT_TOPICS, DerivedStream

__all__ = [
    "CAMEL_MQTT_SOURCE_CLASS",
    "HEALTH_PIPELINE_MQTT_SOURCE_CLASS",
    "MQTT_SOURCE_CLASS",
    "SECRET_CONFIG_KEYS",
    "SNOWFLAKE_SINK_CLASS",
    "SOURCE_DEAD_LETTER_KEY",
    "STREAM_REACTOR_TLS_FILES",
    "SinkBuffer",
    "SinkErrors",
    "mqtt_source_configs",
    "snowflake_sink_config",
]

MQTT_SOURCE_CLASS = "io.lenses.streamreactor.connect.mqtt.source.MqttSourceConnector"
CAMEL_MQTT_SOURCE_CLASS = (
    "org.apache.camel.kafkaconnector.mqtt5source.CamelMqtt5sourceSourceConnector"
)
HEALTH_PIPELINE_MQTT_SOURCE_CLASS = "io.healthpipeline.connect.mqtt.MqttSourceConnector"
CAMEL_MQTT = "camel.kamelet.mqtt5-source."
"""Prefix of the Camel MQTT 5 source's own keys (its kamelet's properties)."""
JSON_SOURCE_CONVERTER = "io.lenses.streamreactor.connect.converters.source.JsonSimpleConverter"
SNOWFLAKE_SINK_CLASS = "com.snowflake.kafka.connector.SnowflakeSinkConnector"
SNOWFLAKE_AVRO_CONVERTER = "com.snowflake.kafka.connector.records.SnowflakeAvroConverter"
STRING_CONVERTER = "org.apache.kafka.connect.storage.StringConverter"
BYTE_ARRAY_CONVERTER = "org.apache.kafka.connect.converters.ByteArrayConverter"

V = TypeVar("V")
"""A value the renderers place in a config unchanged, never format: a str, or a Pulumi Output
of one (the program passes its credentials so, and each stays a secret of its own)."""

STREAM_REACTOR_TLS_FILES = {"ca.cert": "ca.pem", "cert": "client.pem", "key": "client.key"}
"""Stream Reactor's TLS keys and the files in the connector's TLS directory they name."""

SOURCE_DEAD_LETTER_KEY = "errors.deadletterqueue.topic.name"
"""This project's MQTT source's key for its dead-letter topic: the name Kafka Connect gives a
sink's (a source has none in Connect itself; connectors/mqtt-source defines it)."""

SECRET_CONFIG_KEYS = ("connect.mqtt.password", f"{CAMEL_MQTT}password", "mqtt.password",
                      "snowflake.private.key", "snowflake.private.key.passphrase")
"""Keys whose values are masked in every message the connectors provider writes."""


def mqtt_source_configs(
    kind: MqttSource,
    name: str,
    mqtt_url: str,
    username: V,
    password: V,
    client_id: str,
    ca_pem: V = "",
    tls_dir: str | None = None,
    topics: Sequence[str] = MQTT_TOPICS,
    dead_letter_topic: str | None = None,
    tasks: int = 1,
) -> dict[str, dict[str, str | V]]:
    """The MQTT source that copies every topic in `topics` into device_data, for the chosen
    implementation, as role -> connector config. Stream Reactor's (one KCQL statement per
    topic) and this project's (a list of topics) are one connector, role `mqtt-source`; Camel's
    kamelet subscribes to one topic, so it is one connector per topic: the first is
    `mqtt-source` named `name` with `client_id`, each other `mqtt-source-<last level>` with
    that level appended to both (a client id is unique per broker). Each subscribes as the
    connector user with QoS 1. Over TLS, this project's connector trusts `ca_pem` (the broker's
    CA) and checks the broker's name. Stream Reactor's takes the CA, a client certificate and
    its key as files, all three or none (MqttSourceSettings): with `tls_dir` they are
    `ca.pem`, `client.pem` and `client.key` there, else it trusts the Connect worker's JVM
    truststore. Camel's kamelet has no TLS keys: it trusts the worker's JVM.

    `dead_letter_topic`: only this project's connector routes a payload it cannot key (not
    JSON, or no deviceId) to a topic of its own, as published, its records' values then being
    bytes (ByteArrayConverter); Stream Reactor and Camel have no such routing (see
    _stream_reactor_source and _camel_source), and Kafka Connect has no dead-letter queue for
    source connectors.

    `tasks` (mqttSourceTasks) is tasks.max. Above 1 the tasks share the subscriptions: each
    joins the MQTT share group named after `client_id` with a client id and persistent session
    of its own, so that the broker gives each message to one task (this project's connector
    and Stream Reactor's; see their functions). Camel's cannot: it gives every task the same
    config, hence the same client id. With 1, each config is exactly what it was before the
    setting existed, so an existing session is kept."""
    if not topics or len(set(topics)) != len(topics):
        raise ValueError(f"topics: one or more distinct MQTT topics, not {list(topics)}")
    if tasks < 1:
        raise ValueError(f"tasks: at least 1, not {tasks}")
    if tasks > 1 and kind is MqttSource.CAMEL:
        raise ValueError(f"tasks: the camel MQTT source cannot share its subscriptions among "
                         f"{tasks} tasks (CamelSourceConnector gives every task the same config, "
                         "so the same MQTT client id); only 1")
    if tasks > 1 and any(c in client_id for c in "/+#"):
        raise ValueError(f"client_id: {client_id} names the MQTT share group, which must be one "
                         "topic level (no '/', '+' or '#')")
    if dead_letter_topic and kind is not MqttSource.HEALTH_PIPELINE:
        raise ValueError(f"dead_letter_topic: the {kind.value} MQTT source has no dead-letter "
                         "routing; only health-pipeline's has")
    over_tls = parse_mqtt_url(mqtt_url, MQTT_SCHEMES).tls
    dead_letters: dict[str, str | V] = {}
    if dead_letter_topic:
        dead_letters = {SOURCE_DEAD_LETTER_KEY: dead_letter_topic,
                        "value.converter": BYTE_ARRAY_CONVERTER}
    tls: dict[str, str | V] = {}
    if over_tls and kind is MqttSource.HEALTH_PIPELINE and ca_pem:
        tls = {"mqtt.ssl.ca.pem": ca_pem}
    elif over_tls and kind is MqttSource.STREAM_REACTOR and tls_dir:
        tls = {f"connect.mqtt.ssl.{key}": f"{tls_dir}/{file}"
               for key, file in STREAM_REACTOR_TLS_FILES.items()}

    def config(connector: str, keys: dict[str, str | V]) -> dict[str, str | V]:
        return {
            "name": connector,
            "tasks.max": str(tasks),
            **keys,
            **tls,
            **dead_letters,
            "key.converter": STRING_CONVERTER,
            "errors.log.enable": "true",
            "errors.log.include.messages": "false",
        }

    url = paho_url(mqtt_url)
    if kind is MqttSource.STREAM_REACTOR:
        return {"mqtt-source": config(name, _stream_reactor_source(url, username, password,
                                                                   client_id, topics, tasks))}
    if kind is MqttSource.HEALTH_PIPELINE:
        return {"mqtt-source": config(name, _health_pipeline_source(url, username, password,
                                                                    client_id, topics))}
    configs: dict[str, dict[str, str | V]] = {}
    for index, topic in enumerate(topics):
        level = topic.rstrip("/").rsplit("/", 1)[-1]
        suffix = "" if index == 0 else f"_{level}"
        role = "mqtt-source" + suffix.replace("_", "-")
        if role in configs:
            raise ValueError(f"topics: {topic} ends in the same level as another topic")
        configs[role] = config(name + suffix, _camel_source(
            url, username, password, client_id + suffix.replace("_", "-"), topic))
    return configs


def _stream_reactor_source(
    mqtt_url: str, username: V, password: V, client_id: str, topics: Sequence[str],
    tasks: int = 1,
) -> dict[str, str | V]:
    """Stream Reactor: a persistent session (clean=false) so the broker keeps messages while
    the connector restarts; JSON parsed into a struct, written as JSON, keyed by deviceId. One
    KCQL statement per topic, joined by `;` (its docs: "multiple KCQL statements separated by
    `;`"; MqttSourceSettings.asMap joins them so); it subscribes to every statement's source
    on one connection (MqttManager.connectComplete). Its only error handling for a payload
    its converter cannot read is connect.mqtt.converter.throw.on.error (lensesio/json-schemas
    MqttSource.schema.json): false, its default, swallows the error "BUT the message is lost";
    true fails the task, which stops every device's readings for one bad payload. Stated here
    as false so that a reviewer sees the choice; health-pipeline's source keeps such payloads
    instead.

    With `tasks` above 1, each source is the shared subscription '$share/<client_id>/<topic>'
    (its docs: "The connector supports wildcard and shared subscriptions, but the KCQL command
    must be placed inside single quotes"; its grammar takes a quoted topic, and
    Kcql.unescape drops the quotes) and connect.mqtt.share.replicate=true ("Replicate the
    shared subscriptions to all tasks instead of distributing them",
    MqttConfigConstants): MqttSourceConnector.taskConfigs then gives every task every
    statement and the client id `<client_id>-<i>`; without it the statements would be dealt
    out, one topic per task. It matches a message to its statement with the $share/<group>/
    prefix removed (MqttManager.compareTopic).

    Recovery, as far as its source shows (MqttClientConnectionFn, MqttManager): paho's
    automatic reconnect is always on for a lost connection (paho's own backoff, 1 s doubling
    to 128 s; no key sets it), and connect.mqtt.hosts may list several brokers. A broker
    unreachable when a task starts fails the task (MqttManager connects once in its
    constructor) until someone restarts it; no key changes that. connect.mqtt.timeout and
    connect.mqtt.keep.alive are documented as milliseconds but handed to paho, which reads
    seconds, so their defaults (3000, 5000) are left alone rather than guessed at."""
    def source(topic: str) -> str:
        return f"'$share/{client_id}/{topic}'" if tasks > 1 else topic

    kcql = ";".join(
        f"INSERT INTO {DEVICE_TOPIC} SELECT * FROM {source(topic)} "
        f"WITHCONVERTER=`{JSON_SOURCE_CONVERTER}` WITHKEY(deviceId)"
        for topic in topics
    )
    shared = {"connect.mqtt.share.replicate": "true"} if tasks > 1 else {}
    return {
        "connector.class": MQTT_SOURCE_CLASS,
        "connect.mqtt.hosts": mqtt_url,
        "connect.mqtt.username": username,
        "connect.mqtt.password": password,
        "connect.mqtt.service.quality": "1",
        "connect.mqtt.client.id": client_id,
        "connect.mqtt.clean": "false",
        "connect.mqtt.kcql": kcql,
        "connect.mqtt.converter.throw.on.error": "false",
        **shared,
        "value.converter": "org.apache.kafka.connect.json.JsonConverter",
        "value.converter.schemas.enable": "false",
    }


def _camel_source(
    mqtt_url: str, username: V, password: V, client_id: str, topic: str
) -> dict[str, str | V]:
    """Camel's MQTT 5 source (its kamelet has no QoS key: the paho-mqtt5 component's default
    is 2, set to 1 here). Its `topic` is one topic filter (the kamelet's "The topic to
    subscribe to", a string; PahoMqtt5Consumer subscribes to it as given), hence one connector
    per topic. Its records carry the payload as bytes, so ByteArrayConverter writes the JSON
    text unchanged (StringConverter would write Java's `[B@...`). Its poll waits a full
    maxPollDuration (1 s by default) before returning; 100 ms keeps the added latency small.
    No record key: the processors key the derived topics by deviceId. It keeps no session
    across a restart: messages published while it is stopped are not delivered.
    It does not parse payloads, so a malformed one is no error to it and lands in device_data
    like any other; its error handler (camel.error.handler: default or no, with redeliveries;
    camel-kafka-connector's basic configuration) has no dead-letter target, so nothing more is
    rendered."""
    return {
        "connector.class": CAMEL_MQTT_SOURCE_CLASS,
        "topics": DEVICE_TOPIC,
        f"{CAMEL_MQTT}brokerUrl": mqtt_url,
        f"{CAMEL_MQTT}topic": topic,
        f"{CAMEL_MQTT}clientId": client_id,
        f"{CAMEL_MQTT}username": username,
        f"{CAMEL_MQTT}password": password,
        "camel.component.paho-mqtt5.qos": "1",
        "camel.source.maxPollDuration": "100",
        "value.converter": BYTE_ARRAY_CONVERTER,
    }


def _health_pipeline_source(
    mqtt_url: str, username: V, password: V, client_id: str, topics: Sequence[str]
) -> dict[str, str | V]:
    """This project's connector (connectors/mqtt-source): one persistent session subscribed
    to every topic (`mqtt.topics`, comma-separated), QoS 1, each message acknowledged to the
    broker only after Kafka has it; the JSON text as the value, keyed by its deviceId, the
    topic it arrived on in the record's `mqtt.topic` header. With tasks.max above 1 the
    connector itself gives task i the client id `<client_id>-<i>` and the subscriptions
    `$share/<mqtt.share.group>/<topic>` (the group defaults to the client id, so nothing more
    is rendered); a broker it cannot reach at start is retried with its own bounded backoff
    (mqtt.reconnect.backoff.*, defaults kept), and the sessions an earlier tasks.max left
    are adopted by the tasks (mqtt.orphans.*, defaults kept: 5 s after a task connects,
    client ids up to `<client_id>-31`, as far as mqttSourceTasks goes)."""
    if any("," in topic for topic in topics):
        raise ValueError(f"topics: mqtt.topics is comma-separated; {list(topics)} has a comma")
    return {
        "connector.class": HEALTH_PIPELINE_MQTT_SOURCE_CLASS,
        "mqtt.server.uri": mqtt_url,
        "mqtt.topics": ",".join(topics),
        "mqtt.qos": "1",
        "mqtt.client.id": client_id,
        "mqtt.username": username,
        "mqtt.password": password,
        "mqtt.clean.session": "false",
        "kafka.topic": DEVICE_TOPIC,
        "record.key.field": "deviceId",
        "value.converter": STRING_CONVERTER,
    }


@dataclass(frozen=True)
class SinkBuffer:
    """When the sink flushes a buffer to Snowflake: whichever limit is reached first."""

    count_records: int
    flush_time_seconds: int
    """At least 10 (the connector's minimum for Snowpipe)."""
    size_bytes: int


@dataclass(frozen=True)
class SinkErrors:
    """What the sink does with a record its converter or transforms fail on: Kafka Connect's
    own error handling (KIP-298; the errors.* sink connector configs of Kafka 3.9, the release
    fast-data-dev 3.9.0 runs)."""

    tolerance: str
    """errors.tolerance: `none` fails the task, `all` skips the record."""
    dead_letter_topic: str | None
    """errors.deadletterqueue.topic.name; None: no dead-letter queue."""
    replication_factor: int
    """errors.deadletterqueue.topic.replication.factor, used by Connect only if the declared
    topic were missing: the stack's, not Connect's default of 3, which one broker refuses."""
    context_headers: bool
    """errors.deadletterqueue.context.headers.enable: `__connect.errors.*` headers."""
    log: bool
    """errors.log.enable."""
    log_include_messages: bool
    """errors.log.include.messages (snowflakeErrorsLogIncludeMessages): off by default, so
    that no reading reaches a worker log."""


def _errors(errors: SinkErrors) -> dict[str, str]:
    def flag(value: bool) -> str:
        return "true" if value else "false"

    config = {"errors.tolerance": errors.tolerance}
    if errors.dead_letter_topic:
        config |= {
            "errors.deadletterqueue.topic.name": errors.dead_letter_topic,
            "errors.deadletterqueue.topic.replication.factor": str(errors.replication_factor),
            "errors.deadletterqueue.context.headers.enable": flag(errors.context_headers),
        }
    return config | {"errors.log.enable": flag(errors.log),
                     "errors.log.include.messages": flag(errors.log_include_messages)}


def snowflake_sink_config(
    name: str,
    url: V,
    user: V,
    private_key: V,
    database: V,
    schema: V,
    role: V,
    schema_registry_url: str,
    buffer: SinkBuffer,
    errors: SinkErrors,
    streams: Sequence[DerivedStream] = DERIVED_STREAMS,
) -> dict[str, str | V]:
    """The Snowflake sink for the derived topics, one table per topic, Avro values read with
    the Schema Registry, key-pair authentication, and Kafka Connect's error handling. What
    that handling can catch: a converter or transform that throws. The 2.5.0 connector's
    SnowflakeAvroConverter does not throw on bytes it cannot read (no Avro magic byte, an
    unknown schema id): it returns a "broken record", which the connector itself writes to
    the table's stage in Snowflake (classic Snowpipe) rather than to Kafka."""
    return {
        "name": name,
        "connector.class": SNOWFLAKE_SINK_CLASS,
        "tasks.max": "1",
        "topics": ",".join(s.topic for s in streams),
        "snowflake.topic2table.map": ",".join(f"{s.topic}:{s.table}" for s in streams),
        "snowflake.url.name": url,
        "snowflake.user.name": user,
        "snowflake.private.key": private_key,
        "snowflake.database.name": database,
        "snowflake.schema.name": schema,
        "snowflake.role.name": role,
        "buffer.count.records": str(buffer.count_records),
        "buffer.flush.time": str(buffer.flush_time_seconds),
        "buffer.size.bytes": str(buffer.size_bytes),
        "key.converter": STRING_CONVERTER,
        "value.converter": SNOWFLAKE_AVRO_CONVERTER,
        "value.converter.schema.registry.url": schema_registry_url,
        **_errors(errors),
    }
