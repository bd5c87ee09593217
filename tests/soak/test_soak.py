"""Soak: serving, pushes, incremental runs and one ``rebuild-online`` while Redis restarts twice,
empty (issue 11, "Done when"). Everything is real: a test-owned ``redis-server`` (no disk, so a
restart loses every key), ``skewless serve`` as a subprocess with two workers, the CLI's
``materialize-incremental`` and ``rebuild-online`` as subprocesses, DuckDB offline, Parquet files.

For ``SOAK_SECONDS`` (default 75) of load, at the same time:

- **serving**: three client threads send ``POST /get-online-features`` (1-50 entities, both
  views, or the push-fed view alone), and a prober reads ``/ready`` and a fixed set of
  materialized entities (the *canary*) four times a second;
- **pushes**: one thread sends ``POST /push`` batches of 10 rows (each row a unique ``seq``)
  every 0.25 s and retries the same body until it is accepted;
- **batch data lands**: a thread writes a new Parquet file into the batch view's directory every
  2 s (new rows, and corrections: an old event time with a newer created time);
- **incremental runs**: ``skewless materialize-incremental`` in a loop, as a scheduler runs it;
- **faults**: Redis is SIGKILLed at 20 % and 70 % of the run, stays down 3 s and comes back empty
  on the same port; ``skewless rebuild-online`` runs once at 45 %, with everything else going on.

Then the writers stop and the recovery runs: ``materialize-incremental``, which must detect a
store that lost its data and backfill it (issue 11, item 3); should it instead refuse and point
to ``rebuild-online`` (the issue allows either), that runs, then ``materialize-incremental``
again. The test asserts:

1. **online == offline for every entity** (every user of the push-fed view, every
   user x merchant pair of the batch view, and unknown ones): values, nulls, defaults, statuses
   and event times, with ``skewless.testing.online.check_invariant`` against
   ``get_historical_features`` at the same instant and against the rules restated over the rows
   read back from the offline Parquet files; then the running server answers the same as the SDK
   (within its registry refresh, ``registry_cache_ttl_seconds: 1``);
2. **zero 5xx on serving**: no ``POST /get-online-features`` answered 5xx or failed to answer,
   counted by the client and by the server's own ``skewless_http_requests_total``. Both views
   fall back (``fallback="cache"``, ``on_missing`` null or default), so while Redis is down the
   documented answer is a 200 with cached values or ``UNAVAILABLE`` statuses
   (docs/online.md#the-fallback-chain-when-the-online-store-does-not-answer), never a 503;
3. **pushes**: every batch is eventually accepted; no push answers 500; a push answers 5xx only
   as documented (docs/server.md#errors: 503 ``online_store_unavailable``, the rows are safe
   offline) and only if it was in flight while Redis was down or within ``PUSH_GRACE_S`` of its
   restart. "Zero 5xx" in the issue cannot mean a push whose online half is unreachable
   succeeds: docs/online.md#push says it fails with ``OnlineStoreError`` after the offline file
   landed, so the harness retries it, as a client must;
4. never silently wrong while ready: once ``READY_GRACE_S`` have passed since Redis came back
   (its registry refresh and then some), no probe finds ``/ready`` 200 while the canary reads
   anything but PRESENT (issue 11: "a store that lost its data ... is not ready");
5. the one ``rebuild-online`` and the last run of the recovery exit 0 (its sampled
   verification included: rows landing offline during it are caught up, docs/online.md,
   "rebuild-online"), and no CLI run prints a traceback (a run
   failing cleanly while Redis is down is counted, not a failure). The rebuild runs amid
   pushes, landing files and incremental runs on purpose: issue 11, item 2 makes runs
   exclusive with a lease (a run or push refused under it should say so with a 4xx such as
   409, which the pusher retries; a 503 outside an outage counts as a failure), where
   docs/online.md#rebuild-online-disaster-recovery still asks to pause them.

Knobs (environment, not ``SKEWLESS_*``, which the config reads as overrides): ``SOAK_SECONDS``
(load duration, default 75: the whole test takes about two minutes), ``SOAK_RESTARTS`` (0-2,
default 2) and ``SOAK_REBUILD`` (``0``: none); fewer faults make a control run of the harness.

Figures (requests, status codes, p50/p99 latency, pushes ok/retried, offline duplicates of
pushed rows, incremental runs, rows, /ready and canary recovery after each restart) go to
``soak-figures.json`` in the test's tmp dir and one ``SOAK`` summary line (``pytest -s``).
Every assertion is checked after the figures are written, and all failures are reported at once.

Deadlines are generous and nothing depends on timing luck: actors pace themselves with
``Event.wait``, every wait polls against a deadline, and every process (Redis, the server, CLI
runs) is killed by pid in a ``finally``.
"""

from __future__ import annotations

import json
import os
import random
import re
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from skewless import Entity, FeatureStore, FeatureView, Field, FileSource, PushSource
from skewless.testing.online import InvariantMismatch, OnlineScenario, check_invariant, expected_status
from skewless.testing.pit import FeatureSpec, Scenario, SourceRow, ViewSpec
from skewless.testing.redis_server import redis_server, require_redis_server_binary
from skewless.types import Float64, Int64, String

from ..server.conftest import Server, assert_same, start_server

pytestmark = pytest.mark.slow

UTC = timezone.utc
# load duration; not SKEWLESS_*: every SKEWLESS_ variable is a config override (docs/configuration.md)
SECONDS = float(os.environ.get("SOAK_SECONDS", "75"))
RESTARTS = int(os.environ.get("SOAK_RESTARTS", "2"))   # 0-2; fewer: a control run of the harness
REBUILD = os.environ.get("SOAK_REBUILD", "1") != "0"
PROJECT = "soak"
N_USERS = 400                      # user_id 0..399
PUSHED_USERS = 300                 # pushes pick users 0..299
LIVE_HISTORY_USERS = range(200, 350)   # old rows (outside the 1-day TTL) in the live view
BATCH_USERS = 250                  # the first batch file: pairs of users 0..249
LANDED_USERS = 350                 # landed files: pairs of users 0..349
MERCHANTS = ("m0", "m1", "m2", "m3")
UNKNOWN = (10**6, "zz")            # an entity no view has
OUTAGE_S = 3.0                     # Redis stays down this long at each restart
PUSH_GRACE_S = 5.0                 # a push sent this long after Redis is back must not 5xx
READY_GRACE_S = 6.0                # registry_cache_ttl_seconds (1) + 5 s: by then a store that
                                   # came back empty must not be ready while it serves wrong
LOAD_THREADS = 3
WORKERS = 2
CLI_TIMEOUT_S = 240.0
TS = pa.timestamp("us", "UTC")

user = Entity("user", join_keys=["user_id"])
pair = Entity("user_merchant", join_keys=["user_id", "merchant_id"])
LIVE_FEATURES = (("amount", "Float64", pa.float64(), None), ("n", "Int64", pa.int64(), None),
                 ("seq", "Int64", pa.int64(), None))
BATCH_FEATURES = (("score", "Float64", pa.float64(), -1.0), ("tier", "String", pa.string(), "none"))
LIVE_SCHEMA = pa.schema([("user_id", pa.int64()), ("ts", TS), ("created", TS),
                         ("amount", pa.float64()), ("n", pa.int64()), ("seq", pa.int64())])
BATCH_SCHEMA = pa.schema([("user_id", pa.int64()), ("merchant_id", pa.string()), ("ts", TS),
                          ("created", TS), ("score", pa.float64()), ("tier", pa.string())])
TYPES = {"Float64": Float64, "Int64": Int64, "String": String}


def definitions() -> list[Any]:
    live = FeatureView(
        name="live", entities=[user], ttl=timedelta(days=1), on_missing="null", fallback="cache",
        schema=[Field(n, TYPES[d]) for n, d, _, _ in LIVE_FEATURES],
        source=PushSource("live_push", FileSource("data/live", timestamp_field="ts",
                                                  created_timestamp_column="created")))
    batch = FeatureView(
        name="batch", entities=[pair], ttl=None, on_missing="default", fallback="cache",
        schema=[Field(n, TYPES[d], default=dv) for n, d, _, dv in BATCH_FEATURES],
        source=FileSource("data/batch", timestamp_field="ts", created_timestamp_column="created"))
    return [user, pair, live, batch]


def iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def write_parquet(table: pa.Table, path: Path) -> None:
    """Atomically: a reader sees the whole file or none of it (the temp name is not *.parquet)."""
    tmp = path.parent / f".{path.name}.tmp"
    pq.write_table(table, tmp)
    os.replace(tmp, path)


def make_repo(path: Path, redis_address: str, rng: random.Random) -> tuple[Path, list[dict[str, Any]]]:
    """The repo: config, a history file per view. Returns the batch rows written (the canary
    and the landing thread's corrections come from them)."""
    (path / "data/live").mkdir(parents=True)
    (path / "data/batch").mkdir(parents=True)
    (path / "feature_store.yaml").write_text(yaml.safe_dump({
        "project": PROJECT, "registry": "data/registry.db",
        "offline_store": {"type": "duckdb", "threads": 1},
        "online_store": {"type": "redis", "connection_string": redis_address,
                         "connect_timeout_seconds": 0.5, "timeout_seconds": 1.0},
        "registry_cache_ttl_seconds": 1}))
    now = datetime.now(UTC)
    old = now - timedelta(days=2)
    live = [{"user_id": u, "ts": old - timedelta(minutes=i), "created": old - timedelta(minutes=i),
             "amount": None if i % 9 == 0 else float(u) / 4, "n": i, "seq": -1 - i}
            for i, u in enumerate(LIVE_HISTORY_USERS)]
    write_parquet(pa.Table.from_pylist(live, LIVE_SCHEMA), path / "data/live/part-0.parquet")
    batch = []
    for u in range(BATCH_USERS):
        for m in rng.sample(MERCHANTS, rng.randint(1, 3)):
            ts = now - timedelta(days=3) + timedelta(seconds=rng.randint(0, 86_400))
            batch.append({"user_id": u, "merchant_id": m, "ts": ts, "created": ts,
                          "score": None if rng.random() < 0.1 else round(rng.random(), 6),
                          "tier": None if rng.random() < 0.1 else rng.choice("abc")})
    write_parquet(pa.Table.from_pylist(batch, BATCH_SCHEMA), path / "data/batch/part-0.parquet")
    return path, batch


# --- what the actors record ------------------------------------------------------------------------

@dataclass
class Log:
    t0: float = field(default_factory=time.monotonic)
    lock: threading.Lock = field(default_factory=threading.Lock)
    serving: list[tuple[float, int | str, float]] = field(default_factory=list)  # (t, status, s)
    serving_codes: Counter[str] = field(default_factory=Counter)    # error codes of non-200s
    served: Counter[str] = field(default_factory=Counter)           # value statuses in 200s
    pushes: list[dict[str, Any]] = field(default_factory=list)      # one per attempt
    batches: list[dict[str, Any]] = field(default_factory=list)     # one per batch
    landed: list[dict[str, Any]] = field(default_factory=list)
    runs: list[dict[str, Any]] = field(default_factory=list)        # CLI runs
    probes: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    actor_errors: list[str] = field(default_factory=list)

    def now(self) -> float:
        return time.monotonic() - self.t0

    def add(self, name: str, item: Any) -> None:
        with self.lock:
            getattr(self, name).append(item)


def actor(log: Log, name: str, fn: Callable[[], None]) -> threading.Thread:
    """A daemon thread running ``fn``; an exception is recorded (a harness bug fails the test)."""
    def run() -> None:
        try:
            fn()
        except Exception as e:  # noqa: BLE001 - reported as a failure at the end
            log.add("actor_errors", f"{name}: {type(e).__name__}: {e}")
    th = threading.Thread(target=run, name=f"soak-{name}", daemon=True)
    th.start()
    return th


class Cli:
    """``skewless`` CLI runs as subprocesses; every one still running is killed by ``kill_all``."""

    def __init__(self, repo: Path, log: Log) -> None:
        self.repo, self.log = repo, log
        self.procs: set[subprocess.Popen[bytes]] = set()
        self.lock = threading.Lock()
        self.n = 0
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith("SKEWLESS_") and k != "PROMETHEUS_MULTIPROC_DIR"}

    def run(self, *args: str) -> dict[str, Any]:
        with self.lock:
            self.n += 1
            out_path = self.repo / f"cli-{self.n:03d}-{args[0]}.log"
        start = self.log.now()
        with open(out_path, "wb") as out:
            proc = subprocess.Popen([sys.executable, "-m", "skewless.cli", "--repo", str(self.repo), *args],
                                    stdout=out, stderr=subprocess.STDOUT, env=self.env)
        with self.lock:
            self.procs.add(proc)
        try:
            rc: int | str = proc.wait(CLI_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
            rc = "timeout"
        finally:
            with self.lock:
                self.procs.discard(proc)
        text = out_path.read_text(errors="replace")
        rows = re.search(r"Materialized ([\d,]+) rows", text)
        run = {"cmd": args[0], "start": round(start, 2), "seconds": round(self.log.now() - start, 2),
               "rc": rc, "traceback": "Traceback" in text, "log": out_path.name,
               "rows": int(rows.group(1).replace(",", "")) if rows else None,
               "tail": [line for line in text.strip().splitlines() if line.strip()][-4:]}
        self.log.add("runs", run)
        return run

    def kill_all(self) -> None:
        with self.lock:
            procs = list(self.procs)
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait(10)


# --- the actors --------------------------------------------------------------------------------------

def serving_load(url: str, log: Log, stop: threading.Event, seed: int) -> None:
    rng = random.Random(seed)
    live_refs = [f"live:{n}" for n, *_ in LIVE_FEATURES]
    all_refs = live_refs + [f"batch:{n}" for n, *_ in BATCH_FEATURES]
    with httpx.Client(base_url=url, timeout=10.0) as client:
        while not stop.is_set():
            k = rng.randint(1, 50)
            users = [rng.randrange(N_USERS) if rng.random() < 0.97 else UNKNOWN[0] for _ in range(k)]
            if rng.random() < 0.5:
                body = {"features": all_refs, "entities": {
                    "user_id": users, "merchant_id": [rng.choice(MERCHANTS) for _ in users]}}
            else:
                body = {"features": live_refs, "entities": {"user_id": users}}
            t, t0 = log.now(), time.perf_counter()
            try:
                r = client.post("/get-online-features", json=body)
                status: int | str = r.status_code
            except httpx.HTTPError as e:
                r, status = None, type(e).__name__
            took = time.perf_counter() - t0
            with log.lock:
                log.serving.append((round(t, 3), status, took))
                if r is not None and r.status_code == 200:
                    for res in r.json()["results"][1 + ("merchant_id" in body["entities"]):]:
                        log.served.update(res["statuses"])
                elif r is not None:
                    log.serving_codes[f"{status} {_code(r)}"] += 1
                else:
                    log.serving_codes[str(status)] += 1
            stop.wait(0.01)


def _code(r: httpx.Response) -> str:
    try:
        return str(r.json().get("code"))
    except ValueError:
        return "?"


RETRYABLE = {409, 423, 429, 500, 502, 503, 504}


def pusher(url: str, log: Log, stop: threading.Event, seed: int) -> None:
    """Batches of 10 distinct users, each row with a unique ``seq``; a failed batch is sent again
    unchanged (same created times) until accepted, for up to 120 s."""
    rng = random.Random(seed)
    seq = 0
    with httpx.Client(base_url=url, timeout=15.0) as client:
        while not stop.is_set():
            now = datetime.now(UTC)
            users = rng.sample(range(PUSHED_USERS), 10)
            rows = [{"user_id": u, "ts": iso(now - timedelta(seconds=2 + rng.random() * 60)),
                     "created": iso(now), "amount": None if rng.random() < 0.1 else round(rng.random() * 100, 3),
                     "n": rng.randint(0, 1000), "seq": seq + i} for i, u in enumerate(users)]
            seq += len(rows)
            body = {"push_source_name": "live_push", "to": "online_and_offline",
                    "df": {c: [r[c] for r in rows] for c in rows[0]}}
            batch: dict[str, Any] = {"first_seq": rows[0]["seq"], "attempts": 0, "accepted": False}
            deadline = time.monotonic() + 120
            while True:
                start = log.now()
                try:
                    r = client.post("/push", json=body)
                    status: int | str = r.status_code
                    code = "" if r.status_code == 200 else _code(r)
                except httpx.HTTPError as e:
                    status, code = type(e).__name__, ""
                batch["attempts"] += 1
                log.add("pushes", {"start": round(start, 3), "end": round(log.now(), 3),
                                   "status": status, "code": code})
                if status == 200:
                    batch["accepted"] = True
                    break
                if (isinstance(status, int) and status not in RETRYABLE) or time.monotonic() > deadline:
                    break   # a non-retryable answer: reported at the end
                time.sleep(0.5)
            log.add("batches", batch)
            stop.wait(0.25)


def lander(repo: Path, log: Log, stop: threading.Event, history: list[dict[str, Any]], seed: int) -> None:
    """A new file in the batch view's directory every 2 s: 20 rows, a third of them corrections
    (an event time already in the source, a newer created time)."""
    rng = random.Random(seed)
    written = list(history)
    i = 0
    while not stop.wait(2.0):
        now = datetime.now(UTC) - timedelta(milliseconds=1)
        rows: dict[tuple[int, str], dict[str, Any]] = {}
        while len(rows) < 20:
            if rng.random() < 0.33:
                old = rng.choice(written)
                key, ts = (old["user_id"], old["merchant_id"]), old["ts"]
            else:
                key = (rng.randrange(LANDED_USERS), rng.choice(MERCHANTS))
                ts = now - timedelta(seconds=rng.randint(0, 3600))
            rows[key] = {"user_id": key[0], "merchant_id": key[1], "ts": ts, "created": now,
                         "score": None if rng.random() < 0.1 else round(rng.random(), 6),
                         "tier": None if rng.random() < 0.1 else rng.choice("abc")}
        i += 1
        write_parquet(pa.Table.from_pylist(list(rows.values()), BATCH_SCHEMA),
                      repo / f"data/batch/land-{i:04d}.parquet")
        written.extend(rows.values())
        log.add("landed", {"t": round(log.now(), 3), "rows": len(rows)})


def incremental_loop(cli: Cli, stop: threading.Event) -> None:
    while not stop.is_set():
        cli.run("materialize-incremental")
        stop.wait(1.5)


def prober(url: str, log: Log, stop: threading.Event, canary: list[tuple[int, str]]) -> None:
    """Four times a second: ``/ready`` and the canary (entities of the first batch file, which
    are always in the source): ok when every value is PRESENT."""
    body = {"features": [f"batch:{n}" for n, *_ in BATCH_FEATURES],
            "entities": {"user_id": [u for u, _ in canary], "merchant_id": [m for _, m in canary]}}
    with httpx.Client(base_url=url, timeout=10.0) as client:
        while not stop.wait(0.25):
            probe: dict[str, Any] = {"t": round(log.now(), 3)}
            try:
                probe["ready"] = client.get("/ready").status_code
            except httpx.HTTPError as e:
                probe["ready"] = type(e).__name__
            try:
                r = client.post("/get-online-features", json=body)
                probe["canary"] = r.status_code == 200 and all(
                    s == "PRESENT" for res in r.json()["results"][2:] for s in res["statuses"])
            except httpx.HTTPError:
                probe["canary"] = False
            probe["end"] = round(log.now(), 3)
            log.add("probes", probe)


# --- figures -----------------------------------------------------------------------------------------

def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def recovery(log: Log, up: float, until: float) -> dict[str, Any]:
    """After Redis came back at ``up``: when the canary started reading right for good (the
    start of the last all-PRESENT streak before ``until``; a fallback-cache PRESENT right after
    the restart does not count, the streak must last), and what ``/ready`` said meanwhile."""
    window = [p for p in log.probes if up <= p["t"] < until]
    recovered = None
    for p in reversed(window):
        if not p["canary"]:
            break
        recovered = p["t"]
    return {"probes": len(window),
            "canary_wrong": sum(not p["canary"] for p in window),
            "ready_not_200": sum(p["ready"] != 200 for p in window),
            "recovered_after_s": None if recovered is None else round(recovered - up, 2)}


def final_recovery(cli: Cli) -> list[dict[str, Any]]:
    """The recovery the tools prescribe once the faults are over: ``materialize-incremental``
    (it backfills a store that lost its data); if it refuses and points to ``rebuild-online``
    (issue 11 allows either), that, then ``materialize-incremental`` again. The last run must
    exit 0."""
    runs = [cli.run("materialize-incremental")]
    if runs[-1]["rc"] != 0 and "rebuild-online" in "\n".join(runs[-1]["tail"]):
        runs.append(cli.run("rebuild-online"))
        runs.append(cli.run("materialize-incremental"))
    return runs


def status_mismatches(store: FeatureStore, scenario: OnlineScenario, t: datetime) -> dict[str, Any]:
    """Per view, how online statuses differ from the rules over the offline rows at ``t``
    (``expected -> served``: entity count), and how many entities have the right status but
    another event time: a summary of what ``check_invariant`` found, for the figures."""
    rows = [dict(zip(scenario.entity_keys, e)) for e in scenario.entity_rows]
    online = store.get_online_features(list(scenario.refs), rows)
    out: dict[str, Any] = {}
    for view in scenario.views:
        col = view.features[0].name
        seen: set[tuple[Any, ...]] = set()
        diff: Counter[str] = Counter()
        for i, e in enumerate(rows):
            keys = tuple(e[k] for k in view.join_keys)
            if keys in seen:
                continue
            seen.add(keys)
            want, row = expected_status(view, view.rows, keys, t)
            got = online.statuses[col][i]
            if got != want:
                diff[f"{want} -> {got}"] += 1
            elif online.event_timestamps[col][i] != (row.ts if row is not None else None):
                diff["older event time"] += 1
        out[view.name] = dict(diff)
    return out


def wrong_while_ready(log: Log, kills: list[float], ups: list[float]) -> list[float]:
    """Probe times at which ``/ready`` said 200 while the canary read wrong, more than
    ``READY_GRACE_S`` after a restart: the silently-wrong-while-ready failure of issue 11. A probe
    in flight at any moment from a kill to ``READY_GRACE_S`` after the restart is excused."""
    excused = [(k, u + READY_GRACE_S) for k, u in zip(kills, ups)]
    return [p["t"] for p in log.probes if p["ready"] == 200 and not p["canary"]
            and not any(p["t"] <= b and p["end"] >= a for a, b in excused)]


def server_metrics(server: Server) -> dict[str, float]:
    """``skewless_http_requests_total`` by ``endpoint status`` (all workers)."""
    text = server.get("/metrics").text
    out: dict[str, float] = {}
    for labels, value in re.findall(r"^skewless_http_requests_total\{([^}]*)\} (\S+)$", text, re.M):
        d = dict(re.findall(r'(\w+)="([^"]*)"', labels))
        out[f"{d.get('endpoint')} {d.get('status')}"] = out.get(f"{d.get('endpoint')} {d.get('status')}", 0) + float(value)
    return out


def offline_rows(repo: Path, view: str, keys: tuple[str, ...], features: tuple[Any, ...]) -> list[SourceRow]:
    """Every row of the view's source directory, as the offline store holds it."""
    rows = []
    for f in sorted((repo / "data" / view).glob("*.parquet")):
        for r in pq.read_table(f).to_pylist():
            ts, created = (x.replace(tzinfo=UTC) if x.tzinfo is None else x for x in (r["ts"], r["created"]))
            rows.append(SourceRow(tuple(r[k] for k in keys), ts, created,
                                  tuple(r[name] for name, *_ in features)))
    return rows


def view_spec(name: str, entity: str, keys: tuple[tuple[str, pa.DataType], ...], ttl: timedelta | None,
              on_missing: str, features: tuple[Any, ...], rows: list[SourceRow]) -> ViewSpec:
    return ViewSpec(
        name=name, entity=entity,
        features=tuple(FeatureSpec(n, d, n, t, dv) for n, d, t, dv in features),
        ttl=ttl, on_missing=on_missing, ts_column="ts", ts_type=TS, created_column="created",
        created_type=TS, key_columns=tuple(k for k, _ in keys), key_types=tuple(t for _, t in keys),
        declare_keys=False, layout="dir", partition_by=None, n_files=1, column_orders=(),
        extra_column=False, absolute_path=False, flavour="arrow", rows=tuple(rows))


def soak_scenario(repo: Path, t: datetime) -> OnlineScenario:
    """The soak repo as an ``OnlineScenario`` over the rows read back from the offline files,
    and every entity: each user x merchant pair (so every user and every pair), plus unknown."""
    views = (
        view_spec("live", "user", (("user_id", pa.int64()),), timedelta(days=1), "null", LIVE_FEATURES,
                  offline_rows(repo, "live", ("user_id",), LIVE_FEATURES)),
        view_spec("batch", "user_merchant", (("user_id", pa.int64()), ("merchant_id", pa.string())),
                  None, "default", BATCH_FEATURES,
                  offline_rows(repo, "batch", ("user_id", "merchant_id"), BATCH_FEATURES)))
    refs = tuple(f"{v.name}:{f.name}" for v in views for f in v.features)
    base = Scenario(views=views, entity_keys=("user_id", "merchant_id"),
                    entity_key_types=(pa.int64(), pa.string()), timestamp_column="event_timestamp",
                    timestamp_type=TS, column_order=("user_id", "merchant_id", "event_timestamp"),
                    passthrough=None, labels=(), form="arrow", refs=refs, full_feature_names=False,
                    as_of=None, as_of_zone=None)
    entities = [(u, m) for u in range(N_USERS) for m in MERCHANTS] + [UNKNOWN]
    return OnlineScenario(base=base, t1=t, t2=None, rows_at_t1=tuple(v.rows for v in views),
                          entity_rows=tuple(entities), mode="incremental", split=None,
                          injected=frozenset())


def server_agrees(server: Server, store: FeatureStore, scenario: OnlineScenario,
                  deadline_s: float = 30.0) -> tuple[float | None, str, str]:
    """Poll until the running server answers every entity as the SDK does (it may hold a
    registry snapshot up to ``registry_cache_ttl_seconds`` old). Returns the seconds it took
    (None: never), the first difference and the last one."""
    start = time.monotonic()
    rows = [dict(zip(scenario.entity_keys, e)) for e in scenario.entity_rows]
    chunks = [rows[i:i + 400] for i in range(0, len(rows), 400)]
    first = last = ""
    while True:
        try:
            for chunk in chunks:
                r = server.post("/get-online-features", {"features": list(scenario.refs), "entities": {
                    k: [e[k] for e in chunk] for k in scenario.entity_keys}})
                assert r.status_code == 200, f"HTTP {r.status_code}: {r.text[:300]}"
                assert_same(r.json(), store.get_online_features(list(scenario.refs), chunk))
            return round(time.monotonic() - start, 2), first, ""
        except AssertionError as e:
            last = str(e)[:1500]
            first = first or last
        if time.monotonic() - start > deadline_s:
            return None, first, last
        time.sleep(0.5)


# --- the test ----------------------------------------------------------------------------------------

@pytest.fixture
def soak_redis() -> Iterator[Any]:
    require_redis_server_binary()
    with redis_server() as server:
        yield server


def test_soak_serving_pushes_incremental_rebuild_and_two_redis_restarts(tmp_path: Path, soak_redis: Any) -> None:
    rng = random.Random(11)
    repo, history = make_repo(tmp_path / "repo", soak_redis.address, rng)
    canary = [(r["user_id"], r["merchant_id"]) for r in rng.sample(history, 16)]
    fs = FeatureStore(repo)
    fs.apply(definitions())
    fs.materialize_incremental()

    log = Log()
    stop = threading.Event()
    cli = Cli(repo, log)
    server: Server | None = None
    threads: list[threading.Thread] = []
    failures: list[str] = []
    final_runs: list[dict[str, Any]] = []
    figures: dict[str, Any] = {}
    try:
        server = start_server(repo, workers=WORKERS)
        deadline = time.monotonic() + 60
        while server.get("/ready").status_code != 200:
            assert time.monotonic() < deadline, f"/ready never 200:\n{server.get('/ready').text}"
            time.sleep(0.2)

        log.t0 = time.monotonic()
        url = server.url
        threads = [actor(log, f"load{i}", partial(serving_load, url, log, stop, 100 + i))
                   for i in range(LOAD_THREADS)]
        threads += [actor(log, "push", partial(pusher, url, log, stop, 200)),
                    actor(log, "land", partial(lander, repo, log, stop, history, 300)),
                    actor(log, "incremental", partial(incremental_loop, cli, stop)),
                    actor(log, "probe", partial(prober, url, log, stop, canary))]

        def at(fraction: float) -> None:
            stop.wait(max(0.0, fraction * SECONDS - log.now()))

        def restart() -> None:
            log.add("events", {"event": "redis_kill", "t": round(log.now(), 3)})
            soak_redis.kill()
            stop.wait(OUTAGE_S)
            soak_redis.start(timeout=30)
            log.add("events", {"event": "redis_up", "t": round(log.now(), 3)})

        rebuild: dict[str, Any] = {"start": None, "seconds": None, "rc": 0, "tail": ["not run"]}
        if RESTARTS >= 1:
            at(0.20)
            restart()
        if REBUILD:
            at(0.45)
            log.add("events", {"event": "rebuild_start", "t": round(log.now(), 3)})
            rebuild = cli.run("rebuild-online")
            log.add("events", {"event": "rebuild_end", "t": round(log.now(), 3)})
        if RESTARTS >= 2:
            at(0.70)
            restart()
        at(1.0)
        log.add("events", {"event": "load_end", "t": round(log.now(), 3)})
        stop.set()
        for th in threads:
            th.join(180)
            if th.is_alive():
                failures.append(f"actor {th.name} did not stop within 180 s")

        # recovery: the last incremental run, then online == offline at one instant
        final_runs.extend(final_recovery(cli))
        t = datetime.now(UTC)
        scenario = soak_scenario(repo, t)
        at_t = FeatureStore(repo, clock=lambda: t)
        try:
            check_invariant(at_t, scenario, t, [v.rows for v in scenario.views],
                            "soak, after the final materialize-incremental")
            invariant = "ok"
        except InvariantMismatch as e:
            invariant = str(e)
            failures.append(f"online != offline after the final incremental run:\n{str(e)[:4000]}")
        agreed_s, first_diff, diff = server_agrees(server, FeatureStore(repo), scenario)
        if agreed_s is None:
            failures.append(f"the server does not answer as the SDK within 30 s:\n{diff}")
        metrics = server_metrics(server)
        status = fs.online_status()

        # --- figures ---------------------------------------------------------------------------
        events = log.events
        ups = [e["t"] for e in events if e["event"] == "redis_up"]
        kills = [e["t"] for e in events if e["event"] == "redis_kill"]
        load_end = next(e["t"] for e in events if e["event"] == "load_end")
        latencies = [s for _, st, s in log.serving if st == 200]
        codes = Counter(str(st) for _, st, _ in log.serving)
        push_codes = Counter(f"{p['status']} {p['code']}".strip() for p in log.pushes)
        live_rows = scenario.views[0].rows
        seqs = Counter(r.values[2] for r in live_rows if r.values[2] is not None and r.values[2] >= 0)
        incremental = [r for r in log.runs if r["cmd"] == "materialize-incremental"]
        figures = {
            "seconds_of_load": SECONDS, "workers": WORKERS, "events": events,
            "serving": {
                "requests": len(log.serving), "status_codes": dict(codes),
                "error_codes": dict(log.serving_codes),
                "req_per_s": round(len(log.serving) / max(load_end, 1e-9), 1),
                "p50_ms": round(1e3 * statistics.median(latencies), 2) if latencies else None,
                "p99_ms": round(1e3 * (percentile(latencies, 0.99) or 0), 2) if latencies else None,
                "max_ms": round(1e3 * max(latencies), 2) if latencies else None,
                "value_statuses": dict(log.served),
                "server_metrics_requests": metrics},
            "pushes": {
                "batches": len(log.batches), "accepted": sum(b["accepted"] for b in log.batches),
                "accepted_first_try": sum(b["accepted"] and b["attempts"] == 1 for b in log.batches),
                "retried": sum(b["attempts"] > 1 for b in log.batches),
                "attempts": len(log.pushes), "answers": dict(push_codes),
                "rows_accepted": 10 * sum(b["accepted"] for b in log.batches),
                "offline_rows_pushed": sum(seqs.values()),
                "offline_duplicate_rows": sum(c - 1 for c in seqs.values() if c > 1)},
            "landed": {"files": len(log.landed), "rows": sum(x["rows"] for x in log.landed)},
            "incremental_runs": {
                "runs": len(incremental), "ok": sum(r["rc"] == 0 for r in incremental),
                "failed": [{k: r[k] for k in ("start", "rc", "tail")} for r in incremental if r["rc"] != 0],
                "p50_s": statistics.median([r["seconds"] for r in incremental]) if incremental else None,
                "rows": sum(r["rows"] or 0 for r in incremental),
                "rows_by_run": [(r["start"], r["rows"]) for r in incremental]},
            "rebuild": {**{k: rebuild[k] for k in ("start", "seconds", "rc", "tail")}},
            "final_recovery": [{k: r[k] for k in ("cmd", "seconds", "rc", "rows", "tail")} for r in final_runs],
            "final_status_mismatches": status_mismatches(at_t, scenario, t),
            "recovery": [dict(recovery(log, up, (kills[i + 1] if i + 1 < len(kills) else load_end)),
                              redis_down_s=round(up - kills[i], 2)) for i, up in enumerate(ups)],
            "offline_rows": {v.name: len(v.rows) for v in scenario.views},
            "online_entities": {s.view: s.entities for s in status},
            "entities_checked": len(scenario.entity_rows),
            "offline_entities": {v.name: len({r.keys for r in v.rows}) for v in scenario.views},
            "invariant": invariant[:2000], "server_agrees_after_s": agreed_s,
            "server_first_difference": first_diff[:1000],
            "wrong_while_ready": wrong_while_ready(log, kills, ups),
            "actor_errors": log.actor_errors,
            "server_log_tracebacks": server.output().count("Traceback"),
        }
        at_t.online_store.close()
        out = tmp_path / "soak-figures.json"
        out.write_text(json.dumps(figures, indent=2, default=str))
        sv, pu = figures["serving"], figures["pushes"]
        print(f"\nSOAK {SECONDS:g}s: {sv['requests']} requests ({sv['req_per_s']}/s) {sv['status_codes']} "
              f"p50 {sv['p50_ms']} ms p99 {sv['p99_ms']} ms; pushes {pu['accepted']}/{pu['batches']} "
              f"({pu['retried']} retried, {pu['offline_duplicate_rows']} duplicate rows offline); "
              f"incremental {figures['incremental_runs']['ok']}/{figures['incremental_runs']['runs']} ok "
              f"({figures['incremental_runs']['rows']} rows); "
              f"rebuild rc {rebuild['rc']}; recovery {[r['recovered_after_s'] for r in figures['recovery']]} s; "
              f"invariant {'ok' if invariant == 'ok' else 'FAILED'}; figures in {out}")

        # --- assertions (all collected) ------------------------------------------------------------
        failures += [f"actor error: {e}" for e in log.actor_errors]
        if figures["server_log_tracebacks"]:
            failures.append(f"the server log has {figures['server_log_tracebacks']} traceback(s): {server.log}")
        bad = {k: v for k, v in codes.items() if k != "200"}
        if bad:
            failures.append(f"serving: {sum(bad.values())} request(s) not answered 200: {bad} "
                            f"(error codes {dict(log.serving_codes)})")
        server_5xx = {k: v for k, v in metrics.items() if k.startswith("/get-online-features 5")}
        if server_5xx:
            failures.append(f"serving: the server counted 5xx answers: {server_5xx}")
        windows = [(k, u + PUSH_GRACE_S) for k, u in zip(kills, ups)]
        for p in log.pushes:
            st = p["status"]
            if st == 200:
                continue
            during = any(p["start"] <= g and p["end"] >= k for k, g in windows)   # in flight
            if st == 500 or not isinstance(st, int):
                failures.append(f"push at {p['start']} s answered {st} {p['code']}")
            elif st >= 500 and not (during and st == 503 and p["code"] == "online_store_unavailable"):
                failures.append(f"push at {p['start']} s answered {st} {p['code']} "
                                f"{'during' if during else 'outside'} a Redis outage")
            elif st < 500 and st not in RETRYABLE:
                failures.append(f"push at {p['start']} s refused: {st} {p['code']}")
        if figures["wrong_while_ready"]:
            failures.append(f"/ready said 200 while the canary read wrong, more than {READY_GRACE_S} s "
                            f"after Redis came back: {figures['wrong_while_ready'][:10]}")
        lost = [b for b in log.batches if not b["accepted"]]
        if lost:
            failures.append(f"{len(lost)} push batch(es) never accepted: {lost[:5]}")
        if rebuild["rc"] != 0:
            failures.append(f"`skewless rebuild-online` exited {rebuild['rc']}: {rebuild['tail']}")
        if final_runs[-1]["rc"] != 0:
            failures.append(f"`skewless {final_runs[-1]['cmd']}` exited {final_runs[-1]['rc']}: "
                            f"{final_runs[-1]['tail']}")
        for run in log.runs:
            if run["traceback"]:
                failures.append(f"`skewless {run['cmd']}` at {run['start']} s printed a traceback "
                                f"({run['log']}): {run['tail']}")
        assert not failures, f"{len(failures)} soak failure(s) (figures in {out}):\n" + "\n".join(
            f"- {f}" for f in failures[:40])
    finally:
        stop.set()
        cli.kill_all()
        if server is not None:
            server.stop()
        for th in threads:
            th.join(30)
        fs.online_store.close()
