"""The Pulumi SDK internals the mock engine needs, behind one small surface: the wire format's
secret envelope, a program runner, and a run that gives back the runtime state it changed.

The SDK keeps its ambient state (the monitor, the root Stack, the config and its secret keys,
the outstanding RPCs) in context variables; `isolated_run` runs a program in a copy of the
caller's context, so each run starts with no root Stack and leaves the caller's runtime as it
found it (before this, a second run registered under the first run's Stack and its outputs).
Checked against pulumi 3.272 (requirements.txt pins it); a new SDK that moves any of these
names fails here, in one place."""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import pulumi
from pulumi.runtime import mocks as _mocks
from pulumi.runtime import rpc as _rpc
from pulumi.runtime import settings as _settings
from pulumi.runtime.stack import run_pulumi_func as _run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

__all__ = ["SECRET", "MockMonitor", "is_secret", "isolated_run", "run_sync", "unwrap"]

T = TypeVar("T")

SECRET_SIG_KEY: str = _rpc._special_sig_key
SECRET_SIG: str = _rpc._special_secret_sig
SECRET: dict[str, str] = {SECRET_SIG_KEY: SECRET_SIG}
"""The envelope the engine puts around a secret value on the wire (add "value")."""

MockMonitor = _mocks.MockMonitor


def is_secret(value: Any) -> bool:
    return isinstance(value, dict) and value.get(SECRET_SIG_KEY) == SECRET_SIG


def unwrap(value: Any) -> Any:
    """Drop secret envelopes, recursively."""
    if is_secret(value):
        return unwrap(value["value"])
    if isinstance(value, dict):
        return {k: unwrap(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unwrap(v) for v in value]
    return value


def run_sync(awaitable) -> Any:
    """Wait for `awaitable` on the SDK's event loop, as the SDK itself does."""
    return _sync_await(awaitable)


def isolated_run(
    program: Callable[[], T],
    mocks: pulumi.runtime.Mocks,
    monitor: MockMonitor,
    *,
    project: str,
    stack: str,
    config: Mapping[str, str],
    secret_keys: Sequence[str],
) -> T:
    """Run `program` under `mocks` with this config, as the engine runs a program (its RPCs
    awaited before it counts as done), in a context of its own: the root Stack, the settings
    and the config it sets are dropped afterwards."""

    def run() -> T:
        _settings.set_root_resource(None)  # type: ignore[arg-type]  # set_mocks makes a Stack
        pulumi.runtime.set_mocks(mocks, project=project, stack=stack, preview=False,
                                 monitor=monitor)
        _settings.SETTINGS.outputs = set()  # not reset by set_mocks; shared with the caller
        pulumi.runtime.set_all_config(dict(config), list(secret_keys))
        result: list[T] = []

        def body() -> None:
            result.append(program())

        _sync_await(_run_pulumi_func(body))
        return result[0]

    return contextvars.copy_context().run(run)
