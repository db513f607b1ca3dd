"""The README is a manual that stays true: short, and every link, make target and path resolves.

Reads the markdown files only (no service). Paths are checked when their first segment is a
top-level entry of the repository, so asset keys (`market/bars_1m`), topics and module names are
not mistaken for files; placeholders (`<name>`) are skipped and globs must match something.
"""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
MAX_README_LINES = 250
# written at run time, not committed (git-ignored): may be named without existing in a checkout
GENERATED = ("bench/results", "config/api_keys.json", ".local")
NOT_TOP_LEVEL = {".git", ".venv", ".local", ".mypy_cache", ".ruff_cache", ".pytest_cache"}

FENCE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.MULTILINE | re.DOTALL)
CODE_SPAN = re.compile(r"(`+)(.+?)\1", re.DOTALL)
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)
MAKE = re.compile(r"\bmake[ \t]+([a-z][\w-]*)")
MAKE_TARGET = re.compile(r"^([A-Za-z][\w-]*)\s*:(?!=)", re.MULTILINE)


def doc_files() -> list[Path]:
    """README and docs/**, without the fragments other branches deliver in docs/_incoming/."""
    docs = [p for p in DOCS.rglob("*.md") if "_incoming" not in p.relative_to(DOCS).parts]
    return [README, *sorted(docs)]


def rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def without_fences(text: str) -> str:
    return FENCE.sub("", text)


def code_spans(text: str) -> list[str]:
    return [m.group(2) for m in CODE_SPAN.finditer(without_fences(text))]


def code_pieces(text: str) -> list[str]:
    """Everything shown as code: inline spans and fenced blocks."""
    return [*code_spans(text), *(m.group(0) for m in FENCE.finditer(text))]


def make_targets_named(text: str) -> set[str]:
    return {target for piece in code_pieces(text) for target in MAKE.findall(piece)}


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    return {slug(h) for h in HEADING.findall(without_fences(path.read_text()))}


def links(path: Path) -> list[str]:
    text = CODE_SPAN.sub("", without_fences(path.read_text()))
    return LINK.findall(text)


def top_level() -> set[str]:
    return {p.name for p in ROOT.iterdir()} - NOT_TOP_LEVEL


def path_candidates(span: str, top: set[str]) -> list[str]:
    """Words of a code span that name a repository path (first segment is a top-level entry)."""
    found = []
    for word in span.split():
        word = word.removeprefix("./").rstrip(".,;:)")
        if not word or any(c in word for c in "<>{}$…|=\"'"):
            continue
        first = word.split("/", 1)[0]
        if first in top and ("/" in word or word == first):
            found.append(word.rstrip("/"))
    return found


def test_readme_is_a_short_manual() -> None:
    lines = README.read_text().splitlines()
    assert len(lines) <= MAX_README_LINES, f"README.md has {len(lines)} lines"
    assert sum("```mermaid" in line for line in lines) == 1, "one diagram of the whole flow"


@pytest.mark.parametrize("path", doc_files(), ids=rel)
def test_relative_links_resolve(path: Path) -> None:
    broken = []
    for target in links(path):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
            continue
        file_part, _, anchor = target.partition("#")
        dest = (path.parent / file_part).resolve() if file_part else path
        if not dest.exists():
            broken.append(target)
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            broken.append(f"{target} (no such heading)")
    assert not broken, f"{rel(path)}: broken links {broken}"


def test_every_docs_page_is_linked() -> None:
    linked_from_readme = {(ROOT / t.partition("#")[0]).resolve() for t in links(README)}
    pages = [p for p in doc_files()[1:] if p.parent == DOCS]
    assert pages, "docs/ has pages"
    assert not [rel(p) for p in pages if p.resolve() not in linked_from_readme]
    decisions = DOCS / "decisions"
    index = {(decisions / t.partition("#")[0]).resolve() for t in links(decisions / "README.md")}
    records = [p for p in decisions.glob("[0-9][0-9][0-9][0-9]-*.md")]
    assert records, "decision records exist"
    assert not [rel(p) for p in records if p.resolve() not in index]


def test_make_targets_exist() -> None:
    targets = set(MAKE_TARGET.findall((ROOT / "Makefile").read_text()))
    assert {"dev", "test"} <= targets
    for path in doc_files():
        mentioned = make_targets_named(path.read_text())
        assert not mentioned - targets, f"{rel(path)}: unknown make targets"
    assert {"dev", "test"} <= make_targets_named(README.read_text())


@pytest.mark.parametrize("path", doc_files(), ids=rel)
def test_backticked_paths_exist(path: Path) -> None:
    top = top_level()
    named = [w for span in code_spans(path.read_text()) for w in path_candidates(span, top)]
    missing = [
        name
        for name in named
        if not name.startswith(GENERATED)
        and not (any(ROOT.glob(name)) if "*" in name else (ROOT / name).exists())
    ]
    assert not missing, f"{rel(path)}: paths that do not exist {missing}"
    if path == README:
        assert len(named) >= 20, "the README's code map names the repository's paths"


def test_path_candidates_ignore_what_is_not_a_path() -> None:
    top = {"stock_assets", "bench", "Makefile", "config"}
    assert path_candidates("market/bars_1m", top) == []
    assert path_candidates("stock_assets/defs/<domain>/", top) == []
    assert path_candidates("./bench/ingest.py,", top) == ["bench/ingest.py"]
    assert path_candidates("Makefile", top) == ["Makefile"]
    assert path_candidates("config/*.json", top) == ["config/*.json"]
    assert path_candidates("bench", top) == ["bench"]
