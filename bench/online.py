"""Online serving latency benchmark: ``store.get_online_features`` vs the raw client.

    .venv/bin/python bench/online.py                    # scale S, ~1.5 minutes
    .venv/bin/python bench/online.py --scale M          # the issue's iteration counts, 5 repeats
    .venv/bin/python bench/online.py --stores redis --cases 1x4,100x4 --repeat 3
    .venv/bin/python bench/online.py --profile          # where the time goes (cProfile), no timing

The data (E entities, 2 source rows each per view) is generated, then materialized with skewless
itself (``store.materialize``) into a fresh SQLite file and into the Redis at ``--redis`` under a
unique project name (its keys are dropped at the end), so the stored formats are the real ones.
The store's clock is fixed after every event time and within every TTL: all values are PRESENT.

Cases (entities x features):

- ``1x4``        1 entity, one view of 4 features (2 float64, 2 int64)
- ``1x50``       1 entity, 5 views x 10 features (4 float64, 4 int64, 2 short strings each)
- ``1x50_1v``    1 entity, one view of 50 features (20 float64, 20 int64, 10 strings)
- ``100x4``, ``100x50``, ``100x50_1v``: the same for 100 distinct random entities

Methods, interleaved in blocks inside one child process per (store, case, round), in the same
run so the ratio is measured side by side:

- ``skewless``  ``store.get_online_features(refs, entity_rows)`` (entity rows built beforehand)
- ``raw``       SQLite: ``sqlite3`` point ``SELECT k, ts, cts, v ... WHERE k = ?`` per view (an
                ``IN (...)`` query for 100 entities), ``fetchall()``, no decoding. Redis: redis-py
                ``GET`` (1 key) or one ``MGET`` of the same keys, no decoding. Keys are encoded
                beforehand: this is the floor, one round trip per view (SQLite) or per request.
- ``raw_pipe``  Redis only, more than one key: a redis-py pipeline of one ``GET`` per key.

Each latency is one call timed with ``perf_counter_ns``; p50/p95/p99 are nearest-rank
percentiles over the run; the reported figure is the median over ``--repeat`` runs (each in a
fresh child process), and the ratio is the median of the per-run ratios skewless / raw.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    add_run_args,
    choose,
    end_git_state,
    format_table,
    git_state,
    interleaved_latencies,
    machine_info,
    median,
    print_verdicts,
    run_child,
    wait_until_quiet,
    write_results,
)

HERE = Path(__file__).resolve().parent
GEN_VERSION = 1
T0 = datetime(2024, 1, 1, tzinfo=timezone.utc)
NOW = T0 + timedelta(days=30)       # the store's fixed clock: after every event time
TTL = timedelta(days=90)            # ... and within every TTL, so every value is PRESENT
KEY, TS = "entity_id", "event_timestamp"
SCALES = {"S": 10_000, "M": 100_000}  # entities in every view

# view name -> (n float64, n int64, n string) features
VIEWS: dict[str, tuple[int, int, int]] = {"o_v4": (2, 2, 0), "o_wide": (20, 20, 10)}
VIEWS.update({f"o_w{i}": (4, 4, 2) for i in range(5)})

CASES: dict[str, dict[str, Any]] = {
    "1x4": {"entities": 1, "views": ["o_v4"], "layout": "1 view x 4"},
    "1x50": {"entities": 1, "views": [f"o_w{i}" for i in range(5)], "layout": "5 views x 10"},
    "1x50_1v": {"entities": 1, "views": ["o_wide"], "layout": "1 view x 50"},
    "100x4": {"entities": 100, "views": ["o_v4"], "layout": "1 view x 4"},
    "100x50": {"entities": 100, "views": [f"o_w{i}" for i in range(5)], "layout": "5 views x 10"},
    "100x50_1v": {"entities": 100, "views": ["o_wide"], "layout": "1 view x 50"},
}
STORES = ("sqlite", "redis")
# (store, case) -> the targets: p99 in microseconds, and p99 ratio to a raw method
# ("raw": one SELECT per view / one GET or MGET; "raw_pipe": a pipeline of GETs)
TARGETS: dict[tuple[str, str], dict[str, Any]] = {
    ("sqlite", "1x4"): {"p99_us": 60},
    ("redis", "1x4"): {"p99_us": 150, "ratio": 2.0, "vs": "raw"},
    ("redis", "100x4"): {"p99_us": 1200, "ratio": 2.0, "vs": "raw_pipe"},
    ("redis", "100x50"): {"p99_us": 1200, "ratio": 2.0, "vs": "raw_pipe"},
    ("redis", "100x50_1v"): {"p99_us": 1200, "ratio": 2.0, "vs": "raw_pipe"},
}


def feature_names(view: str) -> list[tuple[str, str]]:
    """(name, skewless type name) of a view's features; names are unique across views."""
    nf, ni, ns = VIEWS[view]
    p = view.split("_", 1)[1]
    return ([(f"{p}_f{j}", "Float64") for j in range(nf)] + [(f"{p}_i{j}", "Int64") for j in range(ni)]
            + [(f"{p}_s{j}", "String") for j in range(ns)])


# --------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------

def data_dir(root: Path, entities: int, seed: int) -> Path:
    return root / f"online-v{GEN_VERSION}-E{entities}-s{seed}"


def gen_view(path: Path, view: str, entities: int, seed: int) -> None:
    """Two rows per entity: a first one in the first 10 days, a later one up to 10 days after
    (materialization keeps the later). float64 f0 of each view has 1% nulls."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng([seed, sum(view.encode())])
    n = 2 * entities
    t0_us = int(T0.timestamp()) * 1_000_000
    first = rng.integers(0, 10 * 86_400, entities) * 1_000_000
    second = first + rng.integers(1, 10 * 86_400, entities) * 1_000_000
    ts = t0_us + np.concatenate([first, second])
    keys = np.concatenate([np.arange(entities), np.arange(entities)]).astype(np.int64)
    cols: dict[str, Any] = {KEY: pa.array(keys),
                            TS: pa.array(ts, type=pa.int64()).cast(pa.timestamp("us", tz="UTC"))}
    words = np.array([f"cat_{i:03d}" for i in range(500)], dtype=object)
    for j, (name, typ) in enumerate(feature_names(view)):
        if typ == "Float64":
            cols[name] = pa.array(rng.standard_normal(n) * 100.0, mask=(rng.random(n) < 0.01) if j == 0 else None)
        elif typ == "Int64":
            cols[name] = pa.array(rng.integers(-10**9, 10**9, n))
        else:
            cols[name] = pa.array(words[rng.integers(0, len(words), n)].tolist(), type=pa.string())
    order = np.argsort(ts, kind="stable")
    table = pa.table(cols).take(pa.array(order))
    tmp = path.with_name(path.name + f".tmp-{os.getpid()}")
    pq.write_table(table, tmp)
    os.replace(tmp, path)


def ensure_data(root: Path, entities: int, seed: int, views: list[str]) -> dict[str, Path]:
    d = data_dir(root, entities, seed)
    d.mkdir(parents=True, exist_ok=True)
    paths = {}
    for v in views:
        p = d / f"{v}.parquet"
        if not p.exists():
            t = time.perf_counter()
            gen_view(p, v, entities, seed)
            print(f"  generated {p.relative_to(root)} ({p.stat().st_size / 2**20:.1f} MiB) "
                  f"in {time.perf_counter() - t:.1f} s", flush=True)
        paths[v] = p
    return paths


# --------------------------------------------------------------------------------------------
# The store (parent and child)
# --------------------------------------------------------------------------------------------

def store_config(store: str, repo: Path, project: str, redis_address: str) -> dict[str, Any]:
    online: dict[str, Any] = ({"type": "sqlite", "path": str(repo / "online.db")} if store == "sqlite"
                              else {"type": "redis", "connection_string": redis_address})
    return {"project": project, "registry": str(repo / "registry.db"),
            "offline_store": {"type": "duckdb"}, "online_store": online}


def open_store(job: dict[str, Any]):  # type: ignore[no-untyped-def]
    from skewless import FeatureStore
    return FeatureStore(job["repo"], config=job["config"], clock=lambda: NOW)


def definitions(paths: dict[str, Path]) -> list[Any]:
    from skewless import Entity, FeatureView, Field, FileSource
    from skewless import types as T

    entity = Entity(name="entity", join_keys=[KEY])
    views = [FeatureView(
        name=v, entities=[entity], ttl=TTL,
        schema=[Field(name=KEY, dtype=T.Int64)] + [Field(name=f, dtype=getattr(T, t)) for f, t in feature_names(v)],
        source=FileSource(path=str(p), timestamp_field=TS, name=f"{v}_src")) for v, p in paths.items()]
    return [entity, *views]


def setup_store(store: str, work: Path, project: str, redis_address: str, paths: dict[str, Path]
                ) -> dict[str, Any]:
    """Apply the definitions and materialize every view with skewless."""
    from skewless import FeatureStore
    repo = work / store
    repo.mkdir(parents=True, exist_ok=True)
    config = store_config(store, repo, project, redis_address)
    fs = FeatureStore(repo, config=config, clock=lambda: NOW)
    fs.apply(definitions(paths))
    t = time.perf_counter()
    reports = fs.materialize(None, NOW)
    took = time.perf_counter() - t
    rows = sum(r.rows for r in reports)
    from skewless.online import table_name
    counts = {v: fs.online_store.count(table_name(project, v)) for v in paths}
    fs.online_store.close()
    return {"repo": str(repo), "config": config, "materialize_s": took, "records": rows, "counts": counts}


def drop_store(setup: dict[str, Any], views: list[str]) -> None:
    from skewless.online import table_name
    fs = open_store(setup)
    fs.online_store.drop([table_name(fs.project, v) for v in views])
    fs.online_store.close()


# --------------------------------------------------------------------------------------------
# Measurement (child process)
# --------------------------------------------------------------------------------------------

def percentiles(ns: list[int]) -> dict[str, float]:
    s = sorted(ns)
    n = len(s)

    def q(p: float) -> float:
        return s[min(n - 1, max(0, int(-(-p * n // 1)) - 1))] / 1000.0  # nearest rank, us
    return {"n": n, "p50": q(0.50), "p95": q(0.95), "p99": q(0.99), "p999": q(0.999),
            "mean": sum(s) / n / 1000.0, "max": s[-1] / 1000.0}


def requests(job: dict[str, Any]) -> list[list[int]]:
    """The entity ids of each request, the same sequence for every method of a run."""
    import numpy as np
    rng = np.random.default_rng([job["seed"], job["round"], job["entities_per_request"]])
    E, k, n = job["entities"], job["entities_per_request"], job["iters"]
    pool = min(n, 4096)
    if k == 1:
        return [[int(x)] for x in rng.integers(0, E, pool)]
    return [sorted(int(x) for x in rng.choice(E, k, replace=False)) for _ in range(pool)]


def make_methods(job: dict[str, Any], fs, reqs: list[list[int]]):  # type: ignore[no-untyped-def]
    """name -> (callable of a request index); the raw ones get their keys encoded beforehand."""
    from skewless.online import table_name
    from skewless.online.codec import encode_key

    refs = [f"{v}:{f}" for v in job["views"] for f, _ in feature_names(v)]
    rows = [[{KEY: e} for e in ids] for ids in reqs]
    keys = [[encode_key([e]) for e in ids] for ids in reqs]
    tables = [table_name(fs.project, v) for v in job["views"]]
    get = fs.get_online_features
    methods: dict[str, Any] = {"skewless": lambda i: get(refs, rows[i])}
    if job["store"] == "sqlite":
        import sqlite3
        con = sqlite3.connect(job["config"]["online_store"]["path"], isolation_level=None,
                              check_same_thread=False)
        con.execute("PRAGMA journal_mode=WAL")
        k = job["entities_per_request"]
        where = "k = ?" if k == 1 else f"k IN ({','.join('?' * k)})"
        sqls = [f'SELECT k, ts, cts, v FROM "t_{t}" WHERE {where}' for t in tables]
        ex = con.execute

        def raw_sqlite(i: int) -> Any:
            ks = keys[i]
            return [ex(sql, ks).fetchall() for sql in sqls]
        methods["raw"] = raw_sqlite
        methods["_decode"] = lambda out: {t: {r[0]: r for r in rows_} for t, rows_ in zip(tables, out)}
    else:
        import redis
        host, port = job["redis"].split(":")
        r = redis.Redis(host=host, port=int(port))
        stored: dict[bytes, bytes] = r.hgetall(b"sk:@tables")  # type: ignore[assignment]
        gens = {k.decode(): v for k, v in stored.items()}
        full = [[b"sk:" + gens[t] + b":" + kk for t in tables for kk in ks] for ks in keys]
        if len(full[0]) == 1:
            rget = r.get
            methods["raw"] = lambda i: rget(full[i][0])
        else:
            mget = r.mget
            methods["raw"] = lambda i: mget(full[i])

            def raw_pipe(i: int) -> Any:
                p = r.pipeline(transaction=False)
                for kk in full[i]:
                    p.get(kk)
                return p.execute()
            methods["raw_pipe"] = raw_pipe
        methods["_redis"] = r
        methods["_full"] = full
    return methods, refs, tables


def check(job: dict[str, Any], fs, methods, reqs, tables) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """On a few requests: every value PRESENT, and equal to what the raw read returns, decoded."""
    from skewless.online.codec import FINGERPRINT_SIZE, encode_key, unpack_vals
    problems: list[str] = []
    checked = 0
    feats = {v: feature_names(v) for v in job["views"]}
    for i in range(min(20, len(reqs))):
        resp = fs.get_online_features([f"{v}:{f}" for v in job["views"] for f, _ in feats[v]],
                                      [{KEY: e} for e in reqs[i]])
        if job["store"] == "sqlite":
            found = methods["_decode"](methods["raw"](i))
            raw = [[found[t].get(encode_key([e])) for e in reqs[i]] for t in tables]
            blobs = [[None if x is None else x[3] for x in per] for per in raw]
        else:
            from skewless.online.redis import HEADER_SIZE
            vals = methods["_redis"].mget(methods["_full"][i])
            n = len(reqs[i])
            blobs = [[None if b is None else b[HEADER_SIZE:] for b in vals[j * n:(j + 1) * n]]
                     for j in range(len(tables))]
        for j, v in enumerate(job["views"]):
            for e_i in range(len(reqs[i])):
                b = blobs[j][e_i]
                if b is None:
                    problems.append(f"request {i}: entity {reqs[i][e_i]} missing in {v}")
                    continue
                stored = dict(zip(fs.online_store._layouts.names(b[:FINGERPRINT_SIZE]),
                                  unpack_vals(b[FINGERPRINT_SIZE:])))
                for f, _ in feats[v]:
                    checked += 1
                    got, st = resp.values[f][e_i], resp.statuses[f][e_i]
                    want = stored.get(f)
                    if st != "PRESENT" or not (got == want or (got != got and want != want)):
                        problems.append(f"request {i} {v}.{f} entity {reqs[i][e_i]}: {st} {got!r} vs {want!r}")
    return {"values_checked": checked, "problems": problems[:10], "ok": not problems}


def measure(job: dict[str, Any]) -> dict[str, Any]:
    fs = open_store(job)
    reqs = requests(job)
    methods, refs, tables = make_methods(job, fs, reqs)
    chk = check(job, fs, methods, reqs, tables)
    names = [m for m in ("skewless", "raw", "raw_pipe") if m in methods]
    pool = len(reqs)
    version0 = methods["_redis"].get(b"sk:@version") if "_redis" in methods else None
    for m in names:  # warm up: connections, statement caches, plan cache
        fn = methods[m]
        for i in range(min(300, pool)):
            fn(i)
    run = interleaved_latencies(methods, names, pool, job["iters"], job["block"],
                                job["budget_s"] * len(names))
    n, lat = run["iterations"], run["latencies"]
    result: dict[str, Any] = {
        "store": job["store"], "case": job["case"], "round": job["round"],
        "methods": {m: percentiles(lat[m]) for m in names}, "iterations": n,
        "elapsed_s": run["elapsed_s"], "gc_collections": run["gc_collections"], "check": chk,
        "load": os.getloadavg()[0]}
    if version0 is not None:
        result["redis_version_changed"] = methods["_redis"].get(b"sk:@version") != version0
    return result


def profile(job: dict[str, Any], top: int = 18) -> str:
    """cProfile of the skewless calls of one case (profiler overhead inflates small functions)."""
    import cProfile
    import io
    import pstats
    fs = open_store(job)
    reqs = requests(job)
    methods, _, _ = make_methods(job, fs, reqs)
    fn = methods["skewless"]
    for i in range(min(300, len(reqs))):
        fn(i)
    n = min(job["iters"], 5000)
    pr = cProfile.Profile()
    pr.enable()
    for i in range(n):
        fn(i % len(reqs))
    pr.disable()
    s = io.StringIO()
    st = pstats.Stats(pr, stream=s)
    st.sort_stats("tottime").print_stats(top)
    return f"{n} calls\n" + s.getvalue()


# --------------------------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------------------------

def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scale", choices=sorted(SCALES), default="S",
                   help="S: 10k entities, 5,000/1,000 iterations, 3 repeats; M: 100k entities, "
                        "20,000/3,000 iterations (1/100 entities), 5 repeats (default S)")
    p.add_argument("--entities", type=int, help="entities per view (overrides --scale)")
    p.add_argument("--stores", default=",".join(STORES), help="comma-separated subset of sqlite,redis")
    p.add_argument("--cases", default=",".join(CASES), help=f"comma-separated subset of {','.join(CASES)}")
    p.add_argument("--repeat", type=int, help="child runs per (store, case); medians reported")
    p.add_argument("--iters-1", type=int, help="timed calls per method for 1-entity cases")
    p.add_argument("--iters-100", type=int, help="timed calls per method for 100-entity cases")
    p.add_argument("--budget", type=float, default=10.0, help="longest timed loop per method and run, s (10)")
    add_run_args(p, timeout=600.0)
    p.add_argument("--low-latency", action="store_true",
                   help="hold /dev/cpu_dma_latency at 0 during the run (what tuned's latency-performance "
                        "profile does): idle CPUs poll instead of halting, so a loopback round trip does "
                        "not pay the wake-up of a halted (virtual) CPU; needs root")
    p.add_argument("--render", type=Path, metavar="RESULTS_JSON",
                   help="print the tables of an earlier run's JSON as Markdown, then exit")
    p.add_argument("--profile", action="store_true",
                   help="print a cProfile of the skewless calls of every (store, case) instead of timing")
    p.add_argument("--_measure", metavar="JOB_JSON", help=argparse.SUPPRESS)
    p.add_argument("--_profile", metavar="JOB_JSON", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def summarize(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    keys = list(dict.fromkeys((r["store"], r["case"]) for r in runs))
    for store, case in keys:
        rs = [r for r in runs if r["store"] == store and r["case"] == case]
        row: dict[str, Any] = {"store": store, "case": case, "layout": CASES[case]["layout"],
                               "entities": CASES[case]["entities"], "runs": len(rs),
                               "iterations": median([r["iterations"] for r in rs]),
                               "background_cores": median([r["background_cores"] for r in rs])}
        for m in ("skewless", "raw", "raw_pipe"):
            if m not in rs[0]["methods"]:
                continue
            row[m] = {p: median([r["methods"][m][p] for r in rs]) for p in ("p50", "p95", "p99", "p999", "mean")}
            row[m]["p99_min"] = min(r["methods"][m]["p99"] for r in rs)
            row[m]["p99_max"] = max(r["methods"][m]["p99"] for r in rs)
            if m != "skewless":
                for p in ("p50", "p99"):
                    row[f"ratio_{p}_vs_{m}"] = median([r["methods"]["skewless"][p] / r["methods"][m][p]
                                                       for r in rs])
        out.append(row)
    return out


def raw_label(store: str, case: str, method: str) -> str:
    if method == "raw_pipe":
        return "raw pipeline"
    if store == "sqlite":
        return "raw SELECT"
    return "raw GET" if CASES[case]["entities"] == 1 and len(CASES[case]["views"]) == 1 else "raw MGET"


def evaluate(summary: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The issue's targets; for Redis also the ratio to one MGET (stricter than a pipeline)."""
    by = {(r["store"], r["case"]): r for r in summary}
    out = []
    for (store, case), t in TARGETS.items():
        r = by.get((store, case))
        if r is None:
            continue
        p99 = r["skewless"]["p99"]
        name = f"{store} {case} ({r['layout']})"
        out.append({"store": store, "case": case, "metric": "p99_us", "value": p99, "target": t["p99_us"],
                    "met": p99 <= t["p99_us"], "text": f"{name}: p99 {p99:.0f} us (target <= {t['p99_us']:g} us)"})
        if "ratio" in t and f"ratio_p99_vs_{t['vs']}" in r:
            ratio = r[f"ratio_p99_vs_{t['vs']}"]
            out.append({"store": store, "case": case, "metric": f"p99_ratio_vs_{t['vs']}", "value": ratio,
                        "target": t["ratio"], "met": ratio <= t["ratio"],
                        "text": f"{name}: p99 {ratio:.2f}x {raw_label(store, case, t['vs'])} "
                                f"(target <= {t['ratio']:g}x)"})
        if "ratio" in t and t["vs"] != "raw":
            ratio = r["ratio_p99_vs_raw"]
            out.append({"store": store, "case": case, "metric": "p99_ratio_vs_raw", "value": ratio,
                        "target": t["ratio"], "met": ratio <= t["ratio"], "stricter": True,
                        "text": f"{name}: p99 {ratio:.2f}x {raw_label(store, case, 'raw')} "
                                f"(stricter than the issue's pipeline: <= {t['ratio']:g}x)"})
    return out


def render(summary: list[dict[str, Any]], markdown: bool = False) -> str:
    headers = ["store", "case", "layout", "method", "p50 us", "p95 us", "p99 us", "p99 min-max", "vs raw p50",
               "vs raw p99", "bg load"]
    rows = []
    for r in summary:
        for m in ("skewless", "raw", "raw_pipe"):
            if m not in r:
                continue
            s = r[m]
            label = m if m == "skewless" else raw_label(r["store"], r["case"], m)
            rows.append([r["store"], r["case"], r["layout"], label, f"{s['p50']:.1f}", f"{s['p95']:.1f}",
                         f"{s['p99']:.1f}", f"{s['p99_min']:.0f}-{s['p99_max']:.0f}",
                         f"{r['ratio_p50_vs_raw']:.2f}x" if m == "skewless" else "",
                         f"{r['ratio_p99_vs_raw']:.2f}x" if m == "skewless" else "",
                         f"{r['background_cores']:.2f}" if m == "skewless" else ""])
    return format_table(headers, rows, markdown=markdown)


def render_targets(summary: list[dict[str, Any]], verdicts: list[dict[str, Any]], markdown: bool = False) -> str:
    """metric, skewless, raw limit, ratio, target, met? (p99; one row per raw method compared)."""
    tv = {(v["store"], v["case"], v["metric"]): v for v in verdicts}
    rows = []
    for r in summary:
        tp = tv.get((r["store"], r["case"], "p99_us"))
        methods = ["raw"] + (["raw_pipe"] if "raw_pipe" in r else [])
        if ("p99_ratio_vs_raw_pipe" in {v["metric"] for v in verdicts if v["case"] == r["case"]
                                           and v["store"] == r["store"]}):
            methods = ["raw_pipe", "raw"]
        for j, m in enumerate(methods):
            tr = tv.get((r["store"], r["case"], f"p99_ratio_vs_{m}"))
            parts = []
            if tp and j == 0:
                parts.append(f"<= {tp['target']:g} us")
            if tr:
                parts.append(f"<= {tr['target']:g}x" + (" (stricter)" if tr.get("stricter") else ""))
            checks = [v for v in ((tp if j == 0 else None), tr) if v]
            met = " / ".join("yes" if v["met"] else "NO" for v in checks) or "-"
            rows.append([f"{r['store']} {r['case']} p99 ({r['layout']})" if j == 0 else "",
                         f"{r['skewless']['p99']:.0f} us" if j == 0 else "",
                         f"{r[m]['p99']:.0f} us ({raw_label(r['store'], r['case'], m)})",
                         f"{r[f'ratio_p99_vs_{m}']:.2f}x", " / ".join(parts) or "(report)", met])
    return format_table(["metric", "skewless", "raw limit", "ratio", "target", "met?"], rows, markdown=markdown)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args._measure:
        print(json.dumps(measure(json.loads(args._measure))), flush=True)
        return 0
    if args._profile:
        print(profile(json.loads(args._profile)), flush=True)
        return 0
    if args.render:
        d = json.loads(args.render.read_text())
        print(render(d["summary"], markdown=True))
        print()
        print(render_targets(d["summary"], evaluate(d["summary"]), markdown=True))
        return 0

    E = args.entities or SCALES[args.scale]
    M = args.scale == "M"
    iters1 = args.iters_1 or (20_000 if M else 5_000)
    iters100 = args.iters_100 or (3_000 if M else 1_000)
    repeat = args.repeat or (5 if M else 3)
    stores = choose(args.stores, STORES, "store")
    cases = choose(args.cases, list(CASES), "case")
    views = list(dict.fromkeys(v for c in cases for v in CASES[c]["views"]))
    machine = machine_info()
    print(f"online benchmark: {E:,} entities per view, cases {','.join(cases)}, stores {','.join(stores)}, "
          f"{iters1:,}/{iters100:,} calls per method (1/100 entities), repeat {repeat}")
    print(f"machine: {machine['nproc']} cores, {machine['ram_gib']} GiB, {machine['cpu']}; python "
          f"{machine['python']}", flush=True)
    t_start = time.perf_counter()
    git0 = git_state()
    latency_fd = None
    if args.low_latency:
        try:
            latency_fd = os.open("/dev/cpu_dma_latency", os.O_WRONLY)
            os.write(latency_fd, (0).to_bytes(4, sys.byteorder, signed=True))
            print("  holding /dev/cpu_dma_latency at 0 (idle CPUs poll)", flush=True)
        except OSError as e:
            raise SystemExit(f"--low-latency: cannot set /dev/cpu_dma_latency: {e}") from None
    paths = ensure_data(args.data_dir, E, args.seed, views)
    project = f"bench_online_{uuid.uuid4().hex[:8]}"
    work = data_dir(args.data_dir, E, args.seed) / f"work-{project}"
    shutil.rmtree(work, ignore_errors=True)
    setups: dict[str, dict[str, Any]] = {}
    runs: list[dict[str, Any]] = []
    profiles: dict[str, str] = {}
    try:
        for s in stores:
            setups[s] = setup_store(s, work, project, args.redis, paths)
            st = setups[s]
            print(f"  {s}: materialized {st['records']:,} records ({len(paths)} views) with skewless in "
                  f"{st['materialize_s']:.1f} s; project {project}", flush=True)
            bad = {v: c for v, c in st["counts"].items() if c != E}
            if bad:
                raise SystemExit(f"{s}: unexpected record counts {bad} (expected {E})")
        for r in range(1 if args.profile else repeat):
            combos = [(s, c) for c in cases for s in stores]
            rot = (r * 3) % len(combos)
            for s, c in combos[rot:] + combos[:rot]:
                k = CASES[c]["entities"]
                job = {"store": s, "case": c, "round": r, "views": CASES[c]["views"],
                       "entities_per_request": k, "entities": E, "seed": args.seed,
                       "iters": iters1 if k == 1 else iters100, "block": 500 if k == 1 else 50,
                       "budget_s": args.budget, "redis": args.redis,
                       "repo": setups[s]["repo"], "config": setups[s]["config"]}
                if args.profile:
                    out = run_profile(job, args.timeout)
                    profiles[f"{s} {c}"] = out
                    print(f"\n===== {s} {c} ({CASES[c]['layout']}) =====\n{out}", flush=True)
                    continue
                if args.wait_quiet is not None:
                    load, waited = wait_until_quiet(args.wait_quiet, args.quiet_timeout)
                    if load > args.wait_quiet:
                        print(f"  (machine still busy after {waited:.0f} s: {load:.2f} cores; measuring anyway)")
                res = run_child([sys.executable, str(Path(__file__).resolve()), "--_measure",
                                 json.dumps(job, default=str)], timeout=args.timeout)
                runs.append(res)
                ms = res["methods"]
                line = "  ".join(f"{m} p50 {v['p50']:7.1f} p99 {v['p99']:7.1f}" for m, v in ms.items())
                flag = "" if res["check"]["ok"] else f"  CHECK FAILED {res['check']['problems'][:2]}"
                if res.get("redis_version_changed"):
                    flag += "  (sk:@version changed during the run: another client created/swapped tables)"
                print(f"  round {r + 1} {s:<6} {c:<10} {line}  us  n={res['iterations']:,} "
                      f"gc={res['gc_collections']} bg {res['background_cores']:.2f}{flag}", flush=True)
    finally:
        if "redis" in setups:
            drop_store(setups["redis"], views)
            print(f"  redis: dropped the tables of project {project}", flush=True)
        shutil.rmtree(work, ignore_errors=True)
        if latency_fd is not None:
            os.close(latency_fd)
    if args.profile:
        return 0

    summary = summarize(runs)
    verdicts = evaluate(summary)
    print()
    print(render(summary))
    print()
    print(render_targets(summary, verdicts))
    print()
    print_verdicts(verdicts)
    checks_ok = all(r["check"]["ok"] for r in runs)
    print(f"\ncorrectness: {sum(r['check']['values_checked'] for r in runs):,} served values compared with the "
          f"raw reads, all PRESENT and equal: {'yes' if checks_ok else 'NO'}")
    total = time.perf_counter() - t_start
    print(f"total {total:.0f} s")
    git1 = end_git_state(git0)
    out = write_results(args.results_dir, "online", {
        "machine": machine, "git": {"start": git0, "end": git1},
        "params": {"scale": args.scale, "entities": E, "iters_1": iters1, "iters_100": iters100,
                   "repeat": repeat, "budget_s": args.budget, "redis": args.redis, "seed": args.seed,
                   "cases": {c: CASES[c] for c in cases}, "stores": stores, "wait_quiet": args.wait_quiet,
                   "low_latency": args.low_latency},
        "materialize_setup": {s: {k: v for k, v in st.items() if k != "config"} for s, st in setups.items()},
        "summary": summary, "targets": verdicts, "runs": runs, "total_s": total})
    print(f"results: {out}")
    return 0 if checks_ok else 1


def run_profile(job: dict[str, Any], timeout: float) -> str:
    import subprocess
    proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--_profile", json.dumps(job)],
                          capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-3000:])
    return proc.stdout


if __name__ == "__main__":
    sys.exit(main())
