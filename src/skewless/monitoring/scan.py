"""The offline side of the monitors: one DuckDB pass over a view's source for the freshness
and completeness figures (per UTC day: rows, newest event time, non-null values; and the rows
of the baseline and current windows), and one over the two windows that picks about
``sample_size`` values per window and numeric feature for the distribution figures (PSI's
quantile bins and counts, and KS, computed from those samples by
``skewless.monitoring.stats.drift``). What reaches Python is per-day counts and the samples,
never the rows (docs/monitoring.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any

import numpy as np

from skewless.define import FeatureView
from skewless.engines.sql import DUCKDB, scan_source
from skewless.kernels.source import ResolvedSource, resolve_source

NUMERIC = {"Int32", "Int64", "Float32", "Float64"}
_HASH_MOD = 1_000_003
_DAY_US = 86_400_000_000
_EPOCH = date(1970, 1, 1)


def scan_sql(src: ResolvedSource) -> str:
    """``read_parquet(...)`` of a resolved source, as the DuckDB engine reads it (the folder's
    listed files, not a glob: hidden and compacted-away files are left out)."""
    return scan_source(DUCKDB, src)


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

    def anchored(self, newest: datetime | None) -> Windows:
        """The baseline and current windows moved back to end at ``newest`` (the newest event,
        when before ``now``): drift compares the latest data with the data before it, however
        late the data is (freshness reports how late). The series period still ends at now."""
        if newest is None or newest >= self.now:
            return self
        shift = self.now - newest
        return Windows(self.now, self.period_start, self.baseline_start - shift,
                       self.current_start - shift)


@dataclass
class OfflineScan:
    """What the offline passes found for one view: the newest event time (None: no row up to
    now), per day of the period the rows, newest event time and non-null count per feature,
    the rows of the baseline and the current window (``windows``: anchored at the newest
    event) and the current non-null counts, and
    per numeric feature a sample of each window's non-null values (baseline, current)."""

    newest: datetime | None
    days: list[tuple[date, int, datetime | None, dict[str, int]]]
    current_rows: int
    current_non_null: dict[str, int]
    baseline_rows: int
    windows: Windows
    samples: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    baseline_non_null: dict[str, int] = field(default_factory=dict)


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
              w: Windows, sample_size: int, min_rows: int, join_keys: tuple[str, ...] = ()
              ) -> OfflineScan:
    """The passes over ``view``'s source (module docstring). ``features``: name -> (source
    column, numeric?); ``join_keys``: hashed with the event time to pick the sampled rows.
    Raises SourceError when the source cannot be found, DuckDB's errors when it cannot be read."""
    src = resolve_source(view.batch_source, repo_path)
    ident = DUCKDB.ident
    ts = ident(view.batch_source.timestamp_field)
    names = list(features)
    cols = [f"{ident(col)} AS c{i}" for i, (col, _) in enumerate(features.values())]
    keys = [f"{ident(view.batch_source.source_column(k))} AS k{i}" for i, k in enumerate(join_keys)]
    inner = (f"SELECT {', '.join([f'CAST({ts} AS TIMESTAMPTZ) AS t', *cols, *keys])} "
             f"FROM {scan_sql(src)}")
    numeric = [i for i, (_, num) in enumerate(features.values()) if num]
    newest = _utc(con.execute(f"SELECT max(t) FROM ({inner}) WHERE t <= $now",
                              {"now": w.now}).fetchone()[0])
    w = w.anchored(newest)
    start = min(w.period_start, w.baseline_start)
    base = "t >= $b0 AND t < $c0"
    cur = "t >= $c0"
    # per UTC day (an integer: a cast to DATE goes through the time zone code, 4x slower);
    # the windows' counts are summed over the days
    # a value is present when not null and, for a number, not NaN (NaN is how many writers
    # spell a missing float: a column that turns NaN is a column that turns null)
    present = [f"c{i} IS NOT NULL AND NOT isnan(c{i}::DOUBLE)" if i in numeric else f"c{i} IS NOT NULL"
               for i in range(len(names))]
    aggs = ["count(*) AS n", "max(t) AS mx"]
    aggs += [f"count(*) FILTER (WHERE {present[i]}) AS nn{i}" for i in range(len(names))]
    aggs += [f"count(*) FILTER (WHERE {cur}) AS n_cur", f"count(*) FILTER (WHERE {base}) AS n_base"]
    aggs += [f"count(*) FILTER (WHERE {cur} AND {present[i]}) AS nn_cur{i}" for i in range(len(names))]
    aggs += [f"count(*) FILTER (WHERE {base} AND {present[i]}) AS nn_base{i}" for i in range(len(names))]
    sql = (f"SELECT epoch_us(t) // {_DAY_US} AS day, {', '.join(aggs)} "
           f"FROM ({inner}) WHERE t >= $p0 AND t <= $now GROUP BY day")
    params = {"p0": start, "now": w.now, "b0": w.baseline_start, "c0": w.current_start}
    rows = con.execute(sql, params).fetchall()
    desc = [d[0] for d in con.description]
    days: list[tuple[date, int, datetime | None, dict[str, int]]] = []
    n_cur = n_base = 0
    nn_cur = dict.fromkeys(names, 0)
    nn_base = dict.fromkeys(names, 0)
    for row in rows:
        r = dict(zip(desc, row))
        day = _EPOCH + timedelta(days=int(r["day"]))
        mx = _utc(r["mx"])
        if day >= w.period_start.date():
            days.append((day, int(r["n"]), mx, {n: int(r[f"nn{i}"]) for i, n in enumerate(names)}))
        n_cur += int(r["n_cur"])
        n_base += int(r["n_base"])
        for i, n in enumerate(names):
            nn_cur[n] += int(r[f"nn_cur{i}"])
            nn_base[n] += int(r[f"nn_base{i}"])
    days.sort(key=lambda d: d[0])
    out = OfflineScan(newest, days, n_cur, nn_cur, n_base, w, baseline_non_null=nn_base)
    if n_base >= min_rows and n_cur >= min_rows and numeric:
        _samples(con, inner, names, numeric, out, params, sample_size, len(join_keys))
    return out


def _samples(con: Any, inner: str, names: list[str], numeric: list[int], out: OfflineScan,
             params: dict[str, Any], sample_size: int, n_keys: int) -> None:
    """The second pass: per window, about ``sample_size`` values of each numeric feature (rows
    picked by a hash of their event time and keys, so a run over the same data picks the same
    rows, and rows sharing a timestamp are not picked all or none)."""
    rate_b = min(1.0, sample_size / max(out.baseline_rows, 1))
    rate_c = min(1.0, sample_size / max(out.current_rows, 1))
    lim_b, lim_c = int(math.ceil(rate_b * _HASH_MOD)), int(math.ceil(rate_c * _HASH_MOD))
    hashed = ", ".join(["t", *(f"k{i}" for i in range(n_keys))])
    values = ", ".join(f"CAST(c{i} AS DOUBLE) AS s{i}" for i in numeric)
    sql = (f"SELECT t >= $c0 AS w, {values} FROM ({inner}) WHERE t >= $b0 AND t <= $now AND "
           f"hash({hashed}) % {_HASH_MOD} < (CASE WHEN t >= $c0 THEN {lim_c} ELSE {lim_b} END)")
    table = con.sql(sql, params={k: params[k] for k in ("b0", "c0", "now")}).to_arrow_table()
    current = table.column("w").to_numpy(zero_copy_only=False).astype(bool)
    for i in numeric:
        x = table.column(f"s{i}").to_numpy(zero_copy_only=False).astype("float64")  # null: NaN
        keep = ~np.isnan(x)
        out.samples[names[i]] = (x[keep & ~current], x[keep & current])
