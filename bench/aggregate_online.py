"""Online windowed aggregations: read latency of aggregated features, side by side with a plain
feature read and the raw store read, and push -> readable latency.

    .venv/bin/python bench/aggregate_online.py                       # SQLite, ~1 minute
    .venv/bin/python bench/aggregate_online.py --stores sqlite,redis --keys 2000 --iterations 3000

Data: ``--keys`` users, each with an event every 30 minutes over 8 days (amount: float64),
materialized with skewless itself (``materialize_incremental``) into a fresh SQLite file (and
the Redis at ``--redis`` under a unique project, dropped at the end). The aggregated view
serves 9 features: sum, count and mean of amount over 1 h (5-minute tiles), 1 d and 7 d
(1-hour tiles), so a read merges 13 + 169 tiles per key. The plain view serves 9 float64
features of the same users.

Cases, timed interleaved in one process (``perf_counter_ns`` per call; nearest-rank
percentiles):

- ``agg 1x9``     ``get_online_features`` of 1 user x the 9 aggregated features
- ``plain 1x9``   ``get_online_features`` of 1 user x 9 plain features (the baseline of the 3x rule)
- ``raw 1``       SQLite: the point ``SELECT`` of the user's tile record, no decoding (Redis: GET)
- ``agg 100x9``, ``plain 100x9``: 100 distinct users
- ``push``        ``store.push`` of one event (offline Parquet file, then the online tiles)
                  followed by the read that sees it: push -> readable, in process; and the
                  same with ``to="online"`` (no Parquet file written and fsynced).

``--gc-freeze`` moves what the set-up allocated out of the collector's reach (``gc.freeze()``)
before timing, as ``skewless serve`` does at startup (docs/online.md, "Latency in process"):
without it, a full collection walks the ~80k objects of the imports (pandas, pyarrow, scipy)
and stops the read it lands in for ~40 ms on this machine, about one 100-key read in a hundred.
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import shutil
import sqlite3
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from skewless import Aggregation, Entity, FeatureStore, FeatureView, Field, FileSource, PushSource
from skewless.online.codec import encode_key
from skewless.types import Float64, Int64

T0 = datetime(2024, 5, 1, tzinfo=timezone.utc)
DAYS = 8
WINDOWS = (timedelta(hours=1), timedelta(days=1), timedelta(days=7))


def pct(xs: list[int], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, max(0, int(round(q / 100 * len(s) + 0.5)) - 1))] / 1000   # us


def build(repo: Path, keys: int, online: dict, project: str) -> tuple[FeatureStore, datetime]:
    (repo / "data" / "tx").mkdir(parents=True)
    n = DAYS * 48
    users = np.repeat(np.arange(keys, dtype=np.int64), n)
    ts = np.tile(np.arange(n, dtype=np.int64) * 1800_000_000, keys) + int(T0.timestamp() * 1e6)
    rng = np.random.default_rng(1)
    pq.write_table(pa.table({"user_id": users, "ts": pa.array(ts, pa.timestamp("us", "UTC")),
                             "amount": rng.normal(50, 20, len(users))}),
                   repo / "data" / "tx" / "base.parquet")
    pq.write_table(pa.table({"user_id": np.arange(keys, dtype=np.int64),
                             "ts": pa.array([T0] * keys, pa.timestamp("us", "UTC")),
                             **{f"f{i}": rng.normal(0, 1, keys) for i in range(9)}}),
                   repo / "data" / "plain.parquet")
    end = T0 + timedelta(days=DAYS)
    now = [end]
    fs = FeatureStore(repo, config={"project": project, "online_store": online,
                                    "registry_cache_ttl_seconds": 60}, clock=lambda: now[0])
    user = Entity("user", join_keys=["user_id"])
    agg = FeatureView("agg", entities=[user], schema=[Field("user_id", Int64), Field("amount", Float64)],
                      source=PushSource("tx", batch_source=FileSource("data/tx", "ts")),
                      aggregations=[Aggregation("amount", f, w) for w in WINDOWS
                                    for f in ("sum", "count", "mean")])
    plain = FeatureView("plain", entities=[user], schema=[Field(f"f{i}", Float64) for i in range(9)],
                        source=FileSource("data/plain.parquet", "ts"))
    fs.apply([user, agg, plain])
    t = time.perf_counter()
    fs.materialize_incremental(end)
    print(f"  materialized {keys} keys x {n} events in {time.perf_counter() - t:.1f} s")
    fs._bench_clock = now  # type: ignore[attr-defined]
    return fs, end


def run(store_type: str, keys: int, iterations: int, redis_url: str, gc_freeze: bool = False) -> None:
    repo = Path(tempfile.mkdtemp(prefix="bench-agg-"))
    project = f"bench_{uuid.uuid4().hex[:8]}"
    online = {"type": "sqlite", "path": str(repo / "online.db")} if store_type == "sqlite" else \
        {"type": "redis", "connection_string": redis_url}
    print(f"{store_type}:{' (gc.freeze after set-up)' if gc_freeze else ''}")
    fs, end = build(repo, keys, online, project)
    agg_refs = [f"agg:{a.feature_name}" for a in fs.get_feature_view("agg").aggregations]
    plain_refs = [f"plain:f{i}" for i in range(9)]
    rng = random.Random(2)
    table = fs.snapshot().online_table("agg")
    raw = None
    if store_type == "sqlite":
        con = sqlite3.connect(repo / "online.db")
        sql = 'SELECT k, ts, cts, v FROM "t_' + table + '" WHERE k = ?'
        raw = lambda k: con.execute(sql, (encode_key((k,)),)).fetchall()  # noqa: E731
    else:
        import redis as redis_py
        r = redis_py.Redis.from_url(f"redis://{redis_url}")
        store = fs.online_store.store if hasattr(fs.online_store, "store") else fs.online_store
        gen = store._cached()[0][table]  # the table's live generation (its keys' prefix)
        raw = lambda k: r.get(b"sk:" + gen + b":" + encode_key((k,)))  # noqa: E731
    assert fs.get_online_features(agg_refs, [{"user_id": 0}]).to_dict()["amount_count_7d"][0] > 0
    cases = {
        "agg 1x9": lambda: fs.get_online_features(agg_refs, [{"user_id": rng.randrange(keys)}]),
        "plain 1x9": lambda: fs.get_online_features(plain_refs, [{"user_id": rng.randrange(keys)}]),
        "raw 1": lambda: raw(rng.randrange(keys)),
        "agg 100x9": lambda: fs.get_online_features(agg_refs, [{"user_id": k} for k in rng.sample(range(keys), 100)]),
        "plain 100x9": lambda: fs.get_online_features(plain_refs, [{"user_id": k} for k in rng.sample(range(keys), 100)]),
    }
    times: dict[str, list[int]] = {c: [] for c in cases}
    for c, f in cases.items():   # warm up
        for _ in range(50):
            f()
    os.sync()   # the set-up's ~30 MB of dirty pages go to disk now, not under the timed fsyncs
    gcs = gc.get_stats()[2]["collections"]
    if gc_freeze:
        gc.collect()
        gc.freeze()
    for i in range(iterations):   # interleaved: every case sees the same machine state
        for c, f in cases.items():
            if c.endswith("100x9") and i % 10:
                continue
            t = time.perf_counter_ns()
            f()
            times[c].append(time.perf_counter_ns() - t)
    # push -> readable: one event per push at the clock, then the read that must see it
    clock = fs._bench_clock  # type: ignore[attr-defined]
    push_times: list[int] = []
    for i in range(min(iterations, 300)):
        clock[0] = end + timedelta(seconds=i + 1)
        k = rng.randrange(keys)
        before = fs.get_online_features(["agg:amount_count_1h"], [{"user_id": k}]).to_dict()["amount_count_1h"][0]
        t = time.perf_counter_ns()
        fs.push("tx", {"user_id": [k], "ts": [clock[0] - timedelta(microseconds=1)], "amount": [1.0]})
        clock[0] += timedelta(microseconds=1)
        got = fs.get_online_features(["agg:amount_count_1h"], [{"user_id": k}]).to_dict()["amount_count_1h"][0]
        push_times.append(time.perf_counter_ns() - t)
        assert got == before + 1, (got, before)
    times["push -> readable"] = push_times
    # the same, to="online": no Parquet file (the online tile update and the read only)
    online_times: list[int] = []
    for i in range(min(iterations, 300)):
        clock[0] = end + timedelta(seconds=1000 + i)
        k = rng.randrange(keys)
        t = time.perf_counter_ns()
        fs.push("tx", {"user_id": [k], "ts": [clock[0] - timedelta(microseconds=1)], "amount": [1.0]},
                to="online")
        fs.get_online_features(["agg:amount_count_1h"], [{"user_id": k}])
        online_times.append(time.perf_counter_ns() - t)
    times["push online ->"] = online_times
    print(f"  {'case':<18}{'n':>7}{'p50 us':>10}{'p99 us':>10}")
    for c, xs in times.items():
        print(f"  {c:<18}{len(xs):>7}{pct(xs, 50):>10.1f}{pct(xs, 99):>10.1f}")
    a, p, r1 = times["agg 1x9"], times["plain 1x9"], times["raw 1"]
    print(f"  ratio agg/plain 1x9: p50 {pct(a, 50) / pct(p, 50):.2f}x, p99 {pct(a, 99) / pct(p, 99):.2f}x; "
          f"agg/raw p50 {pct(a, 50) / pct(r1, 50):.1f}x")
    print(f"  ratio agg/plain 100x9: p50 {pct(times['agg 100x9'], 50) / pct(times['plain 100x9'], 50):.2f}x")
    print(f"  full collections while timed: {gc.get_stats()[2]['collections'] - gcs - gc_freeze}")
    if gc_freeze:
        gc.unfreeze()
    fs.online_store.drop([fs.snapshot().online_table(v) for v in ("agg", "plain")])
    fs.online_store.close()
    shutil.rmtree(repo, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--stores", default="sqlite")
    ap.add_argument("--keys", type=int, default=1000)
    ap.add_argument("--iterations", type=int, default=2000)
    ap.add_argument("--redis", default="127.0.0.1:6379")
    ap.add_argument("--gc-freeze", action="store_true",
                    help="gc.freeze() after the set-up, as `skewless serve` does at startup")
    args = ap.parse_args()
    for s in args.stores.split(","):
        run(s, args.keys, args.iterations, args.redis, args.gc_freeze)


if __name__ == "__main__":
    sys.exit(main())
