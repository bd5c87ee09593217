"""rebuild-online (disaster recovery) and online-status, on the SQLite and memory stores.

The clock is a variable the tests move; threads synchronise on events, never on sleeps.
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from skewless import Entity, FeatureStore, FeatureView, Field, FileSource
from skewless.errors import SkewlessError
from skewless.online import table_name
from skewless.online.codec import Record, encode_key, micros
from skewless.services import rebuild as rebuild_svc
from skewless.services.online import NOT_FOUND, OUTSIDE_TTL, PRESENT
from skewless.types import Float64, Int64
from skewless.testing.clock import Clock

from .conftest import pair_view, spend_view, user

N_BIG = 3_000
SPEND = ["user_spend:amount", "user_spend:n_txn"]
PAIR = ["pair_stats:last_country"]
BIG = ["big:score", "big:level"]
entity_of_pair = Entity("user_merchant", join_keys=["user_id", "merchant_id"])


def utc(s: str) -> datetime:
    return datetime.fromisoformat(s).replace(tzinfo=timezone.utc)


def big_view() -> FeatureView:
    return FeatureView(name="big", entities=[user],
                       schema=[Field("score", Float64), Field("level", Int64, default=0)],
                       source=FileSource("data/big.parquet", "ts"), ttl=timedelta(days=13),
                       on_missing="default")


def write_big(repo: Path) -> None:
    ids = [f"b{i:05d}" for i in range(N_BIG)]
    ts = [pd.Timestamp("2024-01-01") + pd.Timedelta(minutes=i) for i in range(N_BIG)]
    frame = pd.DataFrame({"user_id": ids, "ts": ts, "score": [i / 7 for i in range(N_BIG)],
                          "level": list(range(N_BIG))})
    # An older row of every other entity: the rebuild must keep the latest one.
    older = frame.iloc[::2].assign(ts=lambda df: df.ts - pd.Timedelta(days=1), score=-1.0, level=-1)
    pd.concat([frame, older]).to_parquet(repo / "data/big.parquet")


@pytest.fixture(params=["sqlite", "memory"])
def online(request: pytest.FixtureRequest) -> str:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def clock() -> Clock:
    # big: rows from Jan 1 00:00 to Jan 3 02:00, so on Jan 15 12:00 the first 2,160 entities are
    # past the 13-day ttl (served defaults) and the rest are fresh.
    return Clock(utc("2024-01-15 12:00"))


@pytest.fixture
def fs(repo: Path, online: str, clock: Clock) -> FeatureStore:
    write_big(repo)
    store = FeatureStore(repo, config={"project": "fraud", "registry": "data/registry.db",
                                       "online_store": {"type": online}}, clock=clock)
    store.apply([user, entity_of_pair, spend_view(), pair_view(), big_view()])
    return store


def serve(fs: FeatureStore, refs: list[str], rows: list[dict[str, Any]]) -> dict[str, list[Any]]:
    return fs.get_online_features(refs, rows).to_dict(include_statuses=True,
                                                      include_event_timestamps=True)


USERS = [{"user_id": u} for u in ("u1", "u2", "u3", "u9")]
PAIRS = [{"user_id": "u1", "merchant_id": "m1"}, {"user_id": "u2", "merchant_id": "m1"},
         {"user_id": "u9", "merchant_id": "m1"}]
BIGS = [{"user_id": f"b{i:05d}"} for i in range(0, N_BIG, 97)]


def staging_tables(fs: FeatureStore) -> set[str]:
    """The rebuild staging tables left in the store (the SQLite file's or the memory store's)."""
    store: Any = fs.online_store
    if hasattr(store, "_tables"):
        names = set(store._tables)
    else:
        names = {r[0][2:] for r in store._con().execute("SELECT name FROM sqlite_master WHERE type='table'")}
    return {n for n in names if ".rebuild-" in n}


def snapshot_of_serving(fs: FeatureStore) -> tuple[dict[str, list[Any]], ...]:
    return serve(fs, SPEND, USERS), serve(fs, PAIR, PAIRS), serve(fs, BIG, BIGS)


# --- rebuild restores a damaged store --------------------------------------------------------
def test_rebuild_restores_deleted_and_wrong_records(fs: FeatureStore, clock: Clock) -> None:
    fs.materialize_incremental()
    before = snapshot_of_serving(fs)
    assert before[0]["amount__status"][:1] == [PRESENT]

    spend = table_name("fraud", "user_spend")
    # A wrong value, newer than the real one, so "only if newer" keeps it; and a lost table.
    fs.online_store.write_batch({spend: [(encode_key(["u1"]), Record.of(
        micros(utc("2024-01-15 11:00")), micros(utc("2024-01-15 11:00")), {"amount": 0.0, "n_txn": -5}))]})
    fs.online_store.drop([table_name("fraud", "pair_stats")])
    damaged = snapshot_of_serving(fs)
    assert damaged[0]["amount"][0] == 0.0
    assert set(damaged[1]["last_country__status"]) == {NOT_FOUND}

    reports = fs.rebuild_online()
    assert [r.view for r in reports] == ["big", "pair_stats", "user_spend"]
    for r in reports:
        assert r.ok, r
        assert r.stored == r.entities and r.sample_size == min(r.entities, 100)
        assert r.mismatches == [] and r.seconds >= 0
    by_view = {r.view: r for r in reports}
    assert by_view["user_spend"].entities == 2            # u1 and u2 have a row by Jan 15
    assert by_view["pair_stats"].entities == 2
    assert by_view["big"].entities == N_BIG
    assert snapshot_of_serving(fs) == before


def test_rebuild_from_nothing_serves_what_the_offline_join_says(fs: FeatureStore, clock: Clock) -> None:
    """No materialization ever ran; the rebuild alone fills the store, and the invariant holds
    for every entity, with TTL (pair_stats: 3 days) and defaults (big: on_missing=default)."""
    clock.now = utc("2024-01-08 10:30")   # u1/m1 (Jan 5 10:00) expired, u2/m1 (11:00) not yet
    reports = fs.rebuild_online()
    assert all(r.ok for r in reports)
    pairs = serve(fs, PAIR, PAIRS)
    assert pairs["last_country__status"] == [OUTSIDE_TTL, PRESENT, NOT_FOUND]
    assert pairs["last_country"] == [None, "US", None]
    rows = pd.DataFrame(PAIRS).assign(event_timestamp=clock.now)
    offline = fs.get_historical_features(rows, features=PAIR).to_df()
    assert pairs["last_country"] == [None if pd.isna(v) else v for v in offline.last_country]
    big = serve(fs, BIG, BIGS)
    offline_big = fs.get_historical_features(pd.DataFrame(BIGS).assign(event_timestamp=clock.now),
                                             features=BIG).to_df()
    assert big["level"] == offline_big.level.tolist()
    assert big["score"] == offline_big.score.tolist()


def test_verification_catches_a_store_that_did_not_swap(fs: FeatureStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """The verifier is not vacuous: if the swap silently did nothing, the damage is reported."""
    fs.materialize_incremental()
    spend = table_name("fraud", "user_spend")
    fs.online_store.write_batch({spend: [(encode_key(["u1"]), Record.of(
        micros(utc("2024-01-15 11:00")), 0, {"amount": 0.0, "n_txn": -5})),
        (encode_key(["ghost"]), Record.of(micros(utc("2024-01-15 11:00")), 0, {"amount": 1.0, "n_txn": 1}))]})
    monkeypatch.setattr(fs.online_store, "swap", lambda table, staging: fs.online_store.drop([staging]))
    (report,) = fs.rebuild_online(["user_spend"])
    assert not report.ok
    assert (report.entities, report.stored) == (2, 3)      # the ghost entity was counted
    wrong = {(m.entity["user_id"], m.feature): (m.online, m.offline) for m in report.mismatches}
    assert wrong == {("u1", "amount"): (0.0, 120.0), ("u1", "n_txn"): (-5, 1),
                     ("ghost", "amount"): (1.0, None), ("ghost", "n_txn"): (1, None)}


# --- serving never sees a gap ----------------------------------------------------------------
def test_serving_keeps_answering_during_a_rebuild(fs: FeatureStore) -> None:
    fs.materialize_incremental()
    expected = serve(fs, BIG, BIGS)
    assert set(expected["score__status"]) == {PRESENT, OUTSIDE_TTL}

    stop = threading.Event()
    read_done = threading.Event()
    failures: list[Any] = []
    reads = [0]

    def reader() -> None:
        try:
            while not stop.is_set():
                got = serve(fs, BIG, BIGS)
                if NOT_FOUND in got["score__status"] or got != expected:
                    failures.append(got)
                reads[0] += 1
                read_done.set()
        except BaseException as e:  # noqa: BLE001 - reported by the main thread
            failures.append(e)
            read_done.set()

    def a_read_happens() -> None:
        """Block until the reader completes a read that started after this call."""
        for _ in range(2):
            read_done.clear()
            assert read_done.wait(30), "the reader thread stalled"

    store = fs.online_store
    real_swap = store.swap

    def swap(table: str, staging: str) -> None:
        a_read_happens()
        real_swap(table, staging)
        a_read_happens()

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    try:
        store.swap = swap  # type: ignore[method-assign]
        reports = rebuild_svc.rebuild_online(
            fs.context, fs.snapshot(), views=["big"], now=fs.clock(),
            on_rows=lambda view, n: a_read_happens(), batch_rows=250)
    finally:
        stop.set()
        thread.join(30)
        store.swap = real_swap  # type: ignore[method-assign]
    assert failures == []
    assert reports[0].ok and reports[0].entities == N_BIG
    assert reads[0] >= 2 * (N_BIG // 250) + 4   # reads interleaved with every batch and the swap
    assert serve(fs, BIG, BIGS) == expected


# --- a failed rebuild changes nothing --------------------------------------------------------
def test_a_rebuild_whose_source_is_gone_leaves_the_live_table(fs: FeatureStore, repo: Path) -> None:
    fs.materialize_incremental()
    before = snapshot_of_serving(fs)
    watermark = {s.view: s for s in fs.online_status()}["user_spend"].watermark
    (repo / "data/spend.parquet").unlink()
    with pytest.raises(SkewlessError) as info:
        fs.rebuild_online(["user_spend"])
    assert "rebuild of feature view 'user_spend' failed" in info.value.message
    assert "left untouched" in info.value.message
    assert snapshot_of_serving(fs) == before
    assert staging_tables(fs) == set() and fs.registry.list_leases("fraud") == []
    assert {s.view: s for s in fs.online_status()}["user_spend"].watermark == watermark


def test_a_rebuild_failing_midway_leaves_the_live_table(fs: FeatureStore, clock: Clock) -> None:
    fs.materialize_incremental()
    before = snapshot_of_serving(fs)
    clock.now = utc("2024-01-16")
    batches = [0]

    def boom(view: str, n: int) -> None:
        batches[0] += 1
        if batches[0] == 3:
            raise RuntimeError("the disk is full")

    with pytest.raises(RuntimeError):
        rebuild_svc.rebuild_online(fs.context, fs.snapshot(), views=["big"], now=clock.now,
                                   on_rows=boom, batch_rows=500)
    clock.now = utc("2024-01-15 12:00")
    assert snapshot_of_serving(fs) == before
    assert staging_tables(fs) == set() and fs.registry.list_leases("fraud") == []
    status = {s.view: s for s in fs.online_status()}
    assert status["big"].watermark == utc("2024-01-15 12:00")   # not moved by the failed run


# --- watermarks and online-status -----------------------------------------------------------
def test_online_status_and_the_watermark_after_a_rebuild(fs: FeatureStore, clock: Clock) -> None:
    status = fs.online_status()
    assert [s.view for s in status] == ["big", "pair_stats", "user_spend"]
    assert all(not s.materialized and s.entities == 0 and s.watermark is None and s.age is None
               for s in status)

    fs.materialize_incremental()
    clock.now = utc("2024-01-15 18:00")
    status = {s.view: s for s in fs.online_status()}
    assert status["big"].materialized and status["big"].entities == N_BIG
    assert status["user_spend"].entities == 2 and status["pair_stats"].entities == 2
    assert status["big"].watermark == utc("2024-01-15 12:00")
    assert status["big"].age == timedelta(hours=6)
    assert status["big"].last_run is not None and status["big"].last_run_rows == N_BIG

    clock.now = utc("2024-02-10")
    fs.rebuild_online()
    status = {s.view: s for s in fs.online_status()}
    assert all(s.watermark == utc("2024-02-10") and s.age == timedelta(0) for s in status.values())
    assert status["user_spend"].entities == 3     # u1, u2, u3 by Feb 10

    # The next incremental run starts at the rebuild's watermark and finds nothing new.
    clock.now = utc("2024-02-11")
    reports = {r.view: r for r in fs.materialize_incremental()}
    assert reports["big"].rows == 0 and reports["pair_stats"].rows == 0
    assert reports["big"].start == utc("2024-02-10") + timedelta(microseconds=1)


def test_verification_of_a_fail_closed_view_with_stale_values(fs: FeatureStore) -> None:
    """on_missing="fail" makes serving raise for a stale entity; verification compares it as
    missing (null), like the offline join, instead of failing."""
    fs.apply(spend_view(on_missing="fail", ttl=timedelta(days=3)))   # u1 (Jan 10) is stale on Jan 15
    (report,) = fs.rebuild_online(["user_spend"])
    assert report.ok and report.sample_size == 2
    with pytest.raises(SkewlessError, match="on_missing='fail'"):
        fs.get_online_features(SPEND, [{"user_id": "u1"}])
    assert fs.get_online_features(SPEND, [{"user_id": "u2"}]).to_dict()["amount"] == [89.0]


def test_rebuild_of_a_delayed_view_holds_only_rows_landed_by_then(repo: Path, online: str,
                                                                  clock: Clock) -> None:
    """availability_delay=6h: the rebuild writes the rows usable at its time (event time + 6h
    <= now), records the watermark at now (every row landed by then is covered), verifies
    against the offline join; a row landing later comes with the next incremental run."""
    now = utc("2024-01-15 12:00")
    clock.now = now
    (repo / "data" / "daily").mkdir()
    pd.DataFrame({"user_id": ["d1", "d1", "d2", "d3"],
                  "ts": [now - timedelta(days=1), now - timedelta(hours=6), now - timedelta(hours=7),
                         now - timedelta(hours=5)],
                  "score": [1.0, 2.0, 3.0, 4.0]}).to_parquet(repo / "data" / "daily" / "a.parquet")
    fs = FeatureStore(repo, config={"project": "fraud", "registry": "data/registry.db",
                                    "online_store": {"type": online}}, clock=clock)
    daily = FeatureView("daily", entities=[user], schema=[Field("score", Float64)],
                        source=FileSource("data/daily", "ts", availability_delay=timedelta(hours=6)))
    fs.apply([user, daily])
    (report,) = fs.rebuild_online()
    assert report.ok and report.mismatches == [] and (report.entities, report.stored) == (2, 2)
    rows = [{"user_id": u} for u in ("d1", "d2", "d3")]
    got = serve(fs, ["daily:score"], rows)
    assert got["score"] == [2.0, 3.0, None] and got["score__status"] == [PRESENT, PRESENT, NOT_FOUND]
    (status,) = fs.online_status()
    assert status.watermark == now and status.entities == 2
    assert fs.readiness().ready

    clock.now = now + timedelta(hours=1)   # d3's row (event now - 5h) landed at now + 1h
    fs.materialize_incremental()
    assert serve(fs, ["daily:score"], rows)["score"] == [2.0, 3.0, 4.0]
    offline = fs.get_historical_features(pd.DataFrame(rows).assign(event_timestamp=clock.now),
                                         ["daily:score"]).to_df()
    assert list(offline.score) == [2.0, 3.0, 4.0]
