"""health-pipeline: stack settings -> components -> stack outputs. Nothing else lives here."""

from __future__ import annotations

import pulumi

from components.connector_keys import ConnectorKeys, ConnectorKeysArgs
from components.connectors import SnowflakeTarget, StreamConnectors, StreamConnectorsArgs
from components.docker_host import ContainerDefaults, DockerEngine, DockerEngineArgs
from components.kafka import (
    KafkaCluster,
    KafkaClusterArgs,
    locate_mqtt_source_plugin,
    locate_snowflake_jar,
)
from components.lenses import Lenses, LensesArgs
from components.metabase import Metabase, MetabaseArgs
from components.mqtt import MQTT_SOURCE_TLS_DIR, MqttBroker, MqttBrokerArgs
from components.postgres import AppDatabases, AppDatabasesArgs, PostgresServer, PostgresServerArgs
from components.processors import SqlProcessors, SqlProcessorsArgs
from components.render.connectors import HEALTH_PIPELINE_MQTT_SOURCE_CLASS, SinkBuffer
from components.settings import ContainerPlacement, Mode, MqttSource, load_settings
from components.snowflake import SnowflakeIngest, SnowflakeIngestArgs
from components.topics import Topics, TopicsArgs


def main() -> dict[str, pulumi.Output]:
    settings = load_settings(pulumi.Config(), pulumi.get_stack())
    container_kafka = settings.kafka.mode is Mode.CONTAINER
    jar = locate_snowflake_jar() if container_kafka else None
    own_source = settings.kafka.mqtt_source is MqttSource.HEALTH_PIPELINE
    # This project's MQTT source goes onto fast-data-dev's plugin path; an external Connect
    # cluster must have it (or the chosen implementation) installed.
    extra_plugins = locate_mqtt_source_plugin() if container_kafka and own_source else ()
    defaults = ContainerDefaults(
        name_prefix=settings.name_prefix,
        publish_ip=settings.publish_ip,
        wait_timeout=settings.wait_timeout,
        protect=settings.protect,
    )
    engines = {
        host: DockerEngine(f"docker-{host.slug}", DockerEngineArgs(host, settings.name_prefix))
        for host in settings.docker_hosts()
    }

    def engine(placement: ContainerPlacement | None) -> DockerEngine | None:
        return engines[placement.docker_host] if placement else None

    stream_reactor = settings.kafka.mqtt_source is MqttSource.STREAM_REACTOR
    mqtt = MqttBroker("mqtt", MqttBrokerArgs(settings.mqtt, engine(settings.mqtt.placement),
                                             defaults, connector_client_certificate=stream_reactor))
    # Where Stream Reactor's source reads its TLS files: placed by the program on
    # fast-data-dev, by the operator on an external cluster.
    source_tls_dir = (MQTT_SOURCE_TLS_DIR if container_kafka
                      else settings.kafka.connect_mqtt_tls_dir or None)
    kafka = KafkaCluster(
        "kafka",
        KafkaClusterArgs(
            settings.kafka, engine(settings.kafka.placement), defaults, jar, extra_plugins,
            expected_classes=(HEALTH_PIPELINE_MQTT_SOURCE_CLASS,) if own_source else (),
            connector_files=tuple(mqtt.connector_tls_files(MQTT_SOURCE_TLS_DIR)),
        ),
    )
    topics = Topics(
        "topics", TopicsArgs(settings.topics, kafka.provider, protect=settings.protect)
    )
    postgres = PostgresServer(
        "postgres",
        PostgresServerArgs(settings.postgres, engine(settings.postgres.placement), defaults),
    )
    databases = AppDatabases("databases", AppDatabasesArgs(
        postgres.provider, settings.protect,
        own_server=settings.postgres.mode is Mode.CONTAINER))

    outputs: dict[str, pulumi.Output] = {
        "mqttUrl": mqtt.url,
        "mqttWebsocketUrl": mqtt.websocket_url,
        "mqttDeviceUsername": mqtt.device_username,
        "mqttDevicePassword": mqtt.device_password,
        "mqttConnectorUsername": mqtt.connector_username,
        "mqttConnectorPassword": mqtt.connector_password,
        "kafkaBootstrapServers": kafka.bootstrap_servers,
        "schemaRegistryUrl": kafka.schema_registry_url,
        "connectUrl": kafka.connect_url,
        "topics": topics.names,
        "postgresHost": postgres.host,
        "postgresPort": postgres.port,
        "postgresAdminUsername": postgres.admin_username,
        "postgresAdminPassword": postgres.admin_password,
    }
    if settings.mqtt.mode is Mode.CONTAINER:
        outputs["mqttCaCertificate"] = mqtt.ca_certificate
    if mqtt.connector_tls and not container_kafka:
        # For the operator to place on the external Connect workers (kafkaConnectMqttTlsDir).
        outputs["mqttConnectorCertificate"] = mqtt.connector_tls.certificate_pem
        outputs["mqttConnectorKey"] = mqtt.connector_tls.private_key_pem
    if settings.lenses.mode is not Mode.DISABLED:
        lenses = Lenses(
            "lenses",
            LensesArgs(
                settings=settings.lenses,
                engine=engine(settings.lenses.placement),
                defaults=defaults,
                environment=settings.lenses.environment,
                postgres=postgres,
                databases=databases,
                kafka=kafka,
                kafka_settings=settings.kafka,
            ),
        )
        outputs["lensesUrl"] = lenses.url
        if settings.lenses.https:
            outputs["lensesCaCertificate"] = lenses.ca_certificate
        processors = SqlProcessors(
            "processors",
            SqlProcessorsArgs(
                hq_url=lenses.url,
                environment=settings.lenses.environment,
                username=lenses.admin_username,
                password=lenses.admin_password,
                hq_ca_pem=lenses.ca_certificate,
                # The agent must be up, and the topics it reads and writes must exist.
                after=(lenses, topics),
            ),
        )
        outputs["sqlProcessors"] = processors.processor_ids
        if settings.lenses.mode is Mode.CONTAINER:
            # An external HQ manages its own administrators.
            outputs["lensesAdminUsername"] = lenses.admin_username
            outputs["lensesAdminPassword"] = lenses.admin_password
    if settings.metabase.mode is not Mode.DISABLED:
        metabase = Metabase(
            "metabase",
            MetabaseArgs(
                settings.metabase, engine(settings.metabase.placement), defaults, postgres,
                databases,
            ),
        )
        outputs["metabaseUrl"] = metabase.url
        if settings.metabase.https:
            outputs["metabaseCaCertificate"] = metabase.ca_certificate

    snowflake = None
    if settings.snowflake.enabled:
        keys = ConnectorKeys(
            "snowflake-keys",
            ConnectorKeysArgs(settings.snowflake.key_slots, settings.snowflake.active_key),
        )
        snowflake = SnowflakeIngest(
            "snowflake", SnowflakeIngestArgs(settings.snowflake, keys, settings.protect)
        )
        outputs |= {
            "snowflakeUrl": snowflake.url,
            "snowflakeUser": snowflake.user,
            "snowflakeDatabase": snowflake.database,
            "snowflakeSchema": snowflake.schema,
            "snowflakeRole": snowflake.role,
            "snowflakeWarehouse": snowflake.warehouse,
            "snowflakePrivateKey": snowflake.private_key,
        }

    # Connect's workers run in the Kafka container (dev) or in the external cluster (prod).
    connect_host = settings.kafka.placement.docker_host if settings.kafka.placement else None
    sf = settings.snowflake
    connectors = StreamConnectors(
        "connectors",
        StreamConnectorsArgs(
            connect_url=kafka.connect_url,
            client_id=f"{settings.name_prefix}-mqtt-source",
            mqtt_source=settings.kafka.mqtt_source,
            # This project's source (the CA in its config) and Stream Reactor's with its files
            # use TLS even where a plain listener exists; Camel's where no plain one does.
            mqtt_url=mqtt.url_for(connect_host, tls=own_source or (
                stream_reactor and source_tls_dir is not None)),
            mqtt_username=mqtt.connector_username,
            mqtt_password=mqtt.connector_password,
            mqtt_ca_pem=mqtt.ca_certificate,
            mqtt_tls_dir=source_tls_dir if mqtt.connector_tls else None,
            schema_registry_url=kafka.endpoints_for(connect_host).schema_registry_url,
            buffer=SinkBuffer(sf.buffer_count_records, sf.buffer_flush_time_seconds,
                              sf.buffer_size_bytes),
            snowflake=SnowflakeTarget.of(snowflake) if snowflake else None,
            after=(topics,),
        ),
    )
    outputs["connectors"] = connectors.names

    for key, value in outputs.items():
        pulumi.export(key, value)
    return outputs


# Read by the mocks harness in tests/conftest.py; `pulumi.export` cannot be read back there.
stack_outputs = main()
