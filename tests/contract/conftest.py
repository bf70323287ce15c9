"""Contract tests: every test here runs a real server and carries the `contract` marker. The
server fixtures they share with the engine tests are in tests/server_fixtures.py."""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(items) -> None:
    for item in items:
        if "/contract/" in str(item.fspath):
            item.add_marker(pytest.mark.contract)


def pytest_terminal_summary(terminalreporter) -> None:
    """What the fault tests counted (tests/contract/test_faults.py)."""
    from tests.contract.test_faults import REPORTS

    if REPORTS:
        terminalreporter.section("faults: acknowledged to devices vs in device_data")
        for line in REPORTS:
            terminalreporter.write_line(line)
