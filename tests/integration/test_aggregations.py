"""Windowed aggregations in training data (docs/aggregations.md): hand-computed values on every
engine, event ids, defaults, feature services mixing plain and aggregated views, SQL entity_df,
Parquet output, and the errors bad definitions and sources get."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
import pytest

from skewless import Aggregation, Entity, FeatureService, FeatureStore, FeatureView, Field, FileSource
from skewless.errors import PlanError, SkewlessError
from skewless.types import Float64, Int64, String

UTC = timezone.utc
T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)      # a tile start (5 min and 1 h)
M = timedelta(minutes=1)
user = Entity("user", join_keys=["user_id"])


def events_view(**kw: Any) -> FeatureView:
    args: dict[str, Any] = dict(
        name="tx", entities=[user],
        schema=[Field("user_id", Int64), Field("amount", Float64, default=0.0), Field("merchant", String)],
        source=FileSource("data/tx", "ts", created_timestamp_column="created", event_id_column="tx_id"),
        aggregations=[Aggregation("amount", "sum", timedelta(hours=1)),
                      Aggregation("amount", "count", timedelta(hours=1)),
                      Aggregation("amount", "mean", timedelta(minutes=10)),
                      Aggregation("amount", "stddev_pop", timedelta(hours=1)),
                      Aggregation("merchant", "last", timedelta(hours=1), name="last_merchant"),
                      Aggregation("amount", "max", timedelta(days=1))],
        on_missing="default")
    args.update(kw)
    return FeatureView(**args)


def profile_view() -> FeatureView:
    return FeatureView("profile", [user], [Field("user_id", Int64), Field("tier", Int64)],
                       FileSource("data/profile.parquet", "ts"))


@pytest.fixture(params=["reference", "duckdb"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> FeatureStore:
    (tmp_path / "data" / "tx").mkdir(parents=True)
    rows = [  # user, ts, created, tx_id, amount, merchant
        (1, T0 - 61 * M, T0, "a", 1000.0, "old"),     # before the 1h window's tail (11:00)
        (1, T0 - 60 * M, T0, "b", 1.0, "m1"),         # exactly on the tail: in
        (1, T0 - 30 * M, T0, "c", 2.0, "m2"),
        (1, T0 - 30 * M, T0, "c", 2.0, "m2"),         # redelivered: one event
        (1, T0 - 9 * M, T0, "d", 3.0, "m3"),
        (1, T0 - 9 * M, T0 + M, "d", 4.0, "m4"),      # d again, written later and different: the first counts
        (1, T0 - 2 * M, T0, "e", None, "m5"),         # a null amount: skipped by amount's functions
        (1, T0, T0, "f", 500.0, "now"),               # exactly at the label's time: out
        (2, T0 - 5 * M, None, None, 7.0, "x"),        # no event id: its own event
        (2, T0 - 5 * M, None, None, 7.0, "y"),        # same time, no created: merchant 'y' > 'x'
    ]
    frame = pd.DataFrame(rows, columns=["user_id", "ts", "created", "tx_id", "amount", "merchant"])
    frame.iloc[:5].to_parquet(tmp_path / "data" / "tx" / "part-0.parquet")
    frame.iloc[5:].to_parquet(tmp_path / "data" / "tx" / "part-1.parquet")
    pd.DataFrame({"user_id": [1, 2], "ts": [T0 - timedelta(days=30)] * 2, "tier": [3, 4]}).to_parquet(
        tmp_path / "data" / "profile.parquet")
    (tmp_path / "feature_store.yaml").write_text(
        f"project: agg\nregistry: data/registry.db\noffline_store: {{type: {request.param}}}\n")
    fs = FeatureStore(tmp_path)
    fs.apply([user, events_view(), profile_view()])
    return fs


LABELS = pd.DataFrame({"user_id": [1, 2, 3, 1],
                       "event_timestamp": [T0, T0, T0, T0 + timedelta(days=2)]})
ALL = ["amount_sum_1h", "amount_count_1h", "amount_mean_10m", "amount_stddev_pop_1h", "last_merchant",
       "amount_max_1d"]


def test_values_by_hand(store: FeatureStore) -> None:
    df = store.get_historical_features(LABELS, [f"tx:{f}" for f in ALL]).to_df()
    # user 1 at 12:00, window 1h with 5-min tiles: [11:00, 12:00) holds b=1, c=2 (once), d=3
    # (its first written copy, as online keeps the first delivery), e=null; 10m window (tail
    # 11:50): d=3; 1d window: a, b, c, d
    assert df["amount_sum_1h"].tolist() == [6.0, 14.0, 0.0, 0.0]          # 0.0: the field default
    assert df["amount_count_1h"].tolist() == [3, 2, 0, 0]                  # count: never the default
    assert df["amount_mean_10m"].tolist() == [3.0, 7.0, 0.0, 0.0]
    assert df["amount_stddev_pop_1h"][0] == pytest.approx((2 / 3) ** 0.5, rel=1e-12)   # 1, 2, 3
    assert df["amount_stddev_pop_1h"][1] == 0.0
    assert df["last_merchant"].tolist()[:2] == ["m5", "y"] and df["last_merchant"].isna().tolist()[2:] == [
        True, True]
    assert df["amount_max_1d"].tolist() == [1000.0, 7.0, 0.0, 0.0]
    assert str(df["amount_count_1h"].dtype) == "Int64" and str(df["amount_sum_1h"].dtype) == "float64"


def test_a_feature_service_mixes_plain_and_aggregated_views(store: FeatureStore, tmp_path: Path) -> None:
    svc = FeatureService("model", [events_view()[["amount_sum_1h"]], profile_view()])
    store.apply([svc])
    job = store.get_historical_features(LABELS, svc, full_feature_names=True)
    df = job.to_df()
    assert list(df.columns) == ["user_id", "event_timestamp", "tx__amount_sum_1h", "profile__tier"]
    assert df["tx__amount_sum_1h"].tolist() == [6.0, 14.0, 0.0, 0.0]
    assert df["profile__tier"].tolist()[:2] == [3, 4]
    out = job.to_parquet(tmp_path / "out" / "train.parquet")
    assert pq.read_table(out).column("tx__amount_sum_1h").to_pylist() == [6.0, 14.0, 0.0, 0.0]


def test_as_of_counts_only_the_events_known_then(store: FeatureStore) -> None:
    """Before d's second copy was written, its first counts, as after (the first written wins)."""
    df = store.get_historical_features(LABELS.iloc[:1], ["tx:amount_sum_1h"], as_of=T0).to_df()
    assert df["amount_sum_1h"].tolist() == [6.0]


def test_entity_df_as_sql(tmp_path: Path) -> None:
    (tmp_path / "feature_store.yaml").write_text("project: agg\nregistry: data/registry.db\n")
    (tmp_path / "data" / "tx").mkdir(parents=True)
    pd.DataFrame({"user_id": [1, 1], "ts": [T0 - 5 * M, T0 - 70 * M], "amount": [2.0, 3.0]}).to_parquet(
        tmp_path / "data" / "tx" / "a.parquet")
    view = FeatureView("tx", [user], [Field("user_id", Int64), Field("amount", Float64)],
                       FileSource("data/tx", "ts"), aggregations=[Aggregation("amount", "sum", timedelta(hours=1)),
                                                                  Aggregation("amount", "sum", timedelta(days=1))])
    fs = FeatureStore(tmp_path)
    fs.apply([user, view])
    sql = ("SELECT * FROM (VALUES (1, TIMESTAMPTZ '2024-05-01 12:00:00+00', 'x'), "
           "(2, TIMESTAMPTZ '2024-05-01 12:00:00+00', 'y')) t(user_id, event_timestamp, note)")
    df = fs.get_historical_features(sql, ["tx:amount_sum_1h", "tx:amount_sum_1d"]).to_df()
    assert list(df.columns) == ["user_id", "event_timestamp", "note", "amount_sum_1h", "amount_sum_1d"]
    assert df["amount_sum_1h"].tolist()[0] == 2.0 and pd.isna(df["amount_sum_1h"][1])
    assert df["amount_sum_1d"].tolist()[0] == 5.0 and df["note"].tolist() == ["x", "y"]


def test_an_event_id_column_missing_from_the_source_is_refused(store: FeatureStore) -> None:
    bad = events_view(source=FileSource("data/tx", "ts", event_id_column="txn_id"))
    with pytest.raises(PlanError, match=r"feature view 'tx'.*event_id_column column 'txn_id' is missing "
                                        r"\(did you mean 'tx_id'\?\)"):
        store.apply([bad])
    assert store.get_feature_view("tx").batch_source.event_id_column == "tx_id"   # nothing written


def test_an_aggregated_column_missing_from_the_source_is_refused(store: FeatureStore) -> None:
    bad = events_view(schema=[Field("user_id", Int64), Field("amout", Float64), Field("merchant", String)],
                      aggregations=[Aggregation("amout", "sum", timedelta(hours=1))])
    with pytest.raises(SkewlessError, match=r"feature view 'tx'.*'amout'"):
        store.apply([bad])


def test_an_unknown_aggregated_feature_suggests_the_known_ones(store: FeatureStore) -> None:
    with pytest.raises(SkewlessError, match=r"feature view 'tx' has no feature 'amount_sum_2h'; did you mean "
                                            r"'amount_sum_1h'"):
        store.get_historical_features(LABELS, ["tx:amount_sum_2h"])


def test_a_push_source_redelivery_counts_once(tmp_path: Path) -> None:
    """A PushSource's batch source declares the event id: a batch pushed twice (a stream's
    redelivery) is one set of events for the aggregations."""
    from skewless import PushSource

    (tmp_path / "feature_store.yaml").write_text("project: agg\nregistry: data/registry.db\n")
    (tmp_path / "data" / "ev").mkdir(parents=True)
    batch = pd.DataFrame({"user_id": [1, 1], "ts": [T0 - 20 * M, T0 - 10 * M], "amount": [1.0, 2.0],
                          "eid": ["a", "b"]})
    batch.iloc[:0].to_parquet(tmp_path / "data" / "ev" / "seed.parquet")
    push = PushSource("ev_push", FileSource("data/ev", "ts", event_id_column="eid"))
    view = FeatureView("tx", [user], [Field("user_id", Int64), Field("amount", Float64)], push,
                       aggregations=[Aggregation("amount", "sum", timedelta(hours=1)),
                                     Aggregation("amount", "count", timedelta(hours=1))])
    fs = FeatureStore(tmp_path)
    fs.apply([user, view])
    fs.push("ev_push", batch, to="offline")
    fs.push("ev_push", batch.iloc[:1], to="offline")   # redelivered
    labels = pd.DataFrame({"user_id": [1], "event_timestamp": [T0]})
    for engine in ("reference", "duckdb"):
        store = FeatureStore(tmp_path, config={"project": "agg", "registry": "data/registry.db",
                                               "offline_store": {"type": engine}})
        df = store.get_historical_features(labels, ["tx:amount_sum_1h", "tx:amount_count_1h"]).to_df()
        assert (df["amount_sum_1h"][0], df["amount_count_1h"][0]) == (3.0, 2), engine


def add_bonus(inputs: dict[str, list[Any]]) -> dict[str, list[Any]]:
    """An on-demand view over an aggregated feature and a request field (module level: stored
    as its text)."""
    return {"sum_plus_bonus": [None if s is None or b is None else s + b
                               for s, b in zip(inputs["amount_sum_1h"], inputs["bonus"])]}


@pytest.mark.parametrize("engine", ["reference", "duckdb"])
def test_an_on_demand_view_reads_an_aggregated_feature_alike_online_and_offline(
        tmp_path: Path, engine: str) -> None:
    """An aggregated feature as an on-demand input (issue 13): training data and serving at the
    same moment give the function the same window value, so the same output."""
    from skewless import RequestSource, on_demand_feature_view

    (tmp_path / "feature_store.yaml").write_text(
        f"project: agg\nregistry: data/registry.db\noffline_store: {{type: {engine}}}\n"
        "online_store: {type: sqlite, path: data/online.db}\n")
    (tmp_path / "data" / "tx").mkdir(parents=True)
    pd.DataFrame({"user_id": [1, 1, 1, 2], "ts": [T0 - 70 * M, T0 - 30 * M, T0 - 5 * M, T0 - 90 * M],
                  "amount": [100.0, 2.0, 3.0, 5.0]}).to_parquet(tmp_path / "data" / "tx" / "a.parquet")
    view = FeatureView("tx", [user], [Field("user_id", Int64), Field("amount", Float64)],
                       FileSource("data/tx", "ts"),
                       aggregations=[Aggregation("amount", "sum", timedelta(hours=1))])
    bonus = RequestSource("bonus_req", [Field("bonus", Float64)])
    odfv = on_demand_feature_view(sources=[view, bonus], schema=[Field("sum_plus_bonus", Float64)],
                                  mode="python")(add_bonus)
    fs = FeatureStore(tmp_path, clock=lambda: T0)
    fs.apply([user, view, odfv])
    fs.materialize(None, T0)
    refs = ["tx:amount_sum_1h", "add_bonus:sum_plus_bonus"]
    served = fs.get_online_features(refs, [{"user_id": 1, "bonus": 0.5}, {"user_id": 2, "bonus": 1.0},
                                           {"user_id": 3, "bonus": 2.0}]).to_dict()
    trained = fs.get_historical_features(
        pd.DataFrame({"user_id": [1, 2, 3], "event_timestamp": [T0] * 3, "bonus": [0.5, 1.0, 2.0]}),
        refs).to_df()
    assert served["amount_sum_1h"] == [5.0, None, None]
    assert served["sum_plus_bonus"] == [5.5, None, None]
    assert trained["amount_sum_1h"].tolist()[0] == 5.0 and trained["amount_sum_1h"].isna().tolist()[1:] == [True, True]
    assert trained["sum_plus_bonus"].tolist()[0] == 5.5 and trained["sum_plus_bonus"].isna().tolist()[1:] == [True, True]
