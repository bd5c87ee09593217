"""Monitoring benchmarks (issue 14). Part ``monitor``: one ``store.monitor()`` run over 10 views
of 10M source rows each (the issue's target: <= 20 s), side by side with the floor of one bare
DuckDB scan per view.

    .venv/bin/python bench/monitor.py monitor                 # 10 views x 10M rows (~100M rows)
    .venv/bin/python bench/monitor.py monitor --rows 1000000  # 10 views x 1M rows (quick)

Data (generated once with DuckDB into ``bench/data/monitor/<rows>/``, one Parquet file per
view, cached): ``--days`` (30) days of events sorted by time, ending a minute before the
store's clock; per view 4 features: ``f_norm`` (DOUBLE, normal), ``f_null`` (DOUBLE, 0.5% null),
``f_int`` (BIGINT), ``f_cat`` (VARCHAR, 8 values: completeness only). Views are offline only
(``online=False``): what is measured is the offline work, which grows with the rows; the
online checks read a fixed sample of keys (``monitoring.online_sample_keys``).

Methods, each ``--repeat`` times (median reported, OS file cache warm after the first):

- ``skewless``: ``store.monitor(record=False)`` with the default monitoring config (a 14-day
  period, a 7-day baseline and a 1-day current window): per view one DuckDB pass for the
  per-day rows, newest event and non-null counts and the baseline's quantiles, and one over
  the two windows for the histograms and the KS samples; then scipy's ``ks_2samp``.
- ``raw``: the floor: per view one bare DuckDB scan of the whole file computing ``max(ts)`` and
  ``count(col)`` of every feature (what any freshness plus completeness check must read).

The other parts of this script (``logging``, ``audit``) are added by the logging and audit
work; ``PARTS`` maps each part's name to its function.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _common import end_git_state, format_table, git_state, machine_info  # noqa: E402

FEATURES = ("f_norm", "f_null", "f_int", "f_cat")


def _generate(path: Path, rows: int, days: int, end: datetime, seed: int) -> None:
    """One view's source: ``rows`` events spread evenly over ``days`` days up to ``end``."""
    import duckdb

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute(f"SELECT setseed({(seed % 1000) / 1000.0})")
    step_us = int(days * 86_400e6 / rows)
    start = end - timedelta(days=days)
    con.execute(f"""
        COPY (SELECT (range % 1000000) AS entity_id,
                     CAST($start AS TIMESTAMPTZ) + to_microseconds(range * {step_us}) AS ts,
                     100 + 15 * sqrt(-2 * ln(random() + 1e-12)) * cos(2 * pi() * random()) AS f_norm,
                     CASE WHEN random() < 0.005 THEN NULL ELSE random() * 50 END AS f_null,
                     CAST(floor(random() * 20) AS BIGINT) AS f_int,
                     'c' || CAST(floor(random() * 8) AS INTEGER) AS f_cat
              FROM range({rows}))
        TO '{tmp}' (FORMAT parquet, ROW_GROUP_SIZE 122880)""", {"start": start})
    con.close()
    tmp.rename(path)


def _repo(root: Path, views: int, rows: int, days: int, now: datetime, seed: int) -> Any:
    from skewless import Entity, FeatureStore, FeatureView, Field, FileSource
    from skewless.types import Float64, Int64, String

    data = HERE / "data" / "monitor" / f"{rows}-{days}d"
    marker = data / "end.txt"
    if marker.exists():
        end = datetime.fromisoformat(marker.read_text().strip())
    else:
        end = now - timedelta(minutes=1)
    for i in range(views):
        f = data / f"view_{i}.parquet"
        if not f.exists():
            t0 = time.perf_counter()
            _generate(f, rows, days, end, seed + i)
            print(f"generated {f} ({rows:,} rows) in {time.perf_counter() - t0:.1f} s", flush=True)
    marker.write_text(end.isoformat())
    root.mkdir(parents=True, exist_ok=True)
    (root / "feature_store.yaml").write_text("project: bench_monitor\nregistry: data/registry.db\n")
    entity = Entity("entity", join_keys=["entity_id"])
    defs: list[Any] = [entity]
    for i in range(views):
        defs.append(FeatureView(
            name=f"view_{i}", entities=[entity], online=False, ttl=timedelta(days=1),
            schema=[Field("f_norm", Float64), Field("f_null", Float64), Field("f_int", Int64),
                    Field("f_cat", String)],
            source=FileSource(str(data / f"view_{i}.parquet"), "ts")))
    clock_at = end + timedelta(minutes=1)
    store = FeatureStore(root, clock=lambda: clock_at)
    store.apply(defs)
    return store, [data / f"view_{i}.parquet" for i in range(views)]


def _raw(files: list[Path]) -> float:
    import duckdb

    t0 = time.perf_counter()
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    for f in files:
        con.execute(f"SELECT max(ts), {', '.join(f'count({c})' for c in FEATURES)} "
                    f"FROM read_parquet('{f}')").fetchall()
    con.close()
    return time.perf_counter() - t0


def bench_monitor(args: argparse.Namespace) -> dict[str, Any]:
    """Time ``store.monitor()`` over ``args.views`` views of ``args.rows`` rows, and the raw
    floor; print the table and return the figures."""
    git0 = git_state()
    now = datetime.now(timezone.utc).replace(microsecond=0)
    root = HERE / "results" / "monitor_repo"
    store, files = _repo(root, args.views, args.rows, args.days, now, args.seed)
    timings: dict[str, list[float]] = {"skewless": [], "raw": []}
    statuses = None
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        report = store.monitor(record=False)
        timings["skewless"].append(time.perf_counter() - t0)
        statuses = {s: sum(1 for c in report.checks if c.status == s) for s in ("OK", "WARN", "ALERT")}
        timings["raw"].append(_raw(files))
    med = {k: statistics.median(v) for k, v in timings.items()}
    total = args.views * args.rows
    rows = [[k, f"{med[k]:.2f}", f"{min(v):.2f}", f"{max(v):.2f}", f"{total / med[k] / 1e6:.1f}",
             f"{med[k] / med['raw']:.2f}x"] for k, v in timings.items()]
    print(f"\nmonitor: {args.views} views x {args.rows:,} rows ({total:,} rows), "
          f"{args.repeat} runs; machine: {machine_info()}")
    print(format_table(["method", "median s", "min s", "max s", "M rows/s", "vs raw"], rows))
    print(f"target: <= 20 s; checks per run: {statuses}")
    end_git_state(git0)
    return {"median_s": med, "runs": timings, "rows": total, "checks": statuses}


PARTS = {"monitor": bench_monitor}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("part", choices=sorted(PARTS), help="what to measure")
    p.add_argument("--views", type=int, default=10)
    p.add_argument("--rows", type=int, default=10_000_000, help="source rows per view")
    p.add_argument("--days", type=int, default=30, help="days the rows span")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--seed", type=int, default=42)
    args = p.parse_args()
    PARTS[args.part](args)


if __name__ == "__main__":
    main()
