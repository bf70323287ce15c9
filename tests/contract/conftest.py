"""Contract tests: every test here runs a real server and carries the `contract` marker."""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(items) -> None:
    for item in items:
        if "/contract/" in str(item.fspath):
            item.add_marker(pytest.mark.contract)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """On failure, attach the server logs the test kept (fixtures named *_server with .log)."""
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" and report.failed:
        for name in item.fixturenames:
            server = item.funcargs.get(name)
            log = getattr(server, "log", None)
            if name.endswith("server") and isinstance(log, str):
                report.sections.append((f"{name} log", log[-5000:]))
