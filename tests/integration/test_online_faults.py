"""Faults on the online path: an unreachable store leaves the watermark where it was; a key of
the wrong type is named even when the view does not declare its key column."""

from __future__ import annotations

import time
from datetime import datetime, timezone

import pytest

from skewless import FeatureStore
from skewless.errors import InvalidRequestError, OnlineStoreError

from .conftest import spend_view, user

T = datetime(2024, 2, 9, tzinfo=timezone.utc)


def test_unreachable_redis_does_not_advance_the_watermark(repo):
    pytest.importorskip("redis")
    fs = FeatureStore(repo, config={"project": "faults", "online_store": {
        "type": "redis", "connection_string": "127.0.0.1:1"}}, clock=lambda: T)
    fs.apply([user, spend_view()])
    started = time.monotonic()
    with pytest.raises(OnlineStoreError, match="127.0.0.1:1"):
        fs.materialize_incremental()
    assert time.monotonic() - started < 5
    assert fs.registry.get_state("faults", "materialization", "user_spend") is None
    # serving degrades through the fallback chain instead of raising (tests/integration/test_fallback.py)
    resp = fs.get_online_features(["user_spend:amount"], [{"user_id": "u1"}])
    assert resp.statuses["amount"] == ["UNAVAILABLE"] and "127.0.0.1:1" in (resp.store_error or "")


def test_wrong_key_type_is_named_without_a_declared_key_field(repo):
    fs = FeatureStore(repo, config={"project": "faults", "online_store": {"type": "memory"}}, clock=lambda: T)
    fs.apply([user, spend_view()])  # user_id is not in the view's schema; the source says string
    fs.materialize_incremental()
    with pytest.raises(InvalidRequestError, match=r"join key 'user_id' = 7 is a int.*String"):
        fs.get_online_features(["user_spend:amount"], [{"user_id": "u1"}, {"user_id": 7}])
    ok = fs.get_online_features(["user_spend:amount"], [{"user_id": "u1"}])
    assert ok.to_dict()["amount"] == [140.0]
