"""The worked example of docs/point-in-time.md#a-worked-example, on the reference engine (the
oracle) and on DuckDB.

Feature rows: u1 at Jan 10 (120.0), Jan 20 (135.0), Feb 5 (140.0); u2 at Jan 14 (89.0);
u3 at Feb 8 (2100.0). Labels u1 @ Jan 15 10:00, u2 @ Jan 15 14:00, u1 @ Feb 1 09:00 and
u3 @ Feb 10 11:00 give 120.0, 89.0, 135.0, 2100.0 -- never 140.0, which lies in the future of
the Feb 1 label.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from skewless import Entity, FeatureStore, FeatureView, Field, FileSource
from skewless.types import Float64

UTC = timezone.utc
ENGINES = ["reference", "duckdb"]


def _at(month: int, day: int, hour: int = 0) -> datetime:
    return datetime(2024, month, day, hour, tzinfo=UTC)


def _store(repo: Path, engine: str, ttl: timedelta | None = None) -> FeatureStore:
    data = repo / "data"
    data.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({
        "user_id": ["u1", "u1", "u1", "u2", "u3"],
        "ts": pa.array([_at(1, 10), _at(1, 20), _at(2, 5), _at(1, 14), _at(2, 8)],
                       pa.timestamp("us", tz="UTC")),
        "spend": [120.0, 135.0, 140.0, 89.0, 2100.0],
    }), data / "spend.parquet")
    store = FeatureStore(repo, config={"project": "worked", "offline_store": {"type": engine}})
    user = Entity("user", join_keys=["user_id"])
    view = FeatureView("user_spend", entities=[user], schema=[Field("spend", Float64)],
                       source=FileSource("data/spend.parquet", timestamp_field="ts"), ttl=ttl)
    store.apply([user, view])
    return store


def _labels() -> pd.DataFrame:
    return pd.DataFrame({
        "user_id": ["u1", "u2", "u1", "u3"],
        "event_timestamp": pd.to_datetime([_at(1, 15, 10), _at(1, 15, 14), _at(2, 1, 9),
                                           _at(2, 10, 11)], utc=True),
        "label": [0, 1, 0, 1],
    })


@pytest.mark.parametrize("engine", ENGINES)
def test_worked_example(tmp_path: Path, engine: str) -> None:
    store = _store(tmp_path, engine)
    labels = _labels()
    out = store.get_historical_features(labels, features=["user_spend:spend"]).to_arrow()

    assert out.column_names == ["user_id", "event_timestamp", "label", "spend"]
    assert out.column("spend").to_pylist() == [120.0, 89.0, 135.0, 2100.0]
    # every input row, in input order, with its original columns untouched
    assert out.select(["user_id", "event_timestamp", "label"]).equals(
        pa.Table.from_pandas(labels, preserve_index=False))


@pytest.mark.parametrize("engine", ENGINES)
def test_worked_example_in_shuffled_order_with_full_names(tmp_path: Path, engine: str) -> None:
    store = _store(tmp_path, engine)
    labels = _labels().iloc[[3, 1, 2, 0]].reset_index(drop=True)
    df = store.get_historical_features(labels, features=["user_spend:spend"],
                                       full_feature_names=True).to_df()
    assert list(df.columns) == ["user_id", "event_timestamp", "label", "user_spend__spend"]
    assert df["user_spend__spend"].tolist() == [2100.0, 89.0, 135.0, 120.0]


@pytest.mark.parametrize("engine", ENGINES)
def test_worked_example_with_ttl(tmp_path: Path, engine: str) -> None:
    # With a 5-day ttl: u1 @ Jan 15 10:00 sees nothing (Jan 10 is 5 days 10 hours old),
    # u2 @ Jan 15 14:00 sees Jan 14, u1 @ Feb 1 09:00 sees nothing (Jan 20 is 12 days old) and
    # u3 @ Feb 10 11:00 sees Feb 8.
    store = _store(tmp_path, engine, ttl=timedelta(days=5))
    out = store.get_historical_features(_labels(), features=["user_spend:spend"]).to_arrow()
    assert out.column("spend").to_pylist() == [None, 89.0, None, 2100.0]


@pytest.mark.parametrize("engine", ENGINES)
def test_worked_example_ttl_edge_is_inclusive(tmp_path: Path, engine: str) -> None:
    # Jan 10 00:00 + 5 days 10 hours == Jan 15 10:00 exactly: the row is still valid; 1us later
    # it is not.
    store = _store(tmp_path, engine, ttl=timedelta(days=5, hours=10))
    labels = pd.DataFrame({
        "user_id": ["u1", "u1"],
        "event_timestamp": pd.to_datetime([_at(1, 15, 10), _at(1, 15, 10) + timedelta(microseconds=1)],
                                          utc=True),
    })
    out = store.get_historical_features(labels, features=["user_spend:spend"]).to_arrow()
    assert out.column("spend").to_pylist() == [120.0, None]
