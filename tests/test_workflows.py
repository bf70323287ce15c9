"""The GitHub workflows: actionlint finds nothing, and each does what docs/delivery.md promises.
scripts/drift-report is tested on the real CLI's output in tests/engine/test_pipeline.py."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from devtools.harness import ROOT

WORKFLOWS = ROOT / ".github" / "workflows"
ACTIONLINT = ROOT / "build" / "bin" / "actionlint"


def _workflow(name: str) -> dict:
    workflow = yaml.safe_load((WORKFLOWS / name).read_text())
    # YAML 1.1 reads the key `on` as true.
    workflow["on"] = workflow.pop(True, workflow.get("on"))
    return workflow


def _steps(workflow: dict, job: str) -> list[dict]:
    return workflow["jobs"][job]["steps"]


def _pulumi(steps: list[dict]) -> list[dict]:
    return [s for s in steps if str(s.get("uses", "")).startswith("pulumi/actions@")]


def test_actionlint_finds_nothing() -> None:
    found = ACTIONLINT if ACTIONLINT.exists() else shutil.which("actionlint")
    if not found:
        message = "actionlint is not installed; scripts/test installs it (go install)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    files = sorted(str(p) for p in WORKFLOWS.glob("*.yml"))
    assert len(files) == 3, files
    done = subprocess.run([str(found), "-color=false", *files], capture_output=True, text=True,
                          check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_pulumi_step_uses_the_current_major_of_pulumi_actions() -> None:
    for path in WORKFLOWS.glob("*.yml"):
        for job in yaml.safe_load(path.read_text())["jobs"].values():
            for step in _pulumi(job["steps"]):
                assert step["uses"] == "pulumi/actions@v7", (path.name, step)


def test_every_pulumi_step_installs_the_pinned_cli_the_engine_tests_build() -> None:
    """One pin (.pulumi.version) for the workflows, scripts/fetch-pulumi and its Go wrapper."""
    pin = (ROOT / ".pulumi.version").read_text().strip()
    for path in WORKFLOWS.glob("*.yml"):
        for job in yaml.safe_load(path.read_text())["jobs"].values():
            for step in _pulumi(job["steps"]):
                assert step["with"]["pulumi-version-file"] == ".pulumi.version", (path.name, step)
    wrapper = (ROOT / "scripts" / "go" / "pulumi" / "go.mod").read_text()
    for module in ("github.com/pulumi/pulumi/pkg/v3", "github.com/pulumi/pulumi/sdk/v3"):
        assert f"\t{module} v{pin} " in wrapper, f"scripts/go/pulumi requires {module} v{pin}"


def test_pull_requests_test_first_then_preview_each_stack_in_one_comment() -> None:
    workflow = _workflow("pull-request.yml")
    assert workflow["on"] == {"pull_request": {"branches": ["main"]}}
    test_run = [s for s in _steps(workflow, "test") if s.get("run") == "bash .ci/run"]
    assert test_run and test_run[0]["env"] == {"CI": "true"}
    preview = workflow["jobs"]["preview"]
    assert preview["needs"] == "test"
    assert preview["strategy"]["matrix"]["stack"] == ["dev", "prod"]
    (step,) = _pulumi(preview["steps"])
    assert step["with"]["command"] == "preview"
    for flag in ("diff", "refresh", "comment-on-pr", "edit-pr-comment"):
        assert step["with"][flag] is True, flag
    assert preview["permissions"]["pull-requests"] == "write"
    assert step["with"]["policyPacks"] == "policies", "guardrails run on every preview"


def test_main_goes_up_on_dev_then_prod_behind_the_protected_environment() -> None:
    workflow = _workflow("deploy.yml")
    assert workflow["on"] == {"push": {"branches": ["main"]}}
    job = workflow["jobs"]["up"]
    assert job["strategy"]["matrix"]["stack"] == ["dev", "prod"]
    assert job["strategy"]["max-parallel"] == 1, "dev first, prod after"
    assert "'production'" in job["environment"] and "matrix.stack == 'prod'" in job["environment"]
    (step,) = _pulumi(job["steps"])
    assert step["with"]["command"] == "up"
    assert step["with"]["policyPacks"] == "policies", "mandatory guardrails block a deploy"


def test_nightly_drift_check_treats_exit_code_7_as_drift_and_files_one_issue() -> None:
    workflow = _workflow("drift.yml")
    assert workflow["on"]["schedule"] == [{"cron": "17 3 * * *"}]
    steps = {s.get("name", ""): s for s in _steps(workflow, "drift")}
    preview = next(s for n, s in steps.items() if n.startswith("pulumi preview"))
    assert "--refresh --expect-no-changes" in preview["run"]
    assert "$code -ne 7" in preview["run"]
    issue = steps["Open or update the drift issue"]
    assert issue["if"] == "steps.preview.outputs.exit-code == '7'"
    assert "gh issue edit" in issue["run"] and "gh issue create" in issue["run"]
    assert issue["run"].rstrip().endswith("exit 1"), "drift fails the job"


def test_secrets_come_from_repository_secrets_and_are_documented() -> None:
    delivery = (ROOT / "docs" / "delivery.md").read_text()
    text = "".join(p.read_text() for p in WORKFLOWS.glob("*.yml"))
    for name in ("PULUMI_BACKEND_URL", "PULUMI_CONFIG_PASSPHRASE", "AWS_ACCESS_KEY_ID",
                 "AWS_SECRET_ACCESS_KEY", "AWS_REGION", "DOCKER_SSH_KEY",
                 "DOCKER_SSH_KNOWN_HOSTS"):
        assert f"secrets.{name}" in text, name
        assert f"`{name}`" in delivery, f"docs/delivery.md does not document {name}"


def _drift_report():
    spec = importlib.util.spec_from_loader(
        "drift_report", importlib.machinery.SourceFileLoader(
            "drift_report", str(ROOT / "scripts" / "drift-report")))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_drift_report_refuses_unreadable_json(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "preview.json"
    bad.write_text("{not json")
    assert _drift_report().main(["prod", str(bad)]) == 2
    assert "cannot read the preview JSON" in capsys.readouterr().err
