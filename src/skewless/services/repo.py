"""Load definitions from a feature repo's Python files (what `skewless plan/apply` do)."""

from __future__ import annotations

import importlib.util
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from skewless.define import Entity, FeatureService, FeatureView, OnDemandFeatureView
from skewless.errors import SkewlessError

_SKIP_DIRS = {"data", "__pycache__", "node_modules", "build", "dist", "site-packages"}


@dataclass
class LoadedRepo:
    objects: list[Any] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)


def python_files(repo: Path) -> list[Path]:
    """The files ``plan`` and ``apply`` import, in path order. The rules, documented in
    ``docs/repository.md#which-files-plan-and-apply-import``: hidden, data, build and
    virtualenv folders are skipped, and so are ``test_*``, ``_*`` (but ``__init__.py``) and
    hidden files such as an editor's lock file ``.#features.py``."""
    out = []
    for p in sorted(repo.rglob("*.py")):
        rel = p.relative_to(repo).parts
        if any(part.startswith(".") or part in _SKIP_DIRS or part.endswith("venv") for part in rel[:-1]):
            continue
        if p.name.startswith(("test_", "_", ".")) and p.name != "__init__.py":
            continue
        out.append(p)
    return out


def load_repo(repo_path: str | Path) -> LoadedRepo:
    """Import every Python file of the repo and collect the definitions at module level.

    A file that fails to import is reported (file, line, message) and the others still load, so
    one report lists every problem."""
    repo = Path(repo_path).resolve()
    loaded = LoadedRepo()
    seen: set[int] = set()
    # (kind, name) -> (definition, where): two different definitions of one name are reported
    # with both files; an equal one (a definition imported by another file) is the same.
    defined: dict[tuple[str, str], tuple[Any, str]] = {}
    sys.path.insert(0, str(repo))
    saved_flag = sys.dont_write_bytecode
    sys.dont_write_bytecode = True  # leave no __pycache__ in the user's repo
    try:
        for file in python_files(repo):
            loaded.files.append(file)
            modname = "_skewless_repo_" + "_".join(file.relative_to(repo).with_suffix("").parts)
            spec = importlib.util.spec_from_file_location(modname, file)
            assert spec and spec.loader
            module = importlib.util.module_from_spec(spec)
            try:
                spec.loader.exec_module(module)
            except SkewlessError as e:
                loaded.problems.append(f"{_where(file, e, repo)}: {e.message}")
                continue
            except Exception as e:  # noqa: BLE001 - user code may raise anything
                loaded.problems.append(f"{_where(file, e, repo)}: {type(e).__name__}: {e}")
                continue
            for var, value in vars(module).items():
                if isinstance(value, (Entity, FeatureView, OnDemandFeatureView, FeatureService)) and id(value) not in seen:
                    seen.add(id(value))
                    where = f"{file.relative_to(repo)} (variable `{var}`)"
                    key = (_kind(value), value.name)
                    if key in defined:  # an equal one is the same definition, imported elsewhere
                        problem = _duplicate(defined[key], value, where)
                        if problem:
                            loaded.problems.append(problem)
                        continue
                    defined[key] = (value, where)
                    loaded.objects.append(value)
    finally:
        sys.dont_write_bytecode = saved_flag
        sys.path.remove(str(repo))
    return loaded


def _kind(obj: Any) -> str:
    return "entity" if isinstance(obj, Entity) else "feature view" if isinstance(obj, FeatureView) \
        else "on-demand feature view" if isinstance(obj, OnDemandFeatureView) else "feature service"


def _duplicate(first: tuple[Any, str], obj: Any, where: str) -> str | None:
    """The problem of a second, different definition of ``obj``'s name, naming both places."""
    if first[0] == obj:
        return None
    kinds = {"entity": "entities"}.get(_kind(obj), _kind(obj) + "s")
    return (f"two different {kinds} are named '{obj.name}': one in {first[1]}, another in "
            f"{where}; names must be unique (rename one, or delete the copy)")


def _where(file: Path, e: BaseException, repo: Path) -> str:
    line = e.lineno if isinstance(e, SyntaxError) else None
    for frame in traceback.extract_tb(e.__traceback__):
        if Path(frame.filename).resolve() == file:
            line = frame.lineno
    rel = file.relative_to(repo)
    return f"{rel}:{line}" if line else str(rel)
