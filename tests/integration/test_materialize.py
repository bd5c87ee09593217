"""Materialization (docs/online.md#materialization): the latest row per entity, only if newer; idempotent,
order-independent, resumable; watermarks in the registry's state, not in the definitions."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from skewless import Entity, FeatureStore, FeatureView, Field, FileSource
from skewless.online import table_name
from skewless.errors import MaterializationError, UnknownObjectError
from skewless.testing.online import store_contents
from skewless.testing.processes import reaped
from skewless.types import Float64, Int64, String

from .conftest import pair, pair_view, spend_view, user

UTC = timezone.utc
NOW = datetime(2024, 3, 1, tzinfo=UTC)
T0, T1, T2 = (datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 1, 18, tzinfo=UTC),
              datetime(2024, 2, 20, tzinfo=UTC))
STATE = "materialization"


def make_store(repo: Path, engine: str, now: list[datetime], online: str = "data/online.db") -> FeatureStore:
    return FeatureStore(repo, config={
        "project": "fraud", "registry": "data/registry.db", "offline_store": {"type": engine},
        "online_store": {"type": "sqlite", "path": online}}, clock=lambda: now[0])


@pytest.fixture(params=["duckdb", "reference"])
def engine(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def now() -> list[datetime]:
    """The store's clock, moved by assignment (``now[0] = ...``)."""
    return [NOW]


@pytest.fixture
def fs(repo: Path, engine: str, now: list[datetime]) -> FeatureStore:
    store = make_store(repo, engine, now)
    store.apply([user, pair, spend_view(), pair_view()])
    return store


def online(store: FeatureStore, feature: str, rows: list[dict[str, Any]]) -> list[Any]:
    return store.get_online_features([feature], rows).to_dict()[feature.split(":")[1]]


def offline(store: FeatureStore, feature: str, users: list[str], at: datetime) -> list[Any]:
    df = pd.DataFrame({"user_id": users, "event_timestamp": [at] * len(users)})
    return store.get_historical_features(df, [feature]).to_arrow().column(feature.split(":")[1]).to_pylist()


def write_spend(repo: Path, rows: list[tuple[str, datetime, datetime | None, float, int]]) -> None:
    """Rewrite the spend source with ``rows`` (user, ts, created, amount, n_txn)."""
    ts = pa.timestamp("us", "UTC")
    pq.write_table(pa.table({
        "user_id": [r[0] for r in rows], "ts": pa.array([r[1] for r in rows], ts),
        "created": pa.array([r[2] for r in rows], ts), "amount": [r[3] for r in rows],
        "n_txn": pa.array([r[4] for r in rows], pa.int64())}), repo / "data" / "spend.parquet")


# --- semantics ------------------------------------------------------------------------------------

def test_latest_row_per_entity(fs: FeatureStore) -> None:
    fs.materialize(None, NOW)
    users = [{"user_id": u} for u in ("u1", "u2", "u3", "u9")]
    # u1's latest is Feb 5 (140.0); the two Jan 20 rows tie on event time and the later-created
    # one (135.0) would win, but Feb 5 is later still.
    assert online(fs, "user_spend:amount", users) == [140.0, 89.0, 2100.0, None]
    fs.materialize(None, datetime(2024, 1, 25, tzinfo=UTC))  # older window: nothing is replaced
    assert online(fs, "user_spend:amount", users) == [140.0, 89.0, 2100.0, None]


def test_created_timestamp_breaks_ties(repo: Path, engine: str, now: list[datetime]) -> None:
    store = make_store(repo, engine, now)
    store.apply([user, spend_view()])
    now[0] = datetime(2024, 1, 25, tzinfo=UTC)
    store.materialize(None, now[0])
    assert online(store, "user_spend:amount", [{"user_id": "u1"}]) == [135.0]  # not 999.0


def test_idempotent(fs: FeatureStore, repo: Path, engine: str, now: list[datetime]) -> None:
    fs.materialize(None, NOW)
    once = store_contents(fs)
    assert once["user_spend"] and once["pair_stats"]
    fs.materialize(None, NOW)
    fs.materialize_incremental(NOW)
    assert store_contents(fs) == once
    fresh = make_store(repo, engine, now, online="data/online-fresh.db")
    fresh.materialize(None, NOW)
    assert store_contents(fresh) == once


def test_order_independent(fs: FeatureStore, repo: Path, engine: str, now: list[datetime]) -> None:
    fs.materialize(T1, T2)
    fs.materialize(T0, T1)
    whole = make_store(repo, engine, now, online="data/online-whole.db")
    whole.materialize(T0, T2)
    assert store_contents(fs) == store_contents(whole)
    assert online(fs, "user_spend:amount", [{"user_id": "u1"}, {"user_id": "u2"}]) == [140.0, 89.0]


def test_only_if_newer(fs: FeatureStore, repo: Path) -> None:
    fs.materialize(None, NOW)
    before = store_contents(fs)
    # The source is restated with older rows only (a bad backfill): nothing online moves back.
    write_spend(repo, [("u1", datetime(2024, 1, 1, tzinfo=UTC), NOW, -5.0, 0),
                       ("u3", datetime(2024, 2, 8, tzinfo=UTC), None, -7.0, 0)])
    fs.materialize(None, NOW)
    assert store_contents(fs) == before
    # Same event time, later created time: newer, so it replaces the stored row.
    write_spend(repo, [("u3", datetime(2024, 2, 8, tzinfo=UTC), NOW, 7.0, 8)])
    fs.materialize(None, NOW)
    assert online(fs, "user_spend:amount", [{"user_id": "u3"}]) == [7.0]


def test_watermarks_live_in_registry_state(fs: FeatureStore, now: list[datetime]) -> None:
    version = fs.snapshot().version
    history = len(fs.history())
    assert fs.registry.get_state("fraud", STATE, "user_spend") is None
    fs.materialize_incremental(T1)
    state = fs.registry.get_state("fraud", STATE, "user_spend")
    assert state is not None and datetime.fromisoformat(state["end"]) == T1
    assert datetime.fromisoformat(state["created_high"]) == datetime(2024, 1, 14, tzinfo=UTC)
    fs.materialize_incremental(T2)
    state = fs.registry.get_state("fraud", STATE, "user_spend")
    assert state is not None and datetime.fromisoformat(state["end"]) == T2
    assert set(fs.registry.list_state("fraud", STATE)) == {"user_spend", "pair_stats"}
    # An older explicit window never moves a watermark back.
    fs.materialize(T0, T1)
    state = fs.registry.get_state("fraud", STATE, "user_spend")
    assert state is not None and datetime.fromisoformat(state["end"]) == T2
    # Watermarks are operational state: the definitions' version and history do not move.
    assert fs.snapshot().version == version
    assert len(fs.history()) == history


def test_incremental_continues_from_watermark(fs: FeatureStore, repo: Path) -> None:
    fs.materialize_incremental(T1)
    assert online(fs, "user_spend:amount", [{"user_id": "u1"}, {"user_id": "u3"}]) == [120.0, None]
    reports = fs.materialize_incremental(T2)
    spend = next(r for r in reports if r.view == "user_spend")
    assert spend.start == T1 + timedelta(microseconds=1) and spend.end == T2
    # u1 (its Feb 5 row) and u3 are new; u2's Jan 14 row was created exactly at the created
    # high-water mark, so it is read again (harmless: the store keeps only newer rows).
    assert spend.rows == 3
    assert online(fs, "user_spend:amount", [{"user_id": "u1"}, {"user_id": "u3"}]) == [140.0, 2100.0]


def test_late_data_reaches_online_on_next_incremental_run(fs: FeatureStore, repo: Path,
                                                          now: list[datetime]) -> None:
    """Feast #4133: incremental runs filter on event time only, so a row written after a run
    with an event time before that run's end is never materialized. Here it is, by its created
    time -- when it is the entity's latest row."""
    now[0] = T2
    fs.materialize_incremental(T2)
    before = online(fs, "user_spend:amount", [{"user_id": u} for u in ("u1", "u2", "u4")])
    assert before == [140.0, 89.0, None]
    t = pd.Timestamp
    base = [("u1", t("2024-01-10", tz="UTC"), t("2024-01-10", tz="UTC"), 120.0, 1),
            ("u1", t("2024-01-20", tz="UTC"), t("2024-01-20", tz="UTC"), 135.0, 2),
            ("u1", t("2024-02-05", tz="UTC"), t("2024-02-05", tz="UTC"), 140.0, 3),
            ("u2", t("2024-01-14", tz="UTC"), t("2024-01-14", tz="UTC"), 89.0, 1),
            ("u3", t("2024-02-08", tz="UTC"), t("2024-02-08", tz="UTC"), 2100.0, 7)]
    late = T2 + timedelta(hours=6)  # written after the run, about events before its end
    write_spend(repo, [*base,
                       ("u1", datetime(2024, 2, 10, tzinfo=UTC), late, 150.0, 4),  # newest for u1
                       ("u2", datetime(2024, 1, 1, tzinfo=UTC), late, 1.0, 0),     # older than u2's
                       ("u4", datetime(2024, 2, 1, tzinfo=UTC), late, 44.0, 1)])   # a new entity
    now[0] = T2 + timedelta(days=1)
    fs.materialize_incremental(now[0])
    users = ["u1", "u2", "u3", "u4"]
    got = online(fs, "user_spend:amount", [{"user_id": u} for u in users])
    assert got == [150.0, 89.0, 2100.0, 44.0]
    assert got == offline(fs, "user_spend:amount", users, now[0])


def test_late_data_when_no_created_time_was_seen_yet(repo: Path, engine: str, now: list[datetime]) -> None:
    # Regression: with every materialized row lacking a created time, the watermark had no
    # created high-water mark and incremental runs ignored late rows altogether.
    write_spend(repo, [("u1", datetime(2024, 1, 10, tzinfo=UTC), None, 1.0, 1)])
    store = make_store(repo, engine, now)
    store.apply([user, spend_view()])
    store.materialize_incremental(T2)
    write_spend(repo, [("u1", datetime(2024, 1, 10, tzinfo=UTC), None, 1.0, 1),
                       ("u1", datetime(2024, 1, 11, tzinfo=UTC), T2 + timedelta(hours=1), 2.0, 2)])
    store.materialize_incremental(NOW)
    assert online(store, "user_spend:amount", [{"user_id": "u1"}]) == [2.0]


def test_late_data_with_coarse_created_times(repo: Path, engine: str, now: list[datetime]) -> None:
    """Created times in whole seconds: a row written just after a run can carry the same created
    second as the newest row that run saw; it must not be skipped."""
    second = datetime(2024, 2, 20, 12, 0, 0, tzinfo=UTC)
    write_spend(repo, [("u1", datetime(2024, 2, 1, tzinfo=UTC), second, 1.0, 1)])
    store = make_store(repo, engine, now)
    store.apply([user, spend_view()])
    run1 = second + timedelta(milliseconds=500)
    store.materialize_incremental(run1)
    write_spend(repo, [("u1", datetime(2024, 2, 1, tzinfo=UTC), second, 1.0, 1),
                       ("u2", datetime(2024, 2, 2, tzinfo=UTC), second, 2.0, 2)])  # landed at 12:00:00.7
    store.materialize_incremental(NOW)
    assert online(store, "user_spend:amount", [{"user_id": "u1"}, {"user_id": "u2"}]) == [1.0, 2.0]


# --- bad arguments ----------------------------------------------------------------------------------

def test_end_in_the_future_is_refused(fs: FeatureStore) -> None:
    with pytest.raises(MaterializationError, match="in the future"):
        fs.materialize(None, NOW + timedelta(microseconds=1))
    with pytest.raises(MaterializationError, match="in the future"):
        fs.materialize_incremental(NOW + timedelta(days=365))
    assert fs.registry.list_state("fraud", STATE) == {}
    assert store_contents(fs) == {"user_spend": {}, "pair_stats": {}}


def test_end_before_start_is_refused(fs: FeatureStore) -> None:
    with pytest.raises(MaterializationError, match="after end"):
        fs.materialize(T2, T1)
    assert fs.registry.list_state("fraud", STATE) == {}


def test_unknown_view_suggests_the_closest(fs: FeatureStore) -> None:
    with pytest.raises(UnknownObjectError, match="'user_spnd' is unknown; did you mean 'user_spend'"):
        fs.materialize(None, NOW, views=["user_spnd"])
    with pytest.raises(UnknownObjectError, match="user_spnd"):
        fs.materialize_incremental(NOW, views=["user_spnd"])


def test_offline_only_views_are_skipped(fs: FeatureStore) -> None:
    batch = spend_view(name="spend_history", online=False)
    fs.apply([batch])
    reports = fs.materialize(None, NOW)
    assert sorted(r.view for r in reports) == ["pair_stats", "user_spend"]
    assert fs.registry.get_state("fraud", STATE, "spend_history") is None
    assert fs.online_store.count(table_name("fraud", "spend_history")) == 0
    with pytest.raises(MaterializationError, match="'spend_history' has online=False"):
        fs.materialize(None, NOW, views=["spend_history"])


def test_views_argument_limits_the_run(fs: FeatureStore) -> None:
    fs.materialize_incremental(NOW, views=["pair_stats"])
    assert fs.registry.get_state("fraud", STATE, "user_spend") is None
    assert fs.registry.get_state("fraud", STATE, "pair_stats") is not None
    assert store_contents(fs, ["user_spend"]) == {"user_spend": {}}


# --- resumability -----------------------------------------------------------------------------------

RUNNER = textwrap.dedent("""
    import sys
    from datetime import datetime
    from skewless import FeatureStore

    now = datetime.fromisoformat(sys.argv[2])
    store = FeatureStore(sys.argv[1], clock=lambda: now)

    def on_rows(view, n):
        print(view, n, flush=True)
        sys.stdin.readline()  # the test says go on (or kills us here)

    store.materialize_incremental(now, on_rows=on_rows, batch_rows=int(sys.argv[3]))
    print("done", flush=True)
""")
N_USERS = 3000
BATCH = 400


def big_repo(repo: Path, engine: str) -> None:
    """Two views over a few thousand entities, and a feature_store.yaml for the subprocess."""
    (repo / "data").mkdir(parents=True, exist_ok=True)
    (repo / "feature_store.yaml").write_text(
        f"project: big\nregistry: data/registry.db\noffline_store: {{type: {engine}}}\n"
        "online_store: {type: sqlite, path: data/online.db}\n")
    ts = pa.timestamp("us", "UTC")
    base = datetime(2024, 1, 1, tzinfo=UTC)
    n = N_USERS * 2
    pq.write_table(pa.table({
        "user_id": pa.array([i % N_USERS for i in range(n)], pa.int64()),
        "ts": pa.array([base + timedelta(minutes=i) for i in range(n)], ts),
        "amount": [float(i) for i in range(n)]}), repo / "data" / "spend.parquet")
    pq.write_table(pa.table({
        "merchant_id": [f"m{i}" for i in range(N_USERS)],
        "ts": pa.array([base + timedelta(seconds=i) for i in range(N_USERS)], ts),
        "risk": [i / 7 for i in range(N_USERS)]}), repo / "data" / "merchants.parquet")


def big_definitions() -> list[Any]:
    u = Entity("user", join_keys=["user_id"])
    m = Entity("merchant", join_keys=["merchant_id"])
    return [u, m,
            FeatureView("a_spend", entities=[u], schema=[Field("user_id", Int64), Field("amount", Float64)],
                        source=FileSource("data/spend.parquet", "ts")),
            FeatureView("b_risk", entities=[m], schema=[Field("merchant_id", String), Field("risk", Float64)],
                        source=FileSource("data/merchants.parquet", "ts"))]


def start_run(repo: Path, stdin: Any) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", RUNNER, str(repo), NOW.isoformat(), str(BATCH)],
                            stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_killed_run_is_resumed(tmp_path: Path, engine: str) -> None:
    """SIGKILL a materialization after the first batch of its second view is written: the first
    view's watermark is set, the second's is not; a rerun completes, and the online store then
    equals one clean run into a fresh store."""
    repo = tmp_path / "repo"
    big_repo(repo, engine)
    store = FeatureStore(repo, clock=lambda: NOW)
    store.apply(big_definitions())

    views_seen: list[str] = []
    with reaped(start_run(repo, subprocess.PIPE)) as proc:
        assert proc.stdin is not None and proc.stdout is not None
        while True:
            line = proc.stdout.readline()
            assert line, f"the run ended early: {proc.stderr.read() if proc.stderr else ''}"
            view, rows = line.split()
            if view not in views_seen:
                views_seen.append(view)
            if len(views_seen) == 2:
                break
            proc.stdin.write("\n")
            proc.stdin.flush()
        killed_in = views_seen[1]
        assert int(rows) == BATCH
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL

    done_view = views_seen[0]
    assert store.registry.get_state("big", STATE, done_view) is not None
    assert store.registry.get_state("big", STATE, killed_in) is None  # only set once complete
    assert store.online_store.count(table_name("big", done_view)) == N_USERS
    assert store.online_store.count(table_name("big", killed_in)) == BATCH  # half-done, and says so

    rerun = start_run(repo, subprocess.DEVNULL)
    out, err = rerun.communicate(timeout=120)
    assert rerun.returncode == 0, err
    assert out.strip().endswith("done")
    assert store.registry.get_state("big", STATE, killed_in) is not None

    clean_repo = tmp_path / "clean"
    big_repo(clean_repo, engine)
    clean = FeatureStore(clean_repo, clock=lambda: NOW)
    clean.apply(big_definitions())
    clean.materialize_incremental(NOW)
    resumed, expected = store_contents(store), store_contents(clean)
    assert {v: len(c) for v, c in resumed.items()} == {"a_spend": N_USERS, "b_risk": N_USERS}
    assert resumed == expected
    # Each user's latest row: the second of its two rows.
    assert store.get_online_features(["a_spend:amount"], [{"user_id": 5}]).to_dict()["amount"] == [
        float(N_USERS + 5)]
