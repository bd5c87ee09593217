"""Bounded input (docs/server.md, "Request limits"): a request over
``serving.max_entities_per_request`` is refused with a 413 naming the limit and the count
before any work, in the SDK and the server alike; and a large request that is allowed does not
stall a single worker: ``/health`` answers while it is processed."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx
import orjson
import pytest

from skewless import FeatureStore
from skewless.config import config_from_dict
from skewless.errors import ConfigError, RequestTooLargeError

from .conftest import definitions, make_repo

GET = "/get-online-features"
FEATURES = ["user_spend:amount", "user_spend:n_txn"]


def repo_with(tmp_path: Path, limit: int) -> Path:
    repo = make_repo(tmp_path / "repo", serving={"max_entities_per_request": limit})
    fs = FeatureStore(repo)
    fs.apply(definitions())
    fs.materialize_incremental()
    return repo


def test_the_limit_is_configured_with_a_documented_default(tmp_path: Path) -> None:
    assert config_from_dict({"project": "p"}, tmp_path, environ={}).serving.max_entities_per_request == 100_000
    env = {"SKEWLESS_SERVING__MAX_ENTITIES_PER_REQUEST": "5000"}
    assert config_from_dict({"project": "p"}, tmp_path, environ=env).serving.max_entities_per_request == 5000
    with pytest.raises(ConfigError, match="serving.max_entities_per_request"):
        config_from_dict({"project": "p", "serving": {"max_entities_per_request": 0}}, tmp_path, environ={})
    with pytest.raises(ConfigError, match="unknown key 'serving.max_entities'"):
        config_from_dict({"project": "p", "serving": {"max_entities": 5}}, tmp_path, environ={})


def test_the_sdk_refuses_a_request_over_the_limit_before_any_work(tmp_path: Path) -> None:
    fs = FeatureStore(repo_with(tmp_path, 100))
    assert len(fs.get_online_features(FEATURES, [{"user_id": "u1"}] * 100).to_dict()["amount"]) == 100
    # rows that are not even dicts: the limit is checked first, before any row is looked at
    junk: list[Any] = [object()] * 101
    with pytest.raises(RequestTooLargeError) as e:
        fs.get_online_features(FEATURES, junk)
    assert "101 entity rows" in str(e.value) and "limit of 100" in str(e.value)
    assert "serving.max_entities_per_request" in str(e.value) and e.value.http_status == 413
    ok, over = fs.get_online_features_many([(FEATURES, [{"user_id": "u1"}], False), (FEATURES, junk, False)])
    assert not isinstance(ok, Exception) and ok.to_dict()["amount"] == [140.0]
    assert isinstance(over, RequestTooLargeError)


def test_the_server_answers_413_before_any_work(tmp_path: Path, serve) -> None:
    server = serve(repo_with(tmp_path, 1000))
    ok = server.post(GET, {"features": FEATURES, "entities": {"user_id": ["u1"] * 1000}})
    assert ok.status_code == 200, ok.text
    # floats are not valid keys: answering 413 (not 400 for the key) shows no row was looked at
    r = server.post(GET, {"features": FEATURES, "entities": {"user_id": [1.5] * 1001}})
    assert r.status_code == 413, r.text
    body = r.json()
    assert body["code"] == "request_too_large"
    assert "1,001 entity rows" in body["message"] and "limit of 1,000" in body["message"]
    assert "serving.max_entities_per_request" in body["message"] + body["hint"]
    metrics = server.get("/metrics").text
    assert 'skewless_served_values_total{status="PRESENT",view="user_spend"} 2000.0' in metrics
    from skewless import FeatureClient
    with FeatureClient(server.url) as client, pytest.raises(RequestTooLargeError, match="limit of 1,000"):
        client.get_online_features(FEATURES, [{"user_id": "u1"}] * 1001)


def _post_raw(url: str, body: bytes, sent: threading.Event, out: dict[str, Any]) -> None:
    """POST ``body`` on a raw socket; record when the answer's first byte arrives."""
    u = urlparse(url)
    with socket.create_connection((u.hostname, u.port), timeout=300) as s:
        head = (f"POST {GET} HTTP/1.1\r\nHost: {u.hostname}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()
        s.sendall(head + body)
        sent.set()
        first = s.recv(65536)
        out["first_byte"] = time.monotonic()
        out["status"] = first.split(b"\r\n", 1)[0]
        while s.recv(1 << 20):
            pass
        out["done"] = time.monotonic()


def test_health_answers_while_a_large_request_runs_on_one_worker(tmp_path: Path, serve) -> None:
    """One worker, one large (allowed) request of 600,000 entities, which takes seconds to
    decode, read and encode. /health is asked once the request is sent: its answer must come
    before the first byte of the large one's (on the event loop, it came after all of it)."""
    server = serve(repo_with(tmp_path, 1_000_000), workers=1)
    n = 600_000
    body = orjson.dumps({"features": FEATURES, "entities": {"user_id": [f"u{i % 5}" for i in range(n)]}})
    sent, out = threading.Event(), {}
    t = threading.Thread(target=_post_raw, args=(server.url, body, sent, out), daemon=True)
    t.start()
    assert sent.wait(120), "the large request could not be sent"
    time.sleep(0.2)   # let the worker start on it (it takes seconds; the bound below is generous)
    t0 = time.monotonic()
    health = httpx.get(server.url + "/health", timeout=120)
    health_at = time.monotonic()
    t.join(300)
    assert health.status_code == 200
    assert out.get("status", b"").endswith(b"200 OK"), out
    assert health_at < out["first_byte"], (
        f"/health took {health_at - t0:.2f} s and came after the large request's answer "
        f"({out['first_byte'] - t0:.2f} s)")


def test_an_out_of_range_integer_key_is_a_400_naming_it(tmp_path: Path, serve) -> None:
    """JSON integers beyond 64 bits reach the server as floats (orjson): a 400 naming the row,
    the key and the value (docs/online.md, "A null join key"), never a 500."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from datetime import datetime, timezone

    from skewless import Entity, FeatureView, Field, FileSource
    from skewless.types import Float64, Int64

    repo = make_repo(tmp_path / "repo")
    pq.write_table(pa.table({"driver_id": pa.array([1001], pa.int64()),
                             "ts": pa.array([datetime(2024, 1, 1, tzinfo=timezone.utc)], pa.timestamp("us", "UTC")),
                             "rate": [0.5]}), repo / "data/d.parquet")
    driver = Entity("driver", join_keys=["driver_id"])
    fs = FeatureStore(repo)
    fs.apply([driver, FeatureView(name="d", entities=[driver], ttl=None,
                                  schema=[Field("driver_id", Int64), Field("rate", Float64)],
                                  source=FileSource("data/d.parquet", timestamp_field="ts"))])
    fs.materialize_incremental()
    server = serve(repo)
    for key, says in ((2 ** 64, "64-bit"), (2 ** 70, "64-bit"), (-2 ** 63 - 1, "64-bit")):
        r = server.post(GET, content=b'{"features": ["d:rate"], "entities": {"driver_id": [1001, %d]}}' % key)
        assert r.status_code == 400, r.text
        msg = r.json()["message"]
        assert "entity row 1" in msg and "driver_id" in msg and says in msg, msg
    # within 64 bits (even beyond Int64): matches nothing, as offline
    ok = server.post(GET, {"features": ["d:rate"], "entities": {"driver_id": [1001, 2 ** 63 - 1, 2 ** 63]}})
    assert ok.status_code == 200 and ok.json()["results"][1]["statuses"] == ["PRESENT", "NOT_FOUND", "NOT_FOUND"]
