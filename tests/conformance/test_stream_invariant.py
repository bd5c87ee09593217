"""The online invariant through the stream consumer (docs/streams.md), on every online store.

Generated event streams (late and out-of-order events, identical duplicates, bursts on one key,
null values, events older than a view's TTL, malformed entries among them) are consumed from a
real Redis Stream by ``StreamIngest`` in generated batch sizes. Then, for every entity and both
views: ``get_online_features`` at t == ``get_historical_features`` at t (values and nulls);
every well-formed entry is offline exactly once and every malformed one is in the dead-letter
stream. Then every batch is redelivered as it was delivered (a crash before its XACK):
nothing changes offline or online.

Every installed online store joins (skewless.backends), configured by its ``Backend.testing``;
one throwaway redis-server holds the streams. STREAM_EXAMPLES sets the examples per store (8).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from skewless import Entity, FeatureStore, FeatureView, Field, FileSource, PushSource
from skewless.testing.backends import BackendTesting, installed
from skewless.testing.redis_server import RedisServer, redis_server, require_redis_server_binary
from skewless.types import Float64, Int64

require_redis_server_binary(module_level=True)

from skewless.services.ingest import BatchDone, StreamIngest, StreamSpec  # noqa: E402

import redis  # noqa: E402 - after the skip

ONLINE = installed("online_store")
EXAMPLES = int(os.environ.get("STREAM_EXAMPLES", "8"))
UTC = timezone.utc
USERS = ["a", "b", "c", "d"]

user = Entity("user", join_keys=["user_id"])


def views() -> list[FeatureView]:
    push = PushSource("events", FileSource("data/events", timestamp_field="ts",
                                           created_timestamp_column="created"))
    return [
        FeatureView(name="latest", entities=[user], ttl=None, source=push,
                    schema=[Field("amount", Float64), Field("n", Int64)]),
        FeatureView(name="recent", entities=[user], ttl=timedelta(minutes=30), source=push,
                    schema=[Field("amount", Float64)]),
    ]


@st.composite
def streams(draw: Any) -> tuple[list[dict[str, str]], int, int]:
    """(entries, how many are malformed, batch size). Event ages in seconds: within the TTL or
    beyond it, late ones after newer ones, bursts (several events of one key), exact
    duplicates, null amounts. Conflicting rows never tie on (event, created) time: the contract
    leaves their winner unspecified (skewless.testing.pit), and one batch shares a created time."""
    entries: list[dict[str, str]] = []
    bad = 0
    k = 0   # a microsecond apart: rows of one key never tie on event time unless exact copies
    for _ in range(draw(st.integers(1, 30))):
        kind = draw(st.sampled_from(["ok"] * 6 + ["dup", "burst", "bad"]))
        if kind == "bad":
            entries.append(draw(st.sampled_from([
                {"data": "{oops"},
                {"data": json.dumps({"user_id": "a", "ts": "2024-01-01T00:00:00Z", "amount": "x", "n": 1})},
                {"data": json.dumps({"user_id": "a", "amount": 1.0, "n": 1})},
                {"data": json.dumps({"user_id": None, "ts": "2024-01-01T00:00:00Z", "amount": 1.0, "n": 1})},
            ])))
            bad += 1
            continue
        n = draw(st.integers(2, 5)) if kind == "burst" else 1
        uid = draw(st.sampled_from(USERS))
        for _ in range(n):
            k += 1
            age = draw(st.sampled_from([5, 60, 1799, 1801, 3600, 7200])) + draw(st.integers(0, 3)) + k * 1e-6
            amount = draw(st.one_of(st.none(), st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)))
            data = {"uid": uid, "age": age, "amount": amount, "n": draw(st.integers(-5, 5))}
            entries.append({"data": json.dumps(data)})   # timestamps filled in at XADD time
            if kind == "dup":
                entries.append({"data": json.dumps(data)})
    return entries, bad, draw(st.integers(1, 8))


@pytest.fixture(scope="module")
def server() -> Iterator[RedisServer]:
    with redis_server() as s:
        yield s


@pytest.fixture(params=sorted(ONLINE))
def online_store(request: pytest.FixtureRequest) -> tuple[str, BackendTesting]:
    return request.param, ONLINE[request.param][1]


def _entry(template: dict[str, str], now: datetime) -> dict[str, str]:
    d = json.loads(template["data"]) if template["data"].startswith("{\"uid\"") else None
    if d is None:
        return template
    ts = (now - timedelta(seconds=d["age"])).isoformat()
    return {"data": json.dumps({"user_id": d["uid"], "ts": ts, "amount": d["amount"], "n": d["n"]})}


def _offline_rows(repo: Path) -> int:
    return sum(pq.read_metadata(p).num_rows for p in (repo / "data/events").glob("push-*.parquet"))


def _check(store: FeatureStore, at: datetime) -> None:
    """online at ``at`` == the offline join at ``at``, every user, every feature."""
    refs = ["latest:amount", "latest:n", "recent:amount"]
    store.clock = lambda: at
    online = store.get_online_features(refs, [{"user_id": u} for u in USERS],
                                       full_feature_names=True).to_dict()
    offline = store.get_historical_features(
        pd.DataFrame({"user_id": USERS, "event_timestamp": [at] * len(USERS)}), refs,
        full_feature_names=True).to_df()
    for col in ("latest__amount", "latest__n", "recent__amount"):
        want = [None if pd.isna(v) else v for v in offline[col].tolist()]
        assert online[col] == want, (col, online[col], want)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                       HealthCheck.too_slow])
@given(stream=streams())
def test_stream_ingest_keeps_online_equal_to_offline(stream: tuple[list[dict[str, str]], int, int],
                                                     server: RedisServer,
                                                     online_store: tuple[str, BackendTesting]) -> None:
    entries, bad, batch_size = stream
    name, testing = online_store
    project = f"stream_{uuid.uuid4().hex[:10]}"
    repo = Path(tempfile.mkdtemp(prefix="skewless-stream-"))
    key = f"events-{uuid.uuid4().hex[:8]}"
    r = redis.Redis(port=server.port, decode_responses=True)
    store = None
    try:
        (repo / "data/events").mkdir(parents=True)
        t0 = pd.Timestamp("2024-01-01", tz="UTC")
        pd.DataFrame({"user_id": ["seed"], "ts": [t0], "created": [t0], "amount": [0.0], "n": [0]}
                     ).to_parquet(repo / "data/events/part-0.parquet")
        store = FeatureStore(repo, config={
            "project": project, "registry": "data/registry.db", "offline_store": {"type": "duckdb"},
            "online_store": {"type": name, **testing.settings()}})
        store.apply([user, *views()])
        now = datetime.now(UTC)
        for e in entries:
            r.xadd(key, _entry(e, now))
        done: list[BatchDone] = []
        spec = StreamSpec(url=f"redis://127.0.0.1:{server.port}/0", key=key, group="g",
                          consumer="c", batch_size=batch_size, block_ms=50)
        w = StreamIngest(store, "events", spec, on_batch=done.append, log=lambda m: None)
        stats = w.run(max_entries=len(entries))
        good = len(entries) - bad
        assert stats.ingested == good and stats.dead == bad
        assert r.xlen(f"{key}:dead") == bad and int(r.xpending(key, "g")["pending"]) == 0
        assert _offline_rows(repo) == good                 # every well-formed entry once
        at = datetime.now(UTC)
        _check(store, at)
        # every batch redelivered as it was delivered: nothing changes
        by_id = dict(r.xrange(key))
        again = StreamIngest(store, "events", spec, log=lambda m: None)
        store.clock = lambda: datetime.now(UTC)
        for b in done:
            assert again.process([(i, by_id[i]) for i in b.entry_ids])
        assert again.stats.redelivered == len(done) and _offline_rows(repo) == good
        _check(store, at)
    finally:
        r.delete(key, f"{key}:dead")
        if store is not None:
            store.online_store.close()
        if testing.cleanup is not None:
            testing.cleanup(project)
        shutil.rmtree(repo, ignore_errors=True)
