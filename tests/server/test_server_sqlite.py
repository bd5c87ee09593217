"""The feature server over a SQLite repo: the same answers as the SDK, Feast's shapes, the
error contract, readiness, metrics, concurrent clients and FeatureClient."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx
import pytest

from skewless import FeatureClient, FeatureStore
from skewless.client import FeatureServerError
from skewless.errors import InvalidRequestError, UnknownObjectError

from .conftest import SERVICE, assert_same, definitions, make_repo

GET = "/get-online-features"
SPEND = ["user_spend:amount", "user_spend:n_txn"]


@pytest.mark.parametrize("request_body, sdk_args", [
    ({"features": SPEND, "entities": {"user_id": ["u1", "u2", "u3", "u9"]}},
     (SPEND, [{"user_id": u} for u in ["u1", "u2", "u3", "u9"]], False)),
    ({"features": SPEND + ["pair_stats:last_country"], "full_feature_names": True,
      "entities": {"user_id": ["u1", "u2", "u1"], "merchant_id": ["m1", "m1", "m9"]}},
     (SPEND + ["pair_stats:last_country"],
      [{"user_id": "u1", "merchant_id": "m1"}, {"user_id": "u2", "merchant_id": "m1"},
       {"user_id": "u1", "merchant_id": "m9"}], True)),
    ({"feature_service": SERVICE, "entities": {"user_id": ["u1", "u2"], "merchant_id": ["m1", "m1"]}},
     (SERVICE, [{"user_id": "u1", "merchant_id": "m1"}, {"user_id": "u2", "merchant_id": "m1"}], False)),
    ({"features": ["user_spend:*"], "entities": {"user_id": []}}, (["user_spend:*"], [], False)),
    # a null key: NOT_FOUND for that row, the others served (docs/online.md)
    ({"features": SPEND, "entities": {"user_id": ["u1", None] * 50}},
     (SPEND, [{"user_id": u} for u in ["u1", None] * 50], False)),
    ({"features": SPEND + ["pair_stats:last_country"],
      "entities": {"user_id": ["u1", None, "u1", None], "merchant_id": ["m1", "m1", None, None]}},
     (SPEND + ["pair_stats:last_country"],
      [{"user_id": "u1", "merchant_id": "m1"}, {"user_id": None, "merchant_id": "m1"},
       {"user_id": "u1", "merchant_id": None}, {"user_id": None, "merchant_id": None}], False)),
], ids=["features", "composite_full_names", "feature_service", "no_rows", "null_key", "composite_null_part"])
def test_server_answers_what_the_sdk_answers(sqlite_repo, sqlite_server, request_body, sdk_args):
    r = sqlite_server.post(GET, request_body)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json")
    sdk = FeatureStore(sqlite_repo).get_online_features(*sdk_args)
    assert_same(r.json(), sdk)


def test_a_null_key_is_not_found_not_a_400(sqlite_server):
    body = {"features": SPEND + ["pair_stats:last_country"],
            "entities": {"user_id": ["u1", None, "u1"], "merchant_id": ["m1", "m1", None]}}
    r = sqlite_server.post(GET, body)
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert results[0]["values"] == ["u1", None, "u1"]           # keys echoed as sent
    assert results[2]["statuses"] == ["PRESENT", "NOT_FOUND", "PRESENT"]     # amount
    assert results[2]["values"][1] is None and results[2]["event_timestamps"][1] is None
    st = results[4]["statuses"]   # last_country (stored for u1/m1, stale by now: OUTSIDE_TTL)
    assert st[0] != "NOT_FOUND" and st[1:] == ["NOT_FOUND", "NOT_FOUND"]
    # a key of the wrong type is still a 400
    r = sqlite_server.post(GET, {"features": SPEND, "entities": {"user_id": [None, 1.5]}})
    assert r.status_code == 400 and "1.5" in r.json()["message"]


def test_feast_shape_join_keys_first_with_types(sqlite_server):
    body = sqlite_server.post(GET, {"features": SPEND, "entities": {"user_id": ["u1", "u9"]}}).json()
    assert body["metadata"] == {"feature_names": ["user_id", "amount", "n_txn"],
                                "feature_types": [None, "Float64", "Int64"]}
    key, amount, n = body["results"]
    assert key == {"values": ["u1", "u9"], "statuses": ["PRESENT", "PRESENT"],
                   "event_timestamps": ["1970-01-01T00:00:00Z"] * 2}
    assert amount == {"values": [140.0, None], "statuses": ["PRESENT", "NOT_FOUND"],
                      "event_timestamps": ["2024-02-05T00:00:00Z", None]}
    assert n["values"] == [3, None]


def _error(server, status: int, code: str, *, body=None, content: bytes | None = None,
           match: str = "") -> dict:
    r = server.post(GET, body, content=content)
    assert r.status_code == status, r.text
    err = r.json()
    assert set(err) == {"code", "message", "hint"} and err["code"] == code, err
    assert match in err["message"], err
    return err


def test_error_contract(sqlite_server):
    s = sqlite_server
    ok_entities = {"user_id": ["u1"]}
    _error(s, 400, "not_found", body={"features": ["user_spend:nope"], "entities": ok_entities},
           match="has no feature 'nope'")
    _error(s, 400, "not_found", body={"features": ["usr_spend:amount"], "entities": ok_entities},
           match="did you mean 'user_spend'")
    _error(s, 400, "invalid_request", body={"features": SPEND, "entities": {"user_id": [7]}},
           match="join key 'user_id' = 7")
    _error(s, 400, "invalid_request", body={"features": SPEND, "entities": {"user_id": [1.5]}},
           match="user_id")
    _error(s, 400, "invalid_request", body={"features": SPEND, "entities": {"merchant_id": ["m1"]}},
           match="no join key 'user_id'")
    _error(s, 400, "invalid_request", content=b'{"features": ["user_spend:amount"], "entities": {',
           match="not valid JSON")
    _error(s, 400, "invalid_request", content=b"", match="empty")
    _error(s, 400, "invalid_request", content=b"[1, 2]", match="must be a JSON object")
    _error(s, 400, "invalid_request", body={"features": "user_spend:amount", "entities": ok_entities},
           match="'features' must be an array")
    _error(s, 400, "invalid_request", body={"features": SPEND, "feature_service": SERVICE,
                                            "entities": ok_entities}, match="not both")
    _error(s, 400, "invalid_request", body={"entities": ok_entities}, match="no features")
    _error(s, 400, "invalid_request", body={"features": SPEND, "entities": ok_entities, "entity": 1},
           match="unknown field 'entity'")
    _error(s, 400, "invalid_request", body={"features": SPEND, "entities": {"user_id": ["u1"],
                                                                           "merchant_id": []}},
           match="has 0 values")
    _error(s, 400, "invalid_request", body={"features": SPEND, "entities": {}}, match="no join key")
    _error(s, 400, "invalid_request", body={"features": SPEND, "entities": ok_entities,
                                            "full_feature_names": "yes"}, match="true or false")
    _error(s, 404, "not_found", body={"feature_service": "fraud_v9", "entities": ok_entities},
           match="feature service 'fraud_v9'")
    _error(s, 404, "not_found", body={"feature_service": "a:b", "entities": ok_entities})


def test_unknown_routes_and_methods_are_json_errors(sqlite_server):
    r = sqlite_server.get("/nope")
    assert r.status_code == 404 and r.json()["code"] == "not_found"
    r = sqlite_server.get(GET)
    assert r.status_code == 405 and r.json()["code"] == "method_not_allowed"


def test_health_and_ready(sqlite_server):
    assert sqlite_server.get("/health").json() == {"status": "ok"}
    r = sqlite_server.get("/ready")
    assert r.status_code == 200
    assert r.json() == {"ready": True, "online_store": "ok", "views": ["pair_stats", "user_spend"],
                        "not_materialized": [], "registry": "ok"}


def test_ready_only_after_materialize(tmp_path, serve):
    repo = make_repo(tmp_path / "cold")
    fs = FeatureStore(repo)
    server = serve(repo)
    r = server.get("/ready")  # nothing registered yet
    assert r.status_code == 503 and r.json()["code"] == "not_ready"
    fs.apply(definitions())
    r = server.get("/ready")  # registered, never materialized: a load balancer must wait
    assert r.status_code == 503, r.text
    body = r.json()
    assert body["ready"] is False and body["online_store"] == "ok" and body["registry"] == "ok"
    assert sorted(body["not_materialized"]) == ["pair_stats", "user_spend"]
    assert "materialize" in body["hint"]
    fs.materialize_incremental(views=["user_spend"])
    assert server.get("/ready").json()["not_materialized"] == ["pair_stats"]
    fs.materialize_incremental()
    r = server.get("/ready")
    assert r.status_code == 200 and r.json()["ready"] is True


def test_metrics_after_traffic(sqlite_server):
    sqlite_server.post(GET, {"features": SPEND, "entities": {"user_id": ["u1", "u9"]}})
    sqlite_server.post(GET, {"features": ["user_spend:nope"], "entities": {"user_id": ["u1"]}})
    r = sqlite_server.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    text = r.text
    for name in ["skewless_http_requests_total", "skewless_http_request_duration_seconds_bucket",
                 "skewless_http_errors_total", "skewless_online_read_duration_seconds_bucket",
                 "skewless_feature_staleness_seconds_bucket", "skewless_served_values_total",
                 "skewless_cache_requests_total"]:
        assert name in text, name
    assert 'skewless_served_values_total{status="PRESENT",view="user_spend"}' in text
    assert 'skewless_served_values_total{status="NOT_FOUND",view="user_spend"}' in text
    assert 'skewless_http_errors_total{code="not_found",endpoint="/get-online-features"}' in text
    assert 'skewless_online_read_duration_seconds_count{view="user_spend"}' in text


def test_openapi_document(sqlite_server):
    doc = sqlite_server.get("/openapi.json").json()
    assert doc["openapi"].startswith("3.")
    assert set(doc["paths"]) >= {GET, "/push", "/health", "/ready", "/metrics"}
    assert "Error" in doc["components"]["schemas"]
    assert sqlite_server.get("/docs").status_code == 200


def test_concurrent_clients_all_correct(sqlite_repo, sqlite_server):
    """8 threads x 200 requests on kept-alive connections, each answer checked."""
    fs = FeatureStore(sqlite_repo)
    users = ["u1", "u2", "u3", "u9"]
    expected = {u: fs.get_online_features(SPEND, [{"user_id": u}]) for u in users}
    failures: list[str] = []
    answered = [0] * 8

    def worker(k: int) -> None:
        with httpx.Client(base_url=sqlite_server.url, timeout=30) as client:
            for i in range(200):
                u = users[(k + i) % len(users)]
                r = client.post(GET, json={"features": SPEND, "entities": {"user_id": [u]}})
                try:
                    assert r.status_code == 200
                    assert_same(r.json(), expected[u])
                except AssertionError:
                    failures.append(f"thread {k} request {i} ({u}): {r.status_code} {r.text[:200]}")
                answered[k] += 1

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(600)
    # what must hold is that every request got its own right answer; how fast depends on the
    # machine's load (a client timeout or a hung server still fails the count)
    assert not any(t.is_alive() for t in threads), "a client thread never finished"
    assert not failures, failures[:5]
    assert answered == [200] * 8


def test_feature_client_round_trip(sqlite_repo, sqlite_server):
    fs = FeatureStore(sqlite_repo)
    rows = [{"user_id": "u1", "merchant_id": "m1"}, {"user_id": "u9", "merchant_id": "m1"}]
    with FeatureClient(sqlite_server.url, timeout=10) as client:
        for args, kwargs in [((SPEND, rows), {}), ((SERVICE, rows), {}),
                             ((), {"feature_service": SERVICE, "entity_rows": rows}),
                             ((SPEND + ["pair_stats:last_country"], rows), {"full_feature_names": True})]:
            got = client.get_online_features(*args, **kwargs)
            want = fs.get_online_features(kwargs.get("feature_service") or args[0],
                                          kwargs.get("entity_rows") or args[1],
                                          kwargs.get("full_feature_names", False))
            assert got.to_dict() == want.to_dict()
            assert got.statuses == want.statuses
            assert got.event_timestamps == want.event_timestamps
            assert got.to_df().equals(want.to_df())
        with pytest.raises(UnknownObjectError, match="has no feature 'nope'") as e:
            client.get_online_features(["user_spend:nope"], rows)
        assert e.value.hint and "describe" in e.value.hint
        with pytest.raises(UnknownObjectError, match="fraud_v9"):
            client.get_online_features(feature_service="fraud_v9", entity_rows=rows)
        with pytest.raises(InvalidRequestError, match="join key 'user_id' = 7"):
            client.get_online_features(SPEND, [{"user_id": 7}])
    with FeatureClient("http://127.0.0.1:1", timeout=2) as dead:
        with pytest.raises(FeatureServerError, match="cannot reach"):
            dead.get_online_features(SPEND, [{"user_id": "u1"}])


def test_serve_refuses_a_repo_without_config(tmp_path: Path):
    import subprocess
    import sys
    out = subprocess.run([sys.executable, "-m", "skewless.cli", "--repo", str(tmp_path), "serve"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 1
    assert "no feature_store.yaml" in out.stderr


def test_workers_restart_when_one_dies(sqlite_repo, serve):
    """--workers 2: a worker that dies is replaced; the port keeps answering meanwhile (a
    connection that was queued on the dead worker's socket is reset: clients retry it)."""
    psutil = pytest.importorskip("psutil")
    server = serve(sqlite_repo, workers=2)
    parent = psutil.Process(server.proc.pid)
    port = int(server.url.rsplit(":", 1)[1])

    def serving() -> list:
        """The worker processes listening on the port (a worker listens once its app is loaded)."""
        out = []
        for c in parent.children():
            try:
                if "spawn_main" in " ".join(c.cmdline()) and c.status() != psutil.STATUS_ZOMBIE and any(
                        k.status == psutil.CONN_LISTEN and k.laddr.port == port
                        for k in c.net_connections(kind="tcp")):
                    out.append(c)
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                pass
        return out
    # /health answered from one worker: the other may still be starting on a loaded machine,
    # and killing the only one listening would leave the port closed for a while
    deadline = time.monotonic() + 120
    while len(first := serving()) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert len(first) == 2, first
    first[0].kill()
    deadline = time.monotonic() + 120  # a replacement imports skewless afresh: slow under load
    while time.monotonic() < deadline:
        for attempt in range(5):
            try:
                r = server.post(GET, {"features": SPEND, "entities": {"user_id": ["u1"]}}, timeout=60)
                break
            except httpx.TransportError:  # reset: it was queued on the dead worker's socket
                if attempt == 4:
                    raise
        assert r.status_code == 200
        now = serving()
        if len(now) == 2 and first[0].pid not in {c.pid for c in now}:
            break
        time.sleep(0.2)
    else:
        raise AssertionError(f"no replacement worker: {parent.children()}")
