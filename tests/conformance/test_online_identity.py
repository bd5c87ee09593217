"""The online store's identity (docs/online.md, "The online store's identity"), on every online
store of ``ONLINE_STORES``, with real faults: memory loses its data with its process (a new
store object), SQLite when its file is deleted, Redis when a test-owned ``redis-server`` is
restarted empty.

- a store that lost its data is not ready and says why; ``online-status`` says so too;
- ``materialize-incremental`` backfills it (the coverage recorded for the old store is void);
- a store written again since (a new identity) is "replaced" for the views not written yet;
- upgrade: a store and registry from before identities are not ready until backfilled,
  and an empty store under such a registry is the lost-data case.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
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

from .test_online_invariant import ONLINE_STORES, _available

UTC = timezone.utc
T = datetime(2025, 1, 10, tzinfo=UTC)
TS = pa.timestamp("us", "UTC")
N = 50
user = Entity("user", join_keys=["user_id"])


def _lose_memory(fs: FeatureStore, ctx: Any) -> None:
    fs._online = None   # the process restarted: a new, empty in-memory store


def _lose_sqlite(fs: FeatureStore, ctx: Any) -> None:
    fs.online_store.close()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{fs.repo_path}/data/online.db{suffix}").unlink(missing_ok=True)


def _lose_redis(fs: FeatureStore, server: Any) -> None:
    server.kill()
    server.start()   # the same port, empty


def _forget_memory(fs: FeatureStore) -> None:
    fs.online_store._identity = None  # type: ignore[attr-defined]


def _forget_sqlite(fs: FeatureStore) -> None:
    fs.online_store._con(check=True).execute('DROP TABLE "skewless_meta"')  # type: ignore[attr-defined]


def _forget_redis(fs: FeatureStore) -> None:
    fs.online_store._r.delete("sk:@id")  # type: ignore[attr-defined]


@dataclass
class Backend:
    """How to make a store of this kind lose its data, and forget its identity (as a store
    written before identities existed)."""

    lose: Callable[[FeatureStore, Any], None]
    forget: Callable[[FeatureStore], None]


BACKENDS: dict[str, Backend] = {
    "memory": Backend(_lose_memory, _forget_memory),
    "sqlite": Backend(_lose_sqlite, _forget_sqlite),
    "redis": Backend(_lose_redis, _forget_redis),
}


def test_every_online_store_says_how_it_loses_its_data() -> None:
    assert set(BACKENDS) == set(ONLINE_STORES)


@dataclass
class Case:
    fs: FeatureStore
    backend: Backend
    ctx: Any

    def lose_data(self) -> None:
        self.backend.lose(self.fs, self.ctx)

    def reopen(self) -> FeatureStore:
        """A FeatureStore in "another process" (memory stores are per process: the same one)."""
        if self.fs.config.online_store.type == "memory":  # type: ignore[union-attr]
            return self.fs
        return FeatureStore(self.fs.repo_path, config=self.fs.config, clock=lambda: T)


@pytest.fixture(params=sorted(ONLINE_STORES))
def case(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Case]:
    name = request.param
    _available(name)
    online = dict(ONLINE_STORES[name][0])
    with ExitStack() as stack:
        ctx = None
        if name == "redis":
            from skewless.testing.redis_server import redis_server, require_redis_server_binary
            require_redis_server_binary()
            ctx = stack.enter_context(redis_server())
            online["connection_string"] = ctx.address
        (tmp_path / "data").mkdir()
        users = list(range(N))
        for view, add in (("va", 1), ("vb", 2)):
            pq.write_table(pa.table({"user_id": pa.array(users, pa.int64()),
                                     "ts": pa.array([datetime(2025, 1, 1, tzinfo=UTC)] * N, TS),
                                     "x": pa.array([u * 10 + add for u in users], pa.int64())}),
                           tmp_path / "data" / f"{view}.parquet")
        fs = FeatureStore(tmp_path, config={"project": "ident", "registry": "data/registry.db",
                                            "online_store": online, "offline_store": {"type": "duckdb"},
                                            "registry_cache_ttl_seconds": 0}, clock=lambda: T)
        fs.apply([user] + [FeatureView(v, entities=[user], schema=[Field("x", Int64)], ttl=None,
                                       source=FileSource(f"data/{v}.parquet", "ts")) for v in ("va", "vb")])
        yield Case(fs, BACKENDS[name], ctx)
        fs.online_store.close()


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
    case.backend.forget(fs)
    for key, state in fs.registry.list_state(fs.project, STATE).items():
        fs.registry.set_state(fs.project, STATE, key, {k: v for k, v in state.items() if k != "store"})
    fs = case.reopen() if fs.config.online_store.type != "memory" else fs  # type: ignore[union-attr]

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
