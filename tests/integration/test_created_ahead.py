"""Late data cannot be blocked by a bad timestamp (docs/online.md#created-times-ahead-of-the-clock).

A created time far ahead of the clock would move the created-time mark past every later late
row. Push and materialization refuse created times beyond the clock plus
``created_timestamp_tolerance_seconds`` (naming the rows, writing nothing), and the mark
never passes the run's own clock, so rows accepted within the tolerance do not hide later
late rows either. SQLite and the shared Redis (fixture ``fs`` of test_push)."""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from skewless import FeatureStore
from skewless.errors import InvalidRequestError, SourceError
from skewless.testing.clock import Clock
from skewless.testing.online import store_contents

from .conftest import user
from .test_push import (LIVE, NOW, UTC, batch, clock, count_view, files, fs, live_repo, live_view,  # noqa: F401
                        make_store, online)

STATE = "materialization"


def state(store: FeatureStore) -> dict[str, Any]:
    return store.registry.list_state(store.project, STATE)


def write_rows(repo: Path, name: str, rows: list[tuple[str, str, str, float, int]]) -> None:
    """A Parquet file of (user_id, ts, created, amount, n_txn) rows in the live source."""
    pd.DataFrame(rows, columns=["user_id", "ts", "created", "amount", "n_txn"]).assign(
        ts=lambda d: pd.to_datetime(d.ts, format="ISO8601"),
        created=lambda d: pd.to_datetime(d.created, format="ISO8601")
    ).to_parquet(repo / LIVE / name)


def test_push_with_created_time_100_years_ahead_is_refused(fs: FeatureStore) -> None:
    repo = fs.repo_path
    before_files, before_state = files(repo), state(fs)
    before_online = online(fs, ["u1", "u7"])
    ahead = pd.Timestamp("2124-03-01")
    with pytest.raises(InvalidRequestError) as e:
        fs.push("spend_push", batch(created=[pd.Timestamp("2024-02-29"), ahead]))
    msg = e.value.message
    assert "column 'created'" in msg and "row 1" in msg and "2124-03-01" in msg, msg
    assert "1 created time(s) after 2024-03-01T00:05:00+00:00" in msg, msg
    assert "created_timestamp_tolerance_seconds" in msg and "nothing was written" in msg
    assert files(repo) == before_files and state(fs) == before_state
    assert online(fs, ["u1", "u7"]) == before_online
    # within the tolerance (a producer's clock a minute fast): accepted
    fs.push("spend_push", batch(created=[NOW + timedelta(minutes=1)] * 2), to="offline")
    assert len(files(repo)) == len(before_files) + 1


def test_push_ahead_within_tolerance_does_not_hide_a_later_late_row(fs: FeatureStore, clock: Clock) -> None:
    """Accepted created times ahead of the clock never move the mark past the run's clock."""
    fs.push("spend_push", batch(created=[NOW + timedelta(minutes=4)] * 2), to="offline")
    fs.materialize_incremental(NOW)
    for st in state(fs).values():
        assert st["created_high"] is None or datetime.fromisoformat(st["created_high"]) <= NOW
    clock.now = NOW + timedelta(hours=1)
    # a late row: event time long covered, created after the run, before the previous batch's
    # created time
    fs.push("spend_push", batch(user_id=["u1", "u2"], ts=[pd.Timestamp("2024-02-25")] * 2,
                                amount=[1.0, 2.0], n_txn=[10, 20],
                                created=[NOW + timedelta(minutes=2)] * 2), to="offline")
    fs.materialize_incremental(NOW + timedelta(hours=1))
    assert online(fs, ["u1", "u2"])["amount"] == [1.0, 2.0]


@pytest.fixture
def sq_cold(live_repo: Path, clock: Clock) -> FeatureStore:
    store = make_store(live_repo, clock)
    store.apply([user, live_view(), count_view()])
    return store


def test_batch_data_created_an_hour_ahead_is_refused(sq_cold: FeatureStore) -> None:
    fs = sq_cold
    write_rows(fs.repo_path, "ahead.parquet", [
        ("u1", "2024-02-27", "2024-02-27", 5.0, 5),
        ("u8", "2024-02-28", "2024-03-01 01:00", 8.0, 8),
        ("u9", "2024-02-28", "2024-03-01 00:30", 9.0, 9)])
    with pytest.raises(SourceError) as e:
        fs.materialize_incremental(NOW)
    msg = e.value.message
    assert "ahead.parquet" in msg and "column 'created'" in msg and "2 row(s) created after" in msg, msg
    assert "first: row 1, 2024-03-01 01:00:00" in msg and "nothing was written" in msg, msg
    assert "created_timestamp_tolerance_seconds" in (e.value.hint or "")
    # the culprit is the clock, not a type: no "declared types" headline or hint
    assert msg.startswith("source data holds created times ahead of the clock"), msg
    assert "declared types" not in msg and "declared types" not in (e.value.hint or "")
    assert state(fs) == {}
    assert all(not rows for rows in store_contents(fs).values())
    with pytest.raises(SourceError):
        fs.materialize(None, NOW)


def test_batch_data_ahead_within_a_raised_tolerance(live_repo: Path, clock: Clock) -> None:
    """Accepted (the tolerance is raised to 2 h), and a late row created later than the run's
    clock but before the batch's created times is still materialized by the next run."""
    config = {"project": "fraud", "registry": "data/registry.db",
              "created_timestamp_tolerance_seconds": 7200,
              "online_store": {"type": "sqlite", "path": "data/online.db"}}
    fs = FeatureStore(live_repo, config=config, clock=clock)
    fs.apply([user, live_view(), count_view()])
    write_rows(live_repo, "ahead.parquet", [("u8", "2024-02-28", "2024-03-01 01:00", 8.0, 8)])
    fs.materialize_incremental(NOW)
    assert online(fs, ["u8"])["amount"] == [8.0]
    for st in state(fs).values():
        assert datetime.fromisoformat(st["created_high"]) <= NOW
    clock.now = NOW + timedelta(hours=2)
    write_rows(live_repo, "late.parquet", [("u1", "2024-02-26", "2024-03-01 00:20", 77.0, 77)])
    fs.materialize_incremental(NOW + timedelta(hours=2))
    assert online(fs, ["u1"])["amount"] == [77.0]


def test_tolerance_is_a_documented_config_key(live_repo: Path) -> None:
    fs = FeatureStore(live_repo, config={"project": "fraud"})
    assert fs.config.created_timestamp_tolerance_seconds == 300
    os.environ["SKEWLESS_CREATED_TIMESTAMP_TOLERANCE_SECONDS"] = "60"
    try:
        (live_repo / "feature_store.yaml").write_text("project: fraud\n")
        assert FeatureStore(live_repo).config.created_timestamp_tolerance_seconds == 60
    finally:
        del os.environ["SKEWLESS_CREATED_TIMESTAMP_TOLERANCE_SECONDS"]
    text = (Path(__file__).parents[2] / "docs/configuration.md").read_text()
    assert "created_timestamp_tolerance_seconds" in text


def test_rebuild_mark_never_passes_the_clock(live_repo: Path, clock: Clock) -> None:
    fs = make_store(live_repo, clock)
    fs.apply([user, live_view(), count_view()])
    write_rows(live_repo, "ahead.parquet", [("u8", "2024-02-28", "2024-03-01 00:04", 8.0, 8)])
    fs.rebuild_online()
    for st in state(fs).values():
        assert datetime.fromisoformat(st["created_high"]) <= NOW


@pytest.mark.parametrize("engine", ["duckdb", "reference"])
def test_rebuild_refuses_created_ahead_before_touching_the_table(live_repo: Path, clock: Clock,
                                                                 engine: str) -> None:
    """rebuild-online is a materialization too: a created time beyond the tolerance is refused
    before the staging table is built, so the live table and the watermark stay as they were
    (docs/online.md, "rebuild-online: disaster recovery": a failed view keeps its live table),
    instead of swapping in a new table and then failing in the catch-up with a message that
    says nothing was written."""
    fs = make_store(live_repo, clock, engine=engine)
    fs.apply([user, live_view(), count_view()])
    fs.materialize_incremental(NOW)
    before = state(fs)
    records = store_contents(fs)["live_spend"]
    write_rows(live_repo, "ahead.parquet", [("u1", "2024-02-28", "2126-01-01", 5.0, 5)])
    with pytest.raises(SourceError) as e:
        fs.rebuild_online(["live_spend"])
    assert "ahead.parquet" in e.value.message and "left untouched" in e.value.message
    assert state(fs) == before
    assert store_contents(fs)["live_spend"] == records
    assert online(fs, ["u1"])["amount"] == [140.0]
