"""Fixtures for the real servers that both the contract tests and the engine tests use, one of
each per session (registered in tests/conftest.py), and their logs on failure."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest

from devtools.kafka_servers import (
    FILE_SOURCE,
    MQTT_SOURCE,
    SNOWFLAKE_SINK,
    ConnectWorker,
    Kafka,
    mqtt_source_plugin,
    snowflake_jar,
)
from devtools.servers import free_port


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """On failure, attach the server logs the test kept (fixtures named *_server with .log)."""
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" and report.failed:
        for name in item.fixturenames:
            server = item.funcargs.get(name)
            log = getattr(server, "log", None)
            if name.endswith("server") and isinstance(log, str):
                report.sections.append((f"{name} log", log[-5000:]))


@pytest.fixture(scope="session")
def kafka_server():
    """One broker for every module (each uses its own topic names)."""
    root = Path(tempfile.mkdtemp(prefix="health-pipeline-kafka-"))
    server = Kafka(root)
    try:
        yield server.start()
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


def _no_internet() -> tuple[str, ...]:
    """JVM options that send the Snowflake JDBC driver's HTTPS (it honours http.useProxy) to
    a closed local port: the login fails within seconds the same way on every network, and
    no test key ever reaches Snowflake's servers. Without it, a network that accepts TCP to
    port 443 but never answers TLS hangs the login past Connect's timeout (seen with a local
    tarpit). MQTT connections are plain sockets and do not use these proxies."""
    closed = str(free_port())
    return ("-Dhttp.useProxy=true", "-Dhttps.proxyHost=127.0.0.1", f"-Dhttps.proxyPort={closed}",
            "-Dhttp.proxyHost=127.0.0.1", f"-Dhttp.proxyPort={closed}")


@pytest.fixture(scope="session")
def connect_server(kafka_server):
    """One distributed worker with the Snowflake sink (scripts/fetch-connectors) and this
    project's MQTT source (scripts/build-mqtt-source) on its plugin path."""
    root = Path(tempfile.mkdtemp(prefix="health-pipeline-connect-"))
    worker = ConnectWorker(root, kafka_server.bootstrap,
                           plugins=(snowflake_jar(), mqtt_source_plugin()),
                           expected_plugins=(SNOWFLAKE_SINK, FILE_SOURCE, MQTT_SOURCE),
                           jvm_options=_no_internet())
    try:
        yield worker.start()
    finally:
        worker.stop()
        shutil.rmtree(root, ignore_errors=True)
