"""health-pipeline: stack settings -> components -> stack outputs. Nothing else lives here:
every decision (which jars, which TLS, where a container reaches a service) is made in the
component it belongs to."""

from __future__ import annotations

import pulumi

from components.connector_keys import ConnectorKeys, ConnectorKeysArgs
from components.connectors import StreamConnectors, StreamConnectorsArgs
from components.docker_host import ContainerDefaults, DockerEngines
from components.kafka import KafkaCluster, KafkaClusterArgs
from components.lenses import Lenses, LensesArgs
from components.metabase import Metabase, MetabaseArgs, MetabaseSnowflakeSource
from components.mqtt import MQTT_SOURCE_TLS_DIR, MqttBroker, MqttBrokerArgs
from components.postgres import AppDatabases, AppDatabasesArgs, PostgresServer, PostgresServerArgs
from components.processors import SqlProcessors, SqlProcessorsArgs
from components.settings import Mode, load_settings
from components.snowflake import SnowflakeIngest, SnowflakeIngestArgs
from components.topics import Topics, TopicsArgs


def main() -> dict[str, pulumi.Output]:
    s = load_settings(pulumi.Config(), pulumi.get_stack())
    defaults = ContainerDefaults.of(s)
    engines = DockerEngines(s.docker_hosts(), s.name_prefix)

    mqtt = MqttBroker("mqtt", MqttBrokerArgs.for_stack(s, engines.on(s.mqtt.placement), defaults))
    kafka = KafkaCluster("kafka", KafkaClusterArgs.for_stack(
        s.kafka, engines.on(s.kafka.placement), defaults,
        mqtt.connector_tls_files(MQTT_SOURCE_TLS_DIR)))
    topics = Topics("topics", TopicsArgs.for_stack(s, kafka.provider))
    postgres = PostgresServer(
        "postgres", PostgresServerArgs(s.postgres, engines.on(s.postgres.placement), defaults))
    databases = AppDatabases("databases", AppDatabasesArgs(
        postgres.provider, s.protect, own_server=s.postgres.mode is Mode.CONTAINER))
    parts: list = [mqtt, kafka, topics, postgres]

    if s.lenses.mode is not Mode.DISABLED:
        lenses = Lenses("lenses", LensesArgs(
            s.lenses, engines.on(s.lenses.placement), defaults, s.lenses.environment, postgres,
            databases, kafka, s.kafka))
        # The agent must be up, and the topics it reads and writes must exist.
        processors = SqlProcessors("processors", SqlProcessorsArgs(
            hq_url=lenses.url, environment=s.lenses.environment,
            username=lenses.admin_username, password=lenses.admin_password,
            hq_ca_pem=lenses.ca_certificate, after=(lenses, topics)))
        parts += [lenses, processors]
    snowflake = None
    if s.snowflake.enabled:
        keys = ConnectorKeys("snowflake-keys", ConnectorKeysArgs(s.snowflake.key_slots,
                                                                 s.snowflake.active_key))
        reporting = ConnectorKeys("snowflake-reporting-keys", ConnectorKeysArgs(
            s.snowflake.reporting_key_slots, s.snowflake.reporting_active_key,
            "snowflakeReporting")) if s.snowflake.reporting else None
        snowflake = SnowflakeIngest("snowflake", SnowflakeIngestArgs(s.snowflake, keys,
                                                                     s.protect, reporting))
        parts.append(snowflake)
    if s.metabase.mode is not Mode.DISABLED:
        parts.append(Metabase("metabase", MetabaseArgs(
            s.metabase, engines.on(s.metabase.placement), defaults, postgres, databases,
            MetabaseSnowflakeSource.of(snowflake))))
    parts.append(StreamConnectors("connectors", StreamConnectorsArgs.for_stack(
        s, mqtt, kafka, snowflake, after=(topics,))))

    outputs = {key: value for part in parts for key, value in part.stack_outputs().items()}
    for key, value in outputs.items():
        pulumi.export(key, value)
    return outputs


# Read by the mocks harness in tests/conftest.py; `pulumi.export` cannot be read back there.
stack_outputs = main()
