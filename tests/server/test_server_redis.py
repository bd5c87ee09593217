"""The feature server on the shared Redis at 127.0.0.1:6379, two workers: the same answers as
the SDK, push then read from any worker, metrics aggregated across workers. Every test works in
its own project namespace and deletes its keys afterwards."""

from __future__ import annotations

import re
import time
from datetime import datetime, timezone

import httpx
import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from skewless import FeatureClient, FeatureStore
from skewless.server.metrics import FLUSH_SECONDS
from skewless.testing.redis_server import SHARED_REDIS as ADDRESS, purge_project, require_shared_redis

from .conftest import SERVICE, assert_same, definitions, make_repo, start_server, unique_project
from .test_push import REFS, push_definitions

require_shared_redis(ADDRESS, module_level=True)

GET = "/get-online-features"
SPEND = ["user_spend:amount", "user_spend:n_txn"]


@pytest.fixture(scope="module")
def redis_repo(tmp_path_factory):
    project = unique_project()
    repo = make_repo(tmp_path_factory.mktemp("redis") / "repo", project=project,
                     online={"type": "redis", "connection_string": ADDRESS})
    (repo / "data/events").mkdir(parents=True)
    ts = pa.array([datetime(2024, 1, 1, tzinfo=timezone.utc)], type=pa.timestamp("us", tz="UTC"))
    pq.write_table(pa.table({"user_id": ["u1"], "ts": ts, "amount": [1.0], "n": pa.array([1]),
                             "last_seen": ts}), repo / "data/events/part-0.parquet")
    fs = FeatureStore(repo)
    fs.apply(definitions() + push_definitions()[1:])
    fs.materialize_incremental()
    fs.online_store.close()
    yield repo
    assert not purge_project(project, ADDRESS), "keys left behind"


@pytest.fixture(scope="module")
def redis_server(redis_repo):
    server = start_server(redis_repo, workers=2)
    yield server
    server.stop()


def test_ready_and_same_answers_as_the_sdk(redis_repo, redis_server):
    r = redis_server.get("/ready")
    assert r.status_code == 200, r.text
    fs = FeatureStore(redis_repo)
    rows = [{"user_id": u, "merchant_id": "m1"} for u in ["u1", "u2", "u3", "u9"]]
    cases = [({"features": SPEND, "entities": {"user_id": ["u1", "u2", "u3", "u9"]}},
              (SPEND, [{"user_id": u} for u in ["u1", "u2", "u3", "u9"]], False)),
             ({"feature_service": SERVICE, "full_feature_names": True,
               "entities": {"user_id": [r["user_id"] for r in rows], "merchant_id": ["m1"] * 4}},
              (SERVICE, rows, True))]
    for body, args in cases:
        r = redis_server.post(GET, body)
        assert r.status_code == 200, r.text
        assert_same(r.json(), fs.get_online_features(*args))
    with FeatureClient(redis_server.url) as client:
        got = client.get_online_features(SERVICE, rows)
        want = fs.get_online_features(SERVICE, rows)
        assert got.to_dict() == want.to_dict() and got.statuses == want.statuses
        assert got.event_timestamps == want.event_timestamps
    fs.online_store.close()


def test_push_then_read_from_fresh_connections(redis_server):
    """Read-after-write: once /push answers, the new value is served, whichever worker a new
    connection lands on."""
    with httpx.Client(base_url=redis_server.url, timeout=10) as client:
        for i in range(10):
            user = f"p{i}"
            r = client.post("/push", json={"push_source_name": "events_push", "df": {
                "user_id": [user], "ts": ["2024-03-01T00:00:00Z"], "amount": [float(i)], "n": [i],
                "last_seen": [None]}})
            assert r.status_code == 200, r.text
            for _ in range(4):  # connections land on either worker
                with httpx.Client(base_url=redis_server.url, timeout=10) as fresh:
                    body = fresh.post(GET, json={"features": REFS, "entities": {"user_id": [user]}}).json()
                assert body["results"][1]["values"] == [float(i)], body


def test_metrics_are_aggregated_across_workers(redis_server):
    def count() -> float:
        text = redis_server.get("/metrics").text
        m = re.search(r'skewless_http_requests_total\{endpoint="/health",status="200"\} ([0-9.e+]+)', text)
        return float(m.group(1)) if m else 0.0
    # every worker's earlier requests are in: the count no longer moves over a flush period
    # (on a loaded machine a worker's flush can come later than FLUSH_SECONDS)
    deadline = time.monotonic() + 60
    before, previous = count(), -1.0
    while before != previous and time.monotonic() < deadline:
        time.sleep(FLUSH_SECONDS + 0.5)
        previous, before = before, count()
    for _ in range(20):
        with httpx.Client(base_url=redis_server.url, timeout=10) as fresh:  # new connection each
            assert fresh.get("/health").status_code == 200
    # each worker writes its figures at most FLUSH_SECONDS after a request (plus the machine's
    # delays): wait for them, then the count must be exact
    deadline = time.monotonic() + 60
    while count() < before + 20 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert count() == before + 20
    text = redis_server.get("/metrics").text
    assert "skewless_online_read_duration_seconds_bucket" in text
    assert "skewless_feature_staleness_seconds_bucket" in text


def read_batches(server) -> tuple[float, float, float]:
    """(store reads, requests they answered, reads of at most 128 requests) so far, from the
    server's ``skewless_online_read_batch_requests`` histogram: the server's own count, which
    other clients of the shared Redis cannot disturb (Redis' MGET count can: other projects'
    reads, and a read repeated after another process created or dropped a table)."""
    text = server.get("/metrics").text

    def value(pattern: str) -> float:
        m = re.search(rf"^skewless_online_read_batch_requests_{pattern} ([0-9.e+]+)$", text, re.M)
        return float(m.group(1)) if m else 0.0
    return value("count"), value("sum"), value(r'bucket\{le="128\.0"\}')


def settled_batches(server, before: tuple[float, float, float], requests: int) -> tuple[float, float, float]:
    """The batch figures once every worker has written the reads of ``requests`` more requests
    (each worker writes its figures at most FLUSH_SECONDS after its requests)."""
    deadline = time.monotonic() + FLUSH_SECONDS + 30
    while True:
        now = read_batches(server)
        if now[1] - before[1] >= requests or time.monotonic() > deadline:
            return tuple(a - b for a, b in zip(now, before))  # type: ignore[return-value]
        time.sleep(0.1)


def queue_while_paused(repo, server, n: int) -> tuple[int, int]:
    """Send ``n`` requests (different entities, a feature service, bad requests among them) while
    every worker of ``server`` is paused (SIGSTOP), then resume them: each worker finds its share
    waiting, as after a stall or in a burst. Checks every answer against the SDK (the bad ones
    get their own error) and returns (MGETs Redis saw, good requests). The MGET count is only a
    lower bound's business: other clients of the shared Redis add to it."""
    import http.client
    import os
    import signal
    import socket

    import psutil
    import redis as redis_py

    fs = FeatureStore(repo)
    users = ["u1", "u2", "u3", "u9"]
    cases: list[tuple[dict, object]] = []
    for i in range(n):
        u = users[i % 4]
        if i % 16 == 5:
            cases.append(({"features": ["user_spend:nope"], "entities": {"user_id": [u]}}, 400))
        elif i % 16 == 9:
            cases.append(({"features": SPEND, "entities": {"user_id": [7]}}, 400))  # wrong key type
        elif i % 2:
            rows = [{"user_id": u, "merchant_id": "m1"}]
            cases.append(({"feature_service": SERVICE, "entities": {"user_id": [u], "merchant_id": ["m1"]}},
                          fs.get_online_features(SERVICE, rows)))
        else:
            cases.append(({"features": SPEND, "entities": {"user_id": [u, "u1"]}},
                          fs.get_online_features(SPEND, [{"user_id": u}, {"user_id": "u1"}])))
    fs.online_store.close()
    host, port = server.url.removeprefix("http://").split(":")
    conns = []
    for _ in cases:  # connected (and accepted) before the pause
        c = http.client.HTTPConnection(host, int(port), timeout=30)
        c.request("GET", "/health")
        assert c.getresponse().read() == b'{"status":"ok"}'
        c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conns.append(c)
    workers = [p for p in psutil.Process(server.proc.pid).children(recursive=True)
               if "spawn_main" in " ".join(p.cmdline())] or [server.proc]  # one worker: the server itself
    r = redis_py.Redis.from_url(f"redis://{ADDRESS}")
    before = int(r.info("commandstats").get("cmdstat_mget", {}).get("calls", 0))
    for w in workers:
        os.kill(w.pid, signal.SIGSTOP)
    try:
        for c, (body, _) in zip(conns, cases):
            c.request("POST", GET, body=orjson.dumps(body), headers={"Content-Type": "application/json"})
    finally:
        for w in workers:
            os.kill(w.pid, signal.SIGCONT)
    answers = [(c.getresponse(), c) for c in conns]
    reads = int(r.info("commandstats").get("cmdstat_mget", {}).get("calls", 0)) - before
    r.close()
    good = 0
    for (body, want), (resp, c) in zip(cases, answers):
        text = resp.read()
        c.close()
        if want == 400:
            assert resp.status == 400, (body, text)
            assert orjson.loads(text)["code"] in ("not_found", "invalid_request"), text
        else:
            good += 1
            assert resp.status == 200, text
            assert_same(orjson.loads(text), want)
    return reads, good


def test_requests_arriving_together_keep_their_own_answers(redis_repo, redis_server):
    """Two workers, 64 waiting requests: every one answered exactly as alone, whatever the
    scheduling. How many reads the workers make depends on it (a worker reads in threads for a
    while after a slow read; under load a queue may be read in several turns), so only what
    must hold is asserted; that one turn's requests make one read is pinned, deterministically,
    by tests/server/test_read_batching.py."""
    before = read_batches(redis_server)
    mgets, good = queue_while_paused(redis_repo, redis_server, 64)
    assert good == 56
    reads, requests, at_most_128 = settled_batches(redis_server, before, 64)
    assert requests == 64                       # every request read once, the bad ones included
    assert 1 <= reads <= 64 and at_most_128 == reads
    assert mgets >= 1


def test_a_long_queue_is_read_in_batches_of_at_most_128(redis_repo, serve):
    """One worker, 200 waiting requests (175 good): no read serves more than 128 requests, so at
    least two reads; every request answered exactly as alone."""
    from skewless.server.app import MAX_READ_BATCH

    server = serve(redis_repo, workers=1)
    before = read_batches(server)
    mgets, good = queue_while_paused(redis_repo, server, 200)
    assert good == 175 and MAX_READ_BATCH == 128
    reads, requests, at_most_128 = settled_batches(server, before, 200)
    assert requests == 200 and at_most_128 == reads, (reads, requests, at_most_128)
    assert reads >= -(-200 // MAX_READ_BATCH), f"{reads} reads for 200 requests"
    assert mgets >= 1
