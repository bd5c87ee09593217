"""Feature logging through the feature server (docs/feature-logging.md): ``skewless serve`` in
a subprocess over a real SQLite repo with logging on; the rows logged are the answers served
(compared with the SDK's), FeatureClient's reads through the server are logged too, reads by
feature references are not, and a SIGTERM writes what was still queued."""

from __future__ import annotations

from pathlib import Path

from skewless import FeatureClient, FeatureStore

from .conftest import SERVICE, definitions, make_repo

GET = "/get-online-features"


def test_the_server_logs_what_it_serves(tmp_path: Path, serve) -> None:
    # a long flush interval: the rows reach the disk at shutdown (SIGTERM), not before
    repo = make_repo(tmp_path / "repo", logging={"sample_rate": 1.0, "flush_interval_seconds": 3600})
    fs = FeatureStore(repo)
    fs.apply(definitions())
    fs.materialize_incremental()
    server = serve(repo)
    bodies = [{"feature_service": SERVICE, "entities": {"user_id": ["u1", "u2", "u9"],
                                                        "merchant_id": ["m1", "m1", "m1"]}},
              {"feature_service": SERVICE, "full_feature_names": True,
               "entities": {"user_id": ["u3"], "merchant_id": ["m2"]}}]
    for body in bodies:
        r = server.post(GET, body)
        assert r.status_code == 200, r.text
    assert server.post(GET, {"features": ["user_spend:amount"], "entities": {"user_id": ["u1"]}}).status_code == 200
    with FeatureClient(server.url) as client:
        client.get_online_features(features=SERVICE, entity_rows=[{"user_id": "u2", "merchant_id": "m2"}])
    assert not (repo / "data/feature_logs").exists() or not list((repo / "data/feature_logs").rglob("*.parquet"))
    server.stop()                                  # lifespan shutdown: the queue is written
    logs = FeatureStore(repo).read_feature_logs(SERVICE).to_pylist()
    assert [r["user_id"] for r in logs] == ["u1", "u2", "u9", "u3", "u2"]
    assert len({r["__request_id"] for r in logs}) == 3
    sdk = FeatureStore(repo)
    rows = [{"user_id": r["user_id"], "merchant_id": r["merchant_id"]} for r in logs]
    want = sdk.get_online_features(features=SERVICE, entity_rows=rows)
    d, statuses = want.to_dict(), want.statuses
    for i, row in enumerate(logs):
        assert row["user_spend__amount"] == d["amount"][i]
        assert row["user_spend__amount__status"] == statuses["amount"][i]
        assert row["pair_stats__last_country__status"] == statuses["last_country"][i]
