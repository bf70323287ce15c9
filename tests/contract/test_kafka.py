"""A real Kafka broker and Connect worker (the release fast-data-dev runs) against what the
program declares: its topics, its Snowflake sink config, and its connectors provider."""

from __future__ import annotations

import re
import time
import uuid
from typing import Any
from urllib.parse import quote

import pytest

from components.connect_api import ValidationFailed
from components.connectors import ConnectorProvider, client_for
from components.http_api import JsonApi
from components.streams import ALL_TOPICS, SINK_DEAD_LETTER_TOPIC
from devtools.harness import ProgramRun
from devtools.kafka_servers import FILE_SOURCE, SNOWFLAKE_SINK

TOPIC = "kafka:index/topic:Topic"
CHECKED_CONFIGS = ("retention.ms", "cleanup.policy", "max.message.bytes", "compression.type",
                   "min.insync.replicas")

SINK = ("pulumi-python:dynamic/connect:Connector", "connectors-snowflake-sink")
FAIL_FAST = {"snowflake.jdbc.map": "loginTimeout:5"}
"""Test-only addition to the sink config. The connector's validate logs in to Snowflake with
JDBC, which retries a failed login with backoff for its loginTimeout (300 s by default: 309 s
measured), far beyond Connect's 90 s REST timeout. Five seconds ends it with the same error
(1001); the key only tunes the JDBC driver."""

CANNOT_CONNECT = {
    key: [f"{key}: Cannot connect to Snowflake"]
    for key in ("snowflake.url.name", "snowflake.user.name", "snowflake.private.key")
}
"""What the 2.5.0 connector reports when its JDBC login fails (its error 1001), whether the
account does not exist or cannot be reached (here: a refused proxy, see _no_internet)."""


# Topics ------------------------------------------------------------------------------------

def _declared_topics(run: ProgramRun) -> dict[str, dict[str, Any]]:
    """Topic name on the test broker (prefixed by stack, so both stacks fit on one broker) ->
    partitions and config as declared."""
    return {
        f"{run.stack}-{t.get('name')}": {"partitions": int(t.get("partitions")),
                                         "replication": int(t.get("replicationFactor")),
                                         "config": t.get("config")}
        for t in run.of_type(TOPIC)
    }


@pytest.fixture(scope="module")
def created_topics(kafka_server, run):
    """Each declared topic created as declared, except the replication factor: prod's 3 is
    capped at 1, the only broker here (min.insync.replicas 2 is still accepted, as Kafka
    checks it on produce with acks=all, not on create)."""
    declared = _declared_topics(run)
    expected = {f"{run.stack}-{name}" for name in (*ALL_TOPICS, SINK_DEAD_LETTER_TOPIC)}
    assert set(declared) == expected, f"{run.stack} declares {sorted(declared)}"
    results = {
        name: kafka_server.create_topic(name, topic["partitions"], topic["config"],
                                        min(topic["replication"], 1))
        for name, topic in declared.items()
    }
    return declared, results


def _described_configs(kafka_server) -> dict[str, dict[str, str]]:
    """Topic -> its topic-level configs as the broker stored them (ConfigCommand)."""
    done = kafka_server.configs("--describe", "--entity-type", "topics")
    assert done.returncode == 0, done.stderr
    configs: dict[str, dict[str, str]] = {}
    current: dict[str, str] = {}
    for line in done.stdout.splitlines():
        if header := re.match(r"Dynamic configs for topic (\S+) are:", line):
            current = configs.setdefault(header[1], {})
        elif entry := re.match(r"\s+([\w.]+)=(.*?) sensitive=(?:true|false) synonyms=", line):
            current[entry[1]] = entry[2]
    return configs


def _described_partitions(kafka_server) -> dict[str, tuple[int, int]]:
    """Topic -> (partition count, replication factor) as the broker reports them."""
    done = kafka_server.topics("--describe")
    assert done.returncode == 0, done.stderr
    return {
        m[1]: (int(m[2]), int(m[3]))
        for m in re.finditer(r"^Topic: (\S+)\s+TopicId: \S+\s+PartitionCount: (\d+)\s+"
                             r"ReplicationFactor: (\d+)", done.stdout, re.M)
    }


def test_the_broker_accepts_every_declared_topic_key_and_value(created_topics) -> None:
    _, results = created_topics
    refused = {name: (done.stdout + done.stderr).strip()
               for name, done in results.items() if done.returncode}
    assert not refused, refused
    for name, done in results.items():
        assert f"Created topic {name}." in done.stdout


def test_each_topic_reads_back_with_the_declared_config(kafka_server, created_topics) -> None:
    declared, _ = created_topics
    live = _described_configs(kafka_server)
    for name, topic in declared.items():
        assert set(CHECKED_CONFIGS) <= set(topic["config"]), f"{name} leaves a key to the broker"
        got = {key: live.get(name, {}).get(key) for key in CHECKED_CONFIGS}
        assert got == {key: topic["config"][key] for key in CHECKED_CONFIGS}, name


def test_each_topic_has_the_declared_partitions(kafka_server, created_topics) -> None:
    declared, _ = created_topics
    live = _described_partitions(kafka_server)
    for name, topic in declared.items():
        assert live.get(name) == (topic["partitions"], 1), name


# Snowflake sink validation -----------------------------------------------------------------

def _sink_config(dev: ProgramRun, **changes: str | None) -> dict[str, str]:
    """The sink config the program renders for dev (Schema Registry URL and all), plus
    FAIL_FAST; a change to None drops the key."""
    config = {**dev.one(*SINK).get("config"), **FAIL_FAST, **changes}
    return {key: value for key, value in config.items() if value is not None}


def _validation_errors(connect_server, config: dict[str, str]) -> dict[str, list[str]]:
    """Key -> errors, from Connect's validate endpoint with the real connector."""
    api = JsonApi(connect_server.url, timeout=100)  # beyond Connect's own 90 s
    response = api.request(
        "PUT", f"/connector-plugins/{quote(config['connector.class'], safe='')}/config/validate",
        config)
    assert response is not None
    body = response.body
    assert body["name"] == SNOWFLAKE_SINK
    errors = {item["value"]["name"]: item["value"]["errors"]
              for item in body["configs"] if item["value"]["errors"]}
    assert body["error_count"] == sum(map(len, errors.values())), body["error_count"]
    return errors


def test_the_dev_sink_config_fails_only_on_reaching_snowflake(dev, connect_server) -> None:
    """No error about the format of any key the program renders (converter, topic2table map,
    buffers, key, names): only the login, which cannot reach Snowflake from here."""
    assert _validation_errors(connect_server, _sink_config(dev)) == CANNOT_CONNECT


def test_a_malformed_private_key_gets_the_connectors_key_message(dev, connect_server) -> None:
    key = dev.one(*SINK).get("config")["snowflake.private.key"]
    errors = _validation_errors(
        connect_server, _sink_config(dev, **{"snowflake.private.key": key[: len(key) // 2]}))
    assert errors == {
        "snowflake.private.key": ["snowflake.private.key must be a valid PEM RSA private key"]}


@pytest.mark.parametrize("key", ["snowflake.user.name", "snowflake.database.name"])
def test_a_missing_required_key_gets_the_connectors_message_naming_it(
    dev, connect_server, key
) -> None:
    errors = _validation_errors(connect_server, _sink_config(dev, **{key: None}))
    assert errors == {key: [f"{key} must be provided"]}


def test_the_provider_client_stops_with_the_connectors_message_masked(dev, connect_server):
    """What `pulumi up` prints: the connector's message, never the private key."""
    key = dev.one(*SINK).get("config")["snowflake.private.key"]
    config = _sink_config(dev, **{"snowflake.private.key": key[:-8],
                                  "snowflake.user.name": None})
    with pytest.raises(ValidationFailed) as failed:
        client_for({"connect_url": connect_server.url, "config": config}).validate(config)
    message = str(failed.value)
    assert "snowflake.user.name: snowflake.user.name must be provided" in message
    assert key[:-8] not in message and key[:40] not in message


# The connectors provider on a real worker --------------------------------------------------

@pytest.fixture
def source(connect_server, tmp_path):
    """Props of a FileStreamSource connector (Kafka's own, no outside service), deleted
    afterwards whatever the test did."""
    lines = tmp_path / "vitals.jsonl"
    lines.write_text('{"deviceId": "d1"}\n')
    name = f"file_source_{uuid.uuid4().hex[:8]}"
    props = {
        "connect_url": connect_server.url,
        "name": name,
        "config": {"connector.class": FILE_SOURCE, "name": name, "tasks.max": "1",
                   "file": str(lines), "topic": f"{name}_a"},
        "timeout_seconds": 30,
    }
    yield props
    client_for(props).delete(name)


def _live(connect_server, name: str, timeout: float = 30) -> dict[str, str] | None:
    """The connector's config once the worker has settled, None if it is gone. Right after a
    config change a worker answers reads with HTTP 500 "Request cannot be completed because
    a rebalance is expected" (Connect 3.9; writes get 409) until it has rebalanced."""
    deadline = time.monotonic() + timeout
    while True:
        status, body = connect_server.get(f"/connectors/{name}/config")
        if status in (200, 404):
            return body if status == 200 else None
        if time.monotonic() > deadline:
            raise AssertionError(f"GET /connectors/{name}/config: HTTP {status} {body}")
        time.sleep(0.1)


def _wait_settled(connect_server, name: str, config: dict[str, str],
                  timeout: float = 30) -> None:
    """Until the worker runs `config`: a config change makes Connect restart the connector,
    write new task configs and rebalance again, and it answers reads with HTTP 500 until
    then. Settled = the tasks carry the new topic (reads would fail if a rebalance were
    still due) and connector and tasks are RUNNING."""
    deadline = time.monotonic() + timeout
    seen: object = None
    while time.monotonic() < deadline:
        code, tasks = connect_server.get(f"/connectors/{name}/tasks")
        seen = tasks
        if code == 200 and tasks and all(t["config"].get("topic") == config["topic"]
                                         for t in tasks):
            code, status = connect_server.get(f"/connectors/{name}/status")
            seen = status
            if (code == 200 and status["connector"]["state"] == "RUNNING" and status["tasks"]
                    and all(t["state"] == "RUNNING" for t in status["tasks"])):
                return
        time.sleep(0.1)
    raise AssertionError(f"{name} did not settle on {config} in {timeout} s: {seen}")


def test_create_puts_a_connector_that_runs(connect_server, source) -> None:
    result = ConnectorProvider().create(source)
    assert result.id == source["name"]
    assert result.outs["config"] == source["config"]
    assert _live(connect_server, source["name"]) == source["config"]
    _wait_settled(connect_server, source["name"], source["config"])


def test_update_changes_the_live_config(connect_server, source) -> None:
    provider = ConnectorProvider()
    provider.create(source)
    news = {**source, "config": {**source["config"], "topic": f"{source['name']}_b"}}
    diff = provider.diff(source["name"], source, news)
    assert diff.changes is None and not diff.replaces, "changed: the engine names the keys"
    provider.update(source["name"], source, news)
    assert _live(connect_server, source["name"]) == news["config"]
    _wait_settled(connect_server, source["name"], news["config"])


def test_read_returns_an_out_of_band_change_as_drift(connect_server, source) -> None:
    provider = ConnectorProvider()
    provider.create(source)
    by_hand = {**source["config"], "topic": f"{source['name']}_by_hand"}
    JsonApi(connect_server.url).request(
        "PUT", f"/connectors/{source['name']}/config", by_hand, ok=(200,))
    # A refresh comes later than this: reading while the worker rebalances fails (HTTP 500).
    _wait_settled(connect_server, source["name"], by_hand)
    read = provider.read(source["name"], source)
    assert read.id == source["name"]
    assert read.outs["config"] == by_hand
    assert provider.diff(source["name"], read.outs, source).changes is None, (
        "drift would not show")


def test_delete_removes_it_and_a_second_delete_is_fine(connect_server, source) -> None:
    provider = ConnectorProvider()
    provider.create(source)
    provider.delete(source["name"], source)
    assert _live(connect_server, source["name"]) is None
    provider.delete(source["name"], source)
    assert provider.read(source["name"], source).id is None
