"""The serving fallback chain against a real, test-owned Redis that the test kills: online store
-> in-process cache (views with fallback="cache", never past the view's ttl) -> on_missing
(null, default, or fail closed); and the opt-in hot-key cache. Nothing hangs: each read after
the kill returns within the store's timeout."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from skewless import FeatureStore
from skewless.errors import FeatureUnavailableError
from skewless.testing.clock import Clock
from skewless.testing.redis_server import redis_server, require_redis_server_binary

from .conftest import spend_view, user

require_redis_server_binary(module_level=True)

T = datetime(2024, 2, 9, tzinfo=timezone.utc)  # after every spend row


def make_store(repo, address: str, clock: Clock, **cache: Any) -> FeatureStore:
    return FeatureStore(repo, clock=clock, config={
        "project": "fallback", "registry": "data/registry.db",
        "online_store": {"type": "redis", "connection_string": address,
                         "connect_timeout_seconds": 0.3, "timeout_seconds": 0.3},
        "cache": cache})


def timed(fn, *a, **kw):
    t0 = time.monotonic()
    try:
        return fn(*a, **kw)
    finally:
        assert time.monotonic() - t0 < 3, "a read against a dead store must not hang"


@pytest.mark.parametrize("on_missing, served", [("null", None), ("default", -1.0)])
def test_store_down_serves_cache_then_on_missing(repo, on_missing, served):
    clock = Clock(T)
    with redis_server() as server:
        fs = make_store(repo, server.address, clock)
        fs.apply([user, spend_view(on_missing=on_missing, ttl=timedelta(days=30))])
        fs.materialize_incremental()
        first = fs.get_online_features(["user_spend:amount"], [{"user_id": "u1"}])
        assert first.to_dict()["amount"] == [140.0] and first.store_error is None
        server.kill()
        # u1 was read before the outage: served from the cache; u2 never was: UNAVAILABLE
        resp = timed(fs.get_online_features, ["user_spend:amount"], [{"user_id": "u1"}, {"user_id": "u2"}])
        assert resp.to_dict()["amount"] == [140.0, served]
        # the cached value says so (docs/online.md: the statuses show what was not served live)
        assert resp.statuses["amount"] == ["CACHED", "UNAVAILABLE"]
        assert resp.event_timestamps["amount"][0] == datetime(2024, 2, 5, tzinfo=timezone.utc)
        assert resp.event_timestamps["amount"][1] is None
        assert server.address in (resp.store_error or "")
        assert fs.cache.fallbacks == 1
        # a cached value is never served past the view's ttl (Feb 5 + 30 days)
        clock.now = datetime(2024, 3, 7, tzinfo=timezone.utc)
        stale = timed(fs.get_online_features, ["user_spend:amount"], [{"user_id": "u1"}])
        assert stale.statuses["amount"] == ["OUTSIDE_TTL"] and stale.to_dict()["amount"] == [served]


def test_fail_closed_view_raises_503_when_the_store_is_down(repo):
    clock = Clock(T)
    with redis_server() as server:
        fs = make_store(repo, server.address, clock)
        fs.apply([user, spend_view(on_missing="fail")])
        fs.materialize_incremental()
        assert fs.get_online_features(["user_spend:amount"], [{"user_id": "u1"}]).to_dict()["amount"] == [140.0]
        server.kill()
        # cached: still served
        cached = timed(fs.get_online_features, ["user_spend:amount", "user_spend:n_txn"], [{"user_id": "u1"}])
        assert cached.statuses == {"amount": ["CACHED"], "n_txn": ["CACHED"]}
        assert cached.to_dict()["amount"] == [140.0] and cached.store_error
        with pytest.raises(FeatureUnavailableError, match=r"did not answer.*on_missing='fail'") as err:
            timed(fs.get_online_features, ["user_spend:amount"], [{"user_id": "u3"}])
        assert err.value.http_status == 503 and err.value.to_dict()["code"] == err.value.code


def test_fallback_none_skips_the_cache(repo):
    clock = Clock(T)
    with redis_server() as server:
        fs = make_store(repo, server.address, clock)
        fs.apply([user, spend_view(fallback="none", on_missing="default")])
        fs.materialize_incremental()
        fs.get_online_features(["user_spend:amount"], [{"user_id": "u1"}])
        server.kill()
        resp = timed(fs.get_online_features, ["user_spend:amount", "user_spend:n_txn"], [{"user_id": "u1"}])
        assert resp.to_dict() == {"user_id": ["u1"], "amount": [-1.0], "n_txn": [0]}
        assert resp.statuses == {"amount": ["UNAVAILABLE"], "n_txn": ["UNAVAILABLE"]}


def test_hot_key_cache_answers_without_the_store_within_its_ttl(repo):
    clock = Clock(T)
    with redis_server() as server:
        fs = make_store(repo, server.address, clock, ttl_seconds=60, max_entries=10)
        fs.apply([user, spend_view()])
        fs.materialize_incremental()
        rows = [{"user_id": "u1"}, {"user_id": "u2"}, {"user_id": "nobody"}]
        first = fs.get_online_features(["user_spend:amount"], rows)
        assert (fs.cache.hits, fs.cache.misses) == (0, 3)
        server.kill()
        again = timed(fs.get_online_features, ["user_spend:amount"], rows)
        # answered by the hot-key cache: no store call, so no store error
        assert again.store_error is None and (fs.cache.hits, fs.cache.misses) == (3, 3)
        assert again.to_dict() == first.to_dict() and again.statuses == first.statuses
        # a key not cached yet still goes to the (dead) store, through the fallback chain
        mixed = timed(fs.get_online_features, ["user_spend:amount"], [{"user_id": "u3"}, {"user_id": "u1"}])
        assert mixed.statuses["amount"] == ["UNAVAILABLE", "PRESENT"] and mixed.store_error


def test_hot_key_cache_expires(repo):
    with redis_server() as server:
        fs = make_store(repo, server.address, Clock(T), ttl_seconds=0.05)
        fs.apply([user, spend_view()])
        fs.materialize_incremental()
        fs.get_online_features(["user_spend:amount"], [{"user_id": "u1"}])
        time.sleep(0.06)
        fs.get_online_features(["user_spend:amount"], [{"user_id": "u1"}])
        assert (fs.cache.hits, fs.cache.misses) == (0, 2)


def test_cached_values_are_marked_with_the_hot_key_cache_on_and_in_many(repo):
    """Hot-key hits are live answers (PRESENT); values the fallback served while the store was
    down are CACHED, in a mixed request and through get_online_features_many alike."""
    clock = Clock(T)
    with redis_server() as server:
        fs = make_store(repo, server.address, clock, ttl_seconds=3600)
        fs.apply([user, spend_view(ttl=timedelta(days=30))])
        fs.materialize_incremental()
        fs.get_online_features(["user_spend:amount"], [{"user_id": "u1"}, {"user_id": "u2"}])
        healthy = fs.get_online_features(["user_spend:amount"], [{"user_id": "u1"}])
        assert healthy.statuses["amount"] == ["PRESENT"] and healthy.store_error is None
        fs.cache.forget_hot()
        fs.get_online_features(["user_spend:amount"], [{"user_id": "u1"}])   # u1 hot again
        server.kill()
        resp = timed(fs.get_online_features, ["user_spend:amount"],
                     [{"user_id": "u1"}, {"user_id": "u2"}, {"user_id": "u3"}])
        assert resp.statuses["amount"] == ["PRESENT", "CACHED", "UNAVAILABLE"]
        assert resp.to_dict()["amount"] == [140.0, 89.0, None] and resp.store_error
        (many,) = fs.get_online_features_many([(["user_spend:amount"], [{"user_id": "u2"}], False)])
        assert not isinstance(many, Exception) and many.statuses["amount"] == ["CACHED"]
