"""The online store dies under the server: a test-owned ``redis-server`` (its own port, killed
by its pid). /ready turns 503; a fail-closed view answers 503; other views answer through the
fallback chain (the last cached value, else UNAVAILABLE with the default or null); nothing
hangs: every request returns within a bound."""

from __future__ import annotations

import time

import httpx
import pytest

from skewless.testing.redis_server import redis_server, require_redis_server_binary

require_redis_server_binary(module_level=True)

from skewless import FeatureStore  # noqa: E402
from skewless.services import online as online_svc  # noqa: E402

from ..integration.conftest import spend_view, user  # noqa: E402
from .conftest import make_repo  # noqa: E402

GET = "/get-online-features"
BOUND_S = 3.0   # store timeouts are 0.3 s: a request after the kill must come back well within this
FALLBACK_CHAIN = hasattr(online_svc, "UNAVAILABLE")  # the per-view fallback chain is in the core


def views() -> list:
    if not FALLBACK_CHAIN:
        return [spend_view(name="spend_strict", on_missing="fail"),
                spend_view(name="spend_lenient", on_missing="default")]
    return [spend_view(name="spend_strict", on_missing="fail", fallback="none"),
            spend_view(name="spend_lenient", on_missing="default", fallback="none"),
            spend_view(name="spend_cached", on_missing="null", fallback="cache")]


def timed_post(client: httpx.Client, body: dict) -> httpx.Response:
    t0 = time.monotonic()
    r = client.post(GET, json=body)
    assert time.monotonic() - t0 < BOUND_S, "a request against a dead store must not hang"
    return r


def test_killing_the_store(tmp_path, serve):
    with redis_server() as redis:
        repo = make_repo(tmp_path / "repo", project="outage", online={
            "type": "redis", "connection_string": redis.address,
            "connect_timeout_seconds": 0.3, "timeout_seconds": 0.3})
        fs = FeatureStore(repo)
        fs.apply([user, *views()])
        fs.materialize_incremental()
        fs.online_store.close()
        server = serve(repo, workers=1)  # one worker: its cache is the one the test filled
        assert server.get("/ready").status_code == 200
        with httpx.Client(base_url=server.url, timeout=10) as client:
            ok = timed_post(client, {"features": ["spend_strict:amount"], "entities": {"user_id": ["u1"]}})
            assert ok.status_code == 200 and ok.json()["results"][1]["values"] == [140.0]
            assert "degraded" not in ok.json()["metadata"] and "store_error" not in ok.json()["metadata"]
            if FALLBACK_CHAIN:
                warm = timed_post(client, {"features": ["spend_cached:amount"], "entities": {"user_id": ["u1"]}})
                assert warm.json()["results"][1]["values"] == [140.0]

            redis.kill()

            t0 = time.monotonic()
            r = server.get("/ready")
            assert time.monotonic() - t0 < BOUND_S
            assert r.status_code == 503, r.text
            assert r.json()["online_store"] == "unreachable"
            assert r.json()["code"] == "online_store_unavailable"
            assert redis.address in r.json()["message"]
            assert server.get("/health").status_code == 200  # alive, just not ready

            # fail closed: 503 with a machine-readable code
            r = timed_post(client, {"features": ["spend_strict:amount"], "entities": {"user_id": ["u2"]}})
            assert r.status_code == 503, r.text
            assert r.json()["code"] == ("feature_unavailable" if FALLBACK_CHAIN else "online_store_unavailable")

            r = timed_post(client, {"features": ["spend_lenient:amount", "spend_lenient:n_txn"],
                                    "entities": {"user_id": ["u1", "u2"]}})
            if not FALLBACK_CHAIN:
                assert r.status_code == 503 and r.json()["code"] == "online_store_unavailable"
                return
            assert r.status_code == 200, r.text
            _, amount, n_txn = r.json()["results"]
            assert amount == {"values": [-1.0, -1.0], "statuses": ["UNAVAILABLE"] * 2,
                              "event_timestamps": [None, None]}
            assert n_txn["values"] == [0, 0]

            # the cache fallback: u1 was read before the outage, u3 never was
            r = timed_post(client, {"features": ["spend_cached:amount"], "entities": {"user_id": ["u1", "u3"]}})
            assert r.status_code == 200, r.text
            amount = r.json()["results"][1]
            assert amount["values"] == [140.0, None]
            assert amount["statuses"] == ["CACHED", "UNAVAILABLE"]
            assert amount["event_timestamps"] == ["2024-02-05T00:00:00Z", None]
            meta = r.json()["metadata"]   # the degraded marker the docs promise
            assert meta["degraded"] is True and redis.address in meta["store_error"]
            assert meta["feature_names"] == ["user_id", "amount"]
            from skewless.client import FeatureClient
            with FeatureClient(server.url) as fc:
                got = fc.get_online_features(["spend_cached:amount"], [{"user_id": "u1"}])
                assert got.statuses["amount"] == ["CACHED"] and redis.address in (got.store_error or "")

        metrics = server.get("/metrics").text
        assert "skewless_online_store_fallbacks_total" in metrics
        assert 'skewless_served_values_total{status="UNAVAILABLE",view="spend_lenient"} 4.0' in metrics
        assert 'skewless_http_errors_total{code="feature_unavailable",endpoint="/get-online-features"} 1.0' \
            in metrics
        assert 'skewless_cache_requests_total{result="fallback"} 2.0' in metrics
        assert 'skewless_served_values_total{status="CACHED",view="spend_cached"} 2.0' in metrics


def test_a_hung_store_does_not_queue_requests_behind_each_other(tmp_path, serve):
    """SIGSTOP: the store accepts connections but never answers. Each read waits for the store
    timeout (0.3 s); concurrent requests must wait side by side, not one after the other."""
    import os
    import signal
    import threading

    with redis_server() as redis:
        repo = make_repo(tmp_path / "repo", project="hung", online={
            "type": "redis", "connection_string": redis.address,
            "connect_timeout_seconds": 0.3, "timeout_seconds": 0.3})
        fs = FeatureStore(repo)
        fs.apply([user, spend_view(on_missing="default", **({"fallback": "none"} if FALLBACK_CHAIN else {}))])
        fs.materialize_incremental()
        fs.online_store.close()
        server = serve(repo, workers=1)
        body = {"features": ["user_spend:amount"], "entities": {"user_id": ["u1"]}}
        assert server.post(GET, body).status_code == 200
        assert redis.proc is not None
        os.kill(redis.proc.pid, signal.SIGSTOP)
        try:
            took: list[float] = []
            codes: list[int] = []

            def one() -> None:
                t0 = time.monotonic()
                codes.append(server.post(GET, body, timeout=30).status_code)
                took.append(time.monotonic() - t0)
            n = 16
            threads = [threading.Thread(target=one) for _ in range(n)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(60)
            assert len(took) == n, "a request never came back"
            # One after the other, the last would wait n store timeouts (16 x 0.3 s = 4.8 s) at
            # least; side by side they take about one (the margin absorbs a loaded machine).
            serial = n * 0.3
            assert max(took) < serial, sorted(took)
            assert set(codes) == ({200} if FALLBACK_CHAIN else {503})
            t0 = time.monotonic()
            assert server.get("/health").status_code == 200
            assert time.monotonic() - t0 < serial   # the event loop is not stuck on the store
            r = server.get("/ready")
            assert r.status_code == 503 and r.json()["online_store"] == "unreachable"
        finally:
            os.kill(redis.proc.pid, signal.SIGCONT)
