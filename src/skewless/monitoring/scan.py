"""The offline side of the monitors: one DuckDB pass over a view's source for the freshness
and completeness figures (newest event time and rows and non-null values per day, plus the
baseline window's quantiles), and one over the baseline and current windows for the
distribution figures (histograms over those quantile bins and a hash-sampled set of values
for the KS statistic). No row reaches Python: only per-day counts, edges, counts per bin and
at most ``ks_sample_size`` values per window and feature (docs/monitoring.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any

import numpy as np

from skewless.define import FeatureView
from skewless.engines.sql import DUCKDB
from skewless.kernels.source import ResolvedSource, resolve_source
from skewless.monitoring.stats import dedupe_edges

NUMERIC = {"Int32", "Int64", "Float32", "Float64"}
_HASH_MOD = 1_000_003


def scan_sql(src: ResolvedSource) -> str:
    """``read_parquet(...)`` of a resolved source, as the DuckDB engine reads it (the folder's
    listed files, not a glob: hidden and compacted-away files are left out)."""
    d, lit = DUCKDB, DUCKDB.literal
    if src.is_dir:
        files = (d.file_list.format(files=", ".join(lit(f) for f in src.duckdb_files())) if src.files
                 else lit(src.duckdb_pattern))
        return d.read_folder.format(files=files)
    if src.files and len(src.files) > 1:
        return d.read_files.format(files=", ".join(lit(f) for f in src.duckdb_files()))
    return d.read_file.format(files=lit(src.duckdb_files()[0] if src.files else src.duckdb_pattern))


@dataclass(frozen=True)
class Windows:
    """The checked times (aware UTC): the series period ``[period_start, now]``, the baseline
    ``[baseline_start, current_start)`` and the current window ``[current_start, now]``."""

    now: datetime
    period_start: datetime
    baseline_start: datetime
    current_start: datetime

    @classmethod
    def of(cls, now: datetime, period_days: float, baseline_days: float,
           current_days: float) -> Windows:
        current = now - timedelta(days=current_days)
        return cls(now, now - timedelta(days=period_days), current - timedelta(days=baseline_days),
                   current)


@dataclass
class OfflineScan:
    """What the offline pass found for one view: the newest event time (None: no row up to
    now), per day the rows, newest event time and non-null count per feature, the rows and
    non-null counts of the current window, and per numeric feature the baseline's edges,
    the two windows' histograms and value samples."""

    newest: datetime | None
    days: list[tuple[date, int, datetime | None, dict[str, int]]]
    current_rows: int
    current_non_null: dict[str, int]
    baseline_rows: int
    edges: dict[str, list[float]] = field(default_factory=dict)
    hist: dict[str, tuple[list[int], list[int]]] = field(default_factory=dict)
    samples: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)


def _utc(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)
    return None


def columns(view: FeatureView, join_keys: tuple[str, ...]) -> dict[str, tuple[str, bool]]:
    """Each monitored feature of ``view`` -> (its source column, numeric?): the schema's
    fields other than the join keys. (An aggregated view's features are computed, not stored:
    its aggregated source columns are what is checked, under their field names.)"""
    src = view.batch_source
    return {f.name: (src.source_column(f.name), str(f.dtype) in NUMERIC)
            for f in view.features_for(set(join_keys))}


def scan_view(con: Any, view: FeatureView, repo_path: Any, features: dict[str, tuple[str, bool]],
              w: Windows, bins: int, sample_size: int, min_rows: int) -> OfflineScan:
    """The two passes over ``view``'s source (module docstring). ``features``: name ->
    (source column, numeric?). Raises SourceError when the source cannot be found or read."""
    src = resolve_source(view.batch_source, repo_path)
    ident = DUCKDB.ident
    ts = ident(view.batch_source.timestamp_field)
    start = min(w.period_start, w.baseline_start)
    names = list(features)
    cols = ", ".join(f"{ident(col)} AS c{i}" for i, (col, _) in enumerate(features.values()))
    inner = (f"SELECT CAST({ts} AS TIMESTAMPTZ) AS t{', ' + cols if cols else ''} "
             f"FROM {scan_sql(src)}")
    numeric = [i for i, (_, num) in enumerate(features.values()) if num]
    qs = [i / bins for i in range(1, bins)]
    base = "t >= $b0 AND t < $c0"
    cur = "t >= $c0"
    aggs = ["count(*) AS n", "max(t) AS mx"]
    aggs += [f"count(c{i}) AS nn{i}" for i in range(len(names))]
    aggs += ["count(*) FILTER (WHERE " + cur + ") AS n_cur",
             "count(*) FILTER (WHERE " + base + ") AS n_base"]
    aggs += [f"count(c{i}) FILTER (WHERE {cur}) AS nn_cur{i}" for i in range(len(names))]
    # the baseline's quantiles (the per-day rows' are not used)
    aggs += [f"approx_quantile(CAST(c{i} AS DOUBLE), {qs!r}) FILTER (WHERE {base} AND "
             f"NOT isnan(CAST(c{i} AS DOUBLE))) AS q{i}" for i in numeric]
    sql = (f"SELECT day, grouping(day) AS g, {', '.join(aggs)} "
           f"FROM (SELECT CAST(t AS DATE) AS day, * FROM ({inner}) WHERE t >= $p0 AND t <= $now) "
           f"GROUP BY GROUPING SETS ((day), ())")
    params = {"p0": start, "now": w.now, "b0": w.baseline_start, "c0": w.current_start}
    rows = con.execute(sql, params).fetchall()
    desc = [d[0] for d in con.description]
    total: dict[str, Any] = {}
    days: list[tuple[date, int, datetime | None, dict[str, int]]] = []
    for row in rows:
        r = dict(zip(desc, row))
        if r["g"]:
            total = r
        elif r["day"] is not None:
            days.append((r["day"], int(r["n"]), _utc(r["mx"]),
                         {n: int(r[f"nn{i}"]) for i, n in enumerate(names)}))
    days.sort(key=lambda d: d[0])
    newest = _utc(total.get("mx"))
    if newest is None:   # nothing in the period: the newest row before it, if any
        newest = _utc(con.execute(f"SELECT max(t) FROM ({inner}) WHERE t <= $now",
                                  {"now": w.now}).fetchone()[0])
    out = OfflineScan(newest, days, int(total.get("n_cur") or 0),
                      {n: int(total.get(f"nn_cur{i}") or 0) for i, n in enumerate(names)},
                      int(total.get("n_base") or 0))
    for i in numeric:
        edges = dedupe_edges(total.get(f"q{i}") or [])
        out.edges[names[i]] = edges
    if out.baseline_rows < min_rows or out.current_rows < min_rows or not numeric:
        return out
    _distribution(con, inner, names, numeric, out, params, sample_size)
    return out


def _distribution(con: Any, inner: str, names: list[str], numeric: list[int], out: OfflineScan,
                  params: dict[str, Any], sample_size: int) -> None:
    """The second pass: per window, each numeric feature's counts per bin and a sample."""
    rate_b = min(1.0, sample_size / max(out.baseline_rows, 1))
    rate_c = min(1.0, sample_size / max(out.current_rows, 1))
    lim_b, lim_c = int(math.ceil(rate_b * _HASH_MOD)), int(math.ceil(rate_c * _HASH_MOD))
    aggs = []
    for i in numeric:
        x = f"CAST(c{i} AS DOUBLE)"
        edges = out.edges[names[i]]
        binexpr = " + ".join(f"CAST({x} >= {e!r} AS INTEGER)" for e in edges) or "0"
        keep = f"{x} IS NOT NULL AND NOT isnan({x})"
        aggs.append(f"histogram({binexpr}) FILTER (WHERE {keep}) AS h{i}")
        aggs.append(f"list({x}) FILTER (WHERE {keep} AND hash(t, {x}, {i}) % {_HASH_MOD} "
                    f"< (CASE WHEN w THEN {lim_c} ELSE {lim_b} END)) AS s{i}")
    sql = (f"SELECT w, {', '.join(aggs)} FROM (SELECT t >= $c0 AS w, * FROM ({inner}) "
           f"WHERE t >= $b0 AND t <= $now) GROUP BY w")
    rows = con.execute(sql, {k: params[k] for k in ("b0", "c0", "now")}).fetchall()
    desc = [d[0] for d in con.description]
    by_w = {bool(r[0]): dict(zip(desc, r)) for r in rows}
    for i in numeric:
        n_bins = len(out.edges[names[i]]) + 1
        hists = []
        samples = []
        for w in (False, True):
            r = by_w.get(w, {})
            counts = [0] * n_bins
            for k, v in _map_items(r.get(f"h{i}")):
                counts[int(k)] += int(v)
            hists.append(counts)
            samples.append(np.asarray(r.get(f"s{i}") or [], dtype="float64"))
        out.hist[names[i]] = (hists[0], hists[1])
        out.samples[names[i]] = (samples[0], samples[1])


def _map_items(value: Any) -> list[tuple[Any, Any]]:
    """A DuckDB MAP as fetched (a dict, or ``{"key": [...], "value": [...]}``) as pairs."""
    if not value:
        return []
    if isinstance(value, dict) and set(value) == {"key", "value"} and isinstance(value["key"], list):
        return list(zip(value["key"], value["value"]))
    if isinstance(value, dict):
        return list(value.items())
    return list(value)
