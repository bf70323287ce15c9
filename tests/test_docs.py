"""The documentation holds together: every relative link in README.md, docs/ and the folders'
READMEs reaches a file of this repository (and, with an anchor, a heading in it), and the
README's Documentation list reaches every file in docs/."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from devtools.harness import ROOT

FENCE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", flags=re.MULTILINE | re.DOTALL)
INLINE_CODE = re.compile(r"`+[^`\n]*`+")
LINK = re.compile(r"\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE = re.compile(r"^\s*\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)", flags=re.MULTILINE)
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", flags=re.MULTILINE)
EXTERNAL = re.compile(r"^[a-z][a-z0-9+.-]*:", flags=re.IGNORECASE)


def documents() -> list[Path]:
    """README.md, docs/*.md and the README of each top-level folder (keys/, policies/, sql/)."""
    folders = sorted(
        p for p in ROOT.glob("*/README.md")
        if not p.parent.name.startswith(".") and p.parent.name not in ("build", "node_modules")
    )
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), *folders]


def _prose(text: str) -> str:
    """The text without code blocks and code spans, where brackets are not links."""
    return INLINE_CODE.sub("", FENCE.sub("", text))


def links(text: str) -> list[str]:
    prose = _prose(text)
    return LINK.findall(prose) + REFERENCE.findall(prose)


def anchors(text: str) -> set[str]:
    """The ids GitHub gives a file's headings: lower case, punctuation dropped, spaces to
    hyphens, a repeated id numbered -1, -2, ..."""
    seen: dict[str, int] = {}
    found = set()
    for heading in HEADING.findall(FENCE.sub("", text)):
        heading = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).replace("`", "")
        slug = re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        found.add(slug if count == 0 else f"{slug}-{count}")
    return found


def broken_links(document: Path, root: Path = ROOT) -> list[str]:
    problems = []
    text = document.read_text(encoding="utf-8")
    for target in links(text):
        if EXTERNAL.match(target):
            continue
        path, _, anchor = target.partition("#")
        resolved = (document.parent / path).resolve() if path else document.resolve()
        if not resolved.is_relative_to(root.resolve()):
            problems.append(f"{target}: outside the repository")
        elif not resolved.exists():
            problems.append(f"{target}: no such file")
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(
                resolved.read_text(encoding="utf-8")):
            problems.append(f"{target}: no heading #{anchor} in {resolved.relative_to(root)}")
    return problems


@pytest.mark.parametrize("document", documents(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_reaches_a_file_and_its_heading(document: Path) -> None:
    assert not broken_links(document), f"{document.relative_to(ROOT)}: {broken_links(document)}"


def test_the_readme_links_every_file_in_docs() -> None:
    readme = ROOT / "README.md"
    linked = {(readme.parent / t.partition("#")[0]).resolve()
              for t in links(readme.read_text()) if not EXTERNAL.match(t)}
    unlinked = [p.relative_to(ROOT) for p in (ROOT / "docs").glob("*.md")
                if p.resolve() not in linked]
    assert not unlinked, f"README.md's Documentation list lacks {unlinked}"


def test_the_link_check_finds_what_is_broken(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "target.md").write_text("# A heading, with `code`\n\n## Twice\n\n## Twice\n")
    page = tmp_path / "docs" / "page.md"
    page.write_text(
        "[ok](../target.md#a-heading-with-code) [ok](../target.md#twice-1) [ok](#local)\n"
        "[gone](../missing.md) [no anchor](../target.md#nowhere) [out](../../elsewhere.md)\n"
        "[web](https://example.org/x.md) `[code](missing.md)`\n\n"
        "```\n[fenced](missing.md)\n# not a heading\n```\n\n## Local\n\n[ref]: ../missing-ref.md\n"
    )
    assert broken_links(page, root=tmp_path) == [
        "../missing.md: no such file",
        "../target.md#nowhere: no heading #nowhere in target.md",
        "../../elsewhere.md: outside the repository",
        "../missing-ref.md: no such file",
    ]
