"""Windowed-aggregation backfill benchmark: skewless on DuckDB vs a hand-written DuckDB window
query giving the same values (docs/aggregations.md).

    .venv/bin/python bench/aggregate.py                  # scale 0.1: 1M events, 100k labels
    .venv/bin/python bench/aggregate.py --scale 1        # the target's sizes
    .venv/bin/python bench/aggregate.py --scale 0.1 --repeat 3

The view: 3 windows (1 h, 1 d, 7 d; default tiles 5 min, 1 h, 1 h) x 3 functions (sum, mean,
max) of a float64 column with 1% nulls. At ``--scale 1``: 10M events over 100k keys (100 each,
spread over 30 days; 2% of events share their key's previous event time), 1M labels spread over
the same 30 days (plus a day after), 2% exactly at an event's time (that event is excluded), 2%
exactly one window after one (the rounded-down tail), 3% on unknown keys.

Methods, each timed and measured in a fresh child process, interleaved over ``--repeat`` rounds,
median reported:

- ``skewless``  ``store.get_historical_features(labels_df, 9 features).to_df()`` (partials per
                (key, tile), merged per label: ``engines/sql.py``).
- ``duckdb``    the raw limit: events and labels in one table, one window function per feature
                over each key's rows in time order, with a per-row frame
                ``RANGE BETWEEN (t - floor_tile(t - w)) PRECEDING AND 1 PRECEDING`` (the rule
                exactly, nulls skipped), label rows kept, fetched with ``.df()``.

Wall time covers the retrieval only (labels loaded before the clock starts; reading the events
is timed). Peak RSS is the child's ``VmHWM``. "bg load" is the CPU other processes used
meanwhile, in cores: timings are comparable only when it is near 0.

The first round saves both outputs and checks that they agree row by row: max exactly, sum and
mean within the tolerance of docs/aggregations.md ("Floats"), every label row present. Exit
status 1 if a check fails. Data is generated deterministically (``--seed``) and cached under
``bench/data/``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    GIB,
    add_run_args,
    cpu_seconds,
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
GEN_VERSION = 1
T0_US = int(datetime(2024, 1, 1, tzinfo=timezone.utc).timestamp()) * 1_000_000
MINUTE_US, HOUR_US, DAY_US = 60_000_000, 3_600_000_000, 86_400_000_000
SPAN_US = 30 * DAY_US
KEY, TS = "entity_id", "event_timestamp"
WINDOWS = (("1h", HOUR_US, 5 * MINUTE_US), ("1d", DAY_US, HOUR_US), ("7d", 7 * DAY_US, HOUR_US))
FUNCTIONS = ("sum", "mean", "max")
FULL = {"events": 10_000_000, "keys": 100_000, "labels": 1_000_000}
TARGET = {"wall_s": 20.0, "peak_rss_gib": 4.0}
METHODS = ("skewless", "duckdb")


def features() -> list[str]:
    return [f"amount_{f}_{w}" for w, _, _ in WINDOWS for f in FUNCTIONS]


# --- data ---------------------------------------------------------------------------------------

def _write(table: Any, path: Path) -> None:
    import pyarrow.parquet as pq
    tmp = path.with_name(path.name + f".tmp-{os.getpid()}")
    pq.write_table(table, tmp, row_group_size=1 << 20)
    os.replace(tmp, path)


def ensure_data(root: Path, events: int, keys: int, labels: int, seed: int) -> dict[str, Path]:
    import numpy as np
    import pyarrow as pa

    d = root / f"agg-v{GEN_VERSION}-E{events}-K{keys}-N{labels}-s{seed}"
    d.mkdir(parents=True, exist_ok=True)
    paths = {"events": d / "events.parquet", "labels": d / "labels.parquet"}
    if paths["events"].exists() and paths["labels"].exists():
        return paths
    t = time.perf_counter()
    rng = np.random.default_rng(seed)
    key = rng.integers(0, keys, events, dtype=np.int64)
    ts = T0_US + rng.integers(0, SPAN_US, events, dtype=np.int64)
    ts = (ts // 1_000_000) * 1_000_000            # whole seconds
    order = np.lexsort((ts, key))
    key, ts = key[order], ts[order]
    same = rng.random(events) < 0.02               # a share of events at their key's previous time
    same[0] = False
    prev_same = same & (np.r_[-1, key[:-1]] == key)
    ts[prev_same] = np.r_[ts[0], ts[:-1]][prev_same]
    amount = np.round(rng.standard_normal(events) * 100.0, 2)
    ts_type = pa.timestamp("us", tz="UTC")
    _write(pa.table({KEY: key, TS: pa.array(ts).cast(ts_type),
                     "amount": pa.array(amount, mask=rng.random(events) < 0.01)}), paths["events"])
    lkey = rng.integers(0, keys, labels, dtype=np.int64)
    lts = T0_US + rng.integers(0, SPAN_US + DAY_US, labels, dtype=np.int64)
    kind = rng.random(labels)
    at_event = kind < 0.02                          # exactly at an event's time
    pick = rng.integers(0, events, labels)
    lkey[at_event], lts[at_event] = key[pick[at_event]], ts[pick[at_event]]
    after = (kind >= 0.02) & (kind < 0.04)          # exactly one window after an event
    w = np.array([w for _, w, _ in WINDOWS])[rng.integers(0, len(WINDOWS), labels)]
    lkey[after], lts[after] = key[pick[after]], ts[pick[after]] + w[after]
    unknown = (kind >= 0.04) & (kind < 0.07)
    lkey[unknown] = keys + rng.integers(0, 1000, int(unknown.sum()))
    _write(pa.table({"label_id": np.arange(labels, dtype=np.int64), KEY: lkey,
                     TS: pa.array(lts).cast(ts_type)}), paths["labels"])
    print(f"  generated {d.name} in {time.perf_counter() - t:.1f} s", flush=True)
    return paths


# --- the methods (inside a child) ----------------------------------------------------------------

def run_skewless(job: dict[str, Any], labels: Any) -> Any:
    from datetime import timedelta

    from skewless import Aggregation, Entity, FeatureStore, FeatureView, Field, FileSource
    from skewless import types as T

    repo = Path(job["repo"])
    repo.mkdir(parents=True, exist_ok=True)
    store = FeatureStore(repo, config={"project": "bench", "registry": str(repo / "registry.db"),
                                       "offline_store": {"type": "duckdb"},
                                       "online_store": {"type": "memory"}})
    entity = Entity("entity", join_keys=[KEY])
    view = FeatureView("activity", [entity], [Field(KEY, T.Int64), Field("amount", T.Float64)],
                       FileSource(job["events"], timestamp_field=TS),
                       aggregations=[Aggregation("amount", f, timedelta(microseconds=w))
                                     for _, w, _ in WINDOWS for f in FUNCTIONS])
    store.apply([entity, view])
    refs = [f"activity:{f}" for f in features()]
    import duckdb  # noqa: F401 - loaded before the clock starts, as for the raw query

    return lambda: store.get_historical_features(labels, features=refs).to_df()


def raw_sql(events: str) -> str:
    """Events and labels in one relation; per feature, a window over the key's rows in time
    order whose frame is exactly the rule's ``[floor_tile(t - w), t)``."""
    cols = []
    for name, w, s in WINDOWS:
        reach = f"({w} + ((t - {w}) % {s} + {s}) % {s})"      # t - floor_tile(t - w)
        frame = f"OVER (PARTITION BY k ORDER BY t RANGE BETWEEN {reach} PRECEDING AND 1 PRECEDING)"
        cols += [f"sum(v) {frame} AS amount_sum_{name}", f"avg(v) {frame} AS amount_mean_{name}",
                 f"max(v) {frame} AS amount_max_{name}"]
    return (f"WITH u AS (SELECT {KEY} AS k, epoch_us({TS}) AS t, amount AS v, NULL::BIGINT AS rid "
            f"FROM read_parquet('{events}') UNION ALL SELECT {KEY}, epoch_us({TS}), NULL, label_id "
            f"FROM labels)\nSELECT rid AS label_id, {', '.join(cols)} FROM u QUALIFY rid IS NOT NULL")


def run_duckdb(job: dict[str, Any], labels: Any) -> Any:
    import duckdb
    sql = raw_sql(job["events"])

    def run() -> Any:
        con = duckdb.connect()
        try:
            con.execute("SET TimeZone = 'UTC'")
            con.execute("SET preserve_insertion_order = false")
            con.register("labels", labels)
            return con.sql(sql).df()
        finally:
            con.close()
    return run


RUNNERS = {"skewless": run_skewless, "duckdb": run_duckdb}


def measure(job: dict[str, Any]) -> dict[str, Any]:
    import pandas as pd

    labels = pd.read_parquet(job["labels"])
    run = RUNNERS[job["method"]](job, labels)
    cpu, t = cpu_seconds(), time.perf_counter()
    df = run()
    wall, cpu = time.perf_counter() - t, cpu_seconds() - cpu
    if job.get("save"):
        out = df if "label_id" in df.columns else df.assign(label_id=labels["label_id"].to_numpy())
        out[["label_id", *features()]].to_parquet(job["save"])
    return {"wall_s": wall, "cpu_s": cpu, "peak_rss": peak_rss(), "rows": len(df)}


# --- checks and report ----------------------------------------------------------------------------

def check(saved: dict[str, Path], labels: int) -> list[str]:
    """Both methods give every label the same values (sum and mean within the documented
    tolerance; max exactly)."""
    import numpy as np
    import pandas as pd

    got = {m: pd.read_parquet(p).sort_values("label_id").reset_index(drop=True) for m, p in saved.items()}
    problems = []
    for m, df in got.items():
        if len(df) != labels or not (df["label_id"].to_numpy() == np.arange(labels)).all():
            problems.append(f"{m}: {len(df)} rows, expected one per label ({labels})")
    if problems:
        return problems
    a, b = got["skewless"], got["duckdb"]
    for c in features():
        x, y = a[c].to_numpy(dtype="float64", na_value=np.nan), b[c].to_numpy(dtype="float64", na_value=np.nan)
        both_nan = np.isnan(x) & np.isnan(y)
        if c.startswith("amount_max"):
            bad = ~(both_nan | (x == y))
        else:
            bad = ~(both_nan | (np.abs(x - y) <= 1e-9 * np.maximum(1.0, np.maximum(np.abs(x), np.abs(y)))))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            problems.append(f"{c}: {int(bad.sum())} label(s) differ, e.g. label {i}: skewless={x[i]!r} "
                            f"duckdb={y[i]!r}")
    return problems


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--scale", type=float, default=0.1,
                   help="share of the target sizes (10M events, 100k keys, 1M labels); default 0.1")
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("--methods", default=",".join(METHODS))
    p.add_argument("--_measure", help=argparse.SUPPRESS)
    add_run_args(p, timeout=1800.0, redis=False)
    args = p.parse_args()
    if args._measure:
        print(json.dumps(measure(json.loads(args._measure))))
        return 0
    methods = [m for m in args.methods.split(",") if m]
    events, keys, labels = (max(1, int(round(v * args.scale))) for v in FULL.values())
    print(f"aggregate backfill: {events:,} events, {keys:,} keys, {labels:,} labels; "
          f"3 windows x 3 functions", flush=True)
    paths = ensure_data(args.data_dir, events, keys, labels, args.seed)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    runs: dict[str, list[dict[str, Any]]] = {m: [] for m in methods}
    saved: dict[str, Path] = {}
    for r in range(args.repeat):
        for m in methods[r % len(methods):] + methods[:r % len(methods)]:
            if args.wait_quiet is not None:
                wait_until_quiet(args.wait_quiet, args.quiet_timeout)
            job = {"method": m, "events": str(paths["events"]), "labels": str(paths["labels"]),
                   "repo": str(args.data_dir / f"agg-repo-{os.getpid()}")}
            if r == 0:
                saved[m] = args.data_dir / f"agg-out-{m}-{os.getpid()}.parquet"
                job["save"] = str(saved[m])
            res = run_child([sys.executable, __file__, "--_measure", json.dumps(job)], timeout=args.timeout)
            runs[m].append(res)
            print(f"  round {r + 1} {m}: {res['wall_s']:.2f} s, peak {res['peak_rss'] / GIB:.2f} GiB, "
                  f"bg load {res['background_cores']:.2f}", flush=True)
    problems = check(saved, labels) if len(saved) == 2 else []
    for path in saved.values():
        path.unlink(missing_ok=True)
    rows, summary = [], {}
    for m in methods:
        wall = median([x["wall_s"] for x in runs[m]])
        summary[m] = {"wall_s": wall, "cpu_s": median([x["cpu_s"] for x in runs[m]]),
                      "peak_rss_gib": max(x["peak_rss"] for x in runs[m]) / GIB,
                      "bg_load": median([x["background_cores"] for x in runs[m]])}
        rows.append([m, f"{wall:.2f}", f"{summary[m]['cpu_s']:.1f}", f"{summary[m]['peak_rss_gib']:.2f}",
                     f"{summary[m]['bg_load']:.2f}"])
    print(format_table(["method", "wall s", "cpu s", "peak RSS GiB", "bg load"], rows))
    verdicts = []
    if "skewless" in summary:
        s = summary["skewless"]
        at = "" if args.scale == 1 else f" (at scale {args.scale:g}; the target is for scale 1)"
        verdicts.append({"met": s["wall_s"] <= TARGET["wall_s"],
                         "text": f"backfill {s['wall_s']:.2f} s <= {TARGET['wall_s']:g} s{at}"})
        verdicts.append({"met": s["peak_rss_gib"] <= TARGET["peak_rss_gib"],
                         "text": f"peak RSS {s['peak_rss_gib']:.2f} GiB <= {TARGET['peak_rss_gib']:g} GiB{at}"})
        if "duckdb" in summary:
            ratio = s["wall_s"] / summary["duckdb"]["wall_s"]
            print(f"ratio skewless / raw DuckDB window query: {ratio:.2f}")
            summary["ratio"] = ratio
    print_verdicts(verdicts)
    for problem in problems:
        print(f"CHECK FAILED: {problem}")
    if not problems and len(saved) == 2:
        print(f"check: both methods agree on all {labels:,} labels x {len(features())} features")
    out = write_results(args.results_dir, "aggregate", {
        "machine": machine_info(), "scale": args.scale, "events": events, "keys": keys, "labels": labels,
        "summary": summary, "runs": runs, "problems": problems}, stamp)
    print(f"results: {out}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
