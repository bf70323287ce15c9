"""The HQ environment and topic-format providers, called as the engine calls them, against the
HQ test server."""

from __future__ import annotations

import json
import traceback
from typing import Any

import pytest

from components.http_api import ApiError
from components.lenses_api import agent_key_of
from components.lenses_resources import (
    DEVICE_VALUE_SCHEMA,
    EnvironmentProvider,
    TopicFormatProvider,
    device_value_schema,
)
from components.processors import ProcessorProvider
from tests.fake_lenses import FakeLenses, lenses_fixture  # noqa: F401 - the `lenses` fixture

FAST = {"timeout": 2.0, "retries_on_conflict": 1, "backoff": 0.01}


def env_props(lenses: FakeLenses, **overrides: Any) -> dict[str, Any]:
    return {"__provider": "serialized", "hq_url": lenses.url, "username": lenses.username,
            "password": lenses.password, "name": "eu-prod", "tier": "production", **overrides}


def format_props(lenses: FakeLenses, **overrides: Any) -> dict[str, Any]:
    return {"__provider": "serialized", "hq_url": lenses.url, "environment": "dev",
            "username": lenses.username, "password": lenses.password, "topic": "device_data",
            "key_type": "STRING", "value_type": "JSON",
            "value_schema": device_value_schema(), **overrides}


# --- environments ------------------------------------------------------------------------------

def test_create_environment_keeps_the_agent_key_hq_answers_with(lenses: FakeLenses) -> None:
    created = EnvironmentProvider(**FAST).create(env_props(lenses))
    assert created.id == "eu-prod"
    assert "eu-prod" in lenses.environments and lenses.tiers["eu-prod"] == "production"
    (post,) = lenses.calls("POST")
    assert post.body == {"name": "eu-prod", "display_name": "eu-prod", "tier": "production"}
    assert created.outs["agent_key"].startswith("agent_key_")
    assert "__provider" not in created.outs


def test_read_environment_keeps_the_key_and_shows_a_tier_changed_in_hq(
    lenses: FakeLenses,
) -> None:
    provider = EnvironmentProvider(**FAST)
    created = provider.create(env_props(lenses))
    lenses.tiers["eu-prod"] = "staging"
    read = provider.read(created.id, {**env_props(lenses), **created.outs})
    assert read.outs["tier"] == "staging"
    assert read.outs["agent_key"] == created.outs["agent_key"]
    assert read.inputs["tier"] == "staging"
    assert provider.diff(created.id, read.inputs, env_props(lenses)).replaces == ["tier"]


def test_read_environment_deleted_in_hq_reports_it_gone(lenses: FakeLenses) -> None:
    provider = EnvironmentProvider(**FAST)
    created = provider.create(env_props(lenses))
    provider.delete(created.id, {**env_props(lenses), **created.outs})
    assert "eu-prod" not in lenses.environments
    assert provider.read(created.id, {**env_props(lenses), **created.outs}).id is None
    provider.delete(created.id, {**env_props(lenses), **created.outs})  # already gone: fine


@pytest.mark.parametrize(("key", "replaced"), [("name", True), ("tier", True),
                                               ("password", False)])
def test_environment_diff_replaces_on_name_and_tier_only(
    lenses: FakeLenses, key: str, replaced: bool,
) -> None:
    olds = env_props(lenses)
    result = EnvironmentProvider(**FAST).diff("eu-prod", olds, {**olds, key: "staging"})
    assert result.changes is None  # changed: the engine names the keys
    assert result.replaces == ([key] if replaced else [])


def test_an_existing_environment_fails_with_what_to_do_and_no_secret(lenses: FakeLenses) -> None:
    with pytest.raises(ApiError) as raised:
        EnvironmentProvider(**FAST).create(env_props(lenses, name="dev"))
    text = "".join(traceback.format_exception(raised.value))
    assert "already exists" in text and "lensesEnvironmentName" in text
    assert lenses.password not in text


def test_a_bad_environment_name_shows_hqs_reason(lenses: FakeLenses) -> None:
    with pytest.raises(ApiError, match="hq-resource-name"):
        EnvironmentProvider(**FAST).create(env_props(lenses, name="Eu_Prod"))


@pytest.mark.parametrize(("answer", "key"), [
    ({"name": "x", "agent_key": "agent_key_abc"}, "agent_key_abc"),
    ({"name": "x", "agentKey": "agent_key_A1_b2"}, "agent_key_A1_b2"),
    ({"environment": {"name": "x"}, "key": {"value": "agent_key_z9"}}, "agent_key_z9"),
    ({"name": "x"}, None),
    ({"a": "agent_key_one", "b": "agent_key_two"}, None),
    (None, None),
])
def test_the_agent_key_is_found_where_hq_puts_it_or_not_guessed(answer: Any, key: Any) -> None:
    assert agent_key_of(answer) == key


# --- topic formats -----------------------------------------------------------------------------

def test_the_schema_file_is_the_seeds_health_data_record() -> None:
    schema = json.loads(DEVICE_VALUE_SCHEMA.read_text())
    assert (schema["type"], schema["name"], schema["namespace"]) == (
        "record", "HealthData", "com.example")
    assert [(f["name"], f["type"]) for f in schema["fields"]] == [
        ("deviceId", "string"), ("timestamp", "long"), ("heartRate", "int"),
        ("systolic", "int"), ("diastolic", "int"), ("oxygenSaturation", "int"),
        ("bodyTemperature", "double"), ("latitude", "double"), ("longitude", "double")]


def test_a_broken_schema_file_stops_the_program_with_its_path(tmp_path) -> None:
    broken = tmp_path / "health_data.avsc"
    broken.write_text("{not json")
    with pytest.raises(ValueError, match=str(broken)):
        device_value_schema(broken)


def test_create_format_posts_the_formats_and_the_schema(lenses: FakeLenses) -> None:
    lenses.topic_metadata.clear()
    created = TopicFormatProvider(**FAST).create(format_props(lenses))
    assert created.id == "dev/device_data"
    (post,) = lenses.calls("POST")
    assert post.path == "/api/v1/environments/dev/proxy/api/v1/metadata/topics"
    assert post.body == {"topicName": "device_data", "keyType": "STRING", "valueType": "JSON",
                         "valueSchema": device_value_schema()}
    assert lenses.topic_metadata[("dev", "device_data")]["valueType"] == "JSON"


def test_read_format_ignores_a_reformatted_schema_and_shows_a_changed_one(
    lenses: FakeLenses,
) -> None:
    provider = TopicFormatProvider(**FAST)
    provider.create(format_props(lenses))
    pretty = json.dumps(json.loads(device_value_schema()), indent=2)
    lenses.declare("device_data", "STRING", "JSON", value_schema=pretty)
    read = provider.read("dev/device_data", format_props(lenses))
    assert read.outs["value_schema"] == device_value_schema()
    assert provider.diff("dev/device_data", read.inputs, format_props(lenses)).changes is False

    lenses.declare("device_data", "BYTES", "BYTES")  # someone reset it in the UI
    read = provider.read("dev/device_data", format_props(lenses))
    assert (read.outs["key_type"], read.outs["value_type"], read.outs["value_schema"]) == (
        "BYTES", "BYTES", "")
    diff = provider.diff("dev/device_data", read.inputs, format_props(lenses))
    assert diff.changes is None and diff.replaces == []  # an update sets it back


def test_update_format_posts_again_and_delete_removes_it(lenses: FakeLenses) -> None:
    provider = TopicFormatProvider(**FAST)
    provider.create(format_props(lenses))
    provider.update("dev/device_data", format_props(lenses), format_props(lenses, key_type="BYTES"))
    assert lenses.topic_metadata[("dev", "device_data")]["keyType"] == "BYTES"
    provider.delete("dev/device_data", format_props(lenses))
    assert ("dev", "device_data") not in lenses.topic_metadata
    assert provider.read("dev/device_data", format_props(lenses)).id is None
    provider.delete("dev/device_data", format_props(lenses))  # already gone: fine


def test_a_format_lenses_does_not_know_shows_its_field_error(lenses: FakeLenses) -> None:
    with pytest.raises(ApiError, match="keyType: must be one of"):
        TopicFormatProvider(**FAST).create(format_props(lenses, key_type="string"))


def test_a_processor_on_a_topic_without_a_format_is_refused_with_the_agents_reason(
    lenses: FakeLenses,
) -> None:
    lenses.topic_metadata.clear()
    processor = {"__provider": "serialized", "hq_url": lenses.url, "environment": "dev",
                 "username": lenses.username, "password": lenses.password, "name": "heart_rate",
                 "sql": "INSERT INTO t SELECT STREAM * FROM device_data;", "description": ""}
    with pytest.raises(ApiError, match="device_data has no known key and value format"):
        ProcessorProvider(**FAST).create(processor)
    TopicFormatProvider(**FAST).create(format_props(lenses))
    assert ProcessorProvider(**FAST).create(processor).id
