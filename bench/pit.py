"""Point-in-time retrieval benchmark: skewless vs raw DuckDB ASOF vs pandas merge_asof.

    .venv/bin/python bench/pit.py                       # scale S, ~1 minute
    .venv/bin/python bench/pit.py --scale M             # the sizes of the targets
    .venv/bin/python bench/pit.py --scale M --scenarios one_view --repeat 5

Scenarios (E entities x K rows each per view, N labels; see ``--help`` for every flag):

- ``one_view``    one view, 4 features (float64 and int64), TTL.
- ``tiebreak``    same, plus a created-timestamp column and ~20% duplicate event timestamps, so
                  the created-timestamp tie-break decides the row.
- ``five_views``  five views (one Parquet file each, E x K rows each), the same labels.

Methods, each timed and measured in a fresh child process (``--_measure``), interleaved over
``--repeat`` rounds (the order rotates each round), median reported:

- ``skewless``  ``store.get_historical_features(labels_df, features).to_df()``.
- ``duckdb``    hand-written DuckDB ``ASOF LEFT JOIN`` + TTL check on the same files, fetched with
                ``.df()`` (rows in no particular order); the same DuckDB settings as the engine.
                With a created column it breaks ties the fastest correct way measured (a packed
                HUGEINT ASOF key; ``--raw-tiebreak`` picks another). This is the engine's floor.
- ``pandas``    ``pd.read_parquet`` + ``pd.merge_asof(by=key, tolerance=ttl)`` per view (ties:
                sort by event then created time, keep the last per key and event time), then
                back to input order.

Wall time covers the retrieval only (the labels frame is loaded before the clock starts; reading
the feature files is timed); CPU s is the child's user + system time over the same span (all
threads). Peak RSS is the child's ``VmHWM``: the whole process, labels frame and interpreter
included. "bg load" is the CPU other processes used while the child ran, in cores: on a
shared machine wall times are only comparable when it is near 0 (CPU times suffer less;
``--wait-quiet`` waits for a quiet machine before each measurement).

The first round also saves every method's output; the run then checks that every label row
comes back, that the methods agree row by row, that skewless keeps the input order, and that
the label classes with a known answer (unknown entity, before the first row: nothing; exactly
at the first row: that row) come out as they must. Exit status 1 if any check fails.

Generated data is deterministic (``--seed``) and cached under ``bench/data/`` by parameters.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    GIB,
    add_run_args,
    choose,
    cpu_seconds,
    current_rss,
    format_table,
    machine_info,
    median,
    peak_rss,
    print_verdicts,
    run_child,
    wait_until_quiet,
    write_results,
)

HERE = Path(__file__).resolve().parent
GEN_VERSION = 1          # bump when the generator changes, so cached data is regenerated
T0 = int(datetime(2024, 1, 1, tzinfo=timezone.utc).timestamp())  # seconds
DAY = 86_400
START_SPREAD = 60 * DAY  # each entity's first row lies in [T0, T0 + 60 days)
SPAN = 365 * DAY         # an entity's K rows spread over about a year after its first row
T_END = T0 + START_SPREAD + SPAN + 30 * DAY
EARLY = 30 * DAY         # "early" labels lie up to 30 days before their entity's first row
CHUNK_ENTITIES = 250_000

FEATURES = (("f0", "Float64"), ("f1", "Float64"), ("i0", "Int64"), ("i1", "Int64"))
KEY, TS, CREATED = "entity_id", "event_timestamp", "created"
SCENARIOS = ("one_view", "tiebreak", "five_views")
METHODS = ("skewless", "duckdb", "pandas")
SCALES = {  # entities, rows per entity, labels
    "S": (100_000, 10, 100_000),
    "M": (1_000_000, 10, 1_000_000),
    "L": (10_000_000, 10, 10_000_000),
}
# Label classes (stored in the labels' ``kind`` column, a pass-through column).
KINDS = {"normal": 0, "unknown": 1, "early": 2, "at_first": 3, "at_ttl": 4}
KIND_SHARES = {"unknown": 0.03, "early": 0.06, "at_first": 0.01, "at_ttl": 0.01}

TARGET_ROWS, TARGET_LABELS = 10_000_000, 1_000_000  # the sizes the targets are set for
TARGETS = {
    "one_view": {"ratio": 1.5, "peak_rss_gib": 2.0},
    "tiebreak": {"ratio": 2.5},
    "five_views": {"wall_s": 12.0},
}


# --------------------------------------------------------------------------------------------
# Data generation
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class DataSpec:
    entities: int
    rows_per_entity: int
    labels: int
    ttl_days: float
    seed: int
    views: int

    @property
    def dir(self) -> Path:
        return Path(f"pit-v{GEN_VERSION}-E{self.entities}-K{self.rows_per_entity}-s{self.seed}")

    @property
    def ttl_s(self) -> int:
        return int(round(self.ttl_days * DAY))


def _start_offsets(spec: DataSpec):  # type: ignore[no-untyped-def]
    """Per entity, the offset (s) after T0 of its first row, the same in every view."""
    import numpy as np
    return np.random.default_rng([spec.seed, 1]).integers(0, START_SPREAD, spec.entities, dtype=np.int64)


def _write_atomic(table, path: Path) -> None:  # type: ignore[no-untyped-def]
    import pyarrow.parquet as pq
    tmp = path.with_name(path.name + f".tmp-{os.getpid()}")
    pq.write_table(table, tmp, row_group_size=1 << 20)
    os.replace(tmp, path)


def _us(seconds):  # type: ignore[no-untyped-def]
    import pyarrow as pa
    return pa.array(seconds * 1_000_000, type=pa.int64()).cast(pa.timestamp("us", tz="UTC"))


def gen_view(spec: DataSpec, path: Path, view: int, created: bool, starts) -> None:  # type: ignore[no-untyped-def]
    """E x K rows: each entity's first row at its start offset, then exponential gaps (whole
    seconds, >= 1 s). With ``created``, ~20% of rows repeat the previous row's event time and a
    created timestamp breaks the tie (distinct within a tie; a few nulls, which rank oldest)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    K = spec.rows_per_entity
    fields = [(KEY, pa.int64()), (TS, pa.timestamp("us", tz="UTC"))]
    if created:
        fields.append((CREATED, pa.timestamp("us", tz="UTC")))
    fields += [("f0", pa.float64()), ("f1", pa.float64()), ("i0", pa.int64()), ("i1", pa.int64())]
    schema = pa.schema(fields)
    tmp = path.with_name(path.name + f".tmp-{os.getpid()}")
    with pq.ParquetWriter(tmp, schema) as writer:
        for ci, a in enumerate(range(0, spec.entities, CHUNK_ENTITIES)):
            b = min(spec.entities, a + CHUNK_ENTITIES)
            n = b - a
            rng = np.random.default_rng([spec.seed, 100 + view, int(created), ci])
            gaps = np.maximum(np.ceil(rng.exponential(SPAN / K, (n, K))), 1).astype(np.int64)
            gaps[:, 0] = 0
            if created:
                dup = rng.random((n, K)) < 0.2
                dup[:, 0] = False
                gaps[dup] = 0
            ts = T0 + starts[a:b, None] + np.cumsum(gaps, axis=1)
            keys = np.repeat(np.arange(a, b, dtype=np.int64), K)
            cols = {KEY: keys, TS: ts.ravel()}
            masks = {}
            if created:
                rank = np.argsort(rng.random((n, K)), axis=1)
                cr = ts + rank * 3600 + rng.integers(0, 3600, (n, K))
                masks[CREATED] = ((rank == 0) & (rng.random((n, K)) < 0.3)).ravel()
                cols[CREATED] = cr.ravel()
            m = n * K
            cols["f0"] = rng.standard_normal(m)
            masks["f0"] = rng.random(m) < 0.01          # a matched row whose value is null
            cols["f1"] = rng.random(m) * 100.0
            cols["i0"] = rng.integers(0, 1000, m)
            cols["i1"] = rng.integers(-10**9, 10**9, m)
            order = np.argsort(cols[TS], kind="stable")  # time order within the chunk
            arrays = []
            for f in schema:
                v = cols[f.name][order]
                mask = masks[f.name][order] if f.name in masks else None
                if pa.types.is_timestamp(f.type):
                    arr = _us(v)
                    if mask is not None:
                        import pyarrow.compute as pc
                        arr = pc.if_else(pa.array(mask), pa.scalar(None, f.type), arr)
                else:
                    arr = pa.array(v, type=f.type, mask=mask)
                arrays.append(arr)
            writer.write_table(pa.Table.from_arrays(arrays, schema=schema), row_group_size=1 << 20)
    os.replace(tmp, path)


def gen_labels(spec: DataSpec, path: Path, starts) -> None:  # type: ignore[no-untyped-def]
    """N labels in random order: 3% unknown entities, 6% strictly before the entity's first
    row, 1% exactly at the first row, 1% exactly TTL after it, the rest after the first row."""
    import numpy as np
    import pyarrow as pa

    N, E = spec.labels, spec.entities
    rng = np.random.default_rng([spec.seed, 2, N, spec.ttl_s])
    u = rng.random(N)
    kind = np.zeros(N, dtype=np.int8)
    edge = 0.0
    for name, share in KIND_SHARES.items():
        kind[(u >= edge) & (u < edge + share)] = KINDS[name]
        edge += share
    entity = rng.integers(0, E, N, dtype=np.int64)
    unknown = kind == KINDS["unknown"]
    entity[unknown] = E + rng.integers(0, max(1, E // 10), int(unknown.sum()))
    start = T0 + starts[np.minimum(entity, E - 1)]
    ts = start + (rng.random(N) * (T_END - start)).astype(np.int64)
    early = kind == KINDS["early"]
    ts[early] = start[early] - 1 - rng.integers(0, EARLY, int(early.sum()))
    ts[unknown] = T0 - EARLY + rng.integers(0, T_END - T0 + EARLY, int(unknown.sum()))
    ts[kind == KINDS["at_first"]] = start[kind == KINDS["at_first"]]
    ts[kind == KINDS["at_ttl"]] = start[kind == KINDS["at_ttl"]] + spec.ttl_s
    table = pa.table({
        "label_id": pa.array(np.arange(N, dtype=np.int64)),
        KEY: pa.array(entity),
        TS: _us(ts),
        "label": pa.array(rng.integers(0, 2, N, dtype=np.int8)),
        "kind": pa.array(kind),
    })
    _write_atomic(table, path)


def ensure_data(spec: DataSpec, data_root: Path, scenarios: list[str]) -> dict[str, Any]:
    """Generate what the scenarios need, reusing files made earlier with the same parameters."""
    d = data_root / spec.dir
    d.mkdir(parents=True, exist_ok=True)
    meta = d / "meta.json"
    if not meta.exists():
        meta.write_text(json.dumps({"generator_version": GEN_VERSION, "entities": spec.entities,
                                    "rows_per_entity": spec.rows_per_entity, "seed": spec.seed,
                                    "t0": T0}, indent=2))
    paths: dict[str, Any] = {
        "labels": d / f"labels-N{spec.labels}-ttl{spec.ttl_s}.parquet",
        "plain": [d / f"plain-v{i}.parquet" for i in range(max(1, spec.views))],
        "created": d / "created-v0.parquet",
    }
    wanted: list[tuple[Path, Any]] = [(paths["labels"], lambda p, s: gen_labels(spec, p, s))]
    if "one_view" in scenarios or "five_views" in scenarios:
        n = spec.views if "five_views" in scenarios else 1
        for i in range(n):
            wanted.append((paths["plain"][i], lambda p, s, i=i: gen_view(spec, p, i, False, s)))
    if "tiebreak" in scenarios:
        wanted.append((paths["created"], lambda p, s: gen_view(spec, p, 0, True, s)))
    missing = [(p, fn) for p, fn in wanted if not p.exists()]
    if missing:
        starts = _start_offsets(spec)
        for p, fn in missing:
            t = time.perf_counter()
            fn(p, starts)
            print(f"  generated {p.relative_to(data_root)} ({p.stat().st_size / 2**20:.0f} MiB) "
                  f"in {time.perf_counter() - t:.1f} s", flush=True)
    return paths


# --------------------------------------------------------------------------------------------
# The methods (run inside a child process)
# --------------------------------------------------------------------------------------------

def view_names(n: int) -> list[str]:
    return [f"pit_v{i}" for i in range(n)]


def out_columns(views: list[dict[str, Any]]) -> list[str]:
    return [f"{v['name']}__{f}" for v in views for f, _ in FEATURES]


def duckdb_connect(job: dict[str, Any]):  # type: ignore[no-untyped-def]
    """A connection with the settings the skewless engine uses (so the comparison is fair)."""
    import duckdb
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    if job.get("memory_limit"):
        con.execute(f"SET memory_limit = '{job['memory_limit']}'")
    if job.get("temp_directory"):
        con.execute(f"SET temp_directory = '{job['temp_directory']}'")
    if job.get("threads"):
        con.execute(f"SET threads = {int(job['threads'])}")
    con.execute("SET preserve_insertion_order = false")
    return con


def raw_sql(job: dict[str, Any], relation: str = "labels") -> str:
    """The hand-written baseline: one ASOF LEFT JOIN per view, TTL checked on the match.

    Tie-break (views with a created column), ``--raw-tiebreak``:
      ``hugeint``  ASOF on one HUGEINT key (event us << 64 | created us + 2^63, null created = 0)
                   probed with (label us << 64 | 2^64-1): the latest event, then the latest created;
      ``struct``   ASOF on the struct {ts, created} probed with {label ts, +infinity} (the engine's way);
      ``qualify``  keep one row per (key, event time) with row_number() over created, then ASOF;
      ``argmax``   the same with GROUP BY key, event time and arg_max(features, created).
    """
    ttl_us = int(job["ttl_s"]) * 1_000_000
    mode = job.get("raw_tiebreak", "hugeint")
    feats = ", ".join(f for f, _ in FEATURES)
    joins, selects = [], []
    for i, v in enumerate(job["views"]):
        a = f"v{i}"
        src = f"read_parquet('{v['path']}')"
        on = f"e.{KEY} = {a}.{KEY}"
        if v["created"] and mode == "hugeint":
            key = (f"epoch_us({TS})::HUGEINT * 18446744073709551616 + "
                   f"(coalesce(epoch_us({CREATED}), -9223372036854775808)::HUGEINT + 9223372036854775808)")
            src = f"(SELECT {KEY}, {TS}, {key} AS sk, {feats} FROM {src})"
            on += f" AND epoch_us(e.{TS})::HUGEINT * 18446744073709551616 + 18446744073709551615 >= {a}.sk"
        elif v["created"] and mode == "struct":
            src = (f"(SELECT {KEY}, {TS}, {{'t': {TS}, 'c': coalesce({CREATED}, '-infinity'::TIMESTAMPTZ)}}"
                   f" AS sk, {feats} FROM {src})")
            on += f" AND {{'t': e.{TS}, 'c': 'infinity'::TIMESTAMPTZ}} >= {a}.sk"
        elif v["created"] and mode == "qualify":
            src = (f"(SELECT {KEY}, {TS}, {feats} FROM {src} QUALIFY row_number() OVER "
                   f"(PARTITION BY {KEY}, {TS} ORDER BY {CREATED} DESC NULLS LAST) = 1)")
            on += f" AND e.{TS} >= {a}.{TS}"
        elif v["created"] and mode == "argmax":
            packed = ", ".join(f"{f} := {f}" for f, _ in FEATURES)
            unpacked = ", ".join(f"s.{f} AS {f}" for f, _ in FEATURES)
            src = (f"(SELECT {KEY}, {TS}, {unpacked} FROM (SELECT {KEY}, {TS}, arg_max(struct_pack("
                   f"{packed}), coalesce({CREATED}, '-infinity'::TIMESTAMPTZ)) AS s FROM {src} "
                   f"GROUP BY {KEY}, {TS}))")
            on += f" AND e.{TS} >= {a}.{TS}"
        else:
            on += f" AND e.{TS} >= {a}.{TS}"
        joins.append(f"ASOF LEFT JOIN {src} {a} ON {on}")
        hit = f"epoch_us({a}.{TS}) >= epoch_us(e.{TS}) - {ttl_us}"
        for f, _ in FEATURES:
            selects.append(f'CASE WHEN {hit} THEN {a}.{f} END AS "{v["name"]}__{f}"')
    return f"SELECT e.*, {', '.join(selects)}\nFROM {relation} e\n" + "\n".join(joins)


def run_skewless(job: dict[str, Any], labels):  # type: ignore[no-untyped-def]
    from skewless import Entity, FeatureStore, FeatureView, Field, FileSource
    from skewless import types as T

    repo = Path(job["repo"])
    repo.mkdir(parents=True, exist_ok=True)
    offline: dict[str, Any] = {"type": "duckdb"}
    for k in ("memory_limit", "temp_directory", "threads"):
        if job.get(k):
            offline[k] = job[k]
    store = FeatureStore(repo, config={"project": "bench", "registry": str(repo / "registry.db"),
                                       "offline_store": offline, "online_store": {"type": "memory"}})
    entity = Entity(name="entity", join_keys=[KEY])
    views = [FeatureView(
        name=v["name"], entities=[entity],
        schema=[Field(name=f, dtype=getattr(T, t)) for f, t in FEATURES],
        source=FileSource(path=v["path"], timestamp_field=TS, name=f"{v['name']}_src",
                          created_timestamp_column=CREATED if v["created"] else None),
        ttl=timedelta(seconds=job["ttl_s"])) for v in job["views"]]
    store.apply([entity, *views])
    refs = [f"{v['name']}:{f}" for v in job["views"] for f, _ in FEATURES]
    import duckdb  # noqa: F401 - imported before the clock starts, as for the other methods

    def run():  # type: ignore[no-untyped-def]
        return store.get_historical_features(labels, features=refs, full_feature_names=True).to_df()
    return run


def run_duckdb(job: dict[str, Any], labels):  # type: ignore[no-untyped-def]
    import duckdb  # noqa: F401
    sql = raw_sql(job)

    def run():  # type: ignore[no-untyped-def]
        con = duckdb_connect(job)
        try:
            con.register("labels", labels)
            return con.sql(sql).df()
        finally:
            con.close()
    return run


def run_pandas(job: dict[str, Any], labels):  # type: ignore[no-untyped-def]
    import pandas as pd
    import pyarrow.parquet  # noqa: F401

    tol = pd.Timedelta(seconds=job["ttl_s"])

    def run():  # type: ignore[no-untyped-def]
        left = labels.sort_values(TS, kind="stable")
        for v in job["views"]:
            cols = [KEY, TS] + ([CREATED] if v["created"] else []) + [f for f, _ in FEATURES]
            right = pd.read_parquet(v["path"], columns=cols)
            if v["created"]:  # ties on the event time: keep the greatest created (null = oldest)
                right = right.sort_values([TS, CREATED], na_position="first", kind="stable")
                right = right.drop_duplicates([KEY, TS], keep="last").drop(columns=[CREATED])
            else:
                right = right.sort_values(TS, kind="stable")
            right = right.rename(columns={f: f"{v['name']}__{f}" for f, _ in FEATURES})
            left = pd.merge_asof(left, right, on=TS, by=KEY, tolerance=tol, direction="backward",
                                 allow_exact_matches=True)
        return left.sort_values("label_id", kind="stable").reset_index(drop=True)  # input order
    return run


RUNNERS = {"skewless": run_skewless, "duckdb": run_duckdb, "pandas": run_pandas}


def measure(job: dict[str, Any]) -> dict[str, Any]:
    """Child side: load the labels, run one method once, report wall time and peak RSS."""
    import pandas as pd

    labels = pd.read_parquet(job["labels"])
    run = RUNNERS[job["method"]](job, labels)
    rss_before = current_rss()
    load = os.getloadavg()[0]
    cpu = cpu_seconds()
    t = time.perf_counter()
    df = run()
    wall = time.perf_counter() - t
    cpu = cpu_seconds() - cpu
    peak = peak_rss()
    result = {"method": job["method"], "scenario": job["scenario"], "wall_s": wall, "cpu_s": cpu,
              "peak_rss": peak, "rss_before": rss_before, "rows": int(len(df)),
              "load_before": load, "load_after": os.getloadavg()[0]}
    if job.get("out"):
        import pyarrow as pa
        import pyarrow.parquet as pq
        cols = ["label_id"] + out_columns(job["views"])
        missing = [c for c in cols if c not in df.columns]
        if missing:
            raise RuntimeError(f"{job['method']} output lacks columns {missing}")
        pq.write_table(pa.Table.from_pandas(df[cols], preserve_index=False), job["out"])
    return result


# --------------------------------------------------------------------------------------------
# Correctness check (parent side)
# --------------------------------------------------------------------------------------------

def check_outputs(scenario: str, views: list[dict[str, Any]], labels_path: Path,
                  outs: dict[str, Path], n_labels: int, max_examples: int = 5) -> dict[str, Any]:
    """Row counts, null counts, row-by-row agreement of every method with the first one, the
    input order of skewless's output and the known answers of the label classes."""
    import numpy as np
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    cols = out_columns(views)
    labels = pq.read_table(labels_path, columns=["label_id", KEY, TS, "kind"])
    kind = labels.column("kind").to_numpy()
    report: dict[str, Any] = {"scenario": scenario, "labels": n_labels, "methods": {}, "diffs": {},
                              "problems": []}
    values: dict[str, dict[str, Any]] = {}
    for method, path in outs.items():
        t = pq.read_table(path)
        ids = t.column("label_id").to_numpy()
        info: dict[str, Any] = {"rows": t.num_rows}
        if t.num_rows != n_labels:
            report["problems"].append(f"{method}: {t.num_rows} rows, expected {n_labels}")
        if method == "skewless" and not np.array_equal(ids, np.arange(t.num_rows)):
            report["problems"].append("skewless: rows are not in input order")
        order = np.argsort(ids, kind="stable")
        if not np.array_equal(ids[order], np.arange(n_labels)):
            report["problems"].append(f"{method}: label ids are not exactly 0..N-1")
            continue
        vals = {}
        for c in cols:
            arr = pc.fill_null(t.column(c).cast("float64"), float("nan")).to_numpy()[order]
            vals[c] = arr
        nulls = np.zeros(n_labels, dtype=bool)
        all_null = np.ones(n_labels, dtype=bool)
        for c in cols:
            nulls |= np.isnan(vals[c])
            all_null &= np.isnan(vals[c])
        info["rows_with_a_null"] = int(nulls.sum())
        info["rows_all_null"] = int(all_null.sum())
        # Known answers: unknown entities and labels before the first row match nothing;
        # a label exactly at the first row matches it (f1, i0, i1 are never null in the source).
        for name in ("unknown", "early"):
            bad = int((~all_null & (kind == KINDS[name])).sum())
            if bad:
                report["problems"].append(f"{method}: {bad} '{name}' labels got a feature value")
        first = views[0]["name"]
        at_first = kind == KINDS["at_first"]
        bad = int((np.isnan(vals[f"{first}__f1"]) & at_first).sum())
        if bad:
            report["problems"].append(f"{method}: {bad} labels at the entity's first row got no value")
        report["methods"][method] = info
        values[method] = vals
    names = list(values)
    if len(names) >= 2:
        base = names[0]
        for other in names[1:]:
            diff = np.zeros(n_labels, dtype=bool)
            per_col = {}
            for c in cols:
                a, b = values[base][c], values[other][c]
                d = ~((a == b) | (np.isnan(a) & np.isnan(b)))
                per_col[c] = int(d.sum())
                diff |= d
            key = f"{base} vs {other}"
            entry: dict[str, Any] = {"rows_differing": int(diff.sum()),
                                     "per_column": {c: n for c, n in per_col.items() if n}}
            if diff.any():
                idx = np.flatnonzero(diff)[:max_examples]
                ex = []
                ent = labels.column(KEY).to_numpy()
                ts = labels.column(TS).to_pylist()
                for i in idx:
                    ex.append({"label_id": int(i), KEY: int(ent[i]), TS: str(ts[i]),
                               "kind": [k for k, v in KINDS.items() if v == kind[i]][0],
                               base: {c: _num(values[base][c][i]) for c in cols if per_col[c]},
                               other: {c: _num(values[other][c][i]) for c in cols if per_col[c]}})
                entry["examples"] = ex
                report["problems"].append(f"{key}: {int(diff.sum())} rows differ")
            report["diffs"][key] = entry
    report["ok"] = not report["problems"]
    return report


def _num(x: float) -> float | None:
    return None if x != x else float(x)


# --------------------------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------------------------

def scenario_views(scenario: str, paths: dict[str, Any], n_views: int) -> list[dict[str, Any]]:
    if scenario == "one_view":
        return [{"name": "pit_v0", "path": str(paths["plain"][0]), "created": False}]
    if scenario == "tiebreak":
        return [{"name": "pit_v0", "path": str(paths["created"]), "created": True}]
    return [{"name": n, "path": str(paths["plain"][i]), "created": False}
            for i, n in enumerate(view_names(n_views))]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scale", choices=sorted(SCALES), default="S",
                   help="S: 100k entities x 10 rows, 100k labels; M: 1M x 10 rows (10M), 1M labels; "
                        "L: 10M x 10 rows (100M), 10M labels (default S)")
    p.add_argument("--entities", type=int, help="entities (overrides --scale)")
    p.add_argument("--rows-per-entity", type=int, help="feature rows per entity and view (overrides --scale)")
    p.add_argument("--labels", type=int, help="label rows (overrides --scale)")
    p.add_argument("--views", type=int, default=5, help="views in the five_views scenario (default 5)")
    p.add_argument("--ttl-days", type=float, default=60.0, help="TTL of every view (default 60)")
    p.add_argument("--scenarios", default=",".join(SCENARIOS),
                   help=f"comma-separated subset of {','.join(SCENARIOS)}")
    p.add_argument("--methods", default=",".join(METHODS), help=f"comma-separated subset of {','.join(METHODS)}")
    p.add_argument("--repeat", type=int, default=3, help="measurements per method (median reported; default 3)")
    p.add_argument("--memory-limit", help="DuckDB memory_limit for skewless and raw DuckDB (default: DuckDB's)")
    p.add_argument("--threads", type=int, help="DuckDB threads (default: DuckDB's, all cores)")
    p.add_argument("--raw-tiebreak", choices=("hugeint", "struct", "qualify", "argmax"), default="hugeint",
                   help="how the raw DuckDB query breaks event-time ties (default hugeint, the fastest "
                        "correct one measured; see raw_sql)")
    p.add_argument("--no-check", action="store_true", help="skip saving outputs and the correctness check")
    add_run_args(p, timeout=3600.0, redis=False)
    p.add_argument("--_measure", metavar="JOB_JSON", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args._measure:
        print(json.dumps(measure(json.loads(args._measure))), flush=True)
        return 0

    E, K, N = SCALES[args.scale]
    E = args.entities or E
    K = args.rows_per_entity or K
    N = args.labels or N
    scenarios = choose(args.scenarios, SCENARIOS, "scenario")
    methods = choose(args.methods, METHODS, "method")
    spec = DataSpec(E, K, N, args.ttl_days, args.seed, args.views)
    machine = machine_info()
    print(f"pit benchmark: {E:,} entities x {K} rows = {E * K:,} feature rows per view, {N:,} labels, "
          f"ttl {args.ttl_days:g} days, repeat {args.repeat}")
    print(f"machine: {machine['nproc']} cores, {machine['ram_gib']} GiB, {machine['cpu']}; python "
          f"{machine['python']}, duckdb {machine['duckdb']}, pyarrow {machine['pyarrow']}, "
          f"pandas {machine['pandas']}", flush=True)
    t_start = time.perf_counter()
    paths = ensure_data(spec, args.data_dir, scenarios)
    work = args.data_dir / spec.dir / "work"
    shutil.rmtree(work, ignore_errors=True)
    (work / "out").mkdir(parents=True)
    tmpdir = work / "duckdb_tmp"

    runs: list[dict[str, Any]] = []
    checks: list[dict[str, Any]] = []
    for scenario in scenarios:
        views = scenario_views(scenario, paths, args.views)
        print(f"\n[{scenario}] {len(views)} view(s) x {E * K:,} rows, {N:,} labels", flush=True)
        outs: dict[str, Path] = {}
        for r in range(args.repeat):
            rot = r % len(methods)
            for method in methods[rot:] + methods[:rot]:
                job = {"scenario": scenario, "method": method, "views": views,
                       "labels": str(paths["labels"]), "ttl_s": spec.ttl_s,
                       "memory_limit": args.memory_limit, "threads": args.threads,
                       "temp_directory": str(tmpdir), "raw_tiebreak": args.raw_tiebreak,
                       "repo": str(work / "repo" / scenario)}
                if r == 0 and not args.no_check:
                    job["out"] = outs[method] = work / "out" / f"{scenario}-{method}.parquet"
                if args.wait_quiet is not None:
                    load, waited = wait_until_quiet(args.wait_quiet, args.quiet_timeout)
                    if load > args.wait_quiet:
                        print(f"  (machine still busy after {waited:.0f} s: {load:.2f} cores; measuring anyway)")
                res = run_child([sys.executable, str(Path(__file__).resolve()), "--_measure",
                                 json.dumps(job, default=str)], timeout=args.timeout)
                res["round"] = r
                runs.append(res)
                print(f"  round {r + 1}: {method:<8} {res['wall_s']:7.2f} s wall {res['cpu_s']:7.2f} s CPU  "
                      f"peak RSS {res['peak_rss'] / GIB:5.2f} GiB  rows {res['rows']:,}  "
                      f"(background load {res['background_cores']:.2f} cores)", flush=True)
        if outs:
            rep = check_outputs(scenario, views, paths["labels"], outs, N)
            checks.append(rep)
            _print_check(rep)

    summary = summarize(runs, scenarios, methods)
    print()
    print(render_table(summary))
    print()
    verdicts = evaluate_targets(summary)
    at_size = E * K >= TARGET_ROWS and N >= TARGET_LABELS
    if not at_size:
        print(f"(the targets are set for {TARGET_ROWS:,} feature rows per view and {TARGET_LABELS:,} labels, "
              "i.e. --scale M; below that they are indicative only)")
    for v in verdicts:
        v["at_target_size"] = at_size
    print_verdicts(verdicts)
    total = time.perf_counter() - t_start
    print(f"\ntotal {total:.0f} s")
    out = write_results(args.results_dir, "pit", {
        "machine": machine,
        "params": {"scale": args.scale, "entities": E, "rows_per_entity": K, "feature_rows_per_view": E * K,
                   "labels": N, "views_in_five_views": args.views, "ttl_days": args.ttl_days,
                   "seed": args.seed, "repeat": args.repeat, "memory_limit": args.memory_limit,
                   "threads": args.threads, "raw_tiebreak": args.raw_tiebreak,
                   "wait_quiet": args.wait_quiet},
        "summary": summary, "targets": verdicts, "checks": checks, "runs": runs,
        "total_s": total})
    print(f"results: {out}")
    ok = all(c["ok"] for c in checks)
    return 0 if ok else 1


def _print_check(rep: dict[str, Any]) -> None:
    for m, info in rep["methods"].items():
        print(f"  check {m:<8} rows {info['rows']:,}/{rep['labels']:,}, with a null {info['rows_with_a_null']:,}, "
              f"all null {info['rows_all_null']:,}")
    for key, d in rep["diffs"].items():
        print(f"  check {key}: {d['rows_differing']:,} rows differ" +
              (f" {d['per_column']}" if d["rows_differing"] else ""))
        for ex in d.get("examples", []):
            print(f"    e.g. {json.dumps(ex)}")
    print("  check: " + ("OK" if rep["ok"] else "FAILED: " + "; ".join(rep["problems"])), flush=True)


def summarize(runs: list[dict[str, Any]], scenarios: list[str], methods: list[str]) -> list[dict[str, Any]]:
    rows = []
    for s in scenarios:
        base = [r["wall_s"] for r in runs if r["scenario"] == s and r["method"] == "duckdb"]
        base_cpu = [r["cpu_s"] for r in runs if r["scenario"] == s and r["method"] == "duckdb"]
        for m in methods:
            rs = [r for r in runs if r["scenario"] == s and r["method"] == m]
            if not rs:
                continue
            wall = median([r["wall_s"] for r in rs])
            cpu = median([r["cpu_s"] for r in rs])
            rows.append({"scenario": s, "method": m, "wall_s": wall,
                         "wall_min_s": min(r["wall_s"] for r in rs), "wall_max_s": max(r["wall_s"] for r in rs),
                         "cpu_s": cpu,
                         "peak_rss_gib": median([r["peak_rss"] for r in rs]) / GIB,
                         "rss_before_gib": median([r["rss_before"] for r in rs]) / GIB,
                         "ratio_vs_duckdb": wall / median(base) if base else None,
                         "cpu_ratio_vs_duckdb": cpu / median(base_cpu) if base_cpu else None,
                         "background_cores": median([r.get("background_cores", 0.0) for r in rs]),
                         "n": len(rs)})
    return rows


def render_table(summary: list[dict[str, Any]], markdown: bool = False) -> str:
    headers = ["scenario", "method", "wall s (median)", "min-max s", "peak RSS GiB", "vs raw DuckDB",
               "CPU s", "CPU vs raw", "bg load"]

    def x(v: float | None) -> str:
        return f"{v:.2f}x" if v is not None else "-"
    rows = [[r["scenario"], r["method"], f"{r['wall_s']:.2f}", f"{r['wall_min_s']:.2f}-{r['wall_max_s']:.2f}",
             f"{r['peak_rss_gib']:.2f}", x(r["ratio_vs_duckdb"]), f"{r['cpu_s']:.2f}",
             x(r["cpu_ratio_vs_duckdb"]), f"{r['background_cores']:.2f}"] for r in summary]
    return format_table(headers, rows, markdown=markdown)


def evaluate_targets(summary: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The issue's targets, for whatever scenarios ran (ratios need the duckdb method too)."""
    by = {(r["scenario"], r["method"]): r for r in summary}
    out = []
    one = by.get(("one_view", "skewless"))
    if one and one["ratio_vs_duckdb"] is not None:
        t = TARGETS["one_view"]["ratio"]
        out.append({"target": "one_view ratio", "met": one["ratio_vs_duckdb"] <= t, "value": one["ratio_vs_duckdb"],
                    "text": f"one view: skewless {one['ratio_vs_duckdb']:.2f}x raw DuckDB ASOF+TTL wall time "
                            f"(target <= {t}x; CPU {one['cpu_ratio_vs_duckdb']:.2f}x)"})
    if one:
        t = TARGETS["one_view"]["peak_rss_gib"]
        out.append({"target": "one_view peak RSS", "met": one["peak_rss_gib"] <= t, "value": one["peak_rss_gib"],
                    "text": f"one view: skewless peak RSS {one['peak_rss_gib']:.2f} GiB (target <= {t} GiB)"})
    tb = by.get(("tiebreak", "skewless"))
    if tb and tb["ratio_vs_duckdb"] is not None:
        t = TARGETS["tiebreak"]["ratio"]
        out.append({"target": "tiebreak ratio", "met": tb["ratio_vs_duckdb"] <= t, "value": tb["ratio_vs_duckdb"],
                    "text": f"tie-break: skewless {tb['ratio_vs_duckdb']:.2f}x raw DuckDB ASOF+TTL with the "
                            f"same tie-break, wall time (target <= {t}x; CPU {tb['cpu_ratio_vs_duckdb']:.2f}x)"})
        plain = by.get(("one_view", "duckdb"))
        if plain:
            r = tb["wall_s"] / plain["wall_s"]
            out.append({"target": "tiebreak ratio vs plain ASOF", "met": r <= t, "value": r,
                        "text": f"tie-break: skewless {r:.2f}x raw DuckDB plain ASOF+TTL of one_view "
                                f"(no tie-break; target <= {t}x)"})
    fv = by.get(("five_views", "skewless"))
    if fv:
        t = TARGETS["five_views"]["wall_s"]
        out.append({"target": "five_views wall", "met": fv["wall_s"] <= t, "value": fv["wall_s"],
                    "text": f"five views: skewless {fv['wall_s']:.2f} s wall (target <= {t:g} s; CPU "
                            f"{fv['cpu_s']:.2f} s on {os.cpu_count()} cores)"})
    return out


if __name__ == "__main__":
    sys.exit(main())
