"""Point-in-time retrieval through the public API, on every engine (fixture ``store``)."""

from __future__ import annotations

from datetime import datetime, timezone

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from skewless.errors import InvalidRequestError, UnknownObjectError

from .conftest import pair_view, spend_view, user


def test_design_worked_example(store, labels):
    df = store.get_historical_features(labels, ["user_spend:amount"]).to_df()
    # 140.0 lies in the future of the Feb 1 label; u9 is unknown.
    assert df["amount"].tolist()[:4] == [120.0, 89.0, 135.0, 2100.0]
    assert pd.isna(df["amount"].iloc[4])


def test_keeps_rows_order_index_and_columns(store, labels):
    shuffled = labels.iloc[[3, 0, 4, 2, 1]]
    df = store.get_historical_features(shuffled, ["user_spend:amount"]).to_df()
    assert list(df.index) == list(shuffled.index)
    assert list(df.columns) == [*labels.columns, "amount"]
    pd.testing.assert_frame_equal(df[labels.columns], shuffled)
    assert df["amount"].tolist()[:2] == [2100.0, 120.0]


def test_created_timestamp_breaks_ties(store, labels):
    df = store.get_historical_features(labels, ["user_spend:amount", "user_spend:n_txn"]).to_df()
    assert df.loc[12, "amount"] == 135.0 and df.loc[12, "n_txn"] == 2  # not the older write (999)


def test_defaults_only_when_nothing_is_known(store, labels):
    store.apply([spend_view(on_missing="default")])
    df = store.get_historical_features(labels, ["user_spend:amount", "user_spend:n_txn"]).to_df()
    assert df.loc[14, "amount"] == -1.0 and df.loc[14, "n_txn"] == 0
    assert df.loc[10, "amount"] == 120.0
    assert str(df["n_txn"].dtype) == "Int64"


def test_ttl_is_inclusive_at_both_ends(store):
    store.apply([spend_view(ttl=86400 * 5)])  # 5 days
    t = pd.Timestamp
    entity = pd.DataFrame({"user_id": ["u1", "u1", "u1"],
                           "event_timestamp": [t("2024-01-15"), t("2024-01-15 00:00:00.000001"),
                                               t("2024-01-10")]})
    df = store.get_historical_features(entity, ["user_spend:amount"]).to_df()
    assert df["amount"].iloc[0] == 120.0           # exactly ts + ttl: still inside
    assert pd.isna(df["amount"].iloc[1])          # one microsecond later: outside
    assert df["amount"].iloc[2] == 120.0           # exactly at the row's ts


def test_composite_keys_hive_source_and_service(store, labels):
    df = store.get_historical_features(labels, feature_service="fraud_v1").to_df()
    assert list(df.columns[-2:]) == ["amount", "last_country"]
    # u1/m1 at Jan 15: Jan 5 row is 10 days old, ttl is 3 days -> null
    assert pd.isna(df.loc[10, "last_country"])
    # u9 label on Jan 1 00:00: nothing yet
    assert pd.isna(df.loc[14, "last_country"])
    entity = pd.DataFrame({"user_id": ["u1", "u2", "u1"], "merchant_id": ["m1", "m1", "m2"],
                           "event_timestamp": pd.to_datetime(["2024-01-06", "2024-01-06", "2024-01-06"])})
    df2 = store.get_historical_features(entity, ["pair_stats:last_country"]).to_df()
    assert df2["last_country"].tolist()[:2] == ["DE", "US"] and pd.isna(df2["last_country"].iloc[2])


def test_full_feature_names_and_clash(store, labels):
    from skewless import Field, FeatureView, FileSource
    from skewless.types import Float64
    twin = FeatureView("user_spend_copy", [user], [Field("amount", Float64)],
                       FileSource("data/spend.parquet", "ts"))
    store.apply([twin])
    with pytest.raises(InvalidRequestError, match="full_feature_names=True"):
        store.get_historical_features(labels, ["user_spend:amount", "user_spend_copy:amount"])
    df = store.get_historical_features(labels, ["user_spend:amount", "user_spend_copy:amount"],
                                       full_feature_names=True).to_df()
    assert {"user_spend__amount", "user_spend_copy__amount"} <= set(df.columns)


def test_tz_aware_and_naive_agree(store, labels):
    aware = labels.assign(event_timestamp=labels.event_timestamp.dt.tz_localize("UTC").dt.tz_convert("Asia/Tokyo"))
    a = store.get_historical_features(aware, ["user_spend:amount"]).to_df()
    b = store.get_historical_features(labels, ["user_spend:amount"]).to_df()
    assert a["amount"].tolist()[:4] == b["amount"].tolist()[:4]
    assert str(a["event_timestamp"].dtype) == str(aware["event_timestamp"].dtype)  # passed through


def test_arrow_input_and_output(store, labels):
    table = pa.Table.from_pandas(labels, preserve_index=False)
    out = store.get_historical_features(table, ["user_spend:amount"]).to_arrow()
    assert out.column_names == [*table.column_names, "amount"]
    assert out.schema.field("amount").type == pa.float64()
    assert out.column("amount").to_pylist()[:4] == [120.0, 89.0, 135.0, 2100.0]


def test_to_parquet(store, labels, tmp_path):
    path = store.get_historical_features(labels, ["user_spend:amount"]).to_parquet(tmp_path / "out/train.parquet")
    table = pq.read_table(path)
    assert table.num_rows == 5
    assert table.column("amount").to_pylist()[:4] == [120.0, 89.0, 135.0, 2100.0]
    assert not list((tmp_path / "out").glob(".*tmp*"))


def test_as_of_reproduces_a_training_set(store, repo, labels):
    before = store.get_historical_features(labels, ["user_spend:amount"]).to_df()
    # A correction lands later: same event time as the Jan 10 row, newer created timestamp.
    old = pd.read_parquet(repo / "data/spend.parquet")
    fix = pd.DataFrame({"user_id": ["u1"], "ts": [pd.Timestamp("2024-01-10")],
                        "created": [pd.Timestamp("2024-03-01")], "amount": [121.0], "n_txn": [1]})
    pd.concat([old, fix]).to_parquet(repo / "data/spend.parquet")
    after = store.get_historical_features(labels, ["user_spend:amount"]).to_df()
    assert after.loc[10, "amount"] == 121.0
    again = store.get_historical_features(labels, ["user_spend:amount"],
                                          as_of=datetime(2024, 2, 15, tzinfo=timezone.utc)).to_df()
    pd.testing.assert_series_equal(again["amount"], before["amount"])


def test_unknown_feature_suggests(store, labels):
    with pytest.raises(UnknownObjectError, match="did you mean 'amount'"):
        store.get_historical_features(labels, ["user_spend:amout"])
    with pytest.raises(UnknownObjectError, match="did you mean 'user_spend'"):
        store.get_historical_features(labels, ["user_spnd:amount"])
    with pytest.raises(UnknownObjectError, match="fraud_v1"):
        store.get_historical_features(labels, feature_service="fraud_v2")


def test_sql_entity_df(repo, labels):
    from skewless import FeatureStore
    fs = FeatureStore(repo)
    fs.apply([user, spend_view()])
    labels.reset_index(drop=True).to_parquet(repo / "labels.parquet")
    sql = f"SELECT * FROM read_parquet('{repo / 'labels.parquet'}')"
    df = fs.get_historical_features(sql, ["user_spend:amount"]).to_df()
    assert df["amount"].tolist()[:4] == [120.0, 89.0, 135.0, 2100.0]
    path = fs.get_historical_features(sql, ["user_spend:amount"]).to_parquet(repo / "o.parquet")
    assert pq.read_table(path).num_rows == 5


def test_availability_delay_and_as_of(store, repo, labels):
    """The worked example with rows landing 5 days after their event time (every engine): a
    label sees only rows with ts + 5 days <= its time; as_of still cuts a later correction."""
    from datetime import timedelta

    from skewless import FileSource

    late = spend_view(name="spend_late", source=FileSource(
        "data/spend.parquet", "ts", created_timestamp_column="created",
        availability_delay=timedelta(days=5)))
    store.apply([user, late])
    got = store.get_historical_features(labels, ["spend_late:amount"]).to_df()
    # u1 @ Jan 15 10:00: Jan 10 landed Jan 15 00:00; u2 @ Jan 15 14:00: Jan 14 lands Jan 19;
    # u1 @ Feb 1: Jan 20 (Feb 5 lands Feb 10); u3 @ Feb 10 11:00: Feb 8 lands Feb 13
    assert [None if pd.isna(v) else v for v in got["amount"]] == [120.0, None, 135.0, None, None]
    old = pd.read_parquet(repo / "data/spend.parquet")
    fix = pd.DataFrame({"user_id": ["u1"], "ts": [pd.Timestamp("2024-01-10")],
                        "created": [pd.Timestamp("2024-03-01")], "amount": [121.0], "n_txn": [1]})
    pd.concat([old, fix]).to_parquet(repo / "data/spend.parquet")
    after = store.get_historical_features(labels, ["spend_late:amount"]).to_df()
    assert after["amount"].iloc[0] == 121.0
    again = store.get_historical_features(labels, ["spend_late:amount"],
                                          as_of=datetime(2024, 2, 15, tzinfo=timezone.utc)).to_df()
    pd.testing.assert_series_equal(again["amount"], got["amount"])
