"""The stack's configured keys and the ones Pulumi.yaml declares, so a misspelt key in a stack
file is refused instead of silently ignored (the CLI passes it on, and the program would read
the declared default instead).

The SDK offers no public call that lists every configured key, so this module is the one place
that reads its runtime: the config the engine set (pulumi.runtime.config.CONFIG) and the
PULUMI_CONFIG environment it may come through."""

from __future__ import annotations

import difflib
from functools import cache
from pathlib import Path

import yaml
from pulumi.runtime import config as runtime_config

__all__ = ["PULUMI_YAML", "configured_keys", "declared_keys", "undeclared_problems"]

PULUMI_YAML = Path(__file__).resolve().parent.parent / "Pulumi.yaml"


def configured_keys(project: str) -> set[str]:
    """The keys of `project`'s namespace this stack sets (`<project>:<key>` without the
    prefix)."""
    found = {*runtime_config.CONFIG.get(), *runtime_config.get_config_env()}
    prefix = f"{project}:"
    return {key[len(prefix):] for key in found if key.startswith(prefix)}


@cache
def declared_keys(path: Path = PULUMI_YAML) -> frozenset[str]:
    """What Pulumi.yaml's `config:` declares."""
    return frozenset((yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("config")
                     or {})


def undeclared_problems(project: str, configured: set[str], declared: frozenset[str]) -> list[str]:
    """One message per configured key that is not declared, with the nearest declared one."""
    problems = []
    by_lower = {name.lower(): name for name in declared}
    for key in sorted(configured - declared):
        # Case slips (mqttTLSPort) first, then the closest spelling.
        near = [by_lower[key.lower()]] if key.lower() in by_lower else [
            by_lower[m] for m in difflib.get_close_matches(key.lower(), sorted(by_lower), n=1,
                                                           cutoff=0.6)]
        hint = (f"did you mean {project}:{near[0]}?" if near
                else "see the settings reference in docs/settings.md")
        problems.append(f"{project}:{key} is not a setting of this project (Pulumi.yaml does "
                        f"not declare it, so it would be ignored); {hint} Remove it with: "
                        f"pulumi config rm {project}:{key}")
    return problems
