"""Materialization benchmark: ``store.materialize`` and ``store.rebuild_online`` into SQLite and Redis.

    .venv/bin/python bench/materialize.py               # scale S: 1M source rows, ~2 minutes
    .venv/bin/python bench/materialize.py --scale M     # the issue's sizes: 10M rows (~10 minutes)
    .venv/bin/python bench/materialize.py --scale M --stores redis --datasets 100k --repeat 5

Datasets (one view, 4 features: 2 float64 with 1% nulls in one, 2 int64; the generator and the
cached files of ``bench/pit.py``, each entity's rows spread over a year):

- ``100k``   M: 10M source rows of 100k entities (100 rows each);  S: 1M rows of 10k entities
- ``1M``     M: 10M source rows of 1M entities (10 rows each);     S: 1M rows of 100k entities

Methods, each in a fresh child process (a fresh SQLite file, or a unique Redis project whose keys
are dropped afterwards), interleaved over ``--repeat`` rounds, median reported:

- ``skewless``   ``store.materialize(None, now)`` (all rows; ``now`` after the last one), then the
                 same call again (*rerun*: every record offered again with the (event, created) time
                 already stored); on the
                 ``1M`` dataset then ``store.rebuild_online()`` of the same view (staging table,
                 swap over the live table just written, count and 100-entity verification).
- ``raw``        the hand-written floor producing the same stored records: DuckDB
                 ``arg_max(struct_pack(...), ts) GROUP BY key`` read as Arrow batches of 100k,
                 keys and values packed with msgpack in plain Python, then a plain bulk write:
                 SQLite ``executemany(INSERT ...)`` into the empty table (one transaction per batch),
                 Redis pipelines of ``MSET`` (no Lua, no only-if-newer).
- ``breakdown``  ``skewless`` again (first round only), with timers around the engine's batches
                 (the DuckDB ``latest`` aggregation and its Arrow fetches), the Arrow -> Record
                 conversion, ``write_batch`` and the encoding (timed by re-encoding each batch
                 after it is written; that probe is excluded from the wall time). Timers add a
                 little: read the shares, not the total.

Wall time, CPU (user + system of the child, all threads) and peak RSS (``VmHWM``) of the child;
*bg load* is the CPU other processes used meanwhile (Redis itself counts as "other").
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    GIB,
    add_run_args,
    choose,
    cpu_seconds,
    end_git_state,
    format_table,
    git_state,
    machine_info,
    median,
    peak_rss,
    print_verdicts,
    run_child,
    wait_until_quiet,
    write_results,
)

HERE = Path(__file__).resolve().parent
KEY, TS = "entity_id", "event_timestamp"
FEATURES = (("f0", "Float64"), ("f1", "Float64"), ("i0", "Int64"), ("i1", "Int64"))
VIEW = "mat_v"
DATASETS = {  # name -> scale -> (entities, rows per entity)
    "100k": {"S": (10_000, 100), "M": (100_000, 100)},
    "1M": {"S": (100_000, 10), "M": (1_000_000, 10)},
}
STORES = ("sqlite", "redis")
METHODS = ("skewless", "raw")
TARGET_S = 3.0            # issue: 10M rows / 100k entities into each store in <= 3 s
TARGET_ROWS, TARGET_ENTITIES = 10_000_000, 100_000


def now_after(path: Path) -> datetime:
    """A clock just after the last event time of the file (materialize refuses a future end)."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq
    ts = pq.read_table(path, columns=[TS]).column(TS)
    last = pc.max(ts).as_py()
    return (last + timedelta(days=1)).replace(microsecond=0)


def ensure_data(data_root: Path, entities: int, k: int, seed: int) -> Path:
    """The ``plain-v0.parquet`` of bench/pit.py for E entities x K rows (shared cache)."""
    import pit
    spec = pit.DataSpec(entities, k, 0, 60.0, seed, 1)
    d = data_root / spec.dir
    d.mkdir(parents=True, exist_ok=True)
    path = d / "plain-v0.parquet"
    if not path.exists():
        t = time.perf_counter()
        pit.gen_view(spec, path, 0, False, pit._start_offsets(spec))
        print(f"  generated {path.relative_to(data_root)} ({path.stat().st_size / 2**20:.0f} MiB) "
              f"in {time.perf_counter() - t:.1f} s", flush=True)
    return path


# --------------------------------------------------------------------------------------------
# Child side
# --------------------------------------------------------------------------------------------

def open_store(job: dict[str, Any]):  # type: ignore[no-untyped-def]
    from skewless import Entity, FeatureStore, FeatureView, Field, FileSource
    from skewless import types as T

    repo = Path(job["repo"])
    repo.mkdir(parents=True, exist_ok=True)
    online: dict[str, Any] = ({"type": "sqlite", "path": str(repo / "online.db")} if job["store"] == "sqlite"
                              else {"type": "redis", "connection_string": job["redis"]})
    offline: dict[str, Any] = {"type": "duckdb"}
    if job.get("threads"):
        offline["threads"] = job["threads"]
    now = datetime.fromisoformat(job["now"])
    fs = FeatureStore(repo, config={"project": job["project"], "registry": str(repo / "registry.db"),
                                    "offline_store": offline, "online_store": online},
                      clock=lambda: now)
    entity = Entity(name="entity", join_keys=[KEY])
    view = FeatureView(name=VIEW, entities=[entity], ttl=timedelta(days=3650),
                       schema=[Field(name=KEY, dtype=T.Int64)] + [Field(name=f, dtype=getattr(T, t)) for f, t in FEATURES],
                       source=FileSource(path=job["path"], timestamp_field=TS, name="mat_src"))
    fs.apply([entity, view])
    return fs, now


class Timers:
    """Wrap the stages of materialize / rebuild_online with perf_counter timers."""

    def __init__(self, fs, store: str) -> None:  # type: ignore[no-untyped-def]
        from skewless.services import materialize as msvc
        from skewless.services import rebuild as rsvc
        self.t: dict[str, float] = defaultdict(float)
        self.probe = 0.0  # time spent re-encoding (excluded from wall)
        engine, online = fs.engine, fs.online_store
        latest, write = engine.latest, online.write_batch
        convert = msvc.batch_records
        t = self.t

        def timed_latest(request, batch_rows=100_000):  # type: ignore[no-untyped-def]
            it = iter(latest(request, batch_rows))
            while True:
                s = time.perf_counter()
                try:
                    b = next(it)
                except StopIteration:
                    t["engine"] += time.perf_counter() - s
                    return
                t["engine"] += time.perf_counter() - s
                yield b

        def timed_convert(*a):  # type: ignore[no-untyped-def]
            s = time.perf_counter()
            out = convert(*a)
            t["convert"] += time.perf_counter() - s
            return out

        if store == "sqlite":
            from skewless.online.codec import pack_vals

            def encode(recs):  # type: ignore[no-untyped-def]
                return [pack_vals(r.vals) for _, r in recs]
        else:
            from skewless.online.redis import encode_record

            def encode(recs):  # type: ignore[no-untyped-def]
                return [encode_record(r, b"\0" * 8) for _, r in recs]

        def timed_write(rows):  # type: ignore[no-untyped-def]
            s = time.perf_counter()
            n = write(rows)
            e = time.perf_counter()
            t["write_batch"] += e - s
            for recs in rows.values():
                encode(recs)
            d = time.perf_counter() - e
            t["encode"] += d
            self.probe += d
            return n

        def wrap(name, fn):  # type: ignore[no-untyped-def]
            def inner(*a, **k):  # type: ignore[no-untyped-def]
                s = time.perf_counter()
                try:
                    return fn(*a, **k)
                finally:
                    t[name] += time.perf_counter() - s
            return inner

        engine.latest = timed_latest
        online.write_batch = timed_write
        msvc.batch_records = rsvc.batch_records = timed_convert
        for name in ("swap", "count", "scan_keys", "drop", "create"):
            setattr(online, name, wrap(name, getattr(online, name)))
        rsvc._verify_sample = wrap("verify", rsvc._verify_sample)

    def take(self, wall: float) -> dict[str, float]:
        out = dict(self.t)
        out["wall_without_probe"] = wall - self.probe
        out["store_write"] = out.get("write_batch", 0.0) - out.get("encode", 0.0)
        known = sum(out.get(k, 0.0) for k in ("engine", "convert", "write_batch", "swap", "count", "scan_keys",
                                              "drop", "create", "verify"))
        out["other"] = out["wall_without_probe"] - known
        self.t.clear()
        self.probe = 0.0
        return out


def run_skewless(job: dict[str, Any]) -> dict[str, Any]:
    from skewless.online import table_name
    fs, now = open_store(job)
    timers = Timers(fs, job["store"]) if job["method"] == "breakdown" else None
    table = table_name(fs.project, VIEW)
    result: dict[str, Any] = {}

    def phase(name: str, work: Callable[[], Any], figures: Callable[[Any], dict[str, Any]]) -> None:
        """Time ``work`` (wall and CPU) and record ``figures`` of its result, taken after the
        clock stops, with the breakdown if asked."""
        cpu, t = cpu_seconds(), time.perf_counter()
        out = work()
        wall = time.perf_counter() - t
        result[name] = {"wall_s": wall, "cpu_s": cpu_seconds() - cpu, **figures(out)}
        if timers:
            result[name]["breakdown"] = timers.take(wall)

    def materialized(reports: Any) -> dict[str, Any]:
        return {"rows": reports[0].rows, "stored": fs.online_store.count(table)}

    def rebuilt(reports: Any) -> dict[str, Any]:
        rep = reports[0]
        return {"rows": rep.entities, "stored": rep.stored, "sample": rep.sample_size,
                "mismatches": len(rep.mismatches), "ok": rep.ok}

    try:
        fs.online_store.create([table])  # connection and table exist before the clock starts
        phase("materialize", lambda: fs.materialize(None, now), materialized)
        # the same run again: every record is offered and refused (not newer), as in a
        # re-run after a failure or an overlapping window
        phase("rerun", lambda: fs.materialize(None, now), materialized)
        if job.get("rebuild"):
            phase("rebuild", fs.rebuild_online, rebuilt)
    finally:
        fs.online_store.close()
    return result


def run_raw(job: dict[str, Any]) -> dict[str, Any]:
    """The hand-written floor: DuckDB latest row per key, plain-Python msgpack, plain bulk writes."""
    import duckdb
    import msgpack

    from skewless.online import table_name
    from skewless.online.codec import OLDEST

    fs, now = open_store(job)
    table = table_name(fs.project, VIEW)
    feats = [f for f, _ in FEATURES]
    sql = (f"SELECT {KEY}, epoch_us(m.ts) AS ts, {', '.join('m.' + f for f in feats)} FROM ("
           f"SELECT {KEY}, arg_max(struct_pack(ts := {TS}, {', '.join(f'{f} := {f}' for f in feats)}), {TS}) AS m "
           f"FROM read_parquet('{job['path']}') WHERE {TS} <= ?::TIMESTAMPTZ GROUP BY {KEY})")
    packb = msgpack.Packer(use_bin_type=True).pack
    if job["store"] == "sqlite":
        import sqlite3
        fs.online_store.create([table])
        fs.online_store.close()
        con = sqlite3.connect(Path(job["repo"]) / "online.db", isolation_level=None)
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("PRAGMA synchronous=NORMAL")
        ins = f'INSERT INTO "t_{table}" (k, ts, cts, v) VALUES (?, ?, ?, ?)'

        def write(keys, ts, vals):  # type: ignore[no-untyped-def]
            con.execute("BEGIN")
            con.executemany(ins, zip(keys, ts, [OLDEST] * len(keys), vals))
            con.execute("COMMIT")
    else:
        import struct

        import redis
        fs.online_store.create([table])
        gen = fs.online_store._cached()[0][table]
        prefix = b"sk:" + gen + b":"
        host, port = job["redis"].split(":")
        r = redis.Redis(host=host, port=int(port))
        hdr = struct.Struct(">QQ").pack
        bias = 1 << 63

        def write(keys, ts, vals):  # type: ignore[no-untyped-def]
            pipe = r.pipeline(transaction=False)
            for i in range(0, len(keys), 1000):
                pipe.mset({prefix + k: hdr(t + bias, OLDEST + bias) + v
                           for k, t, v in zip(keys[i:i + 1000], ts[i:i + 1000], vals[i:i + 1000])})
            pipe.execute()

    rows = 0
    cpu, t = cpu_seconds(), time.perf_counter()
    con_d = duckdb.connect()
    con_d.execute("SET TimeZone = 'UTC'")
    reader = con_d.sql(sql, params=[now]).to_arrow_reader(100_000)
    for batch in reader:
        cols = [batch.column(i).to_pylist() for i in range(batch.num_columns)]
        keys = [packb([k]) for k in cols[0]]
        vals = [packb(dict(zip(feats, row))) for row in zip(*cols[2:])]
        write(keys, cols[1], vals)
        rows += len(keys)
    wall = time.perf_counter() - t
    cpu = cpu_seconds() - cpu
    if job["store"] == "redis":  # MSET bypasses the store's counter: count the keys themselves
        stored = sum(1 for _ in r.scan_iter(match=prefix + b"*", count=10_000))
    else:
        stored = con.execute(f'SELECT count(*) FROM "t_{table}"').fetchone()[0]
    result = {"materialize": {"wall_s": wall, "cpu_s": cpu, "rows": rows, "stored": stored}}
    con_d.close()
    return result


def measure(job: dict[str, Any]) -> dict[str, Any]:
    res = run_raw(job) if job["method"] == "raw" else run_skewless(job)
    res.update({"method": job["method"], "store": job["store"], "dataset": job["dataset"],
                "peak_rss": peak_rss(), "load_after": os.getloadavg()[0]})
    return res


# --------------------------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------------------------

def cleanup(job: dict[str, Any]) -> None:
    """Drop the Redis tables of a job's project (live and staging); remove its repo dir."""
    if job["store"] == "redis":
        from skewless.online import table_name
        from skewless.online.redis import RedisOnlineStore
        s = RedisOnlineStore(job["redis"])
        try:   # a rebuild drops its own staging table, even when it fails
            s.drop([table_name(job["project"], VIEW)])
        finally:
            s.close()
    shutil.rmtree(job["repo"], ignore_errors=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scale", choices=("S", "M"), default="S",
                   help="S: 1M source rows (10k and 100k entities); M: 10M rows (100k and 1M entities)")
    p.add_argument("--datasets", default=",".join(DATASETS), help="comma-separated subset of 100k,1M")
    p.add_argument("--stores", default=",".join(STORES), help="comma-separated subset of sqlite,redis")
    p.add_argument("--methods", default=",".join(METHODS) + ",breakdown",
                   help="comma-separated subset of skewless,raw,breakdown")
    p.add_argument("--no-rebuild", action="store_true", help="skip rebuild_online on the 1M dataset")
    p.add_argument("--repeat", type=int, default=3, help="runs per (store, dataset, method); median (3)")
    p.add_argument("--threads", type=int, help="DuckDB threads (default: DuckDB's, all cores)")
    add_run_args(p, timeout=1800.0)
    p.add_argument("--render", type=Path, metavar="RESULTS_JSON",
                   help="print the tables of an earlier run's JSON as Markdown, then exit")
    p.add_argument("--_measure", metavar="JOB_JSON", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def summarize(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    keys = list(dict.fromkeys((r["store"], r["dataset"], op) for r in runs for op in ("materialize", "rerun", "rebuild")
                              if op in r))
    for store, ds, op in keys:
        for m in ("skewless", "raw", "breakdown"):
            rs = [r for r in runs if r["store"] == store and r["dataset"] == ds and r["method"] == m and op in r]
            if not rs:
                continue
            wall = median([r[op]["wall_s"] for r in rs])
            row = {"store": store, "dataset": ds, "op": op, "method": m, "n": len(rs),
                   "source_rows": rs[0]["source_rows"], "entities": rs[0]["entities"],
                   "wall_s": wall, "wall_min_s": min(r[op]["wall_s"] for r in rs),
                   "wall_max_s": max(r[op]["wall_s"] for r in rs),
                   "cpu_s": median([r[op]["cpu_s"] for r in rs]),
                   "rows_per_s": rs[0]["source_rows"] / wall, "entities_per_s": rs[0]["entities"] / wall,
                   "peak_rss_gib": median([r["peak_rss"] for r in rs]) / GIB,
                   "background_cores": median([r["background_cores"] for r in rs]),
                   "ok": all(r[op]["stored"] == rs[0]["entities"] and r[op].get("ok", True) for r in rs)}
            if m == "breakdown":
                row["breakdown"] = rs[0][op]["breakdown"]
            out.append(row)
    return out


def render(summary: list[dict[str, Any]], markdown: bool = False) -> str:
    raw = {(r["store"], r["dataset"], r["op"]): r for r in summary if r["method"] == "raw"}
    headers = ["store", "data", "op", "method", "wall s (median)", "min-max s", "M rows/s", "k entities/s",
               "CPU s", "vs raw", "peak RSS GiB", "bg load", "ok"]
    rows = []
    for r in summary:
        if r["method"] == "breakdown":
            continue
        base = raw.get((r["store"], r["dataset"], r["op"]))
        rows.append([r["store"], f"{r['source_rows'] / 1e6:g}M/{r['entities']:,}", r["op"], r["method"],
                     f"{r['wall_s']:.2f}", f"{r['wall_min_s']:.2f}-{r['wall_max_s']:.2f}",
                     f"{r['rows_per_s'] / 1e6:.2f}", f"{r['entities_per_s'] / 1e3:.0f}", f"{r['cpu_s']:.2f}",
                     f"{r['wall_s'] / base['wall_s']:.2f}x" if base else "-", f"{r['peak_rss_gib']:.2f}",
                     f"{r['background_cores']:.2f}", "yes" if r["ok"] else "NO"])
    return format_table(headers, rows, markdown=markdown)


def render_breakdown(summary: list[dict[str, Any]], markdown: bool = False) -> str:
    headers = ["store", "data", "op", "wall s", "engine (DuckDB)", "Arrow->Record", "encode", "store write",
               "swap", "verify", "other"]
    rows = []
    for r in summary:
        if r["method"] != "breakdown":
            continue
        b = r["breakdown"]
        w = b["wall_without_probe"]

        def c(k: str) -> str:
            v = b.get(k, 0.0)
            return f"{v:.2f} ({100 * v / w:.0f}%)" if v else "-"
        rows.append([r["store"], f"{r['source_rows'] / 1e6:g}M/{r['entities']:,}", r["op"], f"{w:.2f}",
                     c("engine"), c("convert"), c("encode"), c("store_write"), c("swap"), c("verify"),
                     f"{b['other'] + b.get('count', 0) + b.get('scan_keys', 0) + b.get('drop', 0) + b.get('create', 0):.2f}"])
    return format_table(headers, rows, markdown=markdown)


def render_targets(summary: list[dict[str, Any]], markdown: bool = False) -> tuple[str, list[dict[str, Any]]]:
    by = {(r["store"], r["dataset"], r["op"], r["method"]): r for r in summary}
    rows, verdicts = [], []
    for r in summary:
        if r["method"] != "skewless":
            continue
        base = by.get((r["store"], r["dataset"], r["op"], "raw"))
        at_size = r["source_rows"] >= TARGET_ROWS
        is_target = r["op"] == "materialize" and r["entities"] == TARGET_ENTITIES and at_size
        met = r["wall_s"] <= TARGET_S
        name = f"{r['store']} {r['op']} {r['source_rows'] / 1e6:g}M rows / {r['entities']:,} entities"
        rows.append([name, f"{r['wall_s']:.2f} s", f"{base['wall_s']:.2f} s" if base else "-",
                     f"{r['wall_s'] / base['wall_s']:.2f}x" if base else "-",
                     f"<= {TARGET_S:g} s" if is_target else "(report)",
                     ("yes" if met else "NO") if is_target else "-"])
        if is_target:
            verdicts.append({"store": r["store"], "metric": "materialize 10M/100k wall_s", "value": r["wall_s"],
                             "target": TARGET_S, "met": met,
                             "text": f"{name}: {r['wall_s']:.2f} s, {r['rows_per_s'] / 1e6:.2f}M rows/s "
                                     f"(target <= {TARGET_S:g} s)"})
    return format_table(["metric", "skewless", "raw limit", "ratio", "target", "met?"], rows, markdown=markdown), verdicts


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args._measure:
        print(json.dumps(measure(json.loads(args._measure))), flush=True)
        return 0
    if args.render:
        d = json.loads(args.render.read_text())
        print(render(d["summary"], markdown=True))
        print()
        print(render_breakdown(d["summary"], markdown=True))
        print()
        print(render_targets(d["summary"], markdown=True)[0])
        return 0
    datasets = choose(args.datasets, list(DATASETS), "dataset")
    stores = choose(args.stores, STORES, "store")
    methods = [m for m in args.methods.split(",") if m]
    machine = machine_info()
    print(f"materialize benchmark: scale {args.scale}, datasets {','.join(datasets)}, stores {','.join(stores)}, "
          f"repeat {args.repeat}")
    print(f"machine: {machine['nproc']} cores, {machine['ram_gib']} GiB, {machine['cpu']}; python "
          f"{machine['python']}, duckdb {machine['duckdb']}", flush=True)
    t_start = time.perf_counter()
    git0 = git_state()
    data: dict[str, tuple[Path, datetime, int, int]] = {}
    for d in datasets:
        E, K = DATASETS[d][args.scale]
        path = ensure_data(args.data_dir, E, K, args.seed)
        data[d] = (path, now_after(path), E, K)
    work = args.data_dir / "materialize-work"
    runs: list[dict[str, Any]] = []
    for r in range(args.repeat):
        combos = [(d, s) for d in datasets for s in stores]
        for d, s in combos:
            ms = [m for m in methods if m != "breakdown" or r == 0]
            rot = r % len(ms)
            for m in ms[rot:] + ms[:rot]:
                path, now, E, K = data[d]
                project = f"bench_mat_{uuid.uuid4().hex[:8]}"
                job = {"method": m, "store": s, "dataset": d, "path": str(path), "now": now.isoformat(),
                       "project": project, "repo": str(work / project), "redis": args.redis,
                       "threads": args.threads, "rebuild": d == "1M" and m != "raw" and not args.no_rebuild}
                if args.wait_quiet is not None:
                    load, waited = wait_until_quiet(args.wait_quiet, args.quiet_timeout)
                    if load > args.wait_quiet:
                        print(f"  (machine still busy after {waited:.0f} s: {load:.2f} cores; measuring anyway)")
                try:
                    res = run_child([sys.executable, str(Path(__file__).resolve()), "--_measure", json.dumps(job)],
                                    timeout=args.timeout)
                finally:
                    cleanup(job)
                res.update({"round": r, "source_rows": E * K, "entities": E})
                runs.append(res)
                line = f"  round {r + 1}: {s:<6} {d:<4} {m:<9} materialize {res['materialize']['wall_s']:6.2f} s " \
                       f"({E * K / res['materialize']['wall_s'] / 1e6:.2f}M rows/s, CPU {res['materialize']['cpu_s']:.2f} s)"
                if "rerun" in res:
                    line += f"  rerun {res['rerun']['wall_s']:6.2f} s"
                if "rebuild" in res:
                    line += f"  rebuild {res['rebuild']['wall_s']:6.2f} s (ok {res['rebuild']['ok']})"
                bad = res["materialize"]["stored"] != E
                print(line + f"  peak {res['peak_rss'] / GIB:.2f} GiB  bg {res['background_cores']:.2f}"
                      + ("  STORED COUNT WRONG" if bad else ""), flush=True)
    shutil.rmtree(work, ignore_errors=True)
    summary = summarize(runs)
    print()
    print(render(summary))
    print()
    print(render_breakdown(summary))
    print()
    table, verdicts = render_targets(summary)
    print(table)
    print()
    if args.scale != "M":
        print(f"(the target is set for {TARGET_ROWS:,} rows / {TARGET_ENTITIES:,} entities, --scale M)")
    print_verdicts(verdicts)
    ok = all(r["ok"] for r in summary)
    total = time.perf_counter() - t_start
    print(f"\ncounts: every run stored one record per entity{'' if ok else ' -- NO, see above'}; total {total:.0f} s")
    git1 = end_git_state(git0)
    out = write_results(args.results_dir, "materialize", {
        "machine": machine, "git": {"start": git0, "end": git1},
        "params": {"scale": args.scale, "datasets": {d: {"entities": v[2], "rows_per_entity": v[3],
                                                           "source_rows": v[2] * v[3], "path": str(v[0])}
                                                      for d, v in data.items()},
                   "stores": stores, "methods": methods, "repeat": args.repeat, "threads": args.threads,
                   "redis": args.redis, "seed": args.seed, "wait_quiet": args.wait_quiet},
        "summary": summary, "targets": verdicts, "runs": runs, "total_s": total})
    print(f"results: {out}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
