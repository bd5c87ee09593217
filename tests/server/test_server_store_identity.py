"""The online store's identity under a running server (docs/online.md, "The online store's
identity"): real faults only.

- A test-owned ``redis-server`` restarted empty (between runs, or during an incremental run):
  ``/ready`` turns 503 and says why and what to
  run, metrics count it, reads never 5xx; ``materialize-incremental`` backfills; the views are
  refilled in another order than before (generation numbers and the version counter come back
  as the same numbers in other places) and the running server reads the right tables.
- The SQLite file deleted and rebuilt by another process: the server serves the new file, and
  what it pushes is visible to other processes.
- SQLite pages overwritten with garbage: reads go through the fallback chain (never a 500),
  ``/ready`` is 503, and ``rebuild-online`` moves the file aside and recovers.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from skewless import Entity, FeatureStore, FeatureView, Field, FileSource
from skewless.testing.redis_server import redis_server, require_redis_server_binary
from skewless.types import Int64

from .conftest import Server

GET = "/get-online-features"
N = 300
DEADLINE_S = 60.0
user = Entity("user", join_keys=["user_id"])
TS = pa.timestamp("us", "UTC")


def defs() -> list[Any]:
    return [user] + [FeatureView(name, entities=[user], schema=[Field(col, Int64)], ttl=None,
                                 source=FileSource(f"data/{name}.parquet", "ts"))
                     for name, col in (("va", "a"), ("vb", "b"))]


def make_repo(path: Path, online: dict[str, Any], n: int = N) -> Path:
    (path / "data").mkdir(parents=True)
    config = {"project": "ident", "registry": "data/registry.db", "online_store": online,
              "registry_cache_ttl_seconds": 1}
    (path / "feature_store.yaml").write_text(yaml.safe_dump(config))
    users = list(range(n))
    ts = [datetime(2024, 1, 1, tzinfo=timezone.utc)] * n
    for name, col, add in (("va", "a", 1), ("vb", "b", 2)):
        pq.write_table(pa.table({"user_id": pa.array(users, pa.int64()), "ts": pa.array(ts, TS),
                                 col: pa.array([u * 10 + add for u in users], pa.int64())}),
                       path / "data" / f"{name}.parquet")
    return path


def read(server: Server, users: list[int]) -> tuple[list[Any], list[Any], list[str]]:
    """Values of va:a and vb:b for ``users`` (the request must not fail), and their statuses."""
    r = server.post(GET, {"features": ["va:a", "vb:b"], "entities": {"user_id": users}})
    assert r.status_code == 200, r.text
    _, a, b = r.json()["results"]
    return a["values"], b["values"], a["statuses"] + b["statuses"]


def right(users: list[int]) -> tuple[list[int], list[int]]:
    return [u * 10 + 1 for u in users], [u * 10 + 2 for u in users]


def wait_for(what: str, check: Callable[[], bool], timeout: float = DEADLINE_S) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(0.2)


def cli(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SKEWLESS_")}
    env["COLUMNS"] = "200"
    return subprocess.run([sys.executable, "-m", "skewless.cli", "--repo", str(repo), *args],
                          capture_output=True, text=True, env=env, timeout=300)


def test_redis_restarted_empty_under_a_running_server(tmp_path: Path, serve: Any) -> None:
    require_redis_server_binary()
    users = list(range(N))
    with redis_server() as redis:
        repo = make_repo(tmp_path / "repo", {"type": "redis", "connection_string": redis.address,
                                             "connect_timeout_seconds": 0.3, "timeout_seconds": 0.3})
        fs = FeatureStore(repo)
        fs.apply(defs())
        fs.materialize_incremental(views=["va"])   # va's table is created first, then vb's
        fs.materialize_incremental(views=["vb"])
        fs.online_store.close()
        server = serve(repo)
        assert server.get("/ready").status_code == 200
        a, b, _ = read(server, users)
        assert (a, b) == right(users)

        redis.kill()
        redis.start()   # the same port, empty: counters and generations start again from nothing

        def empty_and_said() -> bool:
            r = server.get("/ready")
            return r.status_code == 503 and r.json()["code"] == "online_store_empty"
        wait_for("/ready says the store is empty", empty_and_said)
        body = server.get("/ready").json()
        assert body["online_store"] == "empty" and set(body["not_materialized"]) == {"va", "vb"}
        assert "materialize-incremental" in body["hint"]
        assert body["registry"] == "ok"   # every answer from a readable registry says so
        _, _, statuses = read(server, users)   # never a 5xx: the store answers, it is empty
        assert set(statuses) <= {"NOT_FOUND", "UNAVAILABLE"}

        # refilled in the other order: vb's table now takes the generation number va had, and
        # the version counter comes back to the number the server cached
        out = cli(repo, "materialize-incremental", "--views", "vb")
        assert out.returncode == 0, out.stdout + out.stderr
        assert "from the beginning" in out.stdout and f"{N:,}" in out.stdout, out.stdout
        r = server.get("/ready")   # vb is back; va is still recorded for the old store
        assert r.status_code == 503 and r.json()["code"] == "online_store_replaced", r.text
        assert r.json()["not_materialized"] == ["va"]
        reports = FeatureStore(repo).materialize_incremental(views=["va"])
        assert reports[0].backfill and reports[0].rows == N

        wait_for("the running server reads the refilled tables", lambda: read(server, users)[:2] == right(users))
        wait_for("/ready is 200 again", lambda: server.get("/ready").status_code == 200)
        metrics = server.get("/metrics").text
        assert 'skewless_http_errors_total{code="online_store_empty",endpoint="/ready"}' in metrics
        assert 'endpoint="/get-online-features",status="5' not in metrics


def test_an_incremental_run_after_redis_restarted_empty_backfills(tmp_path: Path) -> None:
    """Without a server: the registry's watermark says "up to date", the store is empty; the
    run must write every entity again, not one row per view."""
    require_redis_server_binary()
    with redis_server() as redis:
        repo = make_repo(tmp_path / "repo", {"type": "redis", "connection_string": redis.address})
        fs = FeatureStore(repo)
        fs.apply(defs())
        assert [r.rows for r in fs.materialize_incremental()] == [N, N]
        redis.kill()
        redis.start()
        status = {s.view: s for s in fs.online_status()}
        assert all(s.other_store is not None and not s.materialized for s in status.values())
        out = cli(repo, "online-status")
        assert out.returncode == 0 and "restarted empty, was replaced" in out.stderr.replace("\n", " "), out
        reports = fs.materialize_incremental()
        assert [(r.rows, r.backfill) for r in reports] == [(N, True), (N, True)]
        got = fs.get_online_features(["va:a", "vb:b"], [{"user_id": u} for u in range(N)]).to_dict()
        assert (got["a"], got["b"]) == right(list(range(N)))
        assert [r.backfill for r in fs.materialize_incremental()] == [False, False]


def test_redis_restarted_empty_during_an_incremental_run(tmp_path: Path) -> None:
    """Redis restarts empty after the run's first batch: the run writes its later batches into
    the new, empty Redis, and records its coverage for the store it started with, which is no
    longer there: the store is not ready, and the next run backfills every row."""
    require_redis_server_binary()
    from skewless.server.app import readiness
    with redis_server() as redis:
        repo = make_repo(tmp_path / "repo", {"type": "redis", "connection_string": redis.address})
        fs = FeatureStore(repo)
        fs.apply(defs())
        restarted: list[int] = []

        def restart_once(view: str, rows: int) -> None:
            if not restarted:
                restarted.append(rows)
                redis.kill()
                redis.start()
        fs.materialize_incremental(views=["va"], on_rows=restart_once, batch_rows=100)
        assert restarted == [100]
        stored = fs.online_store.count(fs.snapshot().online_table("va"))
        assert stored == N - 100                     # the first batch went down with Redis
        fs.materialize_incremental(views=["vb"])
        ok, body = readiness(fs)
        assert not ok and body["code"] == "online_store_replaced" and body["not_materialized"] == ["va"], body
        assert [(r.rows, r.backfill) for r in fs.materialize_incremental()] == [(N, True), (0, False)]
        got = fs.get_online_features(["va:a"], [{"user_id": u} for u in range(N)]).to_dict()["a"]
        assert got == right(list(range(N)))[0] and readiness(fs)[0]


# --- SQLite ----------------------------------------------------------------------------------
def _push_defs() -> list[Any]:
    from .test_push import push_definitions
    return push_definitions()


def test_sqlite_file_deleted_and_rebuilt_under_a_running_server(tmp_path: Path, serve: Any) -> None:
    repo = make_repo(tmp_path / "repo", {"type": "sqlite", "path": "data/online.db"})
    (repo / "data/events").mkdir()
    t0 = datetime(2024, 1, 1, tzinfo=timezone.utc)
    pq.write_table(pa.table({
        "user_id": pa.array(["u1"]), "ts": pa.array([t0], TS), "amount": pa.array([1.0]),
        "n": pa.array([1], pa.int64()), "last_seen": pa.array([t0], TS)}), repo / "data/events/part-0.parquet")
    fs = FeatureStore(repo)
    fs.apply(_push_defs())
    fs.materialize_incremental()
    fs.online_store.close()
    server = serve(repo)
    refs = ["user_events:amount"]

    def amount(user: str) -> Any:
        r = server.post(GET, {"features": refs, "entities": {"user_id": [user]}})
        assert r.status_code == 200, r.text
        return r.json()["results"][1]["values"][0]
    assert amount("u1") == 1.0 and server.get("/ready").status_code == 200

    for suffix in ("", "-wal", "-shm"):
        Path(f"{repo}/data/online.db{suffix}").unlink(missing_ok=True)
    wait_for("/ready says the store is empty", lambda: server.get("/ready").json().get("code") == "online_store_empty")

    other = FeatureStore(repo)   # another process's view of the repo: rebuilds, then pushes
    assert all(r.ok for r in other.rebuild_online())
    t1 = datetime(2024, 1, 2, tzinfo=timezone.utc)
    other.push("events_push", {"user_id": ["u1"], "ts": [t1], "amount": [2.0], "n": [2], "last_seen": [t1]})
    other.online_store.close()
    wait_for("the server serves the rebuilt file", lambda: amount("u1") == 2.0)
    assert server.get("/ready").status_code == 200

    r = server.post("/push", {"push_source_name": "events_push", "df": {
        "user_id": ["u7"], "ts": ["2024-01-03T00:00:00Z"], "amount": [7.0], "n": [7],
        "last_seen": ["2024-01-03T00:00:00Z"]}})
    assert r.status_code == 200, r.text
    seen = FeatureStore(repo).get_online_features(refs, [{"user_id": "u7"}])
    assert seen.to_dict()["amount"] == [7.0], "the server's push went to the deleted file"


def _corrupt(path: Path, n_pages: int = 6) -> None:
    """Overwrite ``n_pages`` pages in the middle of the file with garbage (real bytes on disk)."""
    con = sqlite3.connect(path)
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    page = con.execute("PRAGMA page_size").fetchone()[0]
    con.close()
    size = path.stat().st_size
    rng = __import__("random").Random(11)
    with open(path, "r+b") as f:
        for i in range(n_pages):
            f.seek(((size // page) // 2 + i * 3) * page)
            f.write(bytes(rng.getrandbits(8) for _ in range(page)))


def test_damaged_sqlite_pages(tmp_path: Path, serve: Any) -> None:
    n = 3000
    repo = make_repo(tmp_path / "repo", {"type": "sqlite", "path": "data/online.db"}, n=n)
    fs = FeatureStore(repo)
    fs.apply(defs())
    fs.materialize_incremental()
    fs.online_store.close()
    _corrupt(repo / "data/online.db")

    server = serve(repo)
    users = list(range(n))
    codes = []
    for i in range(31):
        part = users[i * 100:(i + 1) * 100] or users[:100]
        r = server.post(GET, {"features": ["va:a", "vb:b"], "entities": {"user_id": part}})
        codes.append(r.status_code)
        assert r.status_code == 200, r.text   # the fallback chain, never "this is a bug"
    r = server.get("/ready")
    assert r.status_code == 503 and r.json()["code"] == "online_store_damaged", r.text
    assert "rebuild-online" in r.json()["hint"]

    out = cli(repo, "rebuild-online")
    assert out.returncode == 0, out.stdout + out.stderr
    aside = [p for p in (repo / "data").iterdir()
             if p.name.startswith("online.db.damaged-") and not p.name.endswith(("-wal", "-shm"))]
    assert len(aside) == 1 and str(aside[0]) in out.stdout.replace("\n", ""), out.stdout
    assert "moved to" in out.stdout
    wait_for("/ready is 200 after the rebuild", lambda: server.get("/ready").status_code == 200)
    a, b, statuses = read(server, users[:500])
    assert (a, b) == right(users[:500]) and set(statuses) == {"PRESENT"}
