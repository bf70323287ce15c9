"""Contract tests: every test here runs a real server and carries the `contract` marker. The
server fixtures they share with the engine tests are in tests/server_fixtures.py."""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(items) -> None:
    for item in items:
        if "/contract/" in str(item.fspath):
            item.add_marker(pytest.mark.contract)


def pytest_terminal_summary(terminalreporter) -> None:
    """What the fault, shared-task and orphaned-session tests counted (test_faults.py,
    test_shared_tasks.py, test_orphaned_sessions.py)."""
    from tests.contract.test_faults import REPORTS
    from tests.contract.test_orphaned_sessions import REPORTS as ORPHANS
    from tests.contract.test_shared_tasks import REPORTS as SHARED

    if REPORTS:
        terminalreporter.section("faults: acknowledged to devices vs in device_data")
        for line in REPORTS:
            terminalreporter.write_line(line)
    if SHARED:
        terminalreporter.section("shared MQTT subscriptions: messages per task")
        for line in SHARED:
            terminalreporter.write_line(line)
    if ORPHANS:
        terminalreporter.section("a change of MQTT source tasks: orphaned sessions adopted")
        for line in ORPHANS:
            terminalreporter.write_line(line)
