"""The starter dashboard "Patient vitals" as Metabase questions: per vital-sign table, its
latest reading per device and its last 24 hours per device, in Snowflake SQL rendered from the
templates in sql/metabase/ (read by components/metabase.py)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from components.streams import DerivedStream

__all__ = [
    "DASHBOARD_NAME",
    "GRID_WIDTH",
    "SNOWFLAKE_TYPES",
    "Measure",
    "latest_readings_sql",
    "measures_of",
    "template_body",
    "time_series_sql",
    "vital_cards",
]

DASHBOARD_NAME = "Patient vitals"
GRID_WIDTH = 24
"""Columns of a Metabase dashboard's grid; each stream gets one row: its latest readings on the
left third, its time series on the rest."""
SNOWFLAKE_TYPES = {"int": "NUMBER", "long": "NUMBER", "double": "FLOAT", "float": "FLOAT"}
"""Avro field type (schemas/health_data.avsc) -> the Snowflake type a VARIANT value is cast to."""


@dataclass(frozen=True)
class Measure:
    """One value a derived stream carries, as its SQL processor writes it."""

    field: str
    """Its name in the derived topic's record (RECORD_CONTENT:<field>)."""
    column: str
    """The column the questions show it in."""
    sql_type: str
    """What RECORD_CONTENT:<field> is cast to."""


def measures_of(stream: DerivedStream, field_types: Mapping[str, str]) -> tuple[Measure, ...]:
    """The stream's values; a stream with one value (`value`) shows it under the stream's name,
    e.g. HEART_RATE. `field_types` maps device_data's fields to their Avro types."""
    measures = []
    for source, field in stream.fields:
        avro = field_types.get(source)
        if avro not in SNOWFLAKE_TYPES:
            raise ValueError(f"stream {stream.name!r}: device_data field {source!r} has Avro "
                             f"type {avro!r}; the dashboard knows {', '.join(SNOWFLAKE_TYPES)}")
        column = stream.name.upper() if field == "value" else field.upper()
        measures.append(Measure(field, column, SNOWFLAKE_TYPES[avro]))
    return tuple(measures)


def template_body(template: str) -> str:
    """The SQL of a template without its leading `--` note."""
    lines = template.strip().splitlines()
    while lines and lines[0].lstrip().startswith("--"):
        lines.pop(0)
    return "\n".join(lines).strip()


def latest_readings_sql(template: str, table: str, measures: Sequence[Measure]) -> str:
    columns = ",\n    ".join(f"RECORD_CONTENT:{m.field}::{m.sql_type} AS {m.column}"
                             for m in measures)
    return template_body(template).format(table=table, measures=columns)


def time_series_sql(template: str, table: str, measures: Sequence[Measure]) -> str:
    """One SELECT per measure, so that every series is one line: the device id, followed by
    the measure's name when the stream has more than one."""
    device = "RECORD_CONTENT:deviceId::STRING"
    parts = [
        template_body(template).format(
            table=table, field=m.field, type=m.sql_type,
            series=device if len(measures) == 1 else f"{device} || ' {m.column.lower()}'")
        for m in measures
    ]
    return "\nUNION ALL\n".join(parts) + "\nORDER BY READING_TIME, SERIES"


def _title(stream: DerivedStream) -> str:
    return stream.name.replace("_", " ").capitalize()


def vital_cards(
    latest_template: str,
    series_template: str,
    streams: Sequence[DerivedStream],
    database: str,
    schema: str,
    field_types: Mapping[str, str],
) -> tuple[dict[str, Any], ...]:
    """Two questions per stream, in the card form the Metabase dashboard resource takes: name,
    display, sql, visualization_settings and the place on the dashboard's grid."""
    cards: list[dict[str, Any]] = []
    for row, stream in enumerate(streams):
        measures = measures_of(stream, field_types)
        table = f"{database}.{schema}.{stream.table}"
        cards.append({
            "name": f"{_title(stream)}: latest reading per device",
            "display": "table",
            "sql": latest_readings_sql(latest_template, table, measures),
            "visualization_settings": {},
            "row": row * 6, "col": 0, "size_x": 8, "size_y": 6,
        })
        cards.append({
            "name": f"{_title(stream)}: last 24 hours per device",
            "display": "line",
            "sql": time_series_sql(series_template, table, measures),
            "visualization_settings": {"graph.dimensions": ["READING_TIME", "SERIES"],
                                       "graph.metrics": ["READING"]},
            "row": row * 6, "col": 8, "size_x": GRID_WIDTH - 8, "size_y": 6,
        })
    return tuple(cards)
