"""Aggregated features through the real server and FeatureClient: a FeatureService mixing an
aggregated view with a plain one, statuses and event timestamps, full feature names, and a push
through the server readable at once in the window (docs/aggregations.md, "Online")."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from skewless import (Aggregation, Entity, FeatureClient, FeatureService, FeatureStore, FeatureView,
                      Field, FileSource, PushSource)
from skewless.types import Float64, String

from .conftest import make_repo, start_server

NOW = datetime.now(timezone.utc).replace(microsecond=0)


@pytest.fixture(scope="module")
def agg_server(tmp_path_factory: pytest.TempPathFactory):
    repo = make_repo(tmp_path_factory.mktemp("agg") / "repo", project="srvagg")
    (repo / "data/tx").mkdir(parents=True)
    ts = pa.timestamp("us", "UTC")
    pq.write_table(pa.table({"user_id": ["u1", "u1", "u1", "u2"],
                             "ts": pa.array([NOW - timedelta(hours=3), NOW - timedelta(minutes=20),
                                             NOW - timedelta(minutes=10), NOW - timedelta(days=2)], ts),
                             "amount": [100.0, 2.0, 4.0, 7.0]}), repo / "data/tx/base.parquet")
    pq.write_table(pa.table({"user_id": ["u1", "u2"], "ts": pa.array([NOW - timedelta(days=1)] * 2, ts),
                             "tier": ["gold", "basic"]}), repo / "data/tiers.parquet")
    user = Entity("user", join_keys=["user_id"])
    spend = FeatureView("spend", entities=[user], schema=[Field("user_id", String), Field("amount", Float64)],
                        source=PushSource("tx", batch_source=FileSource("data/tx", "ts")),
                        aggregations=[Aggregation("amount", "sum", timedelta(hours=1)),
                                      Aggregation("amount", "count", timedelta(days=7))])
    tiers = FeatureView("tiers", entities=[user], schema=[Field("tier", String)],
                        source=FileSource("data/tiers.parquet", "ts"))
    fs = FeatureStore(repo)
    fs.apply([user, spend, tiers, FeatureService("scoring", features=[spend, tiers])])
    fs.materialize_incremental()
    server = start_server(repo)
    yield repo, server
    server.stop()


def test_aggregated_features_through_the_server(agg_server) -> None:
    repo, server = agg_server
    r = server.post("/get-online-features", {"feature_service": "scoring",
                                              "entities": {"user_id": ["u1", "u2", "u9"]}})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["metadata"]["feature_names"] == ["user_id", "amount_sum_1h", "amount_count_7d", "tier"]
    results = {n: res for n, res in zip(body["metadata"]["feature_names"], body["results"])}
    assert results["amount_sum_1h"]["values"] == [6.0, None, None]
    assert results["amount_sum_1h"]["statuses"] == ["PRESENT", "NOT_FOUND", "NOT_FOUND"]
    assert results["amount_count_7d"]["values"] == [3, 1, 0]
    assert results["tier"]["values"] == ["gold", "basic", None]

    with FeatureClient(server.url) as client:
        got = client.get_online_features("scoring", [{"user_id": "u1"}, {"user_id": "u9"}],
                                         full_feature_names=True)
        assert got.to_dict() == {"user_id": ["u1", "u9"], "spend__amount_sum_1h": [6.0, None],
                                 "spend__amount_count_7d": [3, 0], "tiers__tier": ["gold", None]}
        assert got.statuses["spend__amount_count_7d"] == ["PRESENT", "NOT_FOUND"]
        assert got.event_timestamps["spend__amount_sum_1h"][0] == NOW - timedelta(minutes=10)
        # a push through the server is in the window at once, and a retry counts once
        at = datetime.now(timezone.utc) - timedelta(seconds=1)
        for _ in range(2):
            client.push("tx", {"user_id": ["u1"], "ts": [at.isoformat()], "amount": [0.5]},
                        batch_id="one-event")
        again = client.get_online_features(["spend:amount_sum_1h"], [{"user_id": "u1"}])
        assert again.to_dict()["amount_sum_1h"] == [6.5]
    # the SDK on the same repo serves the same
    sdk = FeatureStore(repo).get_online_features(["spend:amount_sum_1h"], [{"user_id": "u1"}])
    assert sdk.to_dict()["amount_sum_1h"] == [6.5]


def test_nan_and_infinities_through_the_server(tmp_path: Path) -> None:
    """Aggregated NaN and infinities (docs/aggregations.md, "Floats") are values: the server's
    body is valid JSON that says which (as protobuf's JSON and Feast's server do: "NaN",
    "Infinity", "-Infinity"), and FeatureClient returns what the SDK returns, not a null."""
    import json
    import math

    repo = make_repo(tmp_path / "repo", project="srvnan")
    (repo / "data/tx").mkdir(parents=True)
    ts = pa.timestamp("us", "UTC")
    at = NOW - timedelta(minutes=10)
    pq.write_table(pa.table({"user_id": ["u1", "u1", "u2", "u2", "u3"],
                             "ts": pa.array([at] * 5, ts),
                             "amount": [math.nan, 1.0, math.inf, -math.inf, 2.5]}),
                   repo / "data/tx/base.parquet")
    user = Entity("user", join_keys=["user_id"])
    view = FeatureView("odd", entities=[user], schema=[Field("user_id", String), Field("amount", Float64)],
                       source=FileSource("data/tx", "ts"),
                       aggregations=[Aggregation("amount", f, timedelta(hours=1))
                                     for f in ("max", "min", "sum", "stddev_pop")])
    fs = FeatureStore(repo)
    fs.apply([user, view])
    fs.materialize_incremental()
    features = [f"odd:amount_{f}_1h" for f in ("max", "min", "sum", "stddev_pop")]
    rows = [{"user_id": u} for u in ("u1", "u2", "u3")]
    sdk = fs.get_online_features(features, rows).to_dict()
    assert math.isnan(sdk["amount_max_1h"][0]) and sdk["amount_min_1h"][:2] == [1.0, -math.inf]
    assert math.isnan(sdk["amount_sum_1h"][1]) and sdk["amount_max_1h"][1] == math.inf
    server = start_server(repo)
    try:
        r = server.post("/get-online-features", {"features": features,
                                                  "entities": {"user_id": ["u1", "u2", "u3"]}})
        assert r.status_code == 200, r.text
        body = json.loads(r.text, parse_constant=lambda c: pytest.fail(f"not JSON: {c}"))
        results = dict(zip(body["metadata"]["feature_names"], body["results"]))
        assert results["amount_max_1h"]["values"] == ["NaN", "Infinity", 2.5]
        assert results["amount_min_1h"]["values"] == [1.0, "-Infinity", 2.5]
        assert results["amount_sum_1h"]["values"] == ["NaN", "NaN", 2.5]
        assert results["amount_stddev_pop_1h"]["values"] == ["NaN", "NaN", 0.0]
        with FeatureClient(server.url) as client:
            got = client.get_online_features(features, rows).to_dict()
    finally:
        server.stop()
    assert got.keys() == sdk.keys()
    for name in sdk:
        assert len(got[name]) == len(sdk[name])
        for a, b in zip(got[name], sdk[name]):
            assert a == b or (isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b)), \
                (name, got[name], sdk[name])
