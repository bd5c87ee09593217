"""Freshness benchmark: push -> readable online, and Redis Stream event -> servable.

    .venv/bin/python bench/stream.py                          # 60 s at 5,000 events/s
    .venv/bin/python bench/stream.py --duration 20 --rate 5000 --pushes 500
    .venv/bin/python bench/stream.py --redis redis://127.0.0.1:6379/0
    .venv/bin/python bench/stream.py --only push --pushes 500   # part 1 alone (~10 s)

Two measurements, each side by side with a raw baseline in the same run:

1. **Push -> readable online, in-process** (target p99 <= 5 ms). ``store.push`` of a 1-row batch
   (offline Parquet file written atomically and fsynced, then the SQLite online write), then
   ``get_online_features`` of that entity until it answers the pushed value; timed from before
   the push to the answer. Raw baseline: the same row written by hand, ``pyarrow.parquet``
   write + fsync + link of one file + fsync of the folder, then one SQLite ``INSERT`` + commit and ``SELECT`` back.
   Interleaved with them, round by round: ``push(to="online")`` (no offline file) against the
   raw SQLite write and read alone, which shows how much of the figure is the disk's fsync. The raw loop also
   times its two fsyncs alone (the new file's, the folder's): the part no code can remove.
2. **Redis Stream event -> servable at a sustained rate** (target p99 <= 250 ms at 5,000
   events/s for 60 s, no loss). A producer child process ``XADD``s entries (the ingest format:
   a JSON ``data`` field whose ``ts`` is the producer's clock at ``XADD``) at ``--rate`` for
   ``--duration`` s, paced in 5 ms ticks, over 10,000 users. The consumer (``StreamIngest``, the
   code ``skewless ingest`` runs, in this process) writes each batch offline, then online, then
   ``XACK``s; an event's latency is the end of its batch's online write minus its event time
   (the ``skewless_stream_freshness_seconds`` histogram observes the same). Loss is counted:
   entries sent == rows acknowledged == rows in the push files, none pending, none dead.
   Raw baseline (run first, same rate and duration, another stream key): a consumer that
   ``XREADGROUP``s and ``XACK``s and does nothing else: the floor of delivery latency.

The stream keys live in the Redis at ``--redis`` (the shared one by default) under a unique
name and are deleted at the end. After the stream run, ``compact`` merges the run's push files
and its time is reported.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import format_table, machine_info, print_verdicts  # noqa: E402

UTC = timezone.utc


def pct(values: list[float]) -> dict[str, float]:
    """Nearest-rank percentiles (ms) of latencies in seconds."""
    s = sorted(values)
    n = len(s)
    if not n:
        return {"n": 0, "p50": float("nan"), "p95": float("nan"), "p99": float("nan"), "max": float("nan")}

    def q(p: float) -> float:
        return s[min(n - 1, max(0, int(-(-p * n // 1)) - 1))] * 1000.0
    return {"n": n, "p50": q(0.50), "p95": q(0.95), "p99": q(0.99), "max": s[-1] * 1000.0}


# --- the repo ---------------------------------------------------------------------------------

REPO_PY = '''
from datetime import timedelta
from skewless import Entity, FeatureView, Field, FileSource, PushSource
from skewless.types import Float64, Int64

user = Entity("user", join_keys=["user_id"])
events = PushSource("events", FileSource("data/events", timestamp_field="ts",
                                         created_timestamp_column="created"))
user_live = FeatureView(name="user_live", entities=[user], ttl=None, source=events,
                        schema=[Field("amount", Float64), Field("n", Int64)])
'''


def make_repo(root: Path) -> Any:
    import pandas as pd
    from skewless import FeatureStore
    (root / "data/events").mkdir(parents=True)
    (root / "feature_store.yaml").write_text(
        "project: streambench\nregistry: data/registry.db\n"
        "online_store: {type: sqlite, path: data/online.db}\n")
    (root / "repo.py").write_text(REPO_PY)
    t = pd.Timestamp("2024-01-01", tz="UTC")
    pd.DataFrame({"user_id": ["seed"], "ts": [t], "created": [t], "amount": [0.0], "n": [0]}).to_parquet(
        root / "data/events/part-0.parquet")
    store = FeatureStore(root)
    store.apply_repo(store.load_repo())
    store.materialize(None, datetime.now(UTC))
    return store


# --- 1. push -> readable online ------------------------------------------------------------------

def bench_push(store: Any, root: Path, n: int) -> dict[str, Any]:
    """``n`` rounds, each: a skewless push to online_and_offline, the raw write of the same row,
    a skewless push to online (interleaved, so a drift of the shared machine hits all alike)."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    lat: list[float] = []
    lat_online: list[float] = []
    # raw: one Parquet file written atomically by hand, one SQLite row written and read back
    # (WAL, synchronous=NORMAL: the settings of skewless's SQLite online store)
    raw_dir = root / "raw"
    raw_dir.mkdir()
    con = sqlite3.connect(root / "raw.db", isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=NORMAL")
    con.execute("CREATE TABLE t (k TEXT PRIMARY KEY, ts INTEGER, v REAL)")
    raw: list[float] = []
    raw_online: list[float] = []
    fsync_file: list[float] = []     # the two fsyncs alone: the disk's share of the floor
    fsync_dir: list[float] = []
    schema = pa.schema([("user_id", pa.string()), ("ts", pa.timestamp("us", "UTC")),
                        ("created", pa.timestamp("us", "UTC")), ("amount", pa.float64()), ("n", pa.int64())])

    def skewless(i: int, to: str) -> float:
        ts = datetime.now(UTC) - timedelta(milliseconds=1)
        row = {"user_id": [f"p{i}"], "ts": [ts], "amount": [float(i)], "n": [i]}
        t0 = time.perf_counter()
        store.push("events", row, to=to)
        while True:
            got = store.get_online_features(["user_live:amount"], [{"user_id": f"p{i}"}]).to_dict()
            if got["amount"] == [float(i)]:
                return time.perf_counter() - t0

    for i in range(n):
        lat.append(skewless(2 * i, "online_and_offline"))
        ts = datetime.now(UTC)
        t0 = time.perf_counter()
        table = pa.table({"user_id": [f"p{i}"], "ts": [ts], "created": [ts], "amount": [float(i)],
                          "n": [i]}, schema=schema)
        tmp = raw_dir / f".{i}.tmp"
        with open(tmp, "wb") as fh:
            pq.write_table(table, fh)
            fh.flush()
            f0 = time.perf_counter()
            os.fsync(fh.fileno())
            fsync_file.append(time.perf_counter() - f0)
        os.link(tmp, raw_dir / f"{i}.parquet")
        tmp.unlink()
        dfd = os.open(raw_dir, os.O_RDONLY)     # the link made durable, as push does
        f0 = time.perf_counter()
        os.fsync(dfd)
        fsync_dir.append(time.perf_counter() - f0)
        os.close(dfd)
        t1 = time.perf_counter()
        con.execute("INSERT OR REPLACE INTO t VALUES (?, ?, ?)", (f"p{i}", int(ts.timestamp() * 1e6), float(i)))
        assert con.execute("SELECT v FROM t WHERE k = ?", (f"p{i}",)).fetchone()[0] == float(i)
        t2 = time.perf_counter()
        raw.append(t2 - t0)
        raw_online.append(t2 - t1)
        lat_online.append(skewless(2 * i + 1, "online"))
    con.close()
    return {"skewless": pct(lat), "raw": pct(raw), "skewless_online_only": pct(lat_online),
            "raw_online_only": pct(raw_online), "fsync_file": pct(fsync_file),
            "fsync_dir": pct(fsync_dir), "fsync_both": pct([a + b for a, b in zip(fsync_file, fsync_dir)])}


# --- 2. stream -> servable --------------------------------------------------------------------

def producer(url: str, key: str, rate: int, duration: float) -> None:
    """Child process: XADD ``rate`` entries/s for ``duration`` s; prints the count sent."""
    import redis
    r = redis.Redis.from_url(url)
    tick = 0.005
    per_tick = rate * tick
    sent = 0
    owed = 0.0
    start = time.monotonic()
    next_t = start
    while True:
        now = time.monotonic()
        if now - start >= duration:
            break
        if now < next_t:
            time.sleep(next_t - now)
        next_t += tick
        owed += per_tick
        k = int(owed)
        owed -= k
        if not k:
            continue
        pipe = r.pipeline(transaction=False)
        for _ in range(k):
            ts = datetime.now(UTC).isoformat()
            pipe.xadd(key, {"data": json.dumps({"user_id": f"u{sent % 10_000}", "ts": ts,
                                                "amount": float(sent), "n": sent})})
            sent += 1
        pipe.execute()
    print(json.dumps({"sent": sent, "seconds": time.monotonic() - start}), flush=True)


def start_producer(url: str, key: str, rate: int, duration: float) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, __file__, "--_produce", url, key, str(rate), str(duration)],
                            stdout=subprocess.PIPE, text=True)


def raw_stream(url: str, key: str, rate: int, duration: float) -> dict[str, Any]:
    """XREADGROUP + XACK, nothing else: latency = read time - event time."""
    import redis
    from skewless.times import parse_iso_utc
    r = redis.Redis.from_url(url, decode_responses=True)
    r.xgroup_create(key, "raw", id="0", mkstream=True)
    lat: list[float] = []
    proc = start_producer(url, key, rate, duration)
    acked = 0
    while True:
        got = r.xreadgroup("raw", "c", {key: ">"}, count=1000, block=200)
        now = time.time()
        for _, items in got or []:
            for eid, f in items:
                lat.append(now - parse_iso_utc(json.loads(f["data"])["ts"]).timestamp())
            r.xack(key, "raw", *[eid for eid, _ in items])
            acked += len(items)
        if not got and proc.poll() is not None:
            break
    sent = json.loads(proc.communicate()[0].strip().splitlines()[-1])["sent"]
    return {"latency": pct(lat), "sent": sent, "acked": acked}


def skewless_stream(store: Any, root: Path, url: str, key: str, rate: int, duration: float,
                    batch_size: int) -> dict[str, Any]:
    import redis
    from skewless.services.ingest import BatchDone, StreamIngest, StreamSpec
    lat: list[float] = []
    sizes: list[int] = []

    def done(b: BatchDone) -> None:
        lat.extend(b.servable_at - e for e in b.event_times)
        sizes.append(b.rows)

    logs: list[str] = []
    w = StreamIngest(store, "events", StreamSpec(url=url, key=key, group="g", consumer="c1",
                                                 batch_size=batch_size, block_ms=200),
                     on_batch=done, log=logs.append)
    w._ensure_group()
    t = threading.Thread(target=w.run)
    files_before = len(list((root / "data/events").glob("push-stream-*.parquet")))
    t0 = time.monotonic()
    t.start()
    proc = start_producer(url, key, rate, duration)
    sent = json.loads(proc.communicate()[0].strip().splitlines()[-1])["sent"]
    r = redis.Redis.from_url(url, decode_responses=True)
    deadline = time.monotonic() + 120
    while w.stats.ingested + w.stats.dead < sent and time.monotonic() < deadline:
        time.sleep(0.05)
    drain = time.monotonic() - t0 - duration
    w.stop.set()
    t.join(60)
    import pyarrow.parquet as pq
    files = sorted((root / "data/events").glob("push-stream-*.parquet"))
    offline = sum(pq.read_metadata(f).num_rows for f in files)
    pending = int(r.xpending(key, "g")["pending"])
    # servable: every user's latest event is served
    last = {}
    for i in range(sent):
        last[f"u{i % 10_000}"] = float(i)
    sample = sorted(last)[:: max(1, len(last) // 200)]
    got = store.get_online_features(["user_live:amount"], [{"user_id": u} for u in sample]).to_dict()["amount"]
    served_ok = got == [last[u] for u in sample]
    c0 = time.perf_counter()
    rep = store.compact("events", grace_seconds=0)
    compact_s = time.perf_counter() - c0
    return {"latency": pct(lat), "sent": sent, "acked": w.stats.ingested, "dead": w.stats.dead,
            "offline_rows": offline, "pending": pending, "files": len(files) - files_before,
            "batches": w.stats.batches, "mean_batch": sum(sizes) / max(1, len(sizes)),
            "drain_s": drain, "served_latest_ok": served_ok, "redis_errors": w.stats.reconnects,
            "compact": {"files_merged": sum(rep.merged.values()), "into": len(rep.merged),
                        "rows": rep.rows, "seconds": compact_s}}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    p.add_argument("--rate", type=int, default=5000, help="events/s")
    p.add_argument("--duration", type=float, default=60.0, help="seconds of sustained load")
    p.add_argument("--pushes", type=int, default=1000, help="pushes timed in part 1")
    p.add_argument("--batch-size", type=int, default=1000)
    p.add_argument("--only", choices=("push", "stream"), help="run one of the two measurements")
    p.add_argument("--_produce", nargs=4, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args._produce:
        url, key, rate, duration = args._produce
        producer(url, key, int(rate), float(duration))
        return
    import redis
    root = Path(tempfile.mkdtemp(prefix="skewless-streambench-"))
    tag = uuid.uuid4().hex[:8]
    key, raw_key = f"skewless-bench:{tag}", f"skewless-bench-raw:{tag}"
    r = redis.Redis.from_url(args.redis)
    try:
        print(json.dumps(machine_info()))
        print(f"load: {os.getloadavg()} (1/5/15 min) on {os.cpu_count()} cores")
        store = make_repo(root)
        if args.only != "stream":
            push = bench_push(store, root, args.pushes)
            print("\n1. push -> readable online, in-process, 1-row batches (ms)")
            rows = [[name, v["n"], f"{v['p50']:.2f}", f"{v['p95']:.2f}", f"{v['p99']:.2f}", f"{v['max']:.2f}"]
                    for name, v in (("skewless push (online_and_offline) + read", push["skewless"]),
                                    ("raw parquet write+fsync+link+fsync dir, sqlite write+read", push["raw"]),
                                    ("skewless push (to=online) + read", push["skewless_online_only"]),
                                    ("raw sqlite write+read", push["raw_online_only"]),
                                    ("  of raw: fsync of the new file", push["fsync_file"]),
                                    ("  of raw: fsync of the folder", push["fsync_dir"]),
                                    ("  of raw: both fsyncs", push["fsync_both"]))]
            print(format_table(["method", "n", "p50", "p95", "p99", "max"], rows))
            print(f"p99 ratio skewless / raw: {push['skewless']['p99'] / push['raw']['p99']:.1f}x "
                  f"(online_and_offline), {push['skewless_online_only']['p99'] / push['raw_online_only']['p99']:.1f}x "
                  f"(online only); the two fsyncs alone: p99 {push['fsync_both']['p99']:.2f} ms")
            if args.only == "push":
                print_verdicts([{"met": push["skewless"]["p99"] <= 5.0,
                                 "text": f"push -> readable online p99 {push['skewless']['p99']:.2f} ms <= 5 ms "
                                         f"(the raw floor with the fsyncs: {push['raw']['p99']:.2f} ms; "
                                         f"the fsyncs alone: {push['fsync_both']['p99']:.2f} ms)"}])
                print(json.dumps({"push": push, "load": os.getloadavg()}, default=str))
                return
        else:
            push = None
        raw = raw_stream(args.redis, raw_key, args.rate, args.duration)
        sk = skewless_stream(store, root, args.redis, key, args.rate, args.duration, args.batch_size)
        print(f"\n2. Redis Stream event -> servable, {args.rate:,} events/s for {args.duration:g} s (ms)")
        rows = [[name, v["latency"]["n"], f"{v['latency']['p50']:.1f}", f"{v['latency']['p95']:.1f}",
                 f"{v['latency']['p99']:.1f}", f"{v['latency']['max']:.1f}", v["sent"], v["acked"]]
                for name, v in (("skewless ingest", sk), ("raw XREADGROUP+XACK", raw))]
        print(format_table(["method", "events", "p50", "p95", "p99", "max", "sent", "acked"], rows))
        print(f"p99 ratio skewless / raw: {sk['latency']['p99'] / raw['latency']['p99']:.1f}x")
        print(f"skewless: {sk['batches']} batches (mean {sk['mean_batch']:.0f} rows), {sk['files']} push files, "
              f"offline rows {sk['offline_rows']}, pending {sk['pending']}, dead {sk['dead']}, "
              f"drained {sk['drain_s']:.2f} s after the producer stopped, latest values served: "
              f"{sk['served_latest_ok']}; compaction merged {sk['compact']['files_merged']} files "
              f"({sk['compact']['rows']} rows) into {sk['compact']['into']} in {sk['compact']['seconds']:.2f} s")
        lossless = sk["sent"] == sk["acked"] == sk["offline_rows"] and sk["pending"] == 0 and sk["dead"] == 0
        print()
        print_verdicts(([] if push is None else [
            {"met": push["skewless"]["p99"] <= 5.0,
             "text": f"push -> readable online p99 {push['skewless']['p99']:.2f} ms <= 5 ms "
                     f"(the raw floor with the fsyncs: {push['raw']['p99']:.2f} ms)"}]) + [
            {"met": sk["latency"]["p99"] <= 250.0,
             "text": f"stream event -> servable p99 {sk['latency']['p99']:.1f} ms <= 250 ms at "
                     f"{args.rate:,}/s for {args.duration:g} s"},
            {"met": lossless and sk["served_latest_ok"],
             "text": f"no loss: sent {sk['sent']} = acked {sk['acked']} = offline {sk['offline_rows']}, "
                     f"pending {sk['pending']}, dead {sk['dead']}"},
        ])
        print(json.dumps({"push": push, "stream": sk, "raw_stream": raw, "rate": args.rate,
                          "duration": args.duration}, default=str))
    finally:
        r.delete(key, raw_key, f"{key}:dead")
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
