"""Stream ingestion from a real Redis Stream (docs/streams.md): offline first, then online, then
XACK; malformed entries dead-lettered with the rest of the batch going on; a redelivered batch
(SIGKILL between the offline write and the ack) lands offline once and serves the same online
values; the consumer survives a Redis restart and stops cleanly on SIGTERM. Each test owns a
throwaway redis-server (skewless.testing.redis_server), killed and restarted by pid."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pyarrow.parquet as pq
import pytest

from skewless import FeatureStore
from skewless.services.ingest import BatchDone, StreamIngest, StreamSpec
from skewless.testing.processes import reaped
from skewless.testing.redis_server import RedisServer, free_port, redis_server, require_redis_server_binary

from .conftest import user
from .test_push import LIVE, count_view, live_repo, live_view  # noqa: F401 - fixture

require_redis_server_binary(module_level=True)

import redis  # noqa: E402 - after the skip

KEY = "spend-events"
UTC = timezone.utc


def wall_store(repo: Path) -> FeatureStore:
    """The push repo on the wall clock (stream entries carry real event times)."""
    return FeatureStore(repo, config={"project": "fraud", "registry": "data/registry.db",
                                      "offline_store": {"type": "duckdb"},
                                      "online_store": {"type": "sqlite", "path": "data/online.db"}})


@pytest.fixture
def server() -> Iterator[RedisServer]:
    with redis_server() as s:
        yield s


@pytest.fixture
def fs(live_repo: Path) -> FeatureStore:
    store = wall_store(live_repo)
    store.apply([user, live_view(), count_view()])
    return store


def client(server: RedisServer) -> Any:
    return redis.Redis(port=server.port, decode_responses=True)


def event(user_id: str, amount: Any, n_txn: Any = 1, ago_s: float = 60.0, **extra: Any) -> dict[str, str]:
    ts = (datetime.now(UTC) - timedelta(seconds=ago_s)).isoformat()
    return {"data": json.dumps({"user_id": user_id, "ts": ts, "amount": amount, "n_txn": n_txn, **extra})}


def spec(server: RedisServer, **kw: Any) -> StreamSpec:
    args: dict[str, Any] = dict(url=f"redis://127.0.0.1:{server.port}/0", key=KEY, group="g",
                                consumer="c1", block_ms=100, max_backoff_s=0.5)
    args.update(kw)
    return StreamSpec(**args)


def offline_rows(repo: Path, user_id: str | None = None) -> int:
    n = 0
    for p in (repo / LIVE).glob("*.parquet"):
        t = pq.read_table(p).to_pandas()
        n += len(t) if user_id is None else int(t["user_id"].eq(user_id).sum())
    return n


def pending(r: Any) -> int:
    return int(r.xpending(KEY, "g")["pending"])


def online(store: FeatureStore, users: list[str]) -> list[Any]:
    return store.get_online_features(["live_spend:amount"], [{"user_id": u} for u in users]).to_dict()["amount"]


def test_a_batch_lands_offline_then_online_and_is_acked(fs: FeatureStore, live_repo: Path,
                                                        server: RedisServer) -> None:
    r = client(server)
    for i in range(30):
        r.xadd(KEY, event(f"s{i % 10}", float(i), i, ago_s=60 - i))
    done: list[BatchDone] = []
    w = StreamIngest(fs, "spend_push", spec(server, batch_size=7), on_batch=done.append, log=lambda m: None)
    stats = w.run(max_entries=30)
    assert stats.ingested == 30 and stats.dead == 0 and stats.batches == 5
    assert offline_rows(live_repo) == 6 + 30 and pending(r) == 0
    assert sorted(p.name for p in (live_repo / LIVE).glob("push-stream-*"))[0].startswith("push-stream-")
    # the latest event of each user is served
    assert online(fs, [f"s{i}" for i in range(10)]) == [float(20 + i) for i in range(10)]
    fresh = w.metrics.registry.get_sample_value("skewless_stream_freshness_seconds_count",
                                                {"push_source": "spend_push"})
    assert fresh == 30
    last = w.metrics.registry.get_sample_value("skewless_stream_last_event_timestamp_seconds",
                                               {"push_source": "spend_push"})
    assert last == pytest.approx(max(e for b in done for e in b.event_times))
    # freshness: event time to servable is at least the events' age at ingestion
    assert all(b.servable_at - max(b.event_times) >= 30 for b in done)


def test_malformed_entries_go_to_the_dead_letter_stream_and_the_rest_goes_on(
        fs: FeatureStore, live_repo: Path, server: RedisServer) -> None:
    r = client(server)
    good = event("g1", 1.0)
    bad = {
        "not json": {"data": "{not json"},
        "not an object": {"data": "[1, 2]"},
        "no data field": {"payload": "{}"},
        "missing column": {"data": json.dumps({"user_id": "x", "ts": "2024-01-01T00:00:00", "n_txn": 1})},
        "missing timestamp": {"data": json.dumps({"user_id": "x", "amount": 1.0, "n_txn": 1})},
        "unknown column": event("x", 1.0, amaunt=3),
        "not convertible": event("x", "lots"),
        "fractional int": event("x", 1.0, n_txn=1.5),
        "null key": event(None, 1.0),   # type: ignore[arg-type]
        "future event": event("x", 1.0, ago_s=-3600),
        "nested too deep": {"data": "[" * 100_000 + "]" * 100_000},   # RecursionError in json
        "lone surrogate": {"data": json.dumps({"user_id": "\ud800", "ts": "2024-01-01T00:00:00",
                                               "amount": 1.0, "n_txn": 1})},
    }
    ids = {what: r.xadd(KEY, fields) for what, fields in bad.items()}
    r.xadd(KEY, good)
    r.xadd(KEY, event("g2", 2.0))
    w = StreamIngest(fs, "spend_push", spec(server), log=lambda m: None)
    stats = w.run(max_entries=len(bad) + 2)
    assert stats.ingested == 2 and stats.dead == len(bad) and pending(r) == 0
    assert offline_rows(live_repo) == 6 + 2 and online(fs, ["g1", "g2"]) == [1.0, 2.0]
    dead = {f["entry_id"]: f for _, f in r.xrange(f"{KEY}:dead")}
    assert set(dead) == set(ids.values())
    expect = {"not json": "not JSON", "not an object": "JSON list, expected an object",
              "no data field": "no 'data' field", "missing column": "missing column(s) ['amount']",
              "missing timestamp": "missing column(s) ['ts']", "unknown column": "unknown column(s) ['amaunt']",
              "not convertible": "column 'amount'", "fractional int": "column 'n_txn'",
              "null key": "null join key", "future event": "event time after",
              "nested too deep": "nested too deeply", "lone surrogate": "column 'user_id'"}
    for what, entry_id in ids.items():
        d = dead[entry_id]
        assert expect[what] in d["reason"], (what, d["reason"])
        assert d["stream"] == KEY and d["push_source"] == "spend_push"
        for k, v in bad[what].items():   # the original fields, untouched
            assert d[k] == v


def test_repeated_event_ids_within_a_batch_count_once(fs: FeatureStore, live_repo: Path,
                                                      server: RedisServer) -> None:
    """Integration point for FileSource(event_id_column=...) (branch agg): the consumer reads
    the column name off the batch source; set here by hand."""
    r = client(server)
    r.xadd(KEY, event("d1", 1.0, n_txn=7, ago_s=30))
    r.xadd(KEY, event("d1", 1.0, n_txn=7, ago_s=30))   # the producer sent it twice
    r.xadd(KEY, event("d2", 2.0, n_txn=8, ago_s=30))
    w = StreamIngest(fs, "spend_push", spec(server), log=lambda m: None)
    w.event_id = "n_txn"
    stats = w.run(max_entries=3)
    assert stats.ingested == 2 and stats.duplicates == 1 and pending(r) == 0
    assert offline_rows(live_repo, "d1") == 1


CONSUMER = [sys.executable, "-m", "skewless.cli", "ingest", "--push-source", "spend_push",
            "--key", KEY, "--group", "g", "--consumer", "c1", "--block-ms", "100"]


def test_a_consumer_killed_between_offline_write_and_ack_loses_and_duplicates_nothing(
        fs: FeatureStore, live_repo: Path, server: RedisServer) -> None:
    """The child's offline write lands, its online write waits on a lock the test holds on the
    SQLite online store: SIGKILL it there. The rerun re-processes the pending batch: the same
    batch id, so the offline file is found, not written twice, and the online write is redone."""
    r = client(server)
    for i in range(5):
        r.xadd(KEY, event(f"k{i}", float(i) + 0.5, ago_s=10))
    fs.online_store.create([fs.snapshot().online_table("live_spend"), fs.snapshot().online_table("live_count")])
    lock = sqlite3.connect(live_repo / "data/online.db", isolation_level=None)
    lock.execute("BEGIN EXCLUSIVE")
    try:
        cmd = CONSUMER + ["--stream", f"redis://127.0.0.1:{server.port}/0", "--repo", str(live_repo)]
        with reaped(subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)) as proc:
            end = time.monotonic() + 90
            while not list((live_repo / LIVE).glob("push-stream-*.parquet")):
                assert proc.poll() is None, proc.communicate()
                assert time.monotonic() < end, "the offline file never landed"
                time.sleep(0.05)
            assert proc.poll() is None
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(30)
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    assert pending(r) == 5                                   # never acked
    files = sorted((live_repo / LIVE).glob("push-stream-*.parquet"))
    assert len(files) == 1 and offline_rows(live_repo) == 6 + 5
    assert online(fs, ["k0", "k4"]) == [None, None]          # the online write never happened
    w = StreamIngest(fs, "spend_push", spec(server), log=lambda m: None)
    w.recover()
    assert w.stats.redelivered == 1 and w.stats.ingested == 5 and pending(r) == 0
    assert sorted((live_repo / LIVE).glob("push-stream-*.parquet")) == files
    assert offline_rows(live_repo) == 6 + 5                  # no duplicate rows offline
    assert online(fs, [f"k{i}" for i in range(5)]) == [i + 0.5 for i in range(5)]
    # and a redelivery of an acked batch (a replayed stream) re-serves the same values
    again = StreamIngest(fs, "spend_push", spec(server), log=lambda m: None)
    again.process([(eid, f) for eid, f in r.xrange(KEY)])
    assert again.stats.redelivered == 1 and offline_rows(live_repo) == 6 + 5
    assert online(fs, [f"k{i}" for i in range(5)]) == [i + 0.5 for i in range(5)]


def test_an_idle_consumers_pending_batch_is_claimed_as_one_batch(fs: FeatureStore, live_repo: Path,
                                                                 server: RedisServer) -> None:
    r = client(server)
    r.xgroup_create(KEY, "g", id="0", mkstream=True)
    for i in range(4):
        r.xadd(KEY, event(f"z{i}", float(i)))
    r.xreadgroup("g", "dead-consumer", {KEY: ">"}, count=10)   # delivered, never acked
    time.sleep(0.05)
    w = StreamIngest(fs, "spend_push", spec(server, claim_idle_ms=10), log=lambda m: None)
    w.recover()
    assert w.stats.ingested == 4 and w.stats.batches == 1 and pending(r) == 0
    assert online(fs, ["z3"]) == [3.0]


def test_the_consumer_survives_a_redis_restart_without_a_hot_loop(
        fs: FeatureStore, live_repo: Path, tmp_path: Path) -> None:
    data = tmp_path / "redis-data"
    data.mkdir()
    with redis_server(data_dir=str(data)) as server:
        r = client(server)
        logs: list[str] = []
        w = StreamIngest(fs, "spend_push", spec(server), log=logs.append)
        t = threading.Thread(target=w.run)
        t.start()
        try:
            for i in range(10):
                r.xadd(KEY, event(f"r{i}", float(i)))
            wait_until(lambda: w.stats.ingested == 10, "the first 10 entries")
            r.save()
            server.kill()
            down = time.monotonic()
            wait_until(lambda: w.stats.reconnects >= 3, "retries while Redis is down")
            time.sleep(1.0)
            server.start()                       # loads dump.rdb: the stream and its group
            downtime = time.monotonic() - down
            r = client(server)
            for i in range(10, 20):
                r.xadd(KEY, event(f"r{i}", float(i)))
            wait_until(lambda: w.stats.ingested == 20, "the entries added after the restart")
        finally:
            w.stop.set()
            t.join(30)
        assert not t.is_alive()
        assert pending(r) == 0 and offline_rows(live_repo) == 6 + 20
        assert online(fs, ["r0", "r19"]) == [0.0, 19.0]
        # backoff: 0.1, 0.2, 0.4, then 0.5 s (max_backoff_s) per retry, not a hot loop
        assert w.stats.reconnects <= 3 + downtime / 0.5 + 2, (w.stats.reconnects, downtime)
        assert any("unavailable" in m and "retry 1 in 0.1s" in m for m in logs)
        assert any("Redis is back" in m for m in logs)


def test_a_restarted_redis_that_lost_the_group_gets_it_again(fs: FeatureStore, live_repo: Path) -> None:
    with redis_server() as server:
        r = client(server)
        logs: list[str] = []
        w = StreamIngest(fs, "spend_push", spec(server), log=logs.append)
        t = threading.Thread(target=w.run)
        t.start()
        try:
            r.xadd(KEY, event("n0", 0.0))
            wait_until(lambda: w.stats.ingested == 1, "the first entry")
            server.kill()
            server.start()                       # no snapshot: stream and group are gone
            client(server).xadd(KEY, event("n1", 1.0))
            wait_until(lambda: w.stats.ingested == 2, "the entry after the restart")
        finally:
            w.stop.set()
            t.join(30)
        assert any("consumer group 'g' is gone" in m for m in logs)
        assert online(fs, ["n1"]) == [1.0]


def test_sigterm_stops_the_cli_consumer_cleanly(fs: FeatureStore, live_repo: Path, server: RedisServer) -> None:
    r = client(server)
    for i in range(3):
        r.xadd(KEY, event(f"t{i}", float(i)))
    port = free_port()
    cmd = CONSUMER + ["--stream", f"redis://127.0.0.1:{server.port}/0", "--repo", str(live_repo),
                      "--metrics-port", str(port)]
    with reaped(subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)) as proc:
        wait_until(lambda: offline_rows(live_repo) == 9 and pending(r) == 0, "the 3 entries", proc)
        # the freshness histogram on the consumer's own /metrics port
        labels = '{push_source="spend_push"}'
        wait_until(lambda: f"skewless_stream_freshness_seconds_count{labels} 3.0"
                   in httpx.get(f"http://127.0.0.1:{port}/metrics").text, "the metrics", proc)
        text = httpx.get(f"http://127.0.0.1:{port}/metrics").text
        assert 'skewless_stream_entries_total{outcome="ingested",push_source="spend_push"} 3.0' in text
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "ingested 3 entries" in out and "SIGTERM" in err


def wait_until(cond: Any, what: str, proc: subprocess.Popen[str] | None = None, limit: float = 90.0) -> None:
    end = time.monotonic() + limit
    while not cond():
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"the consumer ended before {what}: {proc.communicate()}")
        assert time.monotonic() < end, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_with_the_servers_multiprocess_dir_the_metrics_reach_the_servers_registry(tmp_path: Path) -> None:
    """docs/streams.md, "Metrics": a consumer run with the server's PROMETHEUS_MULTIPROC_DIR
    writes its metrics there, where the server's MultiProcessCollector sums them."""
    from prometheus_client import CollectorRegistry, generate_latest, multiprocess
    child = ("from skewless.services.ingest import Metrics\n"
             "m = Metrics(); m.freshness.labels('orders').observe(0.2); m.freshness.labels('orders').observe(0.3)\n"
             "m.last_event.labels('orders').set(1700000000.5)\n")
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    subprocess.run([sys.executable, "-c", child], env=env, check=True, timeout=120)
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=str(tmp_path))
    text = generate_latest(registry).decode()
    assert 'skewless_stream_freshness_seconds_count{push_source="orders"} 2.0' in text
    assert 'skewless_stream_last_event_timestamp_seconds{push_source="orders"} 1.7000000005e+09' in text


def test_pending_entries_deleted_from_the_stream_are_acknowledged(fs: FeatureStore, live_repo: Path,
                                                                  server: RedisServer) -> None:
    r = client(server)
    r.xgroup_create(KEY, "g", id="0", mkstream=True)
    ids = [r.xadd(KEY, event(f"x{i}", float(i))) for i in range(3)]
    r.xreadgroup("g", "c1", {KEY: ">"}, count=10)      # c1's batch in flight, then c1 dies
    r.xdel(KEY, ids[1])                                # trimmed meanwhile
    logs: list[str] = []
    w = StreamIngest(fs, "spend_push", spec(server), log=logs.append)
    w.recover()
    assert w.stats.ingested == 2 and pending(r) == 0
    assert online(fs, ["x0", "x1", "x2"]) == [0.0, None, 2.0]
    assert any("deleted from the stream" in m for m in logs)


@pytest.mark.parametrize("online_store", ["sqlite", "redis"])
def test_after_ingest_online_equals_the_offline_join(live_repo: Path, server: RedisServer,
                                                     online_store: str) -> None:
    """The invariant (docs/online.md): what the consumer served equals the offline join of what
    it wrote, at the same moment, for every entity, on SQLite and on the shared Redis; late and
    out-of-order events included (an older event after a newer one of the same user)."""
    import uuid

    import pandas as pd

    from skewless.testing.redis_server import SHARED_REDIS, purge_project, require_shared_redis
    project = "fraud"
    online_cfg: dict[str, Any] = {"type": "sqlite", "path": "data/online.db"}
    if online_store == "redis":
        require_shared_redis(SHARED_REDIS)
        project = f"ingest_{uuid.uuid4().hex[:10]}"
        online_cfg = {"type": "redis", "connection_string": SHARED_REDIS}
    store = FeatureStore(live_repo, config={"project": project, "registry": "data/registry.db",
                                            "offline_store": {"type": "duckdb"}, "online_store": online_cfg})
    try:
        store.apply([user, live_view(), count_view()])
        r = client(server)
        users = [f"v{i}" for i in range(12)]
        for i in range(60):
            # ages go up and down: late events arrive after newer ones of the same user
            r.xadd(KEY, event(users[i % 12], float(i), i, ago_s=100 + (i * 37) % 50))
        w = StreamIngest(store, "spend_push", spec(server, batch_size=9), log=lambda m: None)
        assert w.run(max_entries=60).ingested == 60
        now = datetime.now(UTC)
        store.clock = lambda: now
        online_now = store.get_online_features(["live_spend:amount", "live_spend:n_txn"],
                                               [{"user_id": u} for u in users]).to_dict()
        offline = store.get_historical_features(
            pd.DataFrame({"user_id": users, "event_timestamp": [now] * len(users)}),
            ["live_spend:amount", "live_spend:n_txn"]).to_df()
        assert online_now["amount"] == offline["amount"].tolist()
        assert online_now["n_txn"] == offline["n_txn"].tolist()
    finally:
        store.online_store.close()
        if online_store == "redis":
            assert not purge_project(project, SHARED_REDIS)


def test_a_redelivered_batch_whose_file_was_compacted_away_lands_once(
        fs: FeatureStore, live_repo: Path, server: RedisServer) -> None:
    """Compaction between the offline write and a redelivery (`ingest --compact-every`): the
    marker compaction leaves recognises the batch, so nothing is written twice."""
    r = client(server)
    for i in range(12):
        r.xadd(KEY, event(f"c{i}", float(i)))
    w = StreamIngest(fs, "spend_push", spec(server, batch_size=4), log=lambda m: None,
                     on_batch=lambda _: fs.compact("spend_push", grace_seconds=0))
    assert w.run(max_entries=12).ingested == 12
    assert not list((live_repo / LIVE).glob("push-stream-*.parquet"))   # all compacted away
    assert offline_rows(live_repo) == 6 + 12
    again = StreamIngest(fs, "spend_push", spec(server, batch_size=4), log=lambda m: None)
    entries = [(eid, f) for eid, f in r.xrange(KEY)]
    for k in range(0, 12, 4):                          # the same three batches, redelivered
        assert again.process(entries[k:k + 4])
    assert again.stats.redelivered == 3 and offline_rows(live_repo) == 6 + 12
    assert online(fs, ["c0", "c11"]) == [0.0, 11.0]


def test_the_cli_consumer_compacts_as_it_goes(fs: FeatureStore, live_repo: Path, server: RedisServer) -> None:
    from skewless.kernels.source import dataset, resolve_source
    r = client(server)
    for i in range(6):
        r.xadd(KEY, event(f"q{i}", float(i)))
    cmd = CONSUMER + ["--stream", f"redis://127.0.0.1:{server.port}/0#{KEY}", "--repo", str(live_repo),
                      "--batch-size", "2", "--max-entries", "6", "--compact-every", "0.001"]
    cmd.remove("--key")
    cmd.remove(KEY)                       # the key comes from the URL's fragment
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "ingested 6 entries in 3 batches" in proc.stdout
    assert "compacted" in proc.stderr and list((live_repo / LIVE).glob("compact-*.parquet"))
    resolved = resolve_source(live_view().batch_source, live_repo)
    assert dataset(resolved).count_rows() == 6 + 6   # every row once, replaced files still there
    assert online(fs, ["q5"]) == [5.0]


@pytest.mark.parametrize("args, message", [
    (["--push-source", "spend_pusj", "--stream", "redis://127.0.0.1:1/0"],
     "push source 'spend_pusj' is not used by any feature view"),
    (["--push-source", "spend_push", "--stream", "127.0.0.1:6379"], "expected a redis://host:port/db URL"),
    (["--push-source", "spend_push", "--stream", "redis://127.0.0.1:1/0", "--batch-size", "0"],
     "batch size 0 must be at least 1"),
])
def test_bad_ingest_arguments_are_named_before_anything_is_read(fs: FeatureStore, live_repo: Path,
                                                                args: list[str], message: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "skewless.cli", "ingest", *args, "--repo", str(live_repo)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and message in " ".join(proc.stderr.split()), proc.stderr
    assert offline_rows(live_repo) == 6


def test_a_running_consumer_claims_the_batch_of_one_that_died(fs: FeatureStore, live_repo: Path,
                                                              server: RedisServer) -> None:
    """c2 dies holding a batch of 5 while c1 runs: c1 claims it once it has been idle for
    claim_idle_ms, as one batch (c1's own batch size is 2), so it keeps its batch id."""
    r = client(server)
    r.xgroup_create(KEY, "g", id="0", mkstream=True)
    for i in range(5):
        r.xadd(KEY, event(f"y{i}", float(i)))
    r.xreadgroup("g", "c2", {KEY: ">"}, count=10)           # c2's batch in flight; c2 dies
    logs: list[str] = []
    w = StreamIngest(fs, "spend_push", spec(server, batch_size=2, claim_idle_ms=300), log=logs.append)
    t = threading.Thread(target=w.run)
    t.start()
    try:
        wait_until(lambda: w.stats.ingested == 5, "the claimed batch")
    finally:
        w.stop.set()
        t.join(30)
    assert w.stats.batches == 1 and pending(r) == 0 and offline_rows(live_repo) == 6 + 5
    assert any("claimed 5 entries idle in consumer 'c2'" in m for m in logs)
    assert online(fs, ["y4"]) == [4.0]


def test_an_entry_that_was_in_the_future_at_the_push_but_not_a_moment_later_is_ingested(
        live_repo: Path, server: RedisServer) -> None:
    """A producer whose clock runs a little ahead: the batch push (clock read once) refuses an
    event time a moment in the future, the per-entry check that follows (the clock read again)
    finds every entry fine. The consumer must not stop with the batch's error (it would stop
    again on every rerun while such entries keep coming): the batch is pushed again."""
    from skewless.errors import InvalidRequestError
    from skewless.testing.clock import Clock

    start = datetime.now(UTC)
    clock = Clock(start)
    store = FeatureStore(live_repo, config={"project": "fraud", "registry": "data/registry.db",
                                            "offline_store": {"type": "duckdb"},
                                            "online_store": {"type": "sqlite", "path": "data/online.db"}},
                         clock=clock)
    store.apply([user, live_view(), count_view()])
    real_push = store.push

    def push(*args: Any, **kw: Any) -> Any:   # the clock moves on while the batch is refused
        try:
            return real_push(*args, **kw)
        except InvalidRequestError:
            clock.now += timedelta(seconds=2)
            raise

    store.push = push  # type: ignore[method-assign]
    r = client(server)
    r.xadd(KEY, event("early", 7.0, ago_s=-1))   # 1 s ahead of the clock at the push
    r.xadd(KEY, event("fine", 8.0, ago_s=60))
    w = StreamIngest(store, "spend_push", spec(server), log=lambda m: None)
    stats = w.run(max_entries=2)
    assert stats.ingested == 2 and stats.dead == 0 and pending(r) == 0
    assert online(store, ["early", "fine"]) == [7.0, 8.0]
    assert offline_rows(live_repo) == 6 + 2


def test_an_entry_that_is_not_utf8_is_dead_lettered_as_it_was(fs: FeatureStore, live_repo: Path,
                                                                server: RedisServer) -> None:
    """A producer writing bytes that are not UTF-8 (in ``data`` or in another field): the read
    of the batch must not fail (the consumer would stop, and stop again on every rerun with the
    entry pending); the entry goes to the dead-letter stream with its bytes untouched."""
    raw = redis.Redis(port=server.port)   # bytes in, bytes out
    bad_id = raw.xadd(KEY, {"data": b"\xff\xfe{", "note": b"\x80"}).decode()
    other = event("ok2", 2.0)
    raw.xadd(KEY, {b"\xc3": b"\xff", **{k.encode(): v.encode() for k, v in other.items()}})
    client(server).xadd(KEY, event("ok1", 1.0))
    w = StreamIngest(fs, "spend_push", spec(server), log=lambda m: None)
    stats = w.run(max_entries=3)
    assert stats.ingested == 2 and stats.dead == 1 and pending(client(server)) == 0
    assert online(fs, ["ok1", "ok2"]) == [1.0, 2.0]
    [(_, dead)] = raw.xrange(f"{KEY}:dead")
    assert dead[b"data"] == b"\xff\xfe{" and dead[b"note"] == b"\x80"
    assert dead[b"entry_id"].decode() == bad_id
    assert b"not UTF-8" in dead[b"reason"] and b"0xff" in dead[b"reason"]


def test_a_key_that_holds_no_stream_stops_the_consumer_with_the_key_named(
        fs: FeatureStore, server: RedisServer) -> None:
    from skewless.errors import SourceError

    client(server).set(KEY, "not a stream")
    w = StreamIngest(fs, "spend_push", spec(server), log=lambda m: None)
    with pytest.raises(SourceError, match=rf"refused .* on stream '{KEY}' \(group 'g'\): WRONGTYPE") as e:
        w.run(max_entries=1)
    assert "TYPE <key>" in (e.value.hint or "")
    assert client(server).get(KEY) == "not a stream"   # nothing written


def test_an_event_id_that_is_a_json_array_or_object_is_dead_lettered_not_a_crash(
        fs: FeatureStore, live_repo: Path, server: RedisServer) -> None:
    """Dedup by event id hashes each entry's id: an id given as a JSON array or object (not
    hashable in Python) must reach push's type check like any other bad value."""
    r = client(server)
    r.xadd(KEY, event("e1", 1.0, n_txn=[7], ago_s=30))
    r.xadd(KEY, event("e2", 2.0, n_txn={"id": 7}, ago_s=30))
    r.xadd(KEY, event("e3", 3.0, n_txn=8, ago_s=30))
    w = StreamIngest(fs, "spend_push", spec(server), log=lambda m: None)
    w.event_id = "n_txn"
    stats = w.run(max_entries=3)
    assert stats.ingested == 1 and stats.dead == 2 and pending(r) == 0
    assert online(fs, ["e3"]) == [3.0]
