"""Integer join keys out of range: an InvalidRequestError naming the row, the key and the
value (docs/online.md), never a raw OverflowError, on every path (SDK, many, client, push)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from skewless import Entity, FeatureStore, FeatureView, Field, FileSource, PushSource
from skewless.errors import InvalidRequestError
from skewless.testing.clock import Clock
from skewless.types import Float64, Int32, Int64

from .test_online_serving import NOW

driver = Entity("driver", join_keys=["driver_id"])


@pytest.fixture
def fs(tmp_path: Path) -> FeatureStore:
    (tmp_path / "data" / "events").mkdir(parents=True)
    t = pa.table({"driver_id": pa.array([1001, 1002], pa.int64()),
                  "ts": pa.array([NOW - pd.Timedelta(days=1)] * 2, pa.timestamp("us", "UTC")),
                  "rate": [0.5, 0.7]})
    pq.write_table(t, tmp_path / "data/d.parquet")
    pq.write_table(t, tmp_path / "data/events/e.parquet")
    pq.write_table(t.set_column(0, "driver_id", t.column("driver_id").cast(pa.int32())), tmp_path / "data/d32.parquet")
    (tmp_path / "feature_store.yaml").write_text("project: keyrange\nregistry: data/registry.db\n")
    src = FileSource("data/d.parquet", timestamp_field="ts")
    views = [
        FeatureView(name="undeclared", entities=[driver], schema=[Field("rate", Float64)], source=src, ttl=None),
        FeatureView(name="i64", entities=[driver], schema=[Field("driver_id", Int64), Field("rate", Float64)],
                    source=src, ttl=None),
        FeatureView(name="i32", entities=[driver], schema=[Field("driver_id", Int32), Field("rate", Float64)],
                    source=FileSource("data/d32.parquet", timestamp_field="ts"), ttl=None),
        FeatureView(name="pushed", entities=[driver], schema=[Field("driver_id", Int64), Field("rate", Float64)],
                    source=PushSource("events", FileSource("data/events", timestamp_field="ts")), ttl=None),
    ]
    store = FeatureStore(tmp_path, clock=Clock(NOW))
    store.apply([driver, *views])
    store.materialize_incremental(NOW)
    return store


CASES = [("undeclared", 2 ** 64), ("undeclared", -2 ** 63 - 1), ("undeclared", 2 ** 70),
         ("i64", 2 ** 64), ("i64", -2 ** 63 - 1), ("i64", -2 ** 80), ("i32", 2 ** 64), ("i32", -2 ** 64)]


@pytest.mark.parametrize("view, key", CASES)
def test_a_key_beyond_64_bits_names_the_key_and_value(fs: FeatureStore, view: str, key: int) -> None:
    rows: list[dict[str, Any]] = [{"driver_id": 1001}, {"driver_id": key}]
    with pytest.raises(InvalidRequestError) as e:
        fs.get_online_features([f"{view}:rate"], rows)
    msg = str(e.value)
    assert "driver_id" in msg and str(key) in msg and "entity row 1" in msg and "64-bit" in msg
    (answer,) = fs.get_online_features_many([([f"{view}:rate"], rows, False)])
    assert isinstance(answer, InvalidRequestError) and str(key) in str(answer)


@pytest.mark.parametrize("view", ["undeclared", "i64", "i32"])
def test_keys_beyond_the_declared_type_but_within_64_bits_are_not_found_as_offline(
        fs: FeatureStore, view: str) -> None:
    """An Int32 key of 2**31, an Int64 key of 2**63: no stored entity has it, so NOT_FOUND,
    exactly as the offline join matches nothing for it (the conformance suite's rule)."""
    edge = {"undeclared": [2 ** 63, 2 ** 64 - 1, -2 ** 63], "i64": [2 ** 63, 2 ** 64 - 1, -2 ** 63],
            "i32": [2 ** 31, -2 ** 31 - 1, 2 ** 40]}[view]
    got = fs.get_online_features([f"{view}:rate"], [{"driver_id": 1001}] + [{"driver_id": k} for k in edge])
    assert got.statuses["rate"] == ["PRESENT"] + ["NOT_FOUND"] * 3
    assert got.to_dict()["rate"][0] == 0.5


def test_a_composite_or_numpy_key_goes_through_the_same_check(fs: FeatureStore) -> None:
    import numpy as np
    got = fs.get_online_features(["i64:rate"], [{"driver_id": np.uint64(2 ** 63)}, {"driver_id": np.int64(1001)}])
    assert got.statuses["rate"] == ["NOT_FOUND", "PRESENT"]
    pair = [{"driver_id": 2 ** 64, "other": 1}]
    with pytest.raises(InvalidRequestError, match=str(2 ** 64)):
        fs.get_online_features(["i64:rate"], pair)


def test_a_push_with_an_out_of_range_key_is_refused_whole(fs: FeatureStore, tmp_path: Path) -> None:
    before = sorted((tmp_path / "data/events").iterdir())
    with pytest.raises(InvalidRequestError, match="driver_id") as e:
        fs.push("events", {"driver_id": [1001, 2 ** 64], "ts": [NOW, NOW], "rate": [1.0, 2.0]})
    assert "row" in str(e.value)
    assert sorted((tmp_path / "data/events").iterdir()) == before


def test_the_client_refuses_a_key_json_cannot_carry() -> None:
    from skewless.client import entity_columns
    with pytest.raises(InvalidRequestError, match=r"entity row 1: join key 'driver_id' = 18446744073709551616"):
        entity_columns([{"driver_id": 1}, {"driver_id": 2 ** 64}])
