"""Feature server benchmark: ``skewless serve`` (Redis online store, 2 workers) under load.

    .venv/bin/python bench/server.py                 # scale S (10k entities per view), ~2 minutes
    .venv/bin/python bench/server.py --quick         # shorter runs (smoke test, ~40 s)
    .venv/bin/python bench/server.py --low-latency --wait-quiet 0.3    # the run of record
    .venv/bin/python bench/server.py --workers 1 --redis 127.0.0.1:6379

What it does, in order:

1. Generates the data of ``bench/online.py`` (same generator, same seed) and materializes the
   views ``o_v4`` (4 features) and ``o_w0``..``o_w4`` (5 x 10 features) into Redis under a
   unique project name (dropped at the end), plus a push view ``o_push`` (a PushSource whose
   batch directory is created under the work directory). Every view has no TTL, so every value
   is PRESENT at the server's real clock.
2. Starts ``skewless serve --workers 2`` on a free loopback port and waits for ``/ready``.
3. Checks a request of each case against ``FeatureStore.get_online_features`` (values,
   statuses, event timestamps): the figures are for correct answers.
4. Runs the load generator (``bench/_load.py``, a separate process: raw keep-alive HTTP/1.1,
   uvloop) against it:

   - ``1x4`` / ``1x50`` sequential: one connection, one request at a time: p50/p95/p99;
   - ``1x4`` / ``1x50`` closed loop at 32 connections: sustained req/s and its p99;
   - ``1x4`` / ``1x50`` open loop at 5,000 req/s: p99 at the target rate;
   - ``100x50`` open loop at 100, 200 and 300 req/s: p99 and errors;
   - push -> readable online: ``POST /push`` of a new value (offline file + online write) then
     ``POST /get-online-features`` until that value is served; the time from sending the push
     to reading the value back, sequentially.

Each row also shows the machine's busy cores during the run (all processes: server workers,
Redis, the generator), the generator's own CPU (on a 2-core machine it competes with the
server, and the figures say how much), the other load seen just before the run, and how the
requests spread over the workers (from their multiprocess metric files).

Results: a table on stdout and ``bench/results/server-<timestamp>.json``. ``run(scale, ...)``
returns the same dict, for ``bench/compare.py``.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _load  # noqa: E402
from _common import (  # noqa: E402
    background_cores,
    format_table,
    git_state,
    machine_info,
    stop_process,
    system_busy_seconds,
    wait_until_quiet,
)
from online import KEY, SCALES, TS, data_dir, ensure_data, feature_names  # noqa: E402

HERE = Path(__file__).resolve().parent
CASE_VIEWS = {"1x4": ["o_v4"], "1x50": [f"o_w{i}" for i in range(5)], "100x50": [f"o_w{i}" for i in range(5)]}
CASE_ENTITIES = {"1x4": 1, "1x50": 1, "100x50": 100}
PUSH_SOURCE, PUSH_VIEW = "bench_push", "o_push"
PUSH_FEATURES = [("push_f0", "Float64"), ("push_f1", "Float64"), ("push_i0", "Int64"), ("push_i1", "Int64")]
TARGETS = {  # issue 4, Redis online store, 2 workers
    "seq_p99_ms": 1.0, "sustained_rps": 5000.0, "sustained_p99_ms": 10.0,
    "100x50_p99_ms_at_100": 15.0, "100x50_error_free_up_to_rps": 300.0, "push_read_p99_ms": 25.0,
}


# --- set-up ---------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def refs(case: str) -> list[str]:
    return [f"{v}:{f}" for v in CASE_VIEWS[case] for f, _ in feature_names(v)]


def definitions(paths: dict[str, Path], push_dir: Path) -> list[Any]:
    from skewless import Entity, FeatureView, Field, FileSource, PushSource
    from skewless import types as T

    entity = Entity(name="entity", join_keys=[KEY])
    views = [FeatureView(
        name=v, entities=[entity], ttl=None,
        schema=[Field(name=KEY, dtype=T.Int64)] + [Field(name=f, dtype=getattr(T, t)) for f, t in feature_names(v)],
        source=FileSource(path=str(p), timestamp_field=TS, name=f"{v}_src")) for v, p in paths.items()]
    views.append(FeatureView(
        name=PUSH_VIEW, entities=[entity], ttl=None,
        schema=[Field(name=KEY, dtype=T.Int64)] + [Field(name=f, dtype=getattr(T, t)) for f, t in PUSH_FEATURES],
        source=PushSource(PUSH_SOURCE, batch_source=FileSource(str(push_dir), timestamp_field=TS))))
    return [entity, *views]


def write_push_seed(push_dir: Path) -> None:
    """The push view's batch directory with one file: it fixes the pushed files' schema."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    push_dir.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({
        KEY: pa.array([0], type=pa.int64()),
        TS: pa.array([datetime(2024, 1, 1, tzinfo=timezone.utc)], type=pa.timestamp("us", tz="UTC")),
        "push_f0": [0.0], "push_f1": [0.0], "push_i0": pa.array([0], type=pa.int64()),
        "push_i1": pa.array([0], type=pa.int64())}), push_dir / "seed.parquet")


def setup_repo(work: Path, project: str, redis_address: str, paths: dict[str, Path]) -> tuple[Path, float]:
    import yaml

    from skewless import FeatureStore
    repo = work / "repo"
    repo.mkdir(parents=True, exist_ok=True)
    (repo / "feature_store.yaml").write_text(yaml.safe_dump({
        "project": project, "registry": str(repo / "registry.db"), "offline_store": {"type": "duckdb"},
        "online_store": {"type": "redis", "connection_string": redis_address}}))
    push_dir = work / "push_events"
    write_push_seed(push_dir)
    fs = FeatureStore(repo)
    fs.apply(definitions(paths, push_dir))
    t = time.perf_counter()
    fs.materialize_incremental()
    took = time.perf_counter() - t
    fs.online_store.close()
    return repo, took


def drop_repo(repo: Path, views: list[str]) -> None:
    from skewless import FeatureStore
    from skewless.online import table_name
    fs = FeatureStore(repo)
    fs.online_store.drop([table_name(fs.project, v) for v in views])
    fs.online_store.close()


class ServerProcess:
    def __init__(self, repo: Path, workers: int, log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("SKEWLESS_")}
        self.metrics_dir = log.parent / "metrics"  # per-worker counters: how the load spread
        shutil.rmtree(self.metrics_dir, ignore_errors=True)
        self.metrics_dir.mkdir(parents=True)
        if workers > 1:
            env["PROMETHEUS_MULTIPROC_DIR"] = str(self.metrics_dir)
        with open(log, "wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "skewless.cli", "--repo", str(repo), "serve", "--host", "127.0.0.1",
                 "--port", str(self.port), "--workers", str(workers), "--log-level", "warning"],
                stdout=out, stderr=subprocess.STDOUT, env=env)
        self.log = log

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"skewless serve exited:\n{self.log.read_text()[-3000:]}")
            try:
                status, _ = http_get(self.port, "/ready")
                if status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"skewless serve not ready within {timeout} s:\n{self.log.read_text()[-3000:]}")

    def worker_requests(self) -> dict[str, float]:
        """Requests answered so far by each worker (pid), from the multiprocess metric files."""
        out: dict[str, float] = {}
        try:
            from prometheus_client.mmap_dict import MmapedDict
        except ImportError:
            return out
        for f in sorted(self.metrics_dir.glob("counter_*.db")):
            d = MmapedDict(str(f), read_mode=True)
            try:
                n = sum(value for key, value, _ in d.read_all_values()
                        if json.loads(key)[0] == "skewless_http_requests")
            finally:
                d.close()
            out[f.stem.split("_", 1)[1]] = n
        return out

    def stop(self) -> None:
        stop_process(self.proc)


def http_get(port: int, path: str) -> tuple[int, bytes]:
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        c.request("GET", path)
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


# --- requests and checks ------------------------------------------------------------------------
def bodies(case: str, entities: int, n: int, seed: int) -> list[str]:
    rng = random.Random(f"{seed}-{case}")
    k = CASE_ENTITIES[case]
    rs = refs(case)
    return [json.dumps({"features": rs, "entities": {KEY: rng.sample(range(entities), k)}}) for _ in range(n)]


def check_case(conn: http.client.HTTPConnection, repo: Path, case: str, body: str) -> list[str]:
    """The server's answer equals the SDK's (values, statuses, event times); all PRESENT."""
    from skewless import FeatureStore
    conn.request("POST", "/get-online-features", body, {"Content-Type": "application/json"})
    r = conn.getresponse()
    data = json.loads(r.read())
    if r.status != 200:
        return [f"{case}: HTTP {r.status} {data}"]
    req = json.loads(body)
    fs = FeatureStore(repo)
    sdk = fs.get_online_features(req["features"], [{KEY: e} for e in req["entities"][KEY]])
    fs.online_store.close()
    problems = []
    got = {n: res for n, res in zip(data["metadata"]["feature_names"], data["results"])}
    stamps = sdk.event_timestamps
    for name, col in sdk.values.items():
        res = got.get(name)
        if res is None:
            problems.append(f"{case}: column {name} missing")
            continue
        if res["values"] != col:
            problems.append(f"{case}: {name} values differ")
        if res["statuses"] != sdk.statuses[name] or set(res["statuses"]) != {"PRESENT"}:
            problems.append(f"{case}: {name} statuses {set(res['statuses'])}")
        want_ts = [None if t is None else t.isoformat().replace("+00:00", "Z") for t in stamps[name]]
        if res["event_timestamps"] != want_ts:
            problems.append(f"{case}: {name} event timestamps differ")
    return problems


def push_to_read(port: int, entities: int, count: int, max_seconds: float, seed: int) -> dict[str, Any]:
    """Push a new value, then read until it is served: latency from sending the push."""
    rng = random.Random(seed)
    push_conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    read_conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    lat: list[int] = []
    push_ns: list[int] = []
    errors, retries = 0, 0
    feats = [f"{PUSH_VIEW}:{f}" for f, _ in PUSH_FEATURES]
    t_end = time.perf_counter() + max_seconds
    for i in range(count):
        if time.perf_counter() > t_end:
            break
        e = rng.randrange(entities)
        value = i + 0.25
        now = datetime.now(timezone.utc).isoformat()
        push = json.dumps({"push_source_name": PUSH_SOURCE, "to": "online_and_offline", "df": {
            KEY: [e], TS: [now], "push_f0": [value], "push_f1": [value], "push_i0": [i], "push_i1": [i]}})
        read = json.dumps({"features": feats, "entities": {KEY: [e]}})
        t0 = time.perf_counter_ns()
        push_conn.request("POST", "/push", push, {"Content-Type": "application/json"})
        r = push_conn.getresponse()
        r.read()
        t_push = time.perf_counter_ns()
        if r.status != 200:
            errors += 1
            continue
        for attempt in range(200):
            read_conn.request("POST", "/get-online-features", read, {"Content-Type": "application/json"})
            rr = read_conn.getresponse()
            data = json.loads(rr.read())
            if rr.status == 200 and data["results"][1]["values"][0] == value:
                break
            retries += 1
        else:
            errors += 1
            continue
        lat.append(time.perf_counter_ns() - t0)
        push_ns.append(t_push - t0)
    push_conn.close()
    read_conn.close()
    out = {"mode": "push_to_read", "requests": len(lat), "errors": errors, "read_retries": retries,
           **_load.percentiles(lat)}
    out["push_only"] = _load.percentiles(push_ns)
    return out


# --- the run ------------------------------------------------------------------------------------
def measure(spec: dict[str, Any], wait_quiet: float | None = None, quiet_timeout: float = 120.0,
            server: ServerProcess | None = None) -> dict[str, Any]:
    """One load run in a child process, with the machine's busy cores over it (everything:
    server, Redis, generator, and whatever else runs) and the other load seen just before."""
    before = (wait_until_quiet(wait_quiet, quiet_timeout)[0] if wait_quiet is not None
              else background_cores(0.5))
    per0 = server.worker_requests() if server is not None else {}
    busy0, t0 = system_busy_seconds(), time.perf_counter()
    result = _load.run_in_child(spec)
    elapsed = time.perf_counter() - t0
    if server is not None:
        per1 = server.worker_requests()
        deltas = [per1[k] - per0.get(k, 0.0) for k in per1]
        total = sum(deltas)
        if len(deltas) > 1 and total:
            result["worker_share"] = [round(d / total, 3) for d in sorted(deltas, reverse=True)]
    result["machine_busy_cores"] = (system_busy_seconds() - busy0) / elapsed if elapsed else 0.0
    result["background_cores_before"] = before
    return result


def run(scale: str = "S", redis: str = "127.0.0.1:6379", workers: int = 2, seed: int = 42,
        quick: bool = False, data_root: Path | None = None, results_dir: Path | None = HERE / "results",
        entities: int | None = None, concurrency: int = 32, verbose: bool = True,
        wait_quiet: float | None = None, quiet_timeout: float = 120.0, low_latency: bool = False
        ) -> dict[str, Any]:
    """Start ``skewless serve`` over the bench data, measure, stop it, drop its Redis keys.
    Returns parameters, machine, per-run figures, checks and target verdicts."""
    say = print if verbose else (lambda *a, **k: None)
    E = entities or SCALES[scale]
    views = list(dict.fromkeys(v for vs in CASE_VIEWS.values() for v in vs))
    root = data_root or HERE / "data"
    paths = ensure_data(root, E, seed, views)
    project = f"bench_server_{uuid.uuid4().hex[:8]}"
    work = data_dir(root, E, seed) / f"work-{project}"
    shutil.rmtree(work, ignore_errors=True)
    secs = 3.0 if quick else 8.0
    seq_count = 5_000 if quick else 20_000
    machine = machine_info()
    out: dict[str, Any] = {
        "benchmark": "server", "started": datetime.now(timezone.utc).isoformat(), "scale": scale,
        "entities": E, "workers": workers, "redis": redis, "quick": quick, "concurrency": concurrency,
        "low_latency": low_latency,
        "machine": machine, "git": git_state(), "targets": TARGETS, "runs": {}}
    server: ServerProcess | None = None
    repo: Path | None = None
    try:
        say(f"server benchmark: {E:,} entities per view, Redis {redis}, {workers} worker(s); "
            f"machine {machine['nproc']} cores, {machine['cpu']}", flush=True)
        repo, mat_s = setup_repo(work, project, redis, paths)
        say(f"  materialized {len(views)} views into Redis (project {project}) in {mat_s:.1f} s", flush=True)
        out["background_cores_before"] = background_cores(1.0)
        server = ServerProcess(repo, workers, work / "server.log")
        server.wait_ready()
        say(f"  skewless serve ready on {server.url}; background load before: "
            f"{out['background_cores_before']:.2f} cores", flush=True)
        pools = {c: bodies(c, E, 2000 if CASE_ENTITIES[c] == 1 else 300, seed) for c in CASE_VIEWS}
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        problems = [p for c in pools for b in pools[c][:3] for p in check_case(conn, repo, c, b)]
        conn.close()
        out["check"] = {"ok": not problems, "problems": problems[:10]}
        say(f"  check vs FeatureStore.get_online_features: {'ok' if not problems else problems[:3]}", flush=True)
        base = {"url": server.url, "path": "/get-online-features"}
        plan: list[tuple[str, dict[str, Any]]] = []
        for c in ("1x4", "1x50"):
            plan += [(f"{c} sequential", {**base, "mode": "sequential", "bodies": pools[c], "count": seq_count,
                                          "max_seconds": secs * 2, "warmup": 500}),
                     (f"{c} closed c={concurrency}", {**base, "mode": "closed", "bodies": pools[c],
                                                      "concurrency": concurrency, "count": 10**7,
                                                      "max_seconds": secs, "warmup_seconds": 1.0}),
                     (f"{c} open 5000/s", {**base, "mode": "open", "bodies": pools[c], "rate": 5000,
                                           "connections": 64, "count": 10**7, "max_seconds": secs / 2})]
        for rate, s in ((100, secs + 2), (200, secs / 2), (300, secs / 2)):
            plan.append((f"100x50 open {rate}/s", {**base, "mode": "open", "bodies": pools["100x50"], "rate": rate,
                                                   "connections": 16, "count": 10**7, "max_seconds": s}))
        for name, spec in plan:
            res = measure(spec, wait_quiet, quiet_timeout, server)
            out["runs"][name] = res
            say(f"  {name:<22} {res['rps']:>8,.0f} req/s  p50 {res['p50_ms']:.3f}  p99 {res['p99_ms']:.3f} ms  "
                f"errors {res['errors']}  busy {res['machine_busy_cores']:.2f} cores "
                f"(other load before: {res['background_cores_before']:.2f})"
                + (f", worker share {res['worker_share']}" if "worker_share" in res else ""), flush=True)
        if wait_quiet is not None:
            wait_until_quiet(wait_quiet, quiet_timeout)
        pr = push_to_read(server.port, E, 100 if quick else 300, secs * 3, seed)
        out["runs"]["push -> read"] = pr
        say(f"  push -> read           p50 {pr['p50_ms']:.2f}  p99 {pr['p99_ms']:.2f} ms  "
            f"errors {pr['errors']}  read retries {pr['read_retries']}", flush=True)
    finally:
        if server is not None:
            server.stop()
        if repo is not None:
            try:
                drop_repo(repo, views + [PUSH_VIEW])
            except Exception as e:  # noqa: BLE001 - report, keep the results
                print(f"  warning: could not drop the bench tables: {e}", file=sys.stderr)
        shutil.rmtree(work, ignore_errors=True)
    out["verdicts"] = evaluate(out)
    out["finished"] = datetime.now(timezone.utc).isoformat()
    if results_dir is not None:
        results_dir.mkdir(parents=True, exist_ok=True)
        path = results_dir / f"server-{datetime.now():%Y%m%d-%H%M%S}.json"
        path.write_text(json.dumps(out, indent=2, default=str))
        out["results_file"] = str(path)
    return out


def measure_for_compare(job: dict[str, Any]) -> dict[str, Any]:
    """bench/compare.py's hook: ``skewless serve`` over an already materialized repo of
    ``online.setup_store`` (job: store, repo, config, views, entities_per_request, entities,
    seed, round, workers, seq_requests, seq_budget_s, conc_connections, conc_requests,
    conc_budget_s), the requests of ``online.requests`` (as Feast's side gets them), a check of
    3 answers against FeatureStore.get_online_features, the values of the first 20 requests
    (``sample``), then a sequential and a closed-loop run of bench/_load.py."""
    import yaml

    from skewless import FeatureStore

    work = Path(job["repo"]).parent / f"serve-{os.getpid()}-{job.get('round', 0)}"
    work.mkdir(parents=True, exist_ok=True)
    (work / "feature_store.yaml").write_text(yaml.safe_dump(job["config"]))  # absolute paths
    reqs, refs, texts = _load.compare_requests(job)
    server = ServerProcess(work, job["workers"], work / "server.log")
    try:
        server.wait_ready()
        sample = []
        for i, d in enumerate(_load.post_bodies(server.port, texts, 20, "skewless serve")):
            names = d["metadata"]["feature_names"]
            sample.append({"entities": reqs[i], "values": {n: x["values"] for n, x in zip(names, d["results"])},
                           "statuses": {n: x["statuses"] for n, x in zip(names, d["results"])}})
        fs = FeatureStore(work)  # the server's clock (now), not online.py's fixed one
        problems = []
        for i in range(min(3, len(reqs))):
            want = fs.get_online_features(refs, [{KEY: e} for e in reqs[i]])
            got = sample[i]
            for name, col in want.values.items():
                if got["values"].get(name) != col or got["statuses"].get(name) != want.statuses[name]:
                    problems.append(f"request {i}: {name} differs from FeatureStore.get_online_features")
        fs.online_store.close()
        seq, conc = _load.compare_runs(server.url, texts, job)
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)
    return {"method": "skewless_serve", "workers": job["workers"],
            "load_generator": "bench/_load.py (sequential; closed loop)", "sequential": seq, "concurrent": conc,
            "check": {"ok": not problems, "problems": problems[:5]}, "sample": sample,
            "server_cmd": f"skewless serve --workers {job['workers']} --log-level warning"}


def evaluate(out: dict[str, Any]) -> list[dict[str, Any]]:
    r, t = out["runs"], TARGETS
    v: list[dict[str, Any]] = []

    def add(text: str, value: float, target: str, met: bool) -> None:
        v.append({"text": text, "value": value, "target": target, "met": met})
    for c in ("1x4", "1x50"):
        s = r.get(f"{c} sequential")
        if s:
            add(f"{c} sequential p99", s["p99_ms"], f"<= {t['seq_p99_ms']:g} ms", s["p99_ms"] <= t["seq_p99_ms"])
        cl = r.get(f"{c} closed c={out['concurrency']}")
        if cl:
            add(f"{c} sustained req/s (closed, c={out['concurrency']})", cl["rps"],
                f">= {t['sustained_rps']:,.0f}", cl["rps"] >= t["sustained_rps"] and cl["errors"] == 0)
            add(f"{c} p99 at that rate", cl["p99_ms"], f"<= {t['sustained_p99_ms']:g} ms",
                cl["p99_ms"] <= t["sustained_p99_ms"])
        op = r.get(f"{c} open 5000/s")
        if op:
            add(f"{c} p99 at 5,000 req/s offered (open)", op["p99_ms"], f"<= {t['sustained_p99_ms']:g} ms",
                op["p99_ms"] <= t["sustained_p99_ms"] and op["errors"] == 0 and op["rps"] >= 0.95 * 5000)
    o = r.get("100x50 open 100/s")
    if o:
        add("100x50 p99 at 100 req/s", o["p99_ms"], f"<= {t['100x50_p99_ms_at_100']:g} ms",
            o["p99_ms"] <= t["100x50_p99_ms_at_100"])
    errs = sum(r[k]["errors"] for k in r if k.startswith("100x50 open"))
    if o:
        add("100x50 errors up to 300 req/s", errs, "0", errs == 0)
    pr = r.get("push -> read")
    if pr:
        add("push -> readable online p99", pr["p99_ms"], f"<= {t['push_read_p99_ms']:g} ms",
            pr["p99_ms"] <= t["push_read_p99_ms"] and pr["errors"] == 0)
    return v


def render(out: dict[str, Any], markdown: bool = False) -> str:
    rows = []
    for name, r in out["runs"].items():
        rows.append([name, r["requests"], f"{r.get('rps', 0):,.0f}" if "rps" in r else "-",
                     f"{r['p50_ms']:.3f}", f"{r['p95_ms']:.3f}", f"{r['p99_ms']:.3f}", f"{r['max_ms']:.1f}",
                     r["errors"], f"{r['machine_busy_cores']:.2f}" if "machine_busy_cores" in r else "-",
                     f"{r['generator_cpu_s'] / r['seconds']:.2f}" if r.get("seconds") else "-",
                     f"{r['background_cores_before']:.2f}" if "background_cores_before" in r else "-",
                     "/".join(f"{x:.0%}" for x in r["worker_share"]) if "worker_share" in r else "-"])
    table = format_table(["run", "requests", "req/s", "p50 ms", "p95 ms", "p99 ms", "max ms", "errors",
                          "busy cores", "generator cores", "other load before", "worker share"], rows,
                         markdown=markdown)
    verdicts = format_table(["target (issue 4)", "measured", "target", "met?"],
                            [[v["text"], f"{v['value']:,.3f}" if isinstance(v["value"], float) else v["value"],
                              v["target"], "yes" if v["met"] else "NO"] for v in out["verdicts"]],
                            markdown=markdown)
    return table + "\n\n" + verdicts


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--scale", choices=sorted(SCALES), default="S")
    p.add_argument("--entities", type=int, help="entities per view (overrides --scale)")
    p.add_argument("--redis", default="127.0.0.1:6379")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--concurrency", type=int, default=32, help="connections of the closed-loop runs")
    p.add_argument("--quick", action="store_true", help="shorter runs")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--data-dir", type=Path, default=HERE / "data")
    p.add_argument("--results-dir", type=Path, default=HERE / "results")
    p.add_argument("--low-latency", action="store_true",
                   help="hold /dev/cpu_dma_latency at 0 during the run (idle CPUs poll instead of halting; "
                        "see bench/README.md, online.py); needs root")
    p.add_argument("--wait-quiet", type=float, metavar="CORES",
                   help="before each run wait until other processes use at most CORES cores")
    p.add_argument("--quiet-timeout", type=float, default=120.0)
    p.add_argument("--render", type=Path, metavar="RESULTS_JSON", help="print an earlier run as Markdown")
    args = p.parse_args(argv)
    if args.render:
        print(render(json.loads(args.render.read_text()), markdown=True))
        return 0
    latency_fd = None
    if args.low_latency:
        try:
            latency_fd = os.open("/dev/cpu_dma_latency", os.O_WRONLY)
            os.write(latency_fd, (0).to_bytes(4, sys.byteorder, signed=True))
        except OSError as e:
            raise SystemExit(f"--low-latency: cannot set /dev/cpu_dma_latency: {e}") from None
    try:
        out = run(args.scale, args.redis, args.workers, args.seed, args.quick, args.data_dir, args.results_dir,
                  args.entities, args.concurrency, wait_quiet=args.wait_quiet, quiet_timeout=args.quiet_timeout,
                  low_latency=args.low_latency)
    finally:
        if latency_fd is not None:
            os.close(latency_fd)
    print()
    print(render(out))
    if out.get("results_file"):
        print(f"\nresults: {out['results_file']}")
    return 0 if out["check"]["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
