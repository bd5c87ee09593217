"""The online store's identity (docs/online.md, "The online store's identity"), on every online
store of ``ONLINE_STORES``, with real faults, as each store's testing declares them
(``BackendTesting.lose_data``): memory loses its data with its process (a new store object),
SQLite when its file is deleted, Redis when a test-owned ``redis-server`` is restarted empty.

- a store that lost its data is not ready and says why; ``online-status`` says so too;
- ``materialize-incremental`` backfills it (the coverage recorded for the old store is void);
- a store written again since (a new identity) is "replaced" for the views not written yet;
- upgrade: a store and registry from before identities are not ready until backfilled,
  and an empty store under such a registry is the lost-data case.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from skewless import Entity, FeatureStore, FeatureView, Field, FileSource
from skewless.server.app import readiness
from skewless.services.materialize import STATE
from skewless.types import Int64

from .test_online_invariant import ONLINE_STORES, Run, _available

UTC = timezone.utc
T = datetime(2025, 1, 10, tzinfo=UTC)
TS = pa.timestamp("us", "UTC")
N = 50
user = Entity("user", join_keys=["user_id"])


SHIPPED = {"memory", "sqlite", "redis", "dictstore"}   # the online stores this repository ships


def test_every_shipped_online_store_says_how_it_loses_its_data() -> None:
    """Another installed store without ``lose_data`` / ``forget_identity`` has these tests
    skipped, with the reason (docs/backends.md, "Testing a backend"); ours never do."""
    assert SHIPPED <= set(ONLINE_STORES), sorted(ONLINE_STORES)
    missing = [name for name in sorted(SHIPPED) if ONLINE_STORES[name][1].lose_data is None
               or ONLINE_STORES[name][1].forget_identity is None]
    assert not missing, f"no lose_data / forget_identity in the testing of {missing}"


@dataclass
class Case:
    fs: FeatureStore
    run: Run
    ctx: Any

    def lose_data(self) -> None:
        lose = self.run.testing.lose_data
        if lose is None:
            pytest.skip(f"online store '{self.run.store}': its testing declares no lose_data")
        lose(self.fs, self.ctx)

    def forget(self, fs: FeatureStore) -> None:
        forget = self.run.testing.forget_identity
        if forget is None:
            pytest.skip(f"online store '{self.run.store}': its testing declares no forget_identity")
        forget(fs)

    def reopen(self) -> FeatureStore:
        """A FeatureStore in "another process" (a store that is not shared, such as memory,
        lives in one process: the same one)."""
        if not self.run.has("shared"):
            return self.fs
        return FeatureStore(self.fs.repo_path, config=self.fs.config, clock=lambda: T)


@pytest.fixture(params=sorted(ONLINE_STORES))
def case(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Case]:
    name = request.param
    _available(name)
    run = Run(name, "duckdb")
    online = dict(run.online)
    with ExitStack() as stack:
        ctx = None
        if run.testing.private is not None:   # an instance of its own, that lose_data may kill
            settings, ctx = stack.enter_context(run.testing.private())
            online.update(settings)
        (tmp_path / "data").mkdir()
        users = list(range(N))
        for view, add in (("va", 1), ("vb", 2)):
            pq.write_table(pa.table({"user_id": pa.array(users, pa.int64()),
                                     "ts": pa.array([datetime(2025, 1, 1, tzinfo=UTC)] * N, TS),
                                     "x": pa.array([u * 10 + add for u in users], pa.int64())}),
                           tmp_path / "data" / f"{view}.parquet")
        fs = FeatureStore(tmp_path, config={"project": run.project, "registry": "data/registry.db",
                                            "online_store": online, "offline_store": {"type": "duckdb"},
                                            "registry_cache_ttl_seconds": 0}, clock=lambda: T)
        fs.apply([user] + [FeatureView(v, entities=[user], schema=[Field("x", Int64)], ttl=None,
                                       source=FileSource(f"data/{v}.parquet", "ts")) for v in ("va", "vb")])
        try:
            yield Case(fs, run, ctx)
        finally:
            fs.online_store.close()
            if run.testing.private is None:
                run.close()


def served(fs: FeatureStore, view: str) -> list[Any]:
    return fs.get_online_features([f"{view}:x"], [{"user_id": u} for u in range(N)]).to_dict()["x"]


def right(view: str) -> list[int]:
    return [u * 10 + (1 if view == "va" else 2) for u in range(N)]


def test_lost_data_is_not_ready_and_incremental_backfills(case: Case) -> None:
    fs = case.fs
    assert [r.rows for r in fs.materialize_incremental()] == [N, N]
    assert readiness(fs)[0]
    case.lose_data()
    fs = case.reopen()

    ok, body = readiness(fs)
    assert not ok and body["code"] == "online_store_empty", body
    assert body["not_materialized"] == ["va", "vb"] and "materialize-incremental" in body["hint"]
    status = fs.online_status()
    assert all(s.other_store is not None and not s.materialized for s in status)

    reports = fs.materialize_incremental(views=["vb"])   # one view first, as the CLI runs them
    assert [(r.rows, r.backfill) for r in reports] == [(N, True)]
    ok, body = readiness(fs)
    assert not ok and body["code"] == "online_store_replaced" and body["not_materialized"] == ["va"], body

    assert [(r.rows, r.backfill) for r in fs.materialize_incremental()] == [(N, True), (0, False)]
    assert readiness(fs)[0]
    assert served(fs, "va") == right("va") and served(fs, "vb") == right("vb")


def test_a_store_from_before_identities_is_not_ready_until_written_again(case: Case) -> None:
    """An older skewless wrote its tables under the old names, which are not read: its coverage
    (recorded without a store id) never counts, so an upgraded store is not ready and the next
    incremental run backfills every view (docs/online.md, "The online store's identity")."""
    fs = case.fs
    fs.materialize_incremental()
    case.forget(fs)
    for key, state in fs.registry.list_state(fs.project, STATE).items():
        fs.registry.set_state(fs.project, STATE, key, {k: v for k, v in state.items() if k != "store"})
    fs = case.reopen()

    identity = fs.online_store.identity()
    assert identity is not None and identity.id is None   # tables without an identity
    ok, body = readiness(fs)
    assert not ok and body["code"] == "online_store_outdated", body
    assert "rebuild-online" in body["hint"]
    assert [(r.rows, r.backfill) for r in fs.materialize_incremental()] == [(N, True), (N, True)]
    identity = fs.online_store.identity()
    assert identity is not None and identity.id and identity.adopted
    assert all(s["store"] == identity.id for s in fs.registry.list_state(fs.project, STATE).values())
    assert readiness(fs)[0]
    assert served(fs, "va") == right("va")

    case.lose_data()                                      # and from then on, like any store
    fs = case.reopen()
    assert readiness(fs)[1]["code"] == "online_store_empty"


def test_an_empty_store_under_a_registry_from_before_identities_has_lost_its_data(case: Case) -> None:
    fs = case.fs
    fs.materialize_incremental()
    for key, state in fs.registry.list_state(fs.project, STATE).items():
        fs.registry.set_state(fs.project, STATE, key, {k: v for k, v in state.items() if k != "store"})
    case.lose_data()
    fs = case.reopen()
    ok, body = readiness(fs)
    assert not ok and body["code"] == "online_store_empty", body
    assert [(r.rows, r.backfill) for r in fs.materialize_incremental()] == [(N, True), (N, True)]
    assert served(fs, "vb") == right("vb")
