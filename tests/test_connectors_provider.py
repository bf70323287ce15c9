"""The connectors provider's create/read/update/delete/diff against a local server that
answers like Kafka Connect, including rebalances, validation errors, drift and timeouts."""

from __future__ import annotations

import base64
import json
import subprocess
import sys

import dill
import pytest
from pulumi.dynamic.dynamic import serialize_provider

from components.connectors import ConnectorProvider
from components.http_api import ApiError
from components.render.connectors import (
    SinkBuffer,
    SinkErrors,
    mqtt_source_configs,
    snowflake_sink_config,
)
from components.settings import MqttSource
from devtools.harness import ROOT
from tests.fake_connect import serve

PASSWORD = "mqtt-Pa55word-xyz"
PRIVATE_KEY = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7"


@pytest.fixture
def connect():
    fake, server = serve()
    yield fake
    server.shutdown()


@pytest.fixture
def provider() -> ConnectorProvider:
    """The provider as the engine runs it, with a fast retry backoff."""
    return ConnectorProvider(backoff=0.01)


def _source(connect, password: str = PASSWORD, **changes) -> dict:
    config = mqtt_source_configs(MqttSource.STREAM_REACTOR, "health_mqtt_source",
                                 "tcp://mosquitto:1883", "kafka-connect", password,
                                 "hp-dev-mqtt-source")["mqtt-source"]
    return {"connect_url": connect.url, "name": "health_mqtt_source",
            "config": {**config, **changes}, "timeout_seconds": 2}


def _sink(connect, **changes) -> dict:
    config = snowflake_sink_config(
        "health_snowflake_sink", "org-acct.snowflakecomputing.com:443", "kafka_user",
        PRIVATE_KEY, "INGEST", "INGEST", "INGEST", "http://kafka:8081",
        SinkBuffer(1_000_000, 10, 250_000_000),
        SinkErrors("all", "snowflake_sink_dlq", 1, True, True, False),
    )
    return {"connect_url": connect.url, "name": "health_snowflake_sink",
            "config": {**config, **changes}, "timeout_seconds": 2}


def test_create_validates_then_puts_the_config(connect, provider) -> None:
    props = _source(connect)
    result = provider.create(props)
    assert result.id == "health_mqtt_source"
    assert connect.connectors["health_mqtt_source"] == props["config"]
    methods = [(m, p.split("/")[1]) for m, p, _ in connect.requests]
    assert methods == [("PUT", "connector-plugins"), ("PUT", "connectors")]


def test_read_returns_what_was_created(connect, provider) -> None:
    props = _source(connect)
    provider.create(props)
    read = provider.read("health_mqtt_source", props)
    assert read.id == "health_mqtt_source"
    assert read.outs["config"] == props["config"]
    assert read.inputs["config"] == props["config"]


def test_update_applies_a_changed_config(connect, provider) -> None:
    old = _sink(connect)
    provider.create(old)
    new = _sink(connect, **{"buffer.flush.time": "30"})
    diff = provider.diff("health_snowflake_sink", old, new)
    assert diff.changes is None and not diff.replaces, "changed: the engine names the keys"
    provider.update("health_snowflake_sink", old, new)
    assert connect.connectors["health_snowflake_sink"]["buffer.flush.time"] == "30"


@pytest.mark.parametrize("key", ["name", "connect_url"])
def test_renaming_or_moving_a_connector_replaces_it(connect, provider, key) -> None:
    old = _source(connect)
    new = {**old, key: "other" if key == "name" else "http://127.0.0.1:1"}
    diff = provider.diff("health_mqtt_source", old, new)
    assert diff.replaces == [key] and diff.delete_before_replace


def test_unchanged_props_are_no_diff(connect, provider) -> None:
    props = _source(connect)
    assert provider.diff("health_mqtt_source", props, dict(props)).changes is False


def test_out_of_band_change_shows_as_drift(connect, provider) -> None:
    props = _source(connect)
    provider.create(props)
    connect.connectors["health_mqtt_source"]["connect.mqtt.service.quality"] = "0"
    read = provider.read("health_mqtt_source", props)
    assert read.inputs["config"]["connect.mqtt.service.quality"] == "0"
    assert provider.diff("health_mqtt_source", read.inputs, props).changes is None


def test_connector_deleted_out_of_band_reads_as_gone(connect, provider) -> None:
    props = _source(connect)
    provider.create(props)
    del connect.connectors["health_mqtt_source"]
    assert provider.read("health_mqtt_source", props).id is None


def test_delete_removes_and_is_idempotent(connect, provider) -> None:
    props = _source(connect)
    provider.create(props)
    provider.delete("health_mqtt_source", props)
    assert "health_mqtt_source" not in connect.connectors
    provider.delete("health_mqtt_source", props)


def test_writes_are_retried_while_the_workers_rebalance(connect, provider) -> None:
    connect.conflicts = 3
    provider.create(_source(connect))
    assert "health_mqtt_source" in connect.connectors
    assert [m for m, _, _ in connect.requests].count("PUT") == 5


def test_a_rebalance_that_does_not_end_fails_after_bounded_retries(connect, provider) -> None:
    connect.conflicts = 100
    with pytest.raises(ApiError, match="HTTP 409 after 7 attempts") as error:
        provider.create(_source(connect))
    assert len(connect.requests) == 7
    assert PASSWORD not in str(error.value)


def test_invalid_config_fails_with_the_connectors_messages_and_applies_nothing(
    connect, provider
) -> None:
    props = _sink(connect, **{"snowflake.private.key": PRIVATE_KEY + "!!",
                              "snowflake.user.name": "", "buffer.flush.time": "5"})
    with pytest.raises(ApiError) as error:
        provider.create(props)
    message = str(error.value)
    assert "failed Connect's validation (3 error(s))" in message
    assert 'snowflake.user.name: Missing required configuration "snowflake.user.name"' in message
    assert "snowflake.private.key: Invalid value [secret] for configuration" in message
    assert "buffer.flush.time: buffer.flush.time is 5" in message
    assert PRIVATE_KEY not in message, "the connector echoed the key; it must be masked"
    assert connect.connectors == {}


def test_a_slow_worker_times_out_with_a_clear_error(connect, provider) -> None:
    connect.delay = 2.5
    with pytest.raises(ApiError, match="timed out after 2 s") as error:
        provider.read("health_mqtt_source", _source(connect))
    assert PASSWORD not in str(error.value)


def test_an_unreachable_worker_is_a_clear_error(provider) -> None:
    props = {"connect_url": "http://127.0.0.1:9", "name": "x",
             "config": {"connect.mqtt.password": PASSWORD}, "timeout_seconds": 2}
    with pytest.raises(ApiError, match="could not connect") as error:
        provider.read("x", props)
    assert PASSWORD not in str(error.value)


def test_the_serialized_provider_loads_in_a_fresh_interpreter(connect) -> None:
    """The engine runs dynamic providers in another process from the project folder: the
    pickled provider must load there and reach the same server."""
    blob = serialize_provider(ConnectorProvider())
    props = _source(connect)
    code = (
        "import base64, dill, json, sys\n"
        "p = dill.loads(base64.b64decode(sys.argv[1]))\n"
        "print(json.dumps(p.create(json.loads(sys.argv[2])).id))\n"
    )
    result = subprocess.run([sys.executable, "-c", code, blob, json.dumps(props)], cwd=ROOT,
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == "health_mqtt_source"
    assert "health_mqtt_source" in connect.connectors


def test_a_provider_pickled_before_it_held_its_settings_still_answers(connect) -> None:
    """State written before the provider kept its timeout and retries holds a provider with no
    attributes at all; delete and refresh run with that one, which must fall back to the
    defaults."""
    bare = ConnectorProvider.__new__(ConnectorProvider)
    assert vars(bare) == {}
    restored = dill.loads(base64.b64decode(serialize_provider(bare)))  # noqa: S301 - ours
    props = _source(connect)
    restored.create(props)
    assert restored.read("health_mqtt_source", props).id == "health_mqtt_source"
    restored.delete("health_mqtt_source", props)
    assert connect.connectors == {}
