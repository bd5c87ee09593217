"""Feast's side of ``bench/compare.py``: one named measurement per invocation, one JSON line out.

Runs INSIDE ``bench/.venv-feast`` (``feast==0.67.0``, see requirements.txt), never in the project's
venv: skewless is not importable here and Feast is not importable there.

    bench/.venv-feast/bin/python bench/feast/runner.py <measurement> '<job JSON>'

Measurements (the job keys are built by compare.py; see each function):

- ``pit``           ``store.get_historical_features(labels, refs, full_feature_names=True).to_df()``
                    with the ``duckdb`` or the ``file`` (dask) offline store; saves the output.
- ``materialize``   ``store.materialize(start, end)`` (DuckDB offline store) into SQLite or Redis.
- ``online-setup``  apply the online views and materialize them (a repo reused by the next two).
- ``online``        in-process ``store.get_online_features(refs, rows).to_dict()`` latencies.
- ``server``        ``feast serve`` as a subprocess on a free loopback port (no worker recycling):
                    sequential and bounded concurrent HTTP latency.
- ``teardown``      ``store.teardown()`` of a repo, then count the project's Redis keys left.

The definitions are the ones of bench/pit.py, bench/online.py and bench/materialize.py (the same
entity, views, feature names and types, the same Parquet files under bench/data), imported from
those modules: at import time they need only the standard library, so they load here too.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BENCH))
from _common import cpu_seconds, current_rss, interleaved_latencies, peak_rss  # noqa: E402

KEY, TS, CREATED = "entity_id", "event_timestamp", "created"


# --------------------------------------------------------------------------------------------
# The Feast repo
# --------------------------------------------------------------------------------------------

def write_repo(repo: Path, project: str, offline: str, online: str, redis: str = "127.0.0.1:6379") -> None:
    """feature_store.yaml of a local-provider repo (file registry inside the repo)."""
    repo.mkdir(parents=True, exist_ok=True)
    if online == "sqlite":
        online_yaml = f"  type: sqlite\n  path: {repo / 'online.db'}\n"
    else:
        online_yaml = f"  type: redis\n  connection_string: \"{redis}\"\n"
    (repo / "feature_store.yaml").write_text(
        f"project: {project}\n"
        f"registry: {repo / 'registry.db'}\n"
        "provider: local\n"
        f"offline_store:\n  type: {offline}\n"
        f"online_store:\n{online_yaml}"
        "entity_key_serialization_version: 3\n")


def open_store(repo: Path):  # type: ignore[no-untyped-def]
    from feast import FeatureStore
    return FeatureStore(repo_path=str(repo))


def entity():  # type: ignore[no-untyped-def]
    from feast import Entity, ValueType
    return Entity(name="entity", join_keys=[KEY], value_type=ValueType.INT64)


def view(name: str, ent, features: list[tuple[str, str]], path: str, ttl: timedelta,  # type: ignore[no-untyped-def]
         created: bool = False):
    """A FeatureView over one Parquet file; ``features`` are (name, skewless type name) pairs,
    which are also Feast's type names (Float64, Int64, String)."""
    from feast import FeatureView, Field, FileSource
    from feast import types as FT
    return FeatureView(
        name=name, entities=[ent], ttl=ttl,
        schema=[Field(name=KEY, dtype=FT.Int64)] + [Field(name=f, dtype=getattr(FT, t)) for f, t in features],
        source=FileSource(path=path, timestamp_field=TS, name=f"{name}_src",
                          created_timestamp_column=CREATED if created else ""))


# --------------------------------------------------------------------------------------------
# Point-in-time retrieval
# --------------------------------------------------------------------------------------------

def m_pit(job: dict[str, Any]) -> dict[str, Any]:
    """job: offline (duckdb|file), views [{name, path, created}], labels, ttl_s, repo, out?

    As bench/pit.py's ``measure``: the labels frame is loaded and the definitions applied before
    the clock starts; the clock covers ``get_historical_features(...).to_df()`` (reading the
    feature files included)."""
    import pandas as pd
    import pit

    repo = Path(job["repo"])
    write_repo(repo, "bench_feast_pit", job["offline"], "sqlite")
    fs = open_store(repo)
    ent = entity()
    views = [view(v["name"], ent, list(pit.FEATURES), v["path"], timedelta(seconds=job["ttl_s"]), v["created"])
             for v in job["views"]]
    fs.apply([ent, *views])
    refs = [f"{v['name']}:{f}" for v in job["views"] for f, _ in pit.FEATURES]
    labels = pd.read_parquet(job["labels"])
    rss_before = current_rss()
    cpu, t = cpu_seconds(), time.perf_counter()
    df = fs.get_historical_features(entity_df=labels, features=refs, full_feature_names=True).to_df()
    wall = time.perf_counter() - t
    cpu = cpu_seconds() - cpu
    result = {"method": f"feast_{job['offline']}", "wall_s": wall, "cpu_s": cpu, "peak_rss": peak_rss(),
              "rss_before": rss_before, "rows": int(len(df)), "labels": int(len(labels))}
    if job.get("out"):
        import pyarrow as pa
        import pyarrow.parquet as pq
        cols = ["label_id"] + [f"{v['name']}__{f}" for v in job["views"] for f, _ in pit.FEATURES]
        missing = [c for c in cols if c not in df.columns]
        if missing:
            raise RuntimeError(f"Feast output lacks columns {missing}: {list(df.columns)}")
        out = df[cols].reset_index(drop=True)
        pq.write_table(pa.Table.from_pandas(out, preserve_index=False), job["out"])
    return result


# --------------------------------------------------------------------------------------------
# Materialization
# --------------------------------------------------------------------------------------------

def stored_entities(fs, online: str, project: str, views: list[str], redis: str) -> dict[str, int]:  # type: ignore[no-untyped-def]
    """Entities stored per view: distinct entity keys of the SQLite table; for Redis the keys of
    the project holding the view's timestamp field ``_ts:<view>``."""
    if online == "sqlite":
        import sqlite3
        con = sqlite3.connect(fs.config.online_store.path)
        try:
            return {v: con.execute(f'SELECT count(DISTINCT entity_key) FROM "{project}_{v}"').fetchone()[0]
                    for v in views}
        finally:
            con.close()
    r = redis_client(redis)
    keys = project_keys(r, project)
    out = {}
    for v in views:
        pipe = r.pipeline(transaction=False)
        for k in keys:
            pipe.hexists(k, f"_ts:{v}")
        out[v] = sum(1 for x in pipe.execute() if x)
    return out


def redis_client(address: str):  # type: ignore[no-untyped-def]
    import redis
    host, port = address.split(":")
    return redis.Redis(host=host, port=int(port))


def project_keys(r, project: str) -> list[bytes]:  # type: ignore[no-untyped-def]
    """Feast's Redis keys end with the project name (``<serialized entity key><project>``)."""
    return list(r.scan_iter(match=b"*" + project.encode(), count=10_000))


def m_materialize(job: dict[str, Any]) -> dict[str, Any]:
    """job: online (sqlite|redis), path, now (ISO), project, repo, redis, offline (duckdb|file).

    ``store.materialize(2000-01-01, now)`` of one view (bench/materialize.py's ``mat_v``) into a
    fresh online store; Redis keys of the project are deleted afterwards (``teardown``)."""
    import materialize as mat

    repo = Path(job["repo"])
    write_repo(repo, job["project"], job.get("offline", "duckdb"), job["online"], job["redis"])
    fs = open_store(repo)
    ent = entity()
    fv = view(mat.VIEW, ent, list(mat.FEATURES), job["path"], timedelta(days=3650))
    fs.apply([ent, fv])  # creates the SQLite table before the clock starts
    now = datetime.fromisoformat(job["now"])
    start = datetime(2000, 1, 1, tzinfo=timezone.utc)
    try:
        cpu, t = cpu_seconds(), time.perf_counter()
        fs.materialize(start_date=start, end_date=now)
        wall = time.perf_counter() - t
        cpu = cpu_seconds() - cpu
        stored = stored_entities(fs, job["online"], job["project"], [mat.VIEW], job["redis"])[mat.VIEW]
    finally:
        left = teardown(fs, job["online"], job["project"], job["redis"])
    return {"method": "feast", "materialize": {"wall_s": wall, "cpu_s": cpu, "stored": stored},
            "peak_rss": peak_rss(), "redis_keys_left": left}


def teardown(fs, online: str, project: str, redis: str) -> int | None:  # type: ignore[no-untyped-def]
    """Feast's own teardown (for Redis: SCAN + DEL of the project's keys), then delete whatever
    key of the project is still there. Returns the keys that were left for the second pass."""
    try:
        fs.teardown()
    except Exception as e:  # noqa: BLE001 - cleanup goes on below
        print(f"feast teardown failed: {e!r}", file=sys.stderr)
    if online != "redis":
        return None
    r = redis_client(redis)
    left = project_keys(r, project)
    for i in range(0, len(left), 1000):
        r.delete(*left[i:i + 1000])
    return len(left)


# --------------------------------------------------------------------------------------------
# Online serving (in-process)
# --------------------------------------------------------------------------------------------

def m_online_setup(job: dict[str, Any]) -> dict[str, Any]:
    """job: online, repo, project, redis, views {name: path}, no_ttl?. Apply bench/online.py's
    views (TTL online.TTL, or none with ``no_ttl``: the HTTP server runs at the real clock) and
    materialize them all up to online.NOW (the same clock skewless materializes at)."""
    import online as onl

    repo = Path(job["repo"])
    write_repo(repo, job["project"], "duckdb", job["online"], job["redis"])
    fs = open_store(repo)
    ent = entity()
    ttl = timedelta(0) if job.get("no_ttl") else onl.TTL  # Feast: a zero TTL is no TTL
    views = [view(v, ent, onl.feature_names(v), p, ttl) for v, p in job["views"].items()]
    fs.apply([ent, *views])
    t = time.perf_counter()
    fs.materialize(start_date=onl.T0 - timedelta(days=1), end_date=onl.NOW)
    took = time.perf_counter() - t
    counts = stored_entities(fs, job["online"], job["project"], list(job["views"]), job["redis"])
    return {"materialize_s": took, "counts": counts}


def m_teardown(job: dict[str, Any]) -> dict[str, Any]:
    fs = open_store(Path(job["repo"]))
    left = teardown(fs, job["online"], job["project"], job["redis"])
    return {"teardown": True, "redis_keys_left": left}


def percentiles(ns: list[int]) -> dict[str, float]:
    """Nearest-rank percentiles in microseconds (bench/online.py's definition)."""
    s = sorted(ns)
    n = len(s)
    if not n:
        return {"n": 0}

    def q(p: float) -> float:
        return s[min(n - 1, max(0, int(-(-p * n // 1)) - 1))] / 1000.0
    return {"n": n, "p50": q(0.50), "p95": q(0.95), "p99": q(0.99), "p999": q(0.999),
            "mean": sum(s) / n / 1000.0, "max": s[-1] / 1000.0}


def m_online(job: dict[str, Any]) -> dict[str, Any]:
    """job: online.py's job keys (store, case, round, views, entities_per_request, entities, seed,
    iters, block, budget_s) plus repo and check_out.

    Methods, interleaved in blocks as in bench/online.py's child:
      ``feast``       ``store.get_online_features(refs, rows).to_dict()``: the values as Python
                      lists, which is what skewless's call returns (its ``.values``);
      ``feast_call``  the call alone (Feast's ``OnlineResponse`` still holds protobufs).
    The same request sequence as skewless (``online.requests(job)``)."""

    import online as onl

    fs = open_store(Path(job["repo"]))
    reqs = onl.requests(job)
    refs = [f"{v}:{f}" for v in job["views"] for f, _ in onl.feature_names(v)]
    rows = [[{KEY: e} for e in ids] for ids in reqs]
    get = fs.get_online_features
    methods = {"feast": lambda i: get(features=refs, entity_rows=rows[i]).to_dict(),
               "feast_call": lambda i: get(features=refs, entity_rows=rows[i])}
    if job.get("check_out"):  # the values served for the first requests, for the parent's check
        sample = [{"entities": reqs[i], "values": get(features=refs, entity_rows=rows[i]).to_dict()}
                  for i in range(min(20, len(reqs)))]
        Path(job["check_out"]).write_text(json.dumps(sample))
    names = list(methods)
    pool = len(reqs)
    for m in names:  # warm up: 300 calls or 1 s per method, whichever first
        t_warm = time.perf_counter()
        for i in range(min(300, pool)):
            methods[m](i)
            if time.perf_counter() - t_warm > 1.0:
                break
    run = interleaved_latencies(methods, names, pool, job["iters"], job["block"],
                                job["budget_s"] * len(names))
    return {"store": job["store"], "case": job["case"], "round": job["round"],
            "methods": {m: percentiles(v) for m, v in run["latencies"].items()},
            "iterations": run["iterations"], "elapsed_s": run["elapsed_s"],
            "gc_collections": run["gc_collections"]}


# --------------------------------------------------------------------------------------------
# HTTP server (feast serve)
# --------------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _die_with_parent() -> None:
    """In the server's child process: SIGTERM when this runner dies (even by SIGKILL on a
    timeout), so a server started here never outlives the measurement (Linux prctl)."""
    try:
        import ctypes
        import signal
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, int(signal.SIGTERM))  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def start_server(repo: Path, workers: int, log: Path) -> tuple[subprocess.Popen, int]:  # type: ignore[type-arg]
    """``feast serve`` on a free loopback port, with worker recycling off (gunicorn's
    ``max_requests`` 0: Feast's default of 1,000 restarts a worker mid-run and stalls clients),
    no access log, and a registry refresh interval longer than the run."""
    port = free_port()
    feast_cli = Path(sys.executable).parent / "feast"
    cmd = [str(feast_cli), "-c", str(repo), "serve", "-h", "127.0.0.1", "-p", str(port),
           "--workers", str(workers), "--max-requests", "0", "--max-requests-jitter", "0",
           "--no-access-log", "--registry_ttl_sec", "3600"]
    proc = subprocess.Popen(cmd, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True,
                            preexec_fn=_die_with_parent)
    deadline = time.monotonic() + 90
    import http.client
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"feast serve exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", "/health")
            if c.getresponse().status == 200:
                c.close()
                return proc, port
        except OSError:
            pass
        time.sleep(0.2)
    stop_server(proc)
    raise RuntimeError(f"feast serve not healthy after 90 s:\n{log.read_text()[-3000:]}")


def stop_server(proc: subprocess.Popen) -> None:  # type: ignore[type-arg]
    """Stop the server we started: SIGTERM to its own process group (gunicorn and its workers),
    SIGKILL after 10 s."""
    import signal
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=10)


def shared_load():  # type: ignore[no-untyped-def]
    """bench/_load.py, the load generator skewless's bench/server.py uses, when it exists (it
    needs only the standard library, and uvloop when installed): None otherwise."""
    try:
        import _load  # type: ignore[import-not-found]
    except ImportError:
        return None
    return _load if hasattr(_load, "run_in_child") else None


def from_load(d: dict[str, Any], connections: int) -> dict[str, Any]:
    """bench/_load.py's result (latencies in ms) in this module's shape (latencies in us)."""
    us = {k[:-3]: v * 1000.0 for k, v in d.items() if k.endswith("_ms") and isinstance(v, (int, float))}
    return {"connections": connections, "requests": d["requests"], "ok": int(d["statuses"].get("200", 0)),
            "statuses": d["statuses"], "errors": d["errors"], "elapsed_s": d["seconds"], "rps": d["rps"],
            "latency": {"n": d["requests"], **us}, "generator_cpu_s": d.get("generator_cpu_s"), "raw": d}


def run_load(host: str, port: int, path: str, bodies: list[bytes], *, connections: int, max_requests: int,
             budget_s: float, warmup: int = 0) -> dict[str, Any]:
    """Fallback when bench/_load.py is absent. POST ``bodies`` (cycled) over ``connections``
    keep-alive HTTP/1.1 connections, each in its own thread, back to back (closed loop), until
    ``max_requests`` in all or ``budget_s`` seconds.
    Loopback only. Returns latencies (ns), status counts and the achieved rate."""
    import http.client

    if host not in ("127.0.0.1", "localhost", "::1"):
        raise ValueError("load runs against loopback only")
    headers = {"Content-Type": "application/json"}
    lock = threading.Lock()
    counter = {"next": 0}
    lat: list[list[int]] = [[] for _ in range(connections)]
    statuses: dict[str, int] = {}
    errors: list[str] = []

    def take() -> int:
        with lock:
            i = counter["next"]
            if i >= max_requests:
                return -1
            counter["next"] = i + 1
            return i

    def worker(w: int) -> None:
        c = http.client.HTTPConnection(host, port, timeout=30)
        for j in range(warmup):
            c.request("POST", path, body=bodies[(w + j) % len(bodies)], headers=headers)
            c.getresponse().read()
        start.wait()
        out = lat[w]
        clock = time.perf_counter_ns
        while time.perf_counter() < stop_at[0]:
            i = take()
            if i < 0:
                break
            try:
                t = clock()
                c.request("POST", path, body=bodies[i % len(bodies)], headers=headers)
                resp = c.getresponse()
                resp.read()
                out.append(clock() - t)
                key = str(resp.status)
            except (OSError, http.client.HTTPException) as e:
                key = type(e).__name__
                c.close()
                c = http.client.HTTPConnection(host, port, timeout=30)
                with lock:
                    if len(errors) < 5:
                        errors.append(repr(e))
            with lock:
                statuses[key] = statuses.get(key, 0) + 1
        c.close()

    start = threading.Event()
    stop_at = [float("inf")]
    threads = [threading.Thread(target=worker, args=(w,), daemon=True) for w in range(connections)]
    for th in threads:
        th.start()
    time.sleep(0.05)
    t0 = time.perf_counter()
    stop_at[0] = t0 + budget_s
    start.set()
    for th in threads:
        th.join(timeout=budget_s + 60)
    elapsed = time.perf_counter() - t0
    all_lat = [x for per in lat for x in per]
    ok = statuses.get("200", 0)
    return {"connections": connections, "requests": sum(statuses.values()), "ok": ok,
            "statuses": statuses, "errors": errors, "elapsed_s": elapsed,
            "rps": ok / elapsed if elapsed > 0 else 0.0, "latency": percentiles(all_lat)}


def m_server(job: dict[str, Any]) -> dict[str, Any]:
    """job: repo (an online-setup repo), workers, case {views, entities_per_request}, entities,
    seed, seq_requests, seq_budget_s, conc_connections, conc_requests, conc_budget_s, check_out?

    Starts ``feast serve``, checks the served values on the first requests, then a sequential run
    (one connection) and a short concurrent closed-loop run; stops the server."""
    import http.client

    import online as onl

    repo = Path(job["repo"])
    rq = {"seed": job["seed"], "round": job.get("round", 0), "entities_per_request": job["entities_per_request"],
          "entities": job["entities"], "iters": 4096}
    reqs = onl.requests(rq)
    refs = [f"{v}:{f}" for v in job["views"] for f, _ in onl.feature_names(v)]
    bodies = [json.dumps({"features": refs, "entities": {KEY: ids}}).encode() for ids in reqs]
    log = repo / f"serve-{os.getpid()}.log"
    proc, port = start_server(repo, job["workers"], log)
    shared = shared_load()
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        sample = []
        for i in range(min(20, len(reqs))):
            c.request("POST", "/get-online-features", body=bodies[i], headers={"Content-Type": "application/json"})
            resp = c.getresponse()
            body = resp.read()
            if resp.status != 200:
                raise RuntimeError(f"feast serve answered {resp.status}: {body[:500]!r}")
            d = json.loads(body)
            names = d["metadata"]["feature_names"]
            values = {n: r["values"] for n, r in zip(names, d["results"])}
            statuses = {n: r["statuses"] for n, r in zip(names, d["results"])}
            sample.append({"entities": reqs[i], "values": values, "statuses": statuses})
        c.close()
        if job.get("check_out"):
            Path(job["check_out"]).write_text(json.dumps(sample))
        if shared is not None:  # the same generator as skewless's server benchmark, in its own process
            url, texts = f"http://127.0.0.1:{port}", [b.decode() for b in bodies]
            seq = from_load(shared.run_in_child(
                {"mode": "sequential", "url": url, "path": "/get-online-features", "bodies": texts,
                 "count": job["seq_requests"], "max_seconds": job["seq_budget_s"], "warmup": 500}), 1)
            conc = from_load(shared.run_in_child(
                {"mode": "closed", "url": url, "path": "/get-online-features", "bodies": texts,
                 "concurrency": job["conc_connections"], "count": job["conc_requests"],
                 "max_seconds": job["conc_budget_s"], "warmup_seconds": 1.0}), job["conc_connections"])
            load_name = "bench/_load.py (sequential; closed loop)"
        else:
            seq = run_load("127.0.0.1", port, "/get-online-features", bodies, connections=1,
                           max_requests=job["seq_requests"], budget_s=job["seq_budget_s"], warmup=200)
            conc = run_load("127.0.0.1", port, "/get-online-features", bodies, connections=job["conc_connections"],
                            max_requests=job["conc_requests"], budget_s=job["conc_budget_s"], warmup=20)
            load_name = "bench/feast/runner.py run_load (threads; bench/_load.py absent)"
    finally:
        stop_server(proc)
    return {"method": "feast_serve", "workers": job["workers"], "load_generator": load_name,
            "sequential": seq, "concurrent": conc,
            "server_cmd": "feast serve --workers {w} --max-requests 0 --max-requests-jitter 0 --no-access-log "
                          "--registry_ttl_sec 3600".format(w=job["workers"])}


MEASUREMENTS = {"pit": m_pit, "materialize": m_materialize, "online-setup": m_online_setup,
                "online": m_online, "server": m_server, "teardown": m_teardown}


def versions() -> dict[str, Any]:
    from importlib.metadata import version
    out = {}
    for p in ("feast", "duckdb", "ibis-framework", "dask", "pandas", "pyarrow", "redis", "hiredis", "gunicorn",
              "uvicorn"):
        try:
            out[p] = version(p)
        except Exception:  # noqa: BLE001 - informational
            out[p] = None
    return out


def main(argv: list[str]) -> int:
    if len(argv) < 1 or argv[0] not in MEASUREMENTS and argv[0] != "versions":
        print(f"usage: runner.py {{{'|'.join(MEASUREMENTS)}|versions}} '<job JSON>'", file=sys.stderr)
        return 2
    import warnings
    warnings.filterwarnings("ignore")
    if argv[0] == "versions":
        print(json.dumps(versions()), flush=True)
        return 0
    job = json.loads(argv[1]) if len(argv) > 1 else {}
    result = MEASUREMENTS[argv[0]](job)
    result["measurement"] = argv[0]
    sys.stdout.flush()
    print("\n" + json.dumps(result, default=str), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
