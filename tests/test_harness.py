"""The mock engine harness (devtools/harness.py) itself: each run of the program stands alone."""

from __future__ import annotations

import pulumi
from pulumi.runtime import config as runtime_config
from pulumi.runtime import settings as runtime_settings

from devtools.harness import run_program


def test_a_run_gives_back_the_runtime_it_changed(prod) -> None:
    """The root Stack, the stack name, the config and its secret keys are as they were after a
    run: a later run (or test) cannot inherit the last run's Stack and its outputs."""
    root = runtime_settings.get_root_resource()
    stack = pulumi.get_stack()
    config = dict(runtime_config.CONFIG.get())
    secret_keys = set(runtime_config._SECRET_KEYS.get())
    second = run_program("prod")
    assert runtime_settings.get_root_resource() is root
    assert pulumi.get_stack() == stack
    assert dict(runtime_config.CONFIG.get()) == config
    assert set(runtime_config._SECRET_KEYS.get()) == secret_keys
    assert sorted(r.urn for r in second.resources) == sorted(r.urn for r in prod.resources)
    assert set(second.outputs) == set(prod.outputs)
