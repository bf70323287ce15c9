"""Print the settings reference (docs/settings.md) from Pulumi.yaml and the stack files, so the
table cannot drift from what the program reads. `--write docs/settings.md` replaces the table
between the markers; `--check docs/settings.md` exits 1 when it is stale."""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
BEGIN, END = "<!-- settings:begin -->", "<!-- settings:end -->"


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        value = "true" if value else "false"
    if isinstance(value, list):
        value = ", ".join(value) if value else "[]"
    text = str(value).replace("|", "\\|")
    return f"`{text}`" if text else '`""`'


def table() -> str:
    declared = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["config"]
    stacks = {
        stack: {
            k.removeprefix("health-pipeline:"): v
            for k, v in (yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())["config"]
                         or {}).items()
        }
        for stack in ("dev", "prod")
    }
    rows = [
        "| key | type | meaning | default | dev | prod |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for key, spec in declared.items():
        dev = stacks["dev"].get(key)
        prod = stacks["prod"].get(key)
        rows.append(
            f"| `{key}` | {spec['type']} | {spec['description'].replace('|', '/')} | "
            f"{_cell(spec.get('default'))} | {_cell(dev) if dev is not None else 'default'} | "
            f"{_cell(prod) if prod is not None else 'default'} |"
        )
    return "\n".join(rows)


def main() -> int:
    generated = f"{BEGIN}\n{table()}\n{END}"
    if len(sys.argv) == 3 and sys.argv[1] in ("--check", "--write"):
        path = Path(sys.argv[2])
        document = path.read_text()
        start, end = document.find(BEGIN), document.find(END)
        if start < 0 or end < 0:
            print(f"{path}: no {BEGIN} ... {END} markers")
            return 1
        current = document[start : end + len(END)]
        if sys.argv[1] == "--write":
            path.write_text(document.replace(current, generated))
            return 0
        if current != generated:
            print(f"{sys.argv[2]}: settings reference is stale; regenerate it with "
                  f"`python scripts/settings_reference.py --write {sys.argv[2]}`")
            return 1
        return 0
    print(generated)
    return 0


if __name__ == "__main__":
    sys.exit(main())
