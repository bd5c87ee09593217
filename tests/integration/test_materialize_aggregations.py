"""Materializing an aggregated view (docs/aggregations.md, "Online"): explicit windows in any
order, repeated runs and incremental runs leave the same tiles; coverage ends 1us before the
end (the event at the end comes with the next run); late rows (a created time after the last
run) are brought in by materialize-incremental."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from skewless import Aggregation, Entity, FeatureStore, FeatureView, Field, FileSource
from skewless.types import Float64, Int64

T = datetime(2024, 6, 3, 12, tzinfo=timezone.utc)
US = timedelta(microseconds=1)
REFS = ["agg:amount_sum_1h", "agg:amount_count_1d", "agg:amount_max_1d"]


def _write(tmp: Path, rows: list[tuple[int, datetime, datetime, float]]) -> None:
    (tmp / "data" / "tx").mkdir(parents=True, exist_ok=True)
    ts = pa.timestamp("us", "UTC")
    pq.write_table(pa.table({"user_id": pa.array([r[0] for r in rows], pa.int64()),
                             "ts": pa.array([r[1] for r in rows], ts),
                             "created": pa.array([r[2] for r in rows], ts),
                             "amount": [r[3] for r in rows]}),
                   tmp / "data" / "tx" / f"part-{len(list((tmp / 'data' / 'tx').iterdir()))}.parquet")


def _repo(tmp: Path, rows: list[tuple[int, datetime, datetime, float]], now: list[datetime]) -> FeatureStore:
    _write(tmp, rows)
    fs = FeatureStore(tmp, config={"project": "m", "online_store": {"type": "memory"},
                                   "registry_cache_ttl_seconds": 0}, clock=lambda: now[0])
    user = Entity("user", join_keys=["user_id"])
    fs.apply([user, FeatureView(
        "agg", entities=[user], schema=[Field("user_id", Int64), Field("amount", Float64)],
        source=FileSource("data/tx", "ts", created_timestamp_column="created"),
        aggregations=[Aggregation("amount", "sum", timedelta(hours=1)),
                      Aggregation("amount", "count", timedelta(days=1)),
                      Aggregation("amount", "max", timedelta(days=1))])])
    return fs


ROWS = [(1, T - timedelta(hours=5), T - timedelta(hours=5), 5.0),
        (1, T - timedelta(minutes=30), T - timedelta(minutes=30), 1.0),
        (1, T - timedelta(minutes=7), T - timedelta(minutes=7), 2.0),
        (2, T - timedelta(hours=20), T - timedelta(hours=20), 9.0),
        (1, T, T, 100.0)]   # exactly at T: not in the value at T


def _values(fs: FeatureStore) -> dict:
    return fs.get_online_features(REFS, [{"user_id": 1}, {"user_id": 2}]).to_dict()


def test_runs_in_any_order_give_the_same_tiles(tmp_path: Path) -> None:
    want = {"user_id": [1, 2], "amount_sum_1h": [3.0, None], "amount_count_1d": [3, 1],
            "amount_max_1d": [5.0, 9.0]}
    runs = {
        "incremental": lambda fs: fs.materialize_incremental(T),
        "full twice": lambda fs: (fs.materialize(None, T), fs.materialize(None, T)),
        "two windows, later first": lambda fs: (fs.materialize(T - timedelta(minutes=20), T),
                                               fs.materialize(None, T - timedelta(minutes=20))),
        "an empty window too": lambda fs: (fs.materialize(T, T), fs.materialize_incremental(T)),
    }
    for i, (name, run) in enumerate(runs.items()):
        fs = _repo(tmp_path / str(i), ROWS, [T])
        run(fs)
        assert _values(fs) == want, name
        (status,) = fs.online_status()
        assert status.watermark == T - US, name


def test_the_event_at_the_end_and_late_rows_come_with_the_next_run(tmp_path: Path) -> None:
    now = [T]
    fs = _repo(tmp_path, ROWS, now)
    fs.materialize_incremental(T)
    now[0] = T + timedelta(minutes=1)
    assert _values(fs)["amount_sum_1h"] == [3.0, None]     # 100.0 at T is not online yet
    # a late row: event time before T, written after the first run
    _write(tmp_path, [(2, T - timedelta(minutes=3), T + timedelta(minutes=1), 4.0)])
    fs.materialize_incremental(now[0])
    assert _values(fs) == {"user_id": [1, 2], "amount_sum_1h": [103.0, 4.0],
                                  "amount_count_1d": [4, 2], "amount_max_1d": [100.0, 9.0]}


def test_a_run_never_takes_back_what_a_push_brought(tmp_path: Path) -> None:
    """A push puts an event in the tile holding a run's end, after the end: the run (which
    rebuilds that tile from the offline events before its end) keeps it, since the pushed row
    is offline too."""
    from skewless import PushSource

    now = [T + timedelta(minutes=3)]
    _write(tmp_path, ROWS[:3])
    fs = FeatureStore(tmp_path, config={"project": "m", "online_store": {"type": "memory"},
                                        "registry_cache_ttl_seconds": 0}, clock=lambda: now[0])
    user = Entity("user", join_keys=["user_id"])
    fs.apply([user, FeatureView(
        "agg", entities=[user], schema=[Field("user_id", Int64), Field("amount", Float64)],
        source=PushSource("tx", batch_source=FileSource("data/tx", "ts", created_timestamp_column="created")),
        aggregations=[Aggregation("amount", "sum", timedelta(hours=1))])])
    fs.push("tx", {"user_id": [1], "ts": [T + timedelta(minutes=2)], "amount": [50.0]})
    fs.materialize_incremental(T + timedelta(minutes=1))   # the 5-minute tile [T, T+5m) is split
    got = fs.get_online_features(["agg:amount_sum_1h"], [{"user_id": 1}]).to_dict()
    assert got["amount_sum_1h"] == [53.0]
    fs.materialize_incremental(now[0])
    assert fs.get_online_features(["agg:amount_sum_1h"], [{"user_id": 1}]).to_dict()["amount_sum_1h"] == [53.0]


# --- availability delay (docs/aggregations.md, "Availability delay") ---------------------------
D = datetime(2024, 6, 4, tzinfo=timezone.utc)   # midnight of the day served
H = timedelta(hours=1)


def _delayed_repo(tmp: Path, now: list[datetime], engine: str, push: bool = False) -> FeatureStore:
    """A daily batch landing 6 hours after its events (availability_delay=6h): yesterday 20:00
    lands today 02:00, yesterday 22:00 lands 04:00; today's events land this morning or later."""
    from skewless import PushSource

    (tmp / "data" / "tx").mkdir(parents=True, exist_ok=True)
    ts = pa.timestamp("us", "UTC")
    rows = [(1, D - 4 * H, 1.0), (1, D - 2 * H, 2.0), (1, D + H, 4.0), (1, D + 2 * H, 8.0)]
    pq.write_table(pa.table({"user_id": pa.array([r[0] for r in rows], pa.int64()),
                             "ts": pa.array([r[1] for r in rows], ts), "amount": [r[2] for r in rows]}),
                   tmp / "data" / "tx" / "day.parquet")
    fs = FeatureStore(tmp, config={"project": "d", "online_store": {"type": "memory"},
                                   "offline_store": {"type": engine}, "registry_cache_ttl_seconds": 0},
                      clock=lambda: now[0])
    user = Entity("user", join_keys=["user_id"])
    src = FileSource("data/tx", "ts", availability_delay=timedelta(hours=6))
    fs.apply([user, FeatureView(
        "agg", entities=[user], schema=[Field("user_id", Int64), Field("amount", Float64)],
        source=PushSource("tx_push", batch_source=src) if push else src,
        aggregations=[Aggregation("amount", "sum", timedelta(days=1)),
                      Aggregation("amount", "count", timedelta(days=1))])])
    return fs


DAILY = ["agg:amount_sum_1d", "agg:amount_count_1d"]


def _both(fs: FeatureStore, t: datetime) -> tuple[tuple[float | None, int], tuple[float | None, int]]:
    on = fs.get_online_features(DAILY, [{"user_id": 1}]).to_dict()
    import pandas as pd
    off = fs.get_historical_features(pd.DataFrame({"user_id": [1], "event_timestamp": [t]}), DAILY).to_df()
    return ((on["amount_sum_1d"][0], on["amount_count_1d"][0]),
            (off["amount_sum_1d"][0], int(off["amount_count_1d"][0])))


def test_a_daily_batch_with_a_delay_is_as_fresh_in_training_as_in_serving(tmp_path: Path) -> None:
    """At 03:00 the 1-day window holds four events, but only yesterday 20:00's had landed:
    without the delay training would count all four (fresher than serving ever is). Online
    after materialize-incremental at t equals the offline join at t, on both engines; the
    22:00 event lands at 04:00 exactly (inclusive), not 1us before."""
    for engine in ("reference", "duckdb"):
        now = [D + 3 * H]
        fs = _delayed_repo(tmp_path / engine, now, engine)
        for t, want in [(D + 3 * H, (1.0, 1)), (D + 4 * H - US, (1.0, 1)), (D + 4 * H, (3.0, 2)),
                        (D + 7 * H, (7.0, 3)), (D + 8 * H, (15.0, 4))]:
            now[0] = t
            fs.materialize_incremental(t)
            assert _both(fs, t) == (want, want), (engine, t)
        # a read later than the last materialization sees what was usable at its end
        now[0] = D + 20 * H
        assert _both(fs, D + 8 * H)[0] == (15.0, 4)


def test_a_pushed_row_not_usable_yet_comes_online_with_the_next_materialization(tmp_path: Path) -> None:
    """A push at 03:00 of an event at 02:30 (usable 08:30) is pending: offline at once, merged
    into no tile; the materialization up to 08:30 rebuilds the tile holding it. A row usable at
    the push time is merged at once."""
    import pandas as pd

    now = [D + 3 * H]
    fs = _delayed_repo(tmp_path, now, "duckdb", push=True)
    fs.materialize_incremental(now[0])
    assert _both(fs, now[0]) == ((1.0, 1), (1.0, 1))
    rows = pd.DataFrame({"user_id": [1, 1], "ts": [D + 2 * H + 30 * timedelta(minutes=1), D - 5 * H],
                         "amount": [16.0, 32.0]})
    report = fs.push("tx_push", rows)
    assert report.pending_rows == 1
    assert _both(fs, now[0]) == ((33.0, 2), (33.0, 2))   # yesterday 19:00 landed at 01:00
    for t, want in [(D + 8 * H + 30 * timedelta(minutes=1) - US, (47.0, 5)),
                    (D + 8 * H + 30 * timedelta(minutes=1), (63.0, 6))]:
        now[0] = t
        fs.materialize_incremental(t)
        assert _both(fs, t) == (want, want), t


def test_a_run_ending_before_a_push_brings_no_event_before_it_lands(tmp_path: Path) -> None:
    """A push at 09:30 merged an event of 03:20 (landed 09:20); a run up to 09:10 then rebuilds
    the tile 03:00-04:00 with what pushes had brought beyond its bound, but not the offline
    event of 03:40, which lands only at 09:40."""
    import pandas as pd

    now = [D + 9 * H + 30 * timedelta(minutes=1)]
    fs = _delayed_repo(tmp_path, now, "duckdb", push=True)
    fs.push("tx_push", pd.DataFrame({"user_id": [1], "ts": [D + 3 * H + 40 * timedelta(minutes=1)],
                                     "amount": [64.0]}), to="offline")
    fs.push("tx_push", pd.DataFrame({"user_id": [1], "ts": [D + 3 * H + 20 * timedelta(minutes=1)],
                                     "amount": [16.0]}))
    fs.materialize(None, D + 9 * H + 10 * timedelta(minutes=1))
    # usable at 09:30: 1, 2, 4, 8 and the pushed 16; 64 lands at 09:40
    assert _both(fs, now[0]) == ((31.0, 5), (31.0, 5))
    now[0] = D + 9 * H + 40 * timedelta(minutes=1)
    fs.materialize_incremental(now[0])
    assert _both(fs, now[0]) == ((95.0, 6), (95.0, 6))


def test_rebuild_online_holds_only_the_events_usable_now(tmp_path: Path) -> None:
    """rebuild-online at 03:00 builds the tiles from the events landed by then (yesterday
    20:00's only), and verifies serving against the offline join with the same rule."""
    now = [D + 3 * H]
    fs = _delayed_repo(tmp_path, now, "duckdb")
    (report,) = fs.rebuild_online()
    assert report.mismatches == []
    assert _both(fs, now[0]) == ((1.0, 1), (1.0, 1))
    assert fs.online_status()[0].watermark == now[0]   # landing times: all usable by 03:00 is in
    now[0] = D + 4 * H   # yesterday 22:00 lands: the next incremental run brings it
    fs.materialize_incremental(now[0])
    assert _both(fs, now[0]) == ((3.0, 2), (3.0, 2))
