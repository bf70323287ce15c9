"""Engine tests: the real Pulumi CLI (scripts/fetch-pulumi) runs inline programs built from the
project's components against real servers. Every test here carries the `engine` marker, and
the run ends with the wall time of each CLI command the tests made."""

from __future__ import annotations

import statistics
from collections import defaultdict

import pytest

from devtools.engine import Engine, cli_missing, pinned_version

_engines: list[Engine] = []


def pytest_collection_modifyitems(items) -> None:
    for item in items:
        if "/engine/" in str(item.fspath):
            item.add_marker(pytest.mark.engine)


@pytest.fixture(scope="module")
def engine(tmp_path_factory) -> Engine:
    """A Pulumi installation of the module's own (home, file backend, passphrase)."""
    missing = cli_missing()
    if missing:
        pytest.skip(missing)
    made = Engine(tmp_path_factory.mktemp("engine"))
    _engines.append(made)
    return made


def pytest_terminal_summary(terminalreporter) -> None:
    timings: dict[str, list[float]] = defaultdict(list)
    for made in _engines:
        for label, seconds in made.command.timings:
            timings[label].append(seconds)
    if not timings:
        return
    terminalreporter.section(
        f"Pulumi CLI {pinned_version()}: wall time per command in the engine tests")
    for label, values in sorted(timings.items(), key=lambda kv: -sum(kv[1])):
        terminalreporter.write_line(
            f"{label:<58} x{len(values):<3} median {statistics.median(values):6.2f}s  "
            f"max {max(values):6.2f}s")
