"""The backends under the conformance suites, and their known gaps: all from the installed
backends (skewless.backends), none listed here.

Every installed offline engine but the oracle runs the point-in-time suite against the
reference engine; every installed online store runs the online suites (test_online_*.py,
test_exclusive_runs.py, test_projects_isolated.py). How to configure a backend in tests and
which tests it is known to fail come from its ``Backend.testing``
(skewless.testing.backends.BackendTesting): a gap there marks the named test as a strict xfail
for that backend ("notyet" / "never", with the reason), so a gap that starts passing fails the
run until it is removed. A test that needs a capability the backend declares as a gap is
skipped with that declaration's reason (``Run.require``), or, when marked
``@pytest.mark.needs_online("capability")``, run as a strict xfail that must raise
UnsupportedError: the store refuses, naming itself, what it declared it cannot do. Adding a
backend needs no edit here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from skewless.backends import Backend, capability
from skewless.errors import UnsupportedError
from skewless.testing.backends import BackendTesting, installed

# engine name -> (backend, how to test it); the oracle is what the others are compared with
ENGINES: dict[str, tuple[Backend[Any], BackendTesting]] = {
    name: value for name, value in installed("offline_engine").items() if not value[1].oracle}
ONLINE: dict[str, tuple[Backend[Any], BackendTesting]] = installed("online_store")

_HERE = Path(__file__).parent


@pytest.fixture(scope="session", params=sorted(ENGINES))
def engine(request: pytest.FixtureRequest) -> dict[str, Any]:
    """The ``offline_store`` config of the engine under test (session-scoped, so hypothesis
    tests may use it)."""
    return {"type": request.param, **ENGINES[request.param][1].settings()}


@pytest.fixture(scope="session")
def sql_over_parquet(engine: dict[str, Any]) -> str | None:
    """The engine's query template over a Parquet file ``{path}``, or None when it does not
    take entity_df as SQL (its ``sql_entity_df`` capability is a gap)."""
    backend, testing = ENGINES[engine["type"]]
    if capability(backend.capabilities, "sql_entity_df") is not True:
        return None
    return testing.sql_over_parquet


@pytest.fixture(scope="session")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A session directory; property tests make one fresh repo per example inside it."""
    return tmp_path_factory.mktemp("conformance")


def _backends_of(item: pytest.Item) -> list[tuple[str, BackendTesting]]:
    """The backends a test item runs on, from its parameters (a store or engine name, or a
    (store, engine) pair)."""
    callspec = getattr(item, "callspec", None)
    if callspec is None:
        return []
    found = []
    for value in callspec.params.values():
        for name in value if isinstance(value, tuple) else (value,):
            if not isinstance(name, str):
                continue
            for table in (ONLINE, ENGINES):
                if name in table:
                    found.append((name, table[name][1]))
    return found


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _HERE not in Path(str(item.fspath)).parents:
            continue
        test = getattr(item, "originalname", item.name)
        needs = item.get_closest_marker("needs_online")
        for name, testing in _backends_of(item):
            gap = testing.gaps.get(test)
            if gap is not None:
                item.add_marker(pytest.mark.xfail(
                    strict=True, reason=f"{name}: {gap.label}: {gap.reason}"))
            if needs is not None and name in ONLINE:
                declared = capability(ONLINE[name][0].capabilities, needs.args[0])
                if declared is not True:
                    item.add_marker(pytest.mark.xfail(
                        strict=True, raises=UnsupportedError,
                        reason=f"{name}: {needs.args[0]} is {declared.label}: {declared.reason}"))
