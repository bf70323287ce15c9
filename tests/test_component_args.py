"""Every component's Args says what each field is for: a docstring right under every field of
every dataclass named *Args in components/, read from the source so a new field without one
fails here."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

COMPONENTS = Path(__file__).resolve().parent.parent / "components"


def _args_classes() -> list[tuple[str, ast.ClassDef]]:
    found = []
    for path in sorted(COMPONENTS.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        found += [(f"{path.relative_to(COMPONENTS.parent)}:{node.name}", node)
                  for node in ast.walk(tree)
                  if isinstance(node, ast.ClassDef) and node.name.endswith("Args")]
    return found


def _is_dataclass(node: ast.ClassDef) -> bool:
    return any(
        (isinstance(d, ast.Name) and d.id == "dataclass")
        or (isinstance(d, ast.Call) and isinstance(d.func, ast.Name) and d.func.id == "dataclass")
        for d in node.decorator_list
    )


def _undocumented_fields(node: ast.ClassDef) -> list[str]:
    missing = []
    for statement, following in zip(node.body, [*node.body[1:], None], strict=True):
        if not (isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name)):
            continue
        if "ClassVar" in ast.unparse(statement.annotation):
            continue  # not a field
        documented = (isinstance(following, ast.Expr) and isinstance(following.value, ast.Constant)
                      and isinstance(following.value.value, str)
                      and following.value.value.strip())
        if not documented:
            missing.append(statement.target.id)
    return missing


ARGS = _args_classes()


def test_the_components_have_args_classes() -> None:
    """The scan sees the Args classes at all (a wrong path would make every check vacuous)."""
    names = {name.split(":")[1] for name, _ in ARGS}
    assert {"MqttBrokerArgs", "KafkaClusterArgs", "ConnectorArgs", "ProcessorArgs",
            "SqlProcessorsArgs", "TopicsArgs"} <= names


@pytest.mark.parametrize(("where", "node"), ARGS, ids=[where for where, _ in ARGS])
def test_every_args_field_has_a_docstring(where: str, node: ast.ClassDef) -> None:
    assert _is_dataclass(node), f"{where} is not a dataclass"
    assert not _undocumented_fields(node), (
        f"{where}: fields without a docstring under them: {_undocumented_fields(node)}")
