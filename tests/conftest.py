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
