"""One front door: outside ``store.py`` and ``services/``, no module of ``src/skewless`` imports
``skewless.services`` (the CLI, the server and FeatureClient call ``FeatureStore`` only).

Every module's AST is walked whole, so imports inside functions and ``TYPE_CHECKING`` blocks
count too, and so do relative imports."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import skewless

SRC = Path(skewless.__file__).parent
ALLOWED = {SRC / "store.py"}
SERVICES = "skewless.services"


def _package_of(path: Path) -> str:
    rel = path.relative_to(SRC.parent).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts if path.name == "__init__.py" else parts[:-1])


def services_imports(path: Path) -> list[str]:
    """``line: statement`` of every import of ``skewless.services`` (or of a module under it)
    in ``path``, wherever it stands."""
    tree = ast.parse(path.read_text(), str(path))
    package = _package_of(path)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[:len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            names = [base] + [f"{base}.{a.name}" for a in node.names]
        else:
            continue
        if any(n == SERVICES or n.startswith(SERVICES + ".") for n in names):
            found.append(f"{node.lineno}: {ast.unparse(node)}")
    return found


def outside_modules() -> list[Path]:
    return sorted(p for p in SRC.rglob("*.py")
                  if p not in ALLOWED and (SRC / "services") not in p.parents)


def test_no_module_outside_the_store_and_the_services_imports_the_services() -> None:
    offenders = {str(p.relative_to(SRC)): found for p in outside_modules()
                 if (found := services_imports(p))}
    assert offenders == {}, ("call FeatureStore instead (result types are importable from "
                             f"skewless.store): {offenders}")


@pytest.mark.parametrize("source", [
    "from skewless.services import online",
    "from skewless.services.online import OnlineResponse",
    "import skewless.services.materialize as m",
    "def f():\n    from skewless.services import push\n",
    "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from skewless.services.apply import PlanResult\n",
    "from ..services import apply",
    "from .. import services",
])
def test_the_walk_finds_every_form_of_import(tmp_path: Path, source: str) -> None:
    module = SRC / "server" / "_probe_for_the_boundary_test.py"
    module.write_text(source)
    try:
        assert services_imports(module), source
    finally:
        module.unlink()


def test_the_walk_is_not_fooled_by_lookalikes(tmp_path: Path) -> None:
    module = SRC / "server" / "_probe_for_the_boundary_test.py"
    module.write_text("from skewless.services_extra import x\nfrom skewless.store import OnlineResponse\n"
                      "from skewless.define import FeatureService\nfrom . import services_like\n")
    try:
        assert services_imports(module) == []
    finally:
        module.unlink()
