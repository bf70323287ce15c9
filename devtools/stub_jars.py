"""Stand-in jars for the mock engine: the program reads and hashes the connector jars it
uploads, and the unit tests and the offline plan must run from a clean clone with no Java, no
Maven and no network. A stub is a small, byte-for-byte reproducible zip whose manifest says
what it is; it loads no connector, so it is only ever named by the harness's config (the
real jars' contents are checked by tests/contract/test_connector_jars.py)."""

from __future__ import annotations

import os
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STUBS = ROOT / "build" / "stubs" / "connectors"
"""Inside the project (build/ is ignored by git), so uploads record relative paths as they do
for the real jars."""

_EPOCH = (1980, 1, 1, 0, 0, 0)  # the earliest date a zip holds: same bytes on every run


@dataclass(frozen=True)
class StubJars:
    snowflake_jar: Path
    """Stands in for kafkaConnectSnowflakeJar."""
    mqtt_source_plugin: Path
    """Stands in for kafkaConnectMqttSourcePlugin: the connector's jar and one library, as
    scripts/build-mqtt-source lays the plugin out."""

    def config(self, project: str) -> dict[str, str]:
        """The settings that point the program at the stubs (relative to the project)."""
        return {
            f"{project}:kafkaConnectSnowflakeJar": self.snowflake_jar.relative_to(ROOT).as_posix(),
            f"{project}:kafkaConnectMqttSourcePlugin":
                self.mqtt_source_plugin.relative_to(ROOT).as_posix(),
        }


def _mqtt_source_version() -> str:
    pom = (ROOT / "connectors" / "mqtt-source" / "pom.xml").read_text()
    return re.search(r"<artifactId>mqtt-source-connector</artifactId>\s*<version>([^<]+)<",
                     pom)[1]


def _write_stub(path: Path, stands_for: str) -> None:
    """Write the stub unless the same bytes are there already (parallel runs share it)."""
    manifest = ("Manifest-Version: 1.0\n"
                f"Implementation-Title: health-pipeline stub for {stands_for}\n"
                "Comment: written by devtools/stub_jars.py for the mock engine; not a "
                "connector\n")
    part = path.with_name(f".{path.name}.{os.getpid()}.part")
    with zipfile.ZipFile(part, "w") as jar:
        jar.writestr(zipfile.ZipInfo("META-INF/MANIFEST.MF", _EPOCH), manifest)
    if path.is_file() and path.read_bytes() == part.read_bytes():
        part.unlink()
    else:
        part.replace(path)


def write_stub_jars(directory: Path = STUBS) -> StubJars:
    """The stub jars under `directory`, (re)written so their contents are always the same."""
    plugin = directory / "mqtt-source"
    plugin.mkdir(parents=True, exist_ok=True)
    snowflake = directory / "snowflake.jar"
    _write_stub(snowflake, "the Snowflake sink connector")
    _write_stub(plugin / f"mqtt-source-connector-{_mqtt_source_version()}.jar",
                "this project's MQTT source connector")
    _write_stub(plugin / "org.eclipse.paho.client.mqttv3-stub.jar", "the Paho MQTT client")
    return StubJars(snowflake, plugin)
