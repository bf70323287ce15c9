"""Whether a device message conforms to the seed's HealthData schema (schemas/health_data.avsc),
as the tests check the simulator's messages and what reaches device_data.

Two checks, both needed: an Avro library validates the parsed record against the schema
(names, no missing field, ints and longs in range), and the JSON text itself is checked for the
number kinds Lenses would infer from it: an int or long field must be written as a JSON
integer, and a double field with a fraction or exponent (`98.0`, not `98`), or a reader that
guesses types from the text sees an int where the schema has a double."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from fastavro import parse_schema
from fastavro.validation import ValidationError, validate

from components.lenses_resources import DEVICE_VALUE_SCHEMA

__all__ = ["conformance_problems"]


class _Number(str):
    """A JSON number as written, so the kind of token survives parsing."""


@cache
def _schema(path: Path) -> tuple[Any, dict[str, str], dict[str, Any]]:
    """The parsed record schema, each field's type name, and each field's parsed schema."""
    raw = json.loads(path.read_text(encoding="utf-8"))
    return (parse_schema(raw), {f["name"]: f["type"] for f in raw["fields"]},
            {f["name"]: parse_schema(f["type"]) for f in raw["fields"]})


def _field_problem(name: str, parsed: Any, value: Any) -> str | None:
    try:
        validate(value, parsed, field=name, raise_errors=True)
    except ValidationError as error:
        return "; ".join(str(e) for e in error.errors)
    return None


def conformance_problems(text: str | bytes, schema: Path = DEVICE_VALUE_SCHEMA) -> list[str]:
    """What is wrong with one message's JSON text; empty when it conforms."""
    parsed_schema, types, parsed_fields = _schema(schema)
    try:
        tokens = json.loads(text, parse_int=_Number, parse_float=_Number)
    except json.JSONDecodeError as error:
        return [f"not JSON: {error}"]
    if not isinstance(tokens, dict):
        return [f"not a JSON object: {type(tokens).__name__}"]
    problems = [f"{name}: not in the schema" for name in tokens if name not in types]
    problems += [f"{name}: missing" for name in types if name not in tokens]
    record: dict[str, Any] = {}
    for name, value in tokens.items():
        kind = types.get(name)
        if not isinstance(value, _Number):
            record[name] = value
            continue
        is_integer = not any(c in value for c in ".eE")
        if kind in ("int", "long") and not is_integer:
            problems.append(f"{name}: {kind} written as {value}")
        if kind in ("float", "double") and is_integer:
            problems.append(f"{name}: {kind} written as the integer {value}")
        record[name] = int(value) if is_integer else float(value)
    problems += filter(None, (_field_problem(name, parsed_fields[name], value)
                              for name, value in record.items() if name in types))
    if not problems:  # the whole record, as a reader holding the schema decodes it
        problems += filter(None, [_field_problem("HealthData", parsed_schema, record)])
    return problems
