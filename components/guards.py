"""What the Args guards share: which of the values they need are unset."""

from __future__ import annotations


def unset(**values: object) -> list[str]:
    """The names whose value is None, in the order given: what a guard error lists."""
    return [name for name, value in values.items() if value is None]
