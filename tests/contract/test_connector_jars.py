"""The real connector jars (scripts/fetch-connectors, scripts/build-mqtt-source): what the
unit tests and the offline plan stand in for with stubs (devtools/stub_jars.py). The program
with its default jar settings finds, hashes and uploads exactly these."""

from __future__ import annotations

import re
import zipfile

from components.settings import locate_mqtt_source_plugin, locate_snowflake_jar
from devtools.harness import PROJECT, ROOT, project_config, run_program, unwrap
from devtools.kafka_servers import mqtt_source_plugin, snowflake_jar


def test_connector_jar_is_the_pinned_version_with_the_classes_we_configure() -> None:
    jar_path = snowflake_jar()
    pom = (ROOT / "scripts" / "maven" / "pom.xml").read_text()
    pinned = re.search(r"<snowflake.connector.version>([^<]+)<", pom)[1]
    assert int(pinned.split(".")[0]) < 4, f"{pinned}: 4.x has no SnowflakeAvroConverter"
    with zipfile.ZipFile(jar_path) as jar:
        names = set(jar.namelist())
        utils = jar.read("com/snowflake/kafka/connector/Utils.class")
    assert "com/snowflake/kafka/connector/SnowflakeSinkConnector.class" in names
    assert "com/snowflake/kafka/connector/records/SnowflakeAvroConverter.class" in names
    assert pinned.encode() in utils, f"jar is not version {pinned}: run scripts/fetch-connectors"


def test_the_default_jar_settings_upload_the_built_jars() -> None:
    """The defaults of kafkaConnectSnowflakeJar and kafkaConnectMqttSourcePlugin are where the
    scripts put the jars; the program uploads them by relative path with their hashes."""
    declared = project_config()
    defaults = {key: declared[key]["default"]
                for key in ("kafkaConnectSnowflakeJar", "kafkaConnectMqttSourcePlugin")}
    assert ROOT / defaults["kafkaConnectSnowflakeJar"] == snowflake_jar()
    assert ROOT / defaults["kafkaConnectMqttSourcePlugin"] == mqtt_source_plugin()
    run = run_program("dev", {f"{PROJECT}:{key}": value for key, value in defaults.items()}
                      | {f"{PROJECT}:kafkaMqttSource": "health-pipeline"})
    upload = unwrap(run.upload("kafka", "/connectors/snowflake.jar"))
    assert upload["source"] == "build/connectors/snowflake.jar", "state must not hold abs paths"
    assert upload["sourceHash"] == locate_snowflake_jar(snowflake_jar()).sha256
    jars = locate_mqtt_source_plugin(mqtt_source_plugin())
    assert any(j.path.name.startswith("mqtt-source-connector-") for j in jars), jars
    for jar in jars:
        upload = unwrap(run.upload("kafka", f"/connectors/mqtt-source/{jar.path.name}"))
        assert upload["source"] == f"build/connectors/mqtt-source/{jar.path.name}"
        assert upload["sourceHash"] == jar.sha256
