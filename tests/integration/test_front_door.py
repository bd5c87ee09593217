"""The one front door: what the CLI and the feature server ask ``FeatureStore`` (readiness, the
online column types, the online views), the runtime context it hands the services, and the
serving path's one registry cache, which the server's column and push caches follow."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

from skewless import FeatureStore, Field
from skewless.errors import MaterializationError, UnknownObjectError
from skewless.server.columns import ColumnCache
from skewless.server.push import PushPreparer
from skewless.types import Float64, Int32, Int64, String

from .conftest import pair, pair_view, spend_view, user

NOW = datetime(2024, 3, 1, tzinfo=timezone.utc)


def open_store(repo: Path, **config: object) -> FeatureStore:
    return FeatureStore(repo, config={"project": "fraud", "registry": "data/registry.db", **config},
                        clock=lambda: NOW)


def test_the_context_holds_what_the_calls_run_with(repo: Path) -> None:
    fs = open_store(repo)
    ctx = fs.context
    assert (ctx.config, ctx.registry, ctx.project, ctx.repo_path) == (fs.config, fs.registry, "fraud", fs.repo_path)
    assert ctx.principal is None and ctx.hooks == () and ctx.now() == NOW
    assert ctx.created_tolerance.total_seconds() == fs.config.created_timestamp_tolerance_seconds
    assert ctx._online is None and ctx._engine is None          # opened on first use
    fs.apply([user, spend_view()])
    assert ctx._engine is None                                  # apply needs no engine
    assert fs.online_store is ctx.raw_online_store and fs.engine is ctx.engine
    assert fs.cache is ctx.online_store and ctx.online_store.store is fs.online_store


def test_writes_through_the_context_keep_the_hot_key_cache_true(repo: Path) -> None:
    """Materialize and push write through the cached front (``ctx.online_store``): a value
    read into the hot-key cache is never served after a write replaced it, with nothing
    clearing the cache by hand."""
    fs = FeatureStore(repo, config={"project": "fraud", "registry": "data/registry.db",
                                    "cache": {"ttl_seconds": 3600}}, clock=lambda: NOW)
    fs.apply([user, spend_view()])
    fs.materialize(None, datetime(2024, 1, 16, tzinfo=timezone.utc))
    first = fs.get_online_features(["user_spend:amount"], [{"user_id": "u1"}]).to_dict()
    assert first["amount"] == [120.0]
    fs.materialize(None, datetime(2024, 1, 21, tzinfo=timezone.utc))
    assert fs.get_online_features(["user_spend:amount"], [{"user_id": "u1"}]).to_dict()["amount"] == [135.0]


def test_readiness_is_a_verdict_of_the_store(repo: Path) -> None:
    fs = open_store(repo)
    fs.apply([user, spend_view()])
    cold = fs.readiness()
    assert not cold.ready and cold.report["code"] == "not_ready"
    assert cold.report["not_materialized"] == ["user_spend"]
    fs.materialize_incremental()
    warm = fs.readiness()
    assert warm.ready and warm.report == {"ready": True, "online_store": "ok", "views": ["user_spend"],
                                          "not_materialized": [], "registry": "ok"}


def test_online_views_and_the_window_check(repo: Path) -> None:
    fs = open_store(repo)
    fs.apply([user, spend_view(), pair, pair_view(online=False)])
    assert [v.name for v in fs.online_views()] == ["user_spend"]
    with pytest.raises(UnknownObjectError, match="user_spnd"):
        fs.online_views(["user_spnd"])
    with pytest.raises(MaterializationError, match="online=False"):
        fs.online_views(["pair_stats"])
    with pytest.raises(MaterializationError, match="in the future"):
        fs.check_materialize_window(None, datetime(2025, 1, 1, tzinfo=timezone.utc))
    fs.check_materialize_window(None, NOW)


def test_online_column_types_come_from_the_serving_plan(repo: Path) -> None:
    fs = open_store(repo)
    fs.apply([user, spend_view(schema=[Field("user_id", String), Field("amount", Float64),
                                       Field("n_txn", Int64)]), pair, pair_view()])
    assert fs.online_column_types(["user_spend:amount", "pair_stats:last_country"], True) == {
        "user_id": "String", "merchant_id": None,   # a key no view declares has no type
        "user_spend__amount": "Float64", "pair_stats__last_country": "String"}


def test_the_server_caches_follow_the_one_registry_cache(repo: Path) -> None:
    """ColumnCache (like PushPreparer) has no TTL of its own: it holds for the serving
    snapshot's version, and follows it once the store re-reads the registry."""
    served = open_store(repo, registry_cache_ttl_seconds=3600)
    served.apply([user, spend_view()])
    served.materialize_incremental()
    columns, pushes = ColumnCache(served), PushPreparer(served)
    resp = served.get_online_features(["user_spend:n_txn"], [{"user_id": "u1"}])
    assert columns.get(["user_spend:n_txn"], False, resp.keys, resp.values) == (None, "Int64")
    assert pushes.timestamp_columns("nope") == frozenset()

    other = open_store(repo)   # another process retypes the field
    other.apply([user, spend_view(schema=[Field("amount", Float64), Field("n_txn", Int32)])], force=True)
    # the serving snapshot is cached (ttl 3600 s): so are the types
    assert columns.get(["user_spend:n_txn"], False, resp.keys, resp.values) == (None, "Int64")
    served._serving = None     # what the registry cache's TTL running out does
    assert columns.get(["user_spend:n_txn"], False, resp.keys, resp.values) == (None, "Int32")
