"""Mocks harness fixtures: the real program, run once per stack from the real stack files."""

from __future__ import annotations

import os

import pytest

from tests.harness import ProgramRun, State, run_program

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


_contract_skips: list[str] = []


def pytest_runtest_logreport(report) -> None:
    if report.skipped and "contract" in report.keywords:
        _contract_skips.append(report.nodeid)


def pytest_sessionfinish(session, exitstatus) -> None:
    """Under CI=true a skipped contract test is a failure: CI must run every server."""
    if os.environ.get("CI") == "true" and _contract_skips:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        reporter.write_line(
            f"CI=true: {len(_contract_skips)} contract test(s) skipped, which fails the run: "
            + ", ".join(_contract_skips),
            red=True,
        )
        session.exitstatus = 1
