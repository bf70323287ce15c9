"""The real Pulumi engine for tests and benchmarks: the CLI that scripts/fetch-pulumi puts in
build/pulumi/bin, driven through the Automation API with inline programs (this process hosts
the Python program; dynamic providers run in the engine's own provider host), each workspace
with a PULUMI_HOME, a file backend and a passphrase of its own."""

from __future__ import annotations

import os
import re
import secrets
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from pulumi import automation as auto
from pulumi.automation.errors import CommandError

__all__ = ["CLI", "PROJECT", "ROOT", "Engine", "Outcome", "RecordingCommand", "cli_missing",
           "pinned_version"]

ROOT = Path(__file__).resolve().parent.parent
PROJECT = "health-pipeline"
BIN = ROOT / "build" / "pulumi" / "bin"
CLI = BIN / "pulumi"
PROVIDER_HOST = BIN / "pulumi-resource-pulumi-python"
"""The engine's host for Python dynamic providers (from the sdk/v3 module zip)."""

_EXIT_CODE = re.compile(r"\A\s*code: (-?\d+)\n")
LABEL_FLAGS = ("--refresh", "--expect-no-changes", "--diff", "--json", "--policy-pack",
               "--continue-on-error")
"""Flags that make a command a different one for timing (`preview --refresh` vs `preview`)."""


@cache
def pinned_version() -> str:
    """The CLI version every tool of the project uses (the workflows read the same file)."""
    return (ROOT / ".pulumi.version").read_text().strip()


def cli_missing() -> str | None:
    """Why the engine cannot run here (one line), or None when the CLI and plugins are there."""
    for path in (CLI, PROVIDER_HOST):
        if not os.access(path, os.X_OK):
            return (f"{path.relative_to(ROOT)} is missing; scripts/fetch-pulumi builds the "
                    f"Pulumi CLI {pinned_version()} and puts the provider host beside it")
    return None


@dataclass(frozen=True)
class Outcome:
    """How one CLI command ended, and what it printed."""

    code: int
    stdout: str
    stderr: str


class RecordingCommand(auto.PulumiCommand):
    """The project's CLI, remembering how its last command exited: the Automation API raises
    CommandError with the exit code only inside its message, and a drift check is told apart
    from a failure by that code (7)."""

    def __init__(self) -> None:
        super().__init__(root=str(CLI.parent.parent))
        self.last: Outcome | None = None
        self.timings: list[tuple[str, float]] = []
        """(command, wall seconds) of every command run, e.g. ("preview --refresh", 2.1)."""

    def run(self, args: list[str], cwd: str, additional_env: Mapping[str, str],
            on_output: Callable[[str], None] | None = None,
            on_error: Callable[[str], None] | None = None) -> auto.CommandResult:
        out: list[str] = []
        err: list[str] = []

        def tee(lines: list[str], callback: Callable[[str], None] | None):
            def record(line: str) -> None:
                lines.append(line)
                if callback:
                    callback(line)
            return record

        label = _label(args)
        started = time.monotonic()
        try:
            result = super().run(args, cwd, additional_env, tee(out, on_output),
                                 tee(err, on_error))
        except CommandError as error:
            found = _EXIT_CODE.match(str(error))
            code = int(found.group(1)) if found else -1
            self.last = Outcome(code, "\n".join(out), "\n".join(err))
            raise
        finally:
            self.timings.append((label, time.monotonic() - started))
        self.last = Outcome(result.code, result.stdout, result.stderr)
        return result


def _label(args: list[str]) -> str:
    """The command's words and the flags that change what it does: `preview --refresh`."""
    words = [a for a in args if a != "--non-interactive"]
    first_flag = next((i for i, a in enumerate(words) if a.startswith("-")), len(words))
    flags = [a.split("=")[0] for a in words if a.split("=")[0] in LABEL_FLAGS]
    return " ".join(words[:first_flag] + flags)


@dataclass
class Engine:
    """A Pulumi installation of its own under `root`: PULUMI_HOME, a file backend and the
    passphrase that encrypts its secrets. Stacks made here run inline programs."""

    root: Path
    passphrase: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    command: RecordingCommand = field(default_factory=RecordingCommand)

    @property
    def backend(self) -> str:
        return f"file://{self.root / 'state'}"

    def env(self) -> dict[str, str]:
        """What every CLI call gets: no update check, no plugin download, the virtualenv's
        Python first on PATH (the provider host runs `python3 -m pulumi.dynamic`) and the
        project on PYTHONPATH (it unpickles the providers by reference to components/)."""
        path = os.pathsep.join([str(BIN), str(Path(sys.executable).parent),
                                os.environ.get("PATH", "")])
        return {
            "PULUMI_HOME": str(self.root / "home"),
            "PULUMI_BACKEND_URL": self.backend,
            "PULUMI_CONFIG_PASSPHRASE": self.passphrase,
            "PULUMI_SKIP_UPDATE_CHECK": "true",
            "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
            "PATH": path,
            "PYTHONPATH": os.pathsep.join(
                [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]),
        }

    def cli(self, *args: str) -> Outcome:
        """One CLI command in this installation (e.g. `stack export`, which the Automation
        API only offers with --show-secrets); a failure raises CommandError."""
        self.command.run(list(args), str(self.root / "work"), self.env())
        assert self.command.last is not None
        return self.command.last

    def stack(self, name: str, program: Callable[[], None]) -> auto.Stack:
        """Stack `name` of the health-pipeline project running `program`, created on first
        use."""
        for folder in ("home", "state", "work"):
            (self.root / folder).mkdir(parents=True, exist_ok=True)
        return auto.create_or_select_stack(
            stack_name=name,
            project_name=PROJECT,
            program=program,
            opts=auto.LocalWorkspaceOptions(
                work_dir=str(self.root / "work"),
                pulumi_home=str(self.root / "home"),
                env_vars=self.env(),
                pulumi_command=self.command,
                project_settings=auto.ProjectSettings(
                    name=PROJECT, runtime="python",
                    backend=auto.ProjectBackend(url=self.backend)),
            ),
        )
