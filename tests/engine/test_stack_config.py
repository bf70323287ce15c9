"""The stack's configuration as the real CLI hands it to the program: a misspelt key of the
project's namespace reaches the program without a word from the CLI (the stack would get the
declared default), and the program's settings refuse it, naming the nearest declared key."""

from __future__ import annotations

import pulumi
import pytest
from pulumi import automation as auto
from pulumi.automation.errors import CommandError

from components.settings import load_settings
from devtools.harness import PROJECT


def _settings_program() -> None:
    load_settings(pulumi.Config(), pulumi.get_stack())


def test_a_misspelt_stack_key_stops_the_preview_with_the_key_it_meant(engine) -> None:
    stack = engine.stack("typo", _settings_program)
    stack.set_config(f"{PROJECT}:topicPartition", auto.ConfigValue("6"))
    with pytest.raises(CommandError):
        stack.preview()
    shown = engine.command.last.stdout + engine.command.last.stderr
    assert (f"{PROJECT}:topicPartition is not a setting of this project" in shown
            and f"did you mean {PROJECT}:topicPartitions?" in shown), shown[-3000:]
