"""The Lenses SQL processors: the SQL files, and the processors the program declares."""

from __future__ import annotations

import json
import re

import pytest

from components.lenses_resources import DEVICE_VALUE_SCHEMA
from components.processors import SQL_DIR
from components.streams import DERIVED_STREAMS, DEVICE_TOPIC
from devtools.harness import ProgramRun

PROCESSOR = "pulumi-python:dynamic/lenses:Processor"


@pytest.mark.parametrize("stream", DERIVED_STREAMS, ids=lambda s: s.name)
def test_each_sql_file_reads_device_data_and_writes_its_topic(stream) -> None:
    sql = (SQL_DIR / f"{stream.name}.sql").read_text()
    body = " ".join(line for line in sql.splitlines() if not line.startswith("--"))
    assert re.search(rf"\bINSERT INTO {stream.topic}\s", body)
    assert re.search(rf"\bFROM {DEVICE_TOPIC};", body)
    assert "STORE KEY AS STRING VALUE AS AVRO" in body
    selected = dict(re.findall(r"_value\.(\w+) AS (\w+)", body))
    assert selected == {
        "deviceId": "deviceId",  # the key is set from the same field: `_value.deviceId AS _key`
        **dict(stream.fields),
        "latitude": "latitude",
        "longitude": "longitude",
        "timestamp": "createdTime",
    }
    assert "_value.deviceId AS _key" in body


def test_sql_folder_holds_exactly_one_file_per_stream() -> None:
    assert sorted(p.stem for p in SQL_DIR.glob("*.sql")) == sorted(s.name for s in
                                                                   DERIVED_STREAMS)


def test_program_declares_one_processor_per_stream_with_its_file(run: ProgramRun) -> None:
    processors = {p.get("name"): p for p in run.of_type(PROCESSOR)}
    assert set(processors) == {s.name for s in DERIVED_STREAMS}
    for stream in DERIVED_STREAMS:
        p = processors[stream.name]
        assert p.get("sql") == (SQL_DIR / f"{stream.name}.sql").read_text().strip()
        assert p.get("hq_url") == run.outputs["lensesUrl"][0]
        assert p.get("environment") == run.stack
        assert p.get("username") == "admin"
        assert p.secret("password")
        assert p.get("password") == run.outputs["lensesAdminPassword"][0]


def test_processors_start_after_the_agent_and_the_topics(run: ProgramRun) -> None:
    topics = {t.urn for t in run.of_type("kafka:index/topic:Topic")}
    agent = run.container("lenses-agent").urn
    for p in run.of_type(PROCESSOR):
        assert topics | {agent} <= set(p.dependencies), p.name


def test_processor_ids_are_published(run: ProgramRun) -> None:
    value, secret = run.outputs["sqlProcessors"]
    assert set(value) == {s.name for s in DERIVED_STREAMS} and all(value.values())
    assert secret is False


FORMAT = "pulumi-python:dynamic/lenses:TopicFormat"


def test_device_data_formats_are_declared_to_lenses_before_every_processor(
    run: ProgramRun,
) -> None:
    (declared,) = run.of_type(FORMAT)
    assert (declared.get("topic"), declared.get("key_type"), declared.get("value_type")) == (
        DEVICE_TOPIC, "STRING", "JSON")
    assert json.loads(declared.get("value_schema")) == json.loads(DEVICE_VALUE_SCHEMA.read_text())
    assert declared.get("environment") == run.stack
    assert declared.secret("password")
    topics = {t.urn for t in run.of_type("kafka:index/topic:Topic")}
    assert topics | {run.container("lenses-agent").urn} <= set(declared.dependencies)
    for p in run.of_type(PROCESSOR):
        assert declared.urn in p.dependencies, p.name
