"""What the two dynamic providers (Kafka Connect connectors, Lenses SQL processors) share in
how they answer the engine."""

from __future__ import annotations

from collections.abc import Sequence

from pulumi.dynamic import DiffResult

__all__ = ["engine_keyed_diff"]


def engine_keyed_diff(changed: bool, replaces: Sequence[str]) -> DiffResult:
    """The provider decides whether anything changed and what forces a replacement; the engine
    names what changed. A Python dynamic provider cannot report changed keys (its DiffResult
    has no diffs or detailed diff), so a change is answered as "unknown": the engine then
    compares the old and new inputs key by key, nested keys included, and shows that in
    `pulumi preview --diff` and as the step's diffReasons (pkg/resource/deploy
    step_generator.go, diffResource). Replacements delete first: both a connector and a
    processor are unique by name."""
    return DiffResult(changes=None if changed else False, replaces=list(replaces),
                      delete_before_replace=True)
