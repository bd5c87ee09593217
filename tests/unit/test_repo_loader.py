"""The repo loader does what docs/repository.md says: the table of files imported or skipped is
read from the page and checked against `load_repo` and `skewless plan` on a real folder."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from skewless.cli import app
from skewless.services.repo import load_repo, python_files

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "repository.md"
ROW = re.compile(r"^\|\s*`(?P<file>[^`]+)`\s*\|\s*(?P<imported>yes|no)\s*\|(?P<why>[^|]*)\|\s*$")


def documented() -> dict[str, bool]:
    section = PAGE.read_text().split("## Which files `plan` and `apply` import", 1)[1].split("\n## ", 1)[0]
    rows = {m["file"]: m["imported"] == "yes" for m in map(ROW.match, section.splitlines()) if m}
    assert len(rows) >= 15, rows
    return rows


DOCUMENTED = documented()


def populate(repo: Path) -> None:
    """One file per documented row: an imported file defines an entity named after it; a file
    that must be skipped raises if it is ever imported."""
    repo.mkdir(parents=True, exist_ok=True)
    (repo / "feature_store.yaml").write_text("project: loader\n")
    for i, (rel, imported) in enumerate(DOCUMENTED.items()):
        path = repo / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if imported:
            path.write_text(f"from skewless import Entity\nentity_{i} = Entity('e{i}', join_keys=['k{i}'])\n")
        else:
            path.write_text(f"raise RuntimeError('{rel} must not be imported')\n")


def test_the_documented_files_are_imported_and_the_others_never(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    populate(repo)
    want = sorted(rel for rel, imported in DOCUMENTED.items() if imported)
    assert [str(p.relative_to(repo.resolve())) for p in python_files(repo.resolve())] == want
    loaded = load_repo(repo)
    assert loaded.problems == []                     # no skipped file was executed
    assert sorted(str(p.relative_to(repo.resolve())) for p in loaded.files) == want
    assert sorted(o.name for o in loaded.objects) == sorted(
        f"e{i}" for i, imported in enumerate(DOCUMENTED.values()) if imported)
    assert not list(repo.rglob("__pycache__/*.pyc"))  # nothing written into the repo


def test_plan_reads_the_same_files(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    populate(repo)
    result = CliRunner().invoke(app, ["--repo", str(repo), "plan"])
    assert result.exit_code == 0, result.output
    n = sum(DOCUMENTED.values())
    assert f"{n} to create" in " ".join(result.output.split()), result.output


def test_an_editor_lock_file_beside_features_py_does_not_break_plan(tmp_path: Path) -> None:
    """Emacs keeps `.#features.py` (a dangling symlink) while the file is being edited; vim and
    others leave hidden files too. They are not the repo's code."""
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "feature_store.yaml").write_text("project: loader\n")
    (repo / "features.py").write_text("from skewless import Entity\nuser = Entity('user')\n")
    (repo / ".#features.py").symlink_to("root@host.1234:1700000000")
    (repo / ".features.py").write_text("x = (\n")
    loaded = load_repo(repo)
    assert loaded.problems == [] and [o.name for o in loaded.objects] == ["user"]


def test_one_file_may_import_another_and_objects_count_once(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "feature_store.yaml").write_text("project: loader\n")
    (repo / "entities.py").write_text("from skewless import Entity\nuser = Entity('user')\n")
    (repo / "more.py").write_text("from entities import user\nfrom skewless import Entity\n"
                                  "merchant = Entity('merchant')\n")
    loaded = load_repo(repo)
    assert loaded.problems == []
    names = [o.name for o in loaded.objects]
    assert sorted(set(names)) == ["merchant", "user"]
    assert str(repo.resolve()) not in sys.path       # the repo is on sys.path only while loading
    sys.modules.pop("entities", None)


def test_a_broken_file_is_reported_with_its_line_and_the_others_still_load(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "feature_store.yaml").write_text("project: loader\n")
    (repo / "a.py").write_text("from skewless import Entity\nuser = Entity('user')\n")
    (repo / "b.py").write_text("x = 1\nraise ValueError('boom')\n")
    loaded = load_repo(repo)
    assert loaded.problems == ["b.py:2: ValueError: boom"]
    assert [o.name for o in loaded.objects] == ["user"]


@pytest.mark.parametrize("rel", ["x/.cache/f.py", "venv2/f.py"])
def test_rules_beyond_the_table(tmp_path: Path, rel: str) -> None:
    """Neighbours of the documented rules: a hidden folder at any depth is skipped; a folder
    that merely starts with 'venv' is not (the rule is 'ends with venv')."""
    repo = tmp_path / "repo"
    (repo / rel).parent.mkdir(parents=True)
    (repo / rel).write_text("")
    got = [str(p.relative_to(repo)) for p in python_files(repo)]
    assert got == ([] if rel.startswith("x/.") else [rel])
