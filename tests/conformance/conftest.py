"""The engines under the conformance suite, and their known gaps.

A backend joins the suite by adding one entry to ENGINES (how to configure it). A gap is an
entry in GAPS: the named test is expected to fail for that engine (strict xfail), so a gap that
starts passing fails the run until its entry is removed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

ENGINES: dict[str, dict[str, Any]] = {
    "duckdb": {"type": "duckdb"},
    # "spark": {"type": "spark", ...},
}

# engine -> a query reading the Parquet file {path}, for engines that take entity_df as SQL
SQL_OVER_PARQUET: dict[str, str] = {
    "duckdb": "SELECT * FROM read_parquet('{path}')",
}

# engine -> {test function name: why it is expected to fail}
GAPS: dict[str, dict[str, str]] = {}

_HERE = Path(__file__).parent


@pytest.fixture(scope="session", params=sorted(ENGINES))
def engine(request: pytest.FixtureRequest) -> dict[str, Any]:
    """The ``offline_store`` config of the engine under test (session-scoped, so hypothesis
    tests may use it)."""
    return dict(ENGINES[request.param])


@pytest.fixture(scope="session")
def sql_over_parquet(engine: dict[str, Any]) -> str | None:
    """The engine's query template over a Parquet file ``{path}``, or None without SQL input."""
    return SQL_OVER_PARQUET.get(engine["type"])


@pytest.fixture(scope="session")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A session directory; property tests make one fresh repo per example inside it."""
    return tmp_path_factory.mktemp("conformance")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _HERE not in Path(str(item.fspath)).parents:
            continue
        callspec = getattr(item, "callspec", None)
        name = callspec.params.get("engine") if callspec else None
        reason = GAPS.get(name, {}).get(getattr(item, "originalname", item.name))
        if reason:
            item.add_marker(pytest.mark.xfail(strict=True, reason=f"{name}: {reason}"))
