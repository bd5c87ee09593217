"""A null join key online: NOT_FOUND for that row, as the offline join matches nothing for it;
the other rows of the request are served (docs/online.md, "A null join key")."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from skewless import FeatureStore, Field
from skewless.errors import FeatureUnavailableError, InvalidRequestError
from skewless.testing.clock import Clock
from skewless.types import Float64, Int64

from .conftest import pair, spend_view, user
from .test_online_serving import NOW, any_store, clock, make_store, pairs  # noqa: F401 - fixtures

NULLS = {"None": None, "nan": float("nan"), "np.nan64": np.float64("nan"), "pd.NA": pd.NA,
         "pd.NaT": pd.NaT}


def offline(fs: FeatureStore, features: list[str], rows: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """The offline join at NOW for the same rows (nulls as None)."""
    keys = sorted({k for r in rows for k in r})
    df = pd.DataFrame({k: pd.Series([r[k] for r in rows], dtype=object) for k in keys})
    df["event_timestamp"] = pd.Timestamp(NOW)
    got = fs.get_historical_features(df, features).to_df()
    names = [f.split(":")[1] for f in features]
    return {n: [None if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)) else v
                for v in got[n].astype(object).tolist()] for n in names}


@pytest.mark.parametrize("null", list(NULLS.values()), ids=list(NULLS))
def test_a_null_key_is_not_found_and_the_other_rows_are_served(any_store: FeatureStore, null: Any) -> None:
    """100 entities, one of them null: the request is answered, that row NOT_FOUND (every store)."""
    rows = [{"user_id": f"u{i % 4}"} for i in range(100)]
    rows[37] = {"user_id": null}
    features = ["user_spend:amount", "user_spend:n_txn"]
    got = any_store.get_online_features(features, rows)
    st = got.statuses["amount"]
    assert st[37] == "NOT_FOUND" and got.statuses["n_txn"][37] == "NOT_FOUND"
    assert got.to_dict()["amount"][37] is None and got.event_timestamps["amount"][37] is None
    assert st[1] == "PRESENT" and got.to_dict()["amount"][1] == 120.0   # u1 is served
    assert got.to_dict()["user_id"][37] is null                          # the key as it was sent
    assert got.to_dict()["amount"] == offline(any_store, features, rows)["amount"]


@pytest.mark.parametrize("row", [{"user_id": None, "merchant_id": "m1"},
                                 {"user_id": "u1", "merchant_id": None},
                                 {"user_id": float("nan"), "merchant_id": pd.NA},
                                 {"user_id": None, "merchant_id": None}],
                         ids=["first_part", "second_part", "nan_and_na", "both"])
def test_a_composite_key_with_a_null_part_is_not_found(any_store: FeatureStore, row: dict[str, Any]) -> None:
    rows = [{"user_id": "u1", "merchant_id": "m1"}, row, {"user_id": "u2", "merchant_id": "m1"}]
    features = ["user_spend:amount", "pair_stats:last_country"]
    got = any_store.get_online_features(features, rows)
    assert got.statuses["last_country"] == ["PRESENT", "NOT_FOUND", "PRESENT"]
    assert got.to_dict()["last_country"] == ["DE", None, "US"]
    assert got.to_dict()["last_country"] == offline(any_store, features, rows)["last_country"]
    # the one-key view is read with the same row's user_id: null or not
    want_amount = "NOT_FOUND" if row["user_id"] is None or row["user_id"] != row["user_id"] else "PRESENT"
    assert got.statuses["amount"][1] == want_amount


def test_a_null_key_gets_the_default_like_offline(repo: Path, clock: Clock) -> None:
    fs = make_store(repo, clock)
    fs.apply([user, spend_view(on_missing="default",
                               schema=[Field("amount", Float64, default=-1.0), Field("n_txn", Int64, default=0)])])
    fs.materialize_incremental(NOW)
    rows = [{"user_id": "u1"}, {"user_id": None}, {"user_id": np.nan}]
    features = ["user_spend:amount", "user_spend:n_txn"]
    got = fs.get_online_features(features, rows)
    assert got.statuses["amount"] == ["PRESENT", "NOT_FOUND", "NOT_FOUND"]
    assert got.to_dict()["amount"] == [120.0, -1.0, -1.0]
    assert got.to_dict()["n_txn"] == [1, 0, 0]
    want = offline(fs, features, rows)
    assert got.to_dict()["amount"] == want["amount"] and got.to_dict()["n_txn"] == want["n_txn"]


def test_a_null_key_under_fail_closed_fails_as_any_not_found(repo: Path, clock: Clock) -> None:
    fs = make_store(repo, clock)
    fs.apply([user, spend_view(on_missing="fail")])
    fs.materialize_incremental(NOW)
    with pytest.raises(FeatureUnavailableError) as err:
        fs.get_online_features(["user_spend:amount"], [{"user_id": "u1"}, {"user_id": None}])
    assert "NOT_FOUND" in str(err.value) and "{'user_id': None}" in str(err.value)
    assert err.value.http_status == 503


def test_many_requests_answer_a_null_key_in_its_request(any_store: FeatureStore) -> None:
    ok, with_null, pair_null = any_store.get_online_features_many([
        (["user_spend:amount"], [{"user_id": "u1"}], False),
        (["user_spend:amount"], [{"user_id": None}, {"user_id": "u1"}], False),
        (["pair_stats:last_country"], [{"user_id": "u1", "merchant_id": None}], False)])
    assert not isinstance(ok, Exception) and ok.to_dict()["amount"] == [120.0]
    assert not isinstance(with_null, Exception) and with_null.to_dict()["amount"] == [None, 120.0]
    assert with_null.statuses["amount"] == ["NOT_FOUND", "PRESENT"]
    assert not isinstance(pair_null, Exception) and pair_null.statuses["last_country"] == ["NOT_FOUND"]


def test_records_of_a_pandas_frame_with_a_missing_key(fs_sqlite: FeatureStore) -> None:
    """``df.to_dict("records")`` of a string key column with a gap gives NaN or None."""
    df = pd.DataFrame({"user_id": ["u1", None, "u3"]})
    got = fs_sqlite.get_online_features(["user_spend:amount"], df.to_dict("records"))
    assert got.statuses["amount"] == ["PRESENT", "NOT_FOUND", "NOT_FOUND"]  # u3's row is after NOW
    nan_frame = pd.DataFrame({"user_id": pd.array(["u1", pd.NA], dtype="string")})
    got = fs_sqlite.get_online_features(["user_spend:amount"], nan_frame.to_dict("records"))
    assert got.statuses["amount"] == ["PRESENT", "NOT_FOUND"]


def test_a_key_of_the_wrong_type_is_still_refused(fs_sqlite: FeatureStore) -> None:
    with pytest.raises(InvalidRequestError, match="join key 'user_id' = 1.5"):
        fs_sqlite.get_online_features(["user_spend:amount"], [{"user_id": None}, {"user_id": 1.5}])
    with pytest.raises(InvalidRequestError, match="join key 'user_id' = inf"):
        fs_sqlite.get_online_features(["user_spend:amount"], [{"user_id": float("inf")}])


@pytest.fixture
def fs_sqlite(repo: Path, clock: Clock) -> FeatureStore:
    store = make_store(repo, clock)
    store.apply([user, pair, spend_view(), pairs()])
    store.materialize_incremental(NOW)
    return store


def test_an_integer_key_with_a_gap_offline_says_how_to_match_online(tmp_path: Path, clock: Clock) -> None:
    """pandas turns an integer key column with a missing value into float64. Offline refuses
    it, and the hint's conversion (nullable Int64) gives what online gives: the missing key
    matches nothing, the other rows are served."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from skewless import Entity, FeatureView, FileSource
    from skewless.errors import SourceError

    (tmp_path / "data").mkdir()
    pq.write_table(pa.table({"driver_id": pa.array([1001, 1002], pa.int64()),
                             "ts": pa.array([NOW - pd.Timedelta(days=1)] * 2, pa.timestamp("us", "UTC")),
                             "rate": [0.5, 0.7]}), tmp_path / "data/d.parquet")
    (tmp_path / "feature_store.yaml").write_text("project: nullkeys\nregistry: data/registry.db\n")
    driver = Entity("driver", join_keys=["driver_id"])
    view = FeatureView(name="stats", entities=[driver], schema=[Field("rate", Float64)],
                       source=FileSource("data/d.parquet", timestamp_field="ts"), ttl=None)
    fs = FeatureStore(tmp_path, clock=clock)
    fs.apply([driver, view])
    fs.materialize_incremental(NOW)
    online = fs.get_online_features(["stats:rate"], [{"driver_id": 1001}, {"driver_id": None}])
    assert online.statuses["rate"] == ["PRESENT", "NOT_FOUND"]
    labels = pd.DataFrame({"driver_id": [1001, None], "event_timestamp": [NOW, NOW]})
    assert labels["driver_id"].dtype == "float64"
    with pytest.raises(SourceError, match=r"astype\('Int64'\)") as e:
        fs.get_historical_features(labels, ["stats:rate"])
    assert "'driver_id'" in str(e.value) and "'stats'" in str(e.value)
    fixed = labels.assign(driver_id=labels["driver_id"].astype("Int64"))
    got = fs.get_historical_features(fixed, ["stats:rate"]).to_df()["rate"]
    assert [None if pd.isna(v) else v for v in got] == online.to_dict()["rate"] == [0.5, None]
