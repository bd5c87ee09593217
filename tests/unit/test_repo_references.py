"""Every reference the repository makes stays inside it and resolves: no file cites the design
contract that lives outside the repository (docs/ is the documentation), no path leaves the
repository or names a developer's machine, every Markdown link and every `docs/<page>.md#anchor`
citation (docstrings included) lands on an existing file and heading."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TEXT_SUFFIXES = {".py", ".md", ".yaml", ".yml", ".toml", ".txt", ".cfg", ".ini", ".sql", ".sh", ".json"}
TEXT_NAMES = {"Makefile", "run"}
# Not part of the repository: environments, caches, generated data and results.
SKIP_DIRS = {"__pycache__", "node_modules", "build", "dist", "data", "results", "demo_repo"}

OUTSIDE = "DESIGN" + ".md"   # the design contract: kept outside the repository, never cited
UP = re.compile(r"(?<![\w.])(?:\.\./)+[\w./-]*")
MACHINE = re.compile(r"(?<![\w/.])/(?:work|home|Users|root|mnt)/[\w./-]+")
LINK = re.compile(r"\[[^\]]*\]\((?P<target>[^)\s]+)\)")
CITATION = re.compile(r"(?<![\w/.-])(?P<path>(?:bench/|src/|tests/|examples/)?docs/[\w.-]+\.md|README\.md)"
                      r"(?:#(?P<anchor>[\w-]+))?")


def repo_files() -> list[Path]:
    out = []
    for path in sorted(ROOT.rglob("*")):
        rel = path.relative_to(ROOT)
        if any(p.startswith(".") and p != ".ci" or p in SKIP_DIRS or p.endswith(".egg-info")
               for p in rel.parts[:-1]):
            continue
        if path.is_file() and (path.suffix in TEXT_SUFFIXES or path.name in TEXT_NAMES):
            out.append(path)
    return out


FILES = repo_files()


def slug(heading: str) -> str:
    """GitHub's anchor for a Markdown heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)   # no headings inside code
    return {slug(m.group(1)) for m in re.finditer(r"^#{1,6}\s+(.+?)\s*#*\s*$", text, re.M)}


def where(path: Path, text: str, pos: int) -> str:
    return f"{path.relative_to(ROOT)}:{text.count(chr(10), 0, pos) + 1}"


def test_the_scan_sees_the_repository() -> None:
    names = {str(p.relative_to(ROOT)) for p in FILES}
    for expected in ("README.md", "Makefile", "pyproject.toml", "docs/online.md", "src/skewless/store.py",
                     "examples/quickstart.py", "src/skewless/cli/templates/README.md", ".ci/run"):
        assert expected in names, expected
    assert not any(n.startswith((".venv/", ".git/")) for n in names)


def test_no_file_cites_the_design_contract_outside_the_repository() -> None:
    found = [where(p, t, m.start()) for p in FILES
             for t in [p.read_text(errors="replace")] for m in re.finditer(re.escape(OUTSIDE), t, re.I)]
    assert not found, (f"{OUTSIDE} is not in the repository; cite the docs/ page and section "
                       f"instead (docs/<page>.md#section): {found}")


def test_no_path_leaves_the_repository_or_names_a_machine() -> None:
    bad = []
    for path in FILES:
        text = path.read_text(errors="replace")
        for m in UP.finditer(text):
            target = (path.parent / m.group(0)).resolve()
            if not target.is_relative_to(ROOT):
                bad.append(f"{where(path, text, m.start())}: {m.group(0)} leaves the repository")
        for m in MACHINE.finditer(text):
            bad.append(f"{where(path, text, m.start())}: {m.group(0)} is a path on someone's machine")
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("page", [p for p in FILES if p.suffix == ".md"],
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_markdown_links_resolve_to_a_file_and_heading(page: Path) -> None:
    text = page.read_text()
    bad = []
    for m in LINK.finditer(text):
        target = m.group("target")
        if re.match(r"^[a-z]+:", target):       # http:, https:, mailto:
            continue
        file_part, _, anchor = target.partition("#")
        file = (page.parent / file_part).resolve() if file_part else page
        if not file.is_relative_to(ROOT) or not file.exists():
            bad.append(f"{where(page, text, m.start())}: {target}: no such file in the repository")
        elif anchor and file.suffix == ".md" and anchor not in anchors(file):
            bad.append(f"{where(page, text, m.start())}: {target}: no heading #{anchor} in "
                       f"{file.relative_to(ROOT)} (has: {sorted(anchors(file))})")
    assert not bad, "\n".join(bad)


def test_docs_citations_in_code_and_docs_resolve() -> None:
    """`docs/<page>.md` and `docs/<page>.md#section` in docstrings, comments and prose name a page
    and a heading that exist."""
    bad = []
    seen = 0
    for path in FILES:
        text = path.read_text(errors="replace")
        for m in CITATION.finditer(text):
            if m.group("path") == "README.md" and not m.group("anchor"):
                continue
            seen += 1
            page = ROOT / m.group("path")
            if not page.exists():
                bad.append(f"{where(path, text, m.start())}: {m.group(0)}: no such page")
            elif m.group("anchor") and m.group("anchor") not in anchors(page):
                bad.append(f"{where(path, text, m.start())}: {m.group(0)}: no such heading "
                           f"(has: {sorted(anchors(page))})")
    assert seen > 10
    assert not bad, "\n".join(bad)


def test_the_checks_catch_what_they_are_for(tmp_path: Path) -> None:
    """The patterns themselves: a citation outside, a path up and out, a machine path."""
    assert UP.search("see ../shared/x.md") and not UP.search("a/b.md")
    assert (ROOT / "docs" / UP.search("(../bench/README.md)").group(0)).resolve().is_relative_to(ROOT)
    assert not (ROOT / "docs" / UP.search("(../../shared/x.md)").group(0)).resolve().is_relative_to(ROOT)
    home = "/" + "home"   # spelled in two, so that this file does not trip the check itself
    assert MACHINE.search("open /" + "work/shared/x") and MACHINE.search(home + "/me/repo")
    assert not MACHINE.search("SKEWLESS_ONLINE_STORE__PATH=/tmp/online.db")
    assert slug("`as_of`: reproducible training sets") == "as_of-reproducible-training-sets"
    assert slug("Side by side with Feast (compare.py)") == "side-by-side-with-feast-comparepy"
    assert slug("### `POST /get-online-features`".lstrip("# ")) == "post-get-online-features"
    m = CITATION.search("(``docs/point-in-time.md#the-rule``)")
    assert m and m.group("path") == "docs/point-in-time.md" and m.group("anchor") == "the-rule"
