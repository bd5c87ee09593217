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
    with pytest.raises(InvalidRequestError, match=r"join key 'user_id' = 7 has type int.*String"):
        fs.get_online_features(["user_spend:amount"], [{"user_id": "u1"}, {"user_id": 7}])
    ok = fs.get_online_features(["user_spend:amount"], [{"user_id": "u1"}])
    assert ok.to_dict()["amount"] == [140.0]


@pytest.mark.parametrize("fault", ["read-only", "full"])
def test_the_default_sqlite_store_serves_on_a_read_only_or_full_disk(repo, tmp_path, fault):
    """The default layout (registry and SQLite online store in the repo's data/ directory) on a
    read-only or full filesystem: a process started afterwards serves (the file alone holds
    every commit, and no ``-shm`` file can be created), and /ready's ping answers; a write names
    the real cause instead of "check online_store.path" (docs/server.md, "The registry on a
    faulty disk")."""
    from tests.integration.test_registry_disk_faults import fill, remount_ro, tmpfs

    with tmpfs(tmp_path / "mnt", size="8m") as mount:
        config = {"project": "rofs", "registry": str(mount / "registry.db"),
                  "online_store": {"type": "sqlite", "path": str(mount / "online.db")}}
        fs = FeatureStore(repo, config=config, clock=lambda: T)
        fs.apply([user, spend_view()])
        fs.materialize_incremental()
        fs.online_store.close()
        assert not (mount / "online.db-wal").exists()   # a clean close leaves the file whole
        if fault == "full":
            fill(mount)
        else:
            remount_ro(mount)
        served = FeatureStore(repo, config=config, clock=lambda: T)
        resp = served.get_online_features(["user_spend:amount"], [{"user_id": "u1"}])
        assert resp.store_error is None
        assert resp.statuses["amount"] == ["PRESENT"] and resp.to_dict()["amount"] == [140.0]
        served.online_store.ping()
        with pytest.raises(OnlineStoreError) as e:
            served.materialize_incremental()
        words = "read-only" if fault == "read-only" else "full"
        assert words in e.value.message and "online_store.path" not in (e.value.hint or "")
        served.online_store.close()
