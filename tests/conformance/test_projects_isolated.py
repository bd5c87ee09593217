"""Projects sharing one online store are isolated (docs/online-stores.md, "Table names").

The reported case: project ``P`` with view ``_s`` and project ``P_`` with view ``s`` were both
stored in table ``P___s``: each read, and through ``rebuild_online`` overwrote, the other's
values. Each test runs on every store of ``ONLINE_STORES`` whose ``shared`` capability holds
(SQLite: one file both repos point at; Redis: the shared server), with two real repos and
registries.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from skewless import Entity, FeatureStore, FeatureView, Field, FileSource
from skewless.types import Int64

from .test_online_invariant import ONLINE_STORES, Run, _available

UTC = timezone.utc
T = datetime(2025, 1, 10, tzinfo=UTC)
user = Entity("user", join_keys=["user_id"])


@pytest.fixture(params=sorted(ONLINE_STORES))
def runs(request: pytest.FixtureRequest) -> Iterator[tuple[Run, Run]]:
    """Two projects on one store: ``P`` and ``P_`` (the second name is the first plus ``_``)."""
    _available(request.param)
    a, b = Run(request.param, "duckdb"), Run(request.param, "duckdb")
    a.require("shared")   # two repos, two FeatureStores, one store
    b.project = a.project + "_"
    yield a, b
    b.close()   # first: a's cleanup checks no key holds a's name, and P_ holds P
    a.close()


def repo_of(run: Run, root: Path, view: str, values: list[int], shared_db: Path) -> FeatureStore:
    repo = root / run.project
    (repo / "data").mkdir(parents=True)
    pq.write_table(pa.table({"user_id": pa.array([1, 2], pa.int64()),
                             "ts": pa.array([datetime(2025, 1, 1, tzinfo=UTC)] * 2, pa.timestamp("us", "UTC")),
                             "x": pa.array(values, pa.int64())}), repo / "data/s.parquet")
    config: dict[str, Any] = run.config()
    if run.testing.shared is not None:   # e.g. SQLite: both repos write one file
        config["online_store"].update(run.testing.shared(shared_db.parent))
    fs = FeatureStore(repo, config=config, clock=lambda: T)
    fs.apply([user, FeatureView(view, entities=[user], schema=[Field("x", Int64)],
                                source=FileSource("data/s.parquet", "ts"))])
    return fs


def serve(fs: FeatureStore, view: str) -> list[Any]:
    return fs.get_online_features([f"{view}:x"], [{"user_id": 1}, {"user_id": 2}]).to_dict()["x"]


def test_two_projects_whose_names_met_under_the_old_encoding(runs: tuple[Run, Run], tmp_path: Path) -> None:
    a_run, b_run = runs
    shared = tmp_path / "shared_online.db"
    a = repo_of(a_run, tmp_path, "_s", [10, 20], shared)      # project P,  view _s
    b = repo_of(b_run, tmp_path, "s", [100, 200], shared)     # project P_, view s
    a.materialize_incremental()
    b.materialize_incremental()
    assert serve(a, "_s") == [10, 20]
    assert serve(b, "s") == [100, 200]

    (report,) = b.rebuild_online()
    assert report.ok and report.entities == 2
    assert serve(a, "_s") == [10, 20], "rebuilding P_ overwrote P's table"
    assert serve(b, "s") == [100, 200]
    (report,) = a.rebuild_online()
    assert report.ok and report.entities == 2
    assert serve(b, "s") == [100, 200], "rebuilding P overwrote P_'s table"
    assert a.online_store.count(a.snapshot().online_table("_s")) == 2
    assert b.online_store.count(b.snapshot().online_table("s")) == 2
