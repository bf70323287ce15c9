"""Mocks harness fixtures: the real program, run once per stack from the real stack files."""

from __future__ import annotations

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


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    """Under CI=true a skipped contract test is a failure: CI must run every server."""
    import os

    if os.environ.get("CI") != "true":
        return
    skipped = [
        report
        for report in terminalreporter.stats.get("skipped", [])
        if "contract" in getattr(report, "keywords", {})
    ]
    if skipped:
        terminalreporter.write_line(
            f"CI=true: {len(skipped)} contract test(s) skipped; that fails the run", red=True
        )
        config._health_pipeline_ci_skips = len(skipped)


def pytest_sessionfinish(session, exitstatus) -> None:
    if getattr(session.config, "_health_pipeline_ci_skips", 0) and exitstatus == 0:
        session.exitstatus = 1
