"""scripts/plan: the offline plan prints every resource with secrets masked, draws the
pipeline from what is declared, and the README's diagram is its output."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout
from io import StringIO

import pytest

from devtools.harness import ROOT, ProgramRun, run_program, unwrap

_spec = importlib.util.spec_from_file_location("plan", ROOT / "scripts" / "plan.py")
plan = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(plan)


def _plan(*args: str, runs: dict[str, ProgramRun]) -> subprocess.CompletedProcess:
    """scripts/plan.py's main in this process, on the runs the session already evaluated
    (one program run per stack per test session); the README check below runs the script."""
    out, err = StringIO(), StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = plan.main(list(args), runner=runs.__getitem__)
    return subprocess.CompletedProcess(["scripts/plan.py", *args], code, out.getvalue(),
                                       err.getvalue())


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_plan_lists_every_resource_and_masks_every_secret(stack, runs, tmp_path) -> None:
    run = runs[stack]
    done = _plan("--stack", stack, "--diagram", str(tmp_path / "d.txt"), runs=runs)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert f"stack {stack}: {len(run.resources)} resources" in out
    for resource in run.resources:
        assert f" {resource.type} {resource.name}" in out, resource.name
    for name, (value, secret) in run.outputs.items():
        if secret and isinstance(value, str) and len(value) >= 8:
            assert value not in out, f"the secret output {name} is printed"
    for role in run.of_type("postgresql:index/role:Role"):
        assert str(role.get("password")) not in out
    assert "config=[secret]" in out and "password=[secret]" in out
    assert (tmp_path / "d.txt").read_text() in out


def test_diagram_follows_the_declared_resources(runs, prod, tmp_path) -> None:
    _plan("--stack", "prod", "--diagram", str(tmp_path / "d.txt"), runs=runs)
    diagram = (tmp_path / "d.txt").read_text()
    partitions = int(unwrap(prod.one("kafka:index/topic:Topic",
                                     "topics-device_data").get("partitions")))
    assert f"Kafka device_data [{partitions} partitions, RF 3] [external cluster]" in diagram
    assert "Postgres [external]" in diagram
    assert "Mosquitto [container eclipse-mosquitto:" in diagram


def test_readme_diagram_is_the_plan_output() -> None:
    """With a program run of its own, as a reviewer runs it."""
    done = _plan("--check", "README.md", runs={"dev": run_program("dev")})
    assert done.returncode == 0, done.stderr


def test_the_script_runs_on_its_own() -> None:
    """scripts/plan.py as a process finds the project's modules by itself."""
    done = subprocess.run([sys.executable, "scripts/plan.py", "--help"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert "--stack" in done.stdout and "--check" in done.stdout
