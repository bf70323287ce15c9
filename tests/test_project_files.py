"""Pulumi.yaml, the stack files, the README, the settings reference (docs/settings.md) and the
mocks harness agree with each other."""

from __future__ import annotations

import ast
import inspect
import re
import subprocess
import sys

import pulumi
import pulumi_random as random
import pytest

from components.settings import SECRET_KEYS, load_settings
from devtools.harness import (
    ALL_EXTERNAL,
    ALL_EXTERNAL_SECRETS,
    ENGINE_SECRET_OUTPUTS,
    PROJECT,
    ROOT,
    USER_SECRETS,
    ConfigError,
    merge_config,
    project_config,
    stack_file,
)


class RecordingConfig:
    """The real pulumi.Config, noting every key the loader asks for."""

    def __init__(self) -> None:
        self.config = pulumi.Config(PROJECT)
        self.name = self.config.name
        self.keys: set[str] = set()

    def get(self, key: str) -> str | None:
        self.keys.add(key)
        return self.config.get(key)

    def get_secret(self, key: str):
        self.keys.add(key)
        return self.config.get_secret(key)


def _keys_read_by_settings() -> set[str]:
    """Load every stack and a variant with every service external: together they reach
    every branch that reads a key."""
    keys: set[str] = set()
    for stack, overrides, secrets in (
        ("dev", {}, USER_SECRETS["dev"]),
        ("prod", {}, USER_SECRETS["prod"]),
        ("dev", ALL_EXTERNAL, ALL_EXTERNAL_SECRETS),
        ("dev", {f"{PROJECT}:kafkaMqttSource": "health-pipeline"}, USER_SECRETS["dev"]),
    ):
        config, secret_keys = merge_config(stack, overrides, secrets)
        pulumi.runtime.set_all_config(config, secret_keys)
        recorder = RecordingConfig()
        load_settings(recorder, stack)
        keys |= recorder.keys
    return keys


def test_every_key_is_declared_with_type_description_and_default() -> None:
    for key, spec in project_config().items():
        assert spec.get("type") in ("string", "integer", "boolean", "array"), key
        assert len(spec.get("description", "")) > 15, f"{key} has no real description"
        assert "default" in spec, f"{key} has no default: the CLI would require it everywhere"


def test_secret_keys_have_empty_defaults_and_say_how_to_set_them() -> None:
    declared = project_config()
    for key in SECRET_KEYS:
        assert declared[key]["default"] == "", f"{key} must not carry a plain-text default"
        assert "--secret" in declared[key]["description"], key


def test_settings_read_exactly_the_declared_keys() -> None:
    assert _keys_read_by_settings() == set(project_config())


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_stack_files_hold_only_what_differs(stack: str) -> None:
    declared = project_config()
    for full_key, value in stack_file(stack).items():
        key = full_key.removeprefix("health-pipeline:")
        assert key in declared, f"Pulumi.{stack}.yaml: {full_key} is not declared"
        assert value != declared[key]["default"], f"Pulumi.{stack}.yaml repeats {key}'s default"
        assert key not in SECRET_KEYS, f"Pulumi.{stack}.yaml holds the secret {key}"


def test_merge_config_applies_defaults_like_the_cli() -> None:
    config, secret_keys = merge_config("dev")
    assert config["health-pipeline:mqttPort"] == "1883"
    assert config["health-pipeline:lensesAcceptEula"] == "true"
    assert config["health-pipeline:kafkaBootstrapServers"] == "[]"
    assert secret_keys == []


def test_merge_config_refuses_what_the_cli_refuses_and_passes_on_what_it_passes_on() -> None:
    """The CLI passes an undeclared key of the project's namespace on to the program without a
    word (tests/engine checks it); the program's settings refuse it."""
    config, _ = merge_config("dev", {"health-pipeline:mqttPortt": 1})
    assert config["health-pipeline:mqttPortt"] == "1"
    with pytest.raises(ConfigError, match="'mqttPort' must be of type 'integer'"):
        merge_config("dev", {"health-pipeline:mqttPort": "1883"})


def test_settings_reference_documents_every_setting() -> None:
    reference = (ROOT / "docs" / "settings.md").read_text()
    undocumented = [key for key in project_config() if f"`{key}`" not in reference]
    assert not undocumented, f"docs/settings.md lacks: {undocumented}"


def test_readme_starts_with_the_two_setup_commands_and_ci_runs_the_second() -> None:
    head = (ROOT / "README.md").read_text().splitlines()[:15]
    assert any("scripts/up" in line for line in head)
    assert any("scripts/test" in line for line in head)
    assert "exec scripts/test" in (ROOT / ".ci" / "run").read_text()


def test_harness_marks_generated_secrets_as_the_providers_do() -> None:
    for cls in (random.RandomPassword, random.RandomBytes):
        source = inspect.getsource(cls._internal_init)
        token = re.search(r"__init__\(\s*'([^']+)'", source)
        declared = re.search(r"additional_secret_outputs=\[([^\]]*)\]", source)
        assert token and declared, cls.__name__
        names = tuple(sorted(re.findall(r'"(\w+)"', declared.group(1))))
        assert ENGINE_SECRET_OUTPUTS[token.group(1)] == names, cls.__name__


def test_settings_reference_is_generated_from_the_current_files() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "settings_reference.py"), "--check",
         str(ROOT / "docs" / "settings.md")],
        capture_output=True, text=True, check=False,
    )
    assert result.returncode == 0, result.stdout


def _imports(path) -> set[str]:
    tree = ast.parse(path.read_text())
    found = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import)
             for alias in node.names}
    return found | {node.module or "" for node in ast.walk(tree)
                    if isinstance(node, ast.ImportFrom)}


def test_settings_do_not_import_renderers_and_renderers_read_no_files() -> None:
    """components/settings/ reads files and config; components/render/ turns what it gets into
    text and never touches the disk, so a renderer's output depends on its arguments only."""
    for path in (ROOT / "components" / "settings").glob("*.py"):
        assert not any(m.startswith("components.render") for m in _imports(path)), path.name
    for path in (ROOT / "components" / "render").glob("*.py"):
        tree = ast.parse(path.read_text())
        calls = {node.func.attr if isinstance(node.func, ast.Attribute) else
                 getattr(node.func, "id", "") for node in ast.walk(tree)
                 if isinstance(node, ast.Call)}
        assert not calls & {"open", "read_text", "read_bytes", "write_text", "write_bytes",
                            "glob", "iterdir"}, path.name
        assert not {"pathlib", "os", "shutil"} & _imports(path), path.name


def test_nothing_outside_tests_imports_from_tests() -> None:
    """Tooling lives in devtools/: scripts, benchmarks, components and devtools stand alone."""
    for folder in ("components", "devtools", "scripts", "bench", "simulator", "policies"):
        for path in (ROOT / folder).rglob("*.py"):
            if "venv" in path.parts:
                continue
            assert not any(m == "tests" or m.startswith("tests.") for m in _imports(path)), path
            assert "from tests." not in path.read_text(), path
