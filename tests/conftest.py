"""Mocks harness fixtures: the real program, run once per stack from the real stack files."""

from __future__ import annotations

import gc
import os

import pytest

from devtools.harness import ProgramRun, State, run_program
from devtools.servers import Missing

# Real servers (Kafka, Connect) shared by the contract and the engine tests.
pytest_plugins = ("tests.server_fixtures",)

STACKS = ("dev", "prod")


@pytest.fixture(scope="session")
def runs() -> dict[str, ProgramRun]:
    return {stack: run_program(stack) for stack in STACKS}


@pytest.fixture(scope="session", params=STACKS)
def run(request, runs) -> ProgramRun:
    return runs[request.param]


@pytest.fixture(scope="session")
def dev(runs) -> ProgramRun:
    return runs["dev"]


@pytest.fixture(scope="session")
def prod(runs) -> ProgramRun:
    return runs["prod"]


@pytest.fixture(scope="session")
def dev_twice() -> tuple[ProgramRun, ProgramRun]:
    """Two runs of dev sharing engine state, as two `pulumi up`s would."""
    state = State()
    return run_program("dev", state=state), run_program("dev", state=state)


def pytest_collection_finish(session) -> None:
    """Everything imported so far (the SDKs, the providers, the program's modules) lives as
    long as the session: move it out of the collector's sight, so the collections the program
    runs trigger do not walk it again and again (a fifth of a run's time)."""
    gc.collect()
    gc.freeze()


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items) -> None:
    """Engine tests run last (after pytest's own reordering): they share the session's Kafka
    and Connect worker with the contract tests, and the end-to-end contract test counts
    device_data's records from an empty topic, which the engine tests write to."""
    items.sort(key=lambda item: "/engine/" in str(item.fspath))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """A server devtools cannot find (devtools.servers.Missing) is a skip that says what
    installs it, in setup (a fixture starting the server) as in the test itself."""
    report = yield
    if call.excinfo is not None and call.excinfo.errisinstance(Missing):
        report.outcome = "skipped"
        report.longrepr = (str(item.path), item.location[1] or 0,
                           f"Skipped: {call.excinfo.value}")
    return report


MUST_RUN_IN_CI = ("contract", "engine")
"""Markers of tests that CI must run: a skip there means a server or the CLI went missing."""
_ci_skips: list[str] = []


def pytest_runtest_logreport(report) -> None:
    if report.skipped and any(marker in report.keywords for marker in MUST_RUN_IN_CI):
        _ci_skips.append(report.nodeid)


def pytest_sessionfinish(session, exitstatus) -> None:
    """Under CI=true a skipped contract or engine test is a failure: CI must run every server
    and the real Pulumi CLI."""
    if os.environ.get("CI") == "true" and _ci_skips:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        reporter.write_line(
            f"CI=true: {len(_ci_skips)} contract or engine test(s) skipped, which fails the "
            "run: " + ", ".join(_ci_skips),
            red=True,
        )
        session.exitstatus = 1
