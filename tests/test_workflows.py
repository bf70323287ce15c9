"""The GitHub workflows and the setup they share (.github/actions/setup, a composite action):
actionlint finds nothing, and each does what docs/delivery.md promises. scripts/drift-report is
tested on the real CLI's output in tests/engine/test_pipeline.py."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from devtools.harness import ROOT

WORKFLOWS = ROOT / ".github" / "workflows"
SETUP = ROOT / ".github" / "actions" / "setup" / "action.yml"
LOCAL_SETUP = "./.github/actions/setup"
"""How a workflow step uses the shared setup."""
ACTIONLINT = ROOT / "build" / "bin" / "actionlint"


def _workflow(name: str) -> dict:
    workflow = yaml.safe_load((WORKFLOWS / name).read_text())
    # YAML 1.1 reads the key `on` as true.
    workflow["on"] = workflow.pop(True, workflow.get("on"))
    return workflow


def _steps(workflow: dict, job: str) -> list[dict]:
    return workflow["jobs"][job]["steps"]


def _is_pulumi(step: dict) -> bool:
    return str(step.get("uses", "")).startswith("pulumi/actions@")


def _pulumi(steps: list[dict]) -> list[dict]:
    return [s for s in steps if _is_pulumi(s)]


def _action() -> dict:
    return yaml.safe_load(SETUP.read_text())


def _jobs() -> list[tuple[str, dict]]:
    """("workflow.yml:job", job) for every job of every workflow."""
    return [(f"{path.name}:{name}", job)
            for path in sorted(WORKFLOWS.glob("*.yml"))
            for name, job in yaml.safe_load(path.read_text())["jobs"].items()]


def _all_steps() -> list[tuple[str, dict]]:
    """(where, step) for every step of every workflow job and of the shared setup."""
    return ([(where, step) for where, job in _jobs() for step in job["steps"]]
            + [("actions/setup", step) for step in _action()["runs"]["steps"]])


def _setup(job: dict) -> dict:
    """The job's use of the shared setup (the step after the checkout)."""
    steps = job["steps"]
    assert steps[0]["uses"] == "actions/checkout@v5", "the checkout brings the local action"
    assert steps[1]["uses"] == LOCAL_SETUP, steps[1]
    return steps[1]


def _needs_pulumi(job: dict) -> bool:
    """The job runs the Pulumi CLI: through pulumi/actions or in a run step of its own."""
    return bool(_pulumi(job["steps"])) or any(
        "pulumi " in step.get("run", "") for step in job["steps"])


def _actionlint() -> str:
    found = ACTIONLINT if ACTIONLINT.exists() else shutil.which("actionlint")
    if not found:
        message = "actionlint is not installed; scripts/test installs it (go install)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return str(found)


def _copy(tmp_path: Path) -> Path:
    """This repository's .github in a directory marked as a repository root (.git): actionlint
    checks a local action (its metadata, and the inputs each workflow gives it) only where it
    finds the repository root, which an unpacked source tree may lack."""
    shutil.copytree(ROOT / ".github", tmp_path / ".github")
    (tmp_path / ".git").mkdir()
    return tmp_path


def _lint(project: Path) -> subprocess.CompletedProcess:
    files = sorted(str(p.relative_to(project))
                   for p in (project / ".github" / "workflows").glob("*.yml"))
    assert len(files) == 3, files
    return subprocess.run([_actionlint(), "-color=false", *files], cwd=project,
                          capture_output=True, text=True, check=False)


def test_actionlint_finds_nothing(tmp_path: Path) -> None:
    done = _lint(_copy(tmp_path))
    assert done.returncode == 0, done.stdout + done.stderr


def test_actionlint_checks_the_shared_setup_too(tmp_path: Path) -> None:
    """A misspelled input of the local action is an error, so the run above covers it."""
    project = _copy(tmp_path)
    deploy = project / ".github" / "workflows" / "deploy.yml"
    deploy.write_text(deploy.read_text().replace("docker-ssh-key:", "docker-ssh-keys:", 1))
    done = _lint(project)
    assert done.returncode == 1, done.stdout + done.stderr
    assert 'input "docker-ssh-keys" is not defined in action "setup"' in done.stdout, done.stdout


def test_every_pulumi_step_uses_the_current_major_of_pulumi_actions() -> None:
    for where, step in _all_steps():
        if _is_pulumi(step):
            assert step["uses"] == "pulumi/actions@v7", (where, step)


def test_every_pulumi_step_installs_the_pinned_cli_the_engine_tests_build() -> None:
    """One pin (.pulumi.version) for the workflows, their shared setup, scripts/fetch-pulumi
    and its Go wrapper."""
    pin = (ROOT / ".pulumi.version").read_text().strip()
    for where, step in _all_steps():
        if _is_pulumi(step):
            assert step["with"]["pulumi-version-file"] == ".pulumi.version", (where, step)
            assert "pulumi-version" not in step["with"], "one pin, in .pulumi.version"
    (install,) = _pulumi(_action()["runs"]["steps"])
    assert "command" not in install["with"], "the shared setup only installs the CLI"
    wrapper = (ROOT / "scripts" / "go" / "pulumi" / "go.mod").read_text()
    for module in ("github.com/pulumi/pulumi/pkg/v3", "github.com/pulumi/pulumi/sdk/v3"):
        assert f"\t{module} v{pin} " in wrapper, f"scripts/go/pulumi requires {module} v{pin}"


def test_every_job_checks_out_then_runs_the_shared_setup_and_repeats_none_of_it() -> None:
    shared = ("actions/setup-python@", "actions/setup-java@")
    for where, job in _jobs():
        _setup(job)
        for step in job["steps"][2:]:
            assert not str(step.get("uses", "")).startswith(shared), (where, step)
            assert "scripts/ci-prepare" not in step.get("run", ""), (where, step)
            assert "scripts/ci-ssh" not in step.get("run", ""), (where, step)
            if _is_pulumi(step):
                assert "command" in step["with"], f"{where}: the shared setup installs the CLI"


def test_every_job_that_runs_pulumi_gets_the_pinned_cli_the_program_and_ssh_for_prod() -> None:
    jobs = [(where, job) for where, job in _jobs() if _needs_pulumi(job)]
    assert sorted(where for where, _ in jobs) == [
        "deploy.yml:up", "drift.yml:drift", "pull-request.yml:preview"]
    for where, job in jobs:
        given = _setup(job).get("with", {})
        assert given.get("pulumi", "true") == "true", where
        assert given.get("program", "true") == "true", f"{where}: scripts/ci-prepare"
        assert job["strategy"]["matrix"]["stack"] == ["dev", "prod"], where
        assert given["ssh"] == "${{ matrix.stack == 'prod' }}", where
        assert given["docker-ssh-key"] == "${{ secrets.DOCKER_SSH_KEY }}", where
        assert given["docker-ssh-known-hosts"] == "${{ secrets.DOCKER_SSH_KNOWN_HOSTS }}", where


def test_the_test_job_leaves_the_program_to_scripts_test() -> None:
    job = _workflow("pull-request.yml")["jobs"]["test"]
    assert _setup(job)["with"]["program"] == "false", "scripts/test prepares what it needs"


def test_the_shared_setup_installs_python_java_the_program_ssh_and_the_pinned_cli() -> None:
    action = _action()
    assert action["runs"]["using"] == "composite"
    inputs = action["inputs"]
    for name, spec in inputs.items():
        assert len(spec.get("description", "")) > 15, name
        assert "default" in spec, f"{name}: a job gives only what differs"
    assert (inputs["program"]["default"], inputs["ssh"]["default"],
            inputs["pulumi"]["default"]) == ("true", "false", "true")
    steps = action["runs"]["steps"]
    by_use = {str(s.get("uses", "")).split("@")[0]: s for s in steps if "uses" in s}
    assert by_use["actions/setup-python"]["uses"] == "actions/setup-python@v6"
    assert by_use["actions/setup-python"]["with"] == {"python-version": "3.11"}
    assert by_use["actions/setup-java"]["uses"] == "actions/setup-java@v5"
    assert by_use["actions/setup-java"]["with"] == {"distribution": "temurin",
                                                  "java-version": "17"}
    assert by_use["pulumi/actions"]["if"] == "inputs.pulumi == 'true'"
    runs = {s["run"]: s for s in steps if "run" in s}
    assert runs["scripts/ci-prepare"]["if"] == "inputs.program == 'true'"
    ssh = runs["scripts/ci-ssh"]
    assert ssh["if"] == "inputs.ssh == 'true'"
    assert ssh["env"] == {"DOCKER_SSH_KEY": "${{ inputs.docker-ssh-key }}",
                          "DOCKER_SSH_KNOWN_HOSTS": "${{ inputs.docker-ssh-known-hosts }}"}
    for step in runs.values():
        assert step["shell"] == "bash", "a composite action's run step names its shell"
    for step in steps:
        for name in re.findall(r"inputs\.([\w-]+)", f"{step.get('if', '')} {step.get('env', '')}"):
            assert name in inputs, f"the setup reads an undeclared input {name}"


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
