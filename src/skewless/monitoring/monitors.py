"""``skewless monitor``: freshness, completeness, distribution (PSI, KS), latency and
materialization health, per view and per feature, graded OK / WARN / ALERT against the
thresholds of ``monitoring:`` in feature_store.yaml (docs/monitoring.md).

The result is a ``MonitorReport``; ``to_dict()`` is the monitor result JSON every consumer
reads (``skewless report``, the server's ``/metrics``, a webhook):
``{"generated_at", "status", "checks": [{"check", "view", "feature", "scope", "value", "unit",
"warn", "alert", "status", "detail", "series"}]}``.

Offline figures come from DuckDB over each view's source (``skewless.monitoring.scan``);
online ones from a sample of the online store's keys; latency from the feature server's
Prometheus histograms (``skewless.monitoring.latency``); materialization health from what the
registry records of the last run. ``log_checks`` grades a feature-log table the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, time as dtime, timedelta, timezone
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from skewless.config import MonitoringConfig, MonitorThresholds
from skewless.define import FeatureView
from skewless.errors import ConfigError, SkewlessError, UnknownObjectError, closest
from skewless.monitoring import stats
from skewless.monitoring.scan import OfflineScan, Windows, columns, scan_view

OK, WARN, ALERT = "OK", "WARN", "ALERT"
_RANK = {OK: 0, WARN: 1, ALERT: 2}
CHECKS = ("freshness", "completeness", "psi", "ks", "latency", "materialization")


def _iso(ts: datetime) -> str:
    return ts.astimezone(timezone.utc).isoformat()


@dataclass
class Check:
    """One graded figure (docs/monitoring.md): ``check`` (freshness, completeness, psi, ks,
    latency, materialization), ``view`` and ``feature`` (None when not about one), ``scope``
    (online, offline, log, server), ``value`` in ``unit`` (None: not measured, ``detail`` says
    why), the ``warn`` and ``alert`` thresholds it was graded against, ``status`` and the
    ``series`` a plot needs."""

    check: str
    view: str | None
    feature: str | None
    scope: str
    value: float | None
    unit: str
    warn: float | None
    alert: float | None
    status: str
    detail: str
    series: Any = None

    def to_dict(self) -> dict[str, Any]:
        return {"check": self.check, "view": self.view, "feature": self.feature,
                "scope": self.scope, "value": self.value, "unit": self.unit, "warn": self.warn,
                "alert": self.alert, "status": self.status, "detail": self.detail,
                "series": self.series}


@dataclass
class MonitorReport:
    """Every check of one monitor run, taken at ``generated_at`` (the store's clock)."""

    generated_at: datetime
    checks: list[Check] = field(default_factory=list)

    @property
    def status(self) -> str:
        """The worst status of the checks (OK when there are none)."""
        worst = max((_RANK[c.status] for c in self.checks), default=0)
        return (OK, WARN, ALERT)[worst]

    @property
    def alerts(self) -> list[Check]:
        return [c for c in self.checks if c.status == ALERT]

    def to_dict(self) -> dict[str, Any]:
        return {"generated_at": _iso(self.generated_at), "status": self.status,
                "checks": [c.to_dict() for c in self.checks]}


def above(value: float | None, warn: float | None, alert: float | None) -> str:
    """OK / WARN / ALERT for a figure that is bad when high (ages, PSI, KS, latency)."""
    if value is None:
        return OK
    if alert is not None and value > alert:
        return ALERT
    if warn is not None and value > warn:
        return WARN
    return OK


def below(value: float | None, warn: float | None, alert: float | None) -> str:
    """OK / WARN / ALERT for a figure that is bad when low (completeness)."""
    if value is None:
        return OK
    if alert is not None and value < alert:
        return ALERT
    if warn is not None and value < warn:
        return WARN
    return OK


@dataclass(frozen=True)
class MaterializationState:
    """What the registry records of a view's last materialization run (``online_status``):
    when it finished, the rows it wrote, the watermark; ``failures``: consecutive failed runs
    since, with the last error (0 and None when not recorded)."""

    view: str
    last_run: datetime | None
    rows: int | None
    watermark: datetime | None
    failures: int = 0
    last_error: str | None = None


def check_views(cfg: MonitoringConfig, known: Sequence[str], selected: Sequence[str] | None) -> None:
    """ConfigError for a ``monitoring.views`` entry naming no view; UnknownObjectError for a
    selected view that does not exist."""
    for name in cfg.views:
        if name not in known:
            raise ConfigError(
                f"feature_store.yaml: monitoring.views.{name}: there is no feature view "
                f"'{name}'; {closest(name, known)}",
                hint="fix or remove the entry (docs/monitoring.md, \"Configuration\"); "
                f"views: {', '.join(known) or '(none applied)'}")
    for name in selected or ():
        if name not in known:
            raise UnknownObjectError(f"feature view '{name}' is not registered; {closest(name, known)}",
                                     hint="`skewless ls` lists the views")


def _skips(cfg: MonitoringConfig, view: str) -> set[str]:
    o = cfg.views.get(view)
    return set(o.skip) if o is not None else set()


def _max_age(view: FeatureView, th: MonitorThresholds) -> float | None:
    """The age (seconds) at which the view's data is stale: the max age set for the view itself
    (``monitoring.views.<view>``), else its ttl, else the configured default max age."""
    if th._max_age_for_view:
        return th.freshness_max_age_seconds
    if view.ttl is not None and view.ttl > timedelta(0):
        return view.ttl.total_seconds()
    return th.freshness_max_age_seconds


def run(con: Any, config: Any, views: Sequence[FeatureView], join_keys: dict[str, tuple[str, ...]],
        now: datetime, online: dict[str, tuple[Any, str]] | None = None,
        materialization: dict[str, MaterializationState] | None = None,
        latency: Any = None) -> MonitorReport:
    """Every check of ``views`` at ``now`` (the store's clock).

    ``con``: a DuckDB connection (the offline engine's); ``config``: the RepoConfig;
    ``join_keys``: per view its join keys; ``online``: per online view (the online store,
    its table) for the sampled online checks; ``materialization``: per online view what the
    registry records of its last run; ``latency``: a ``latency.Percentiles`` source (or None:
    reported as not available). A view whose source cannot be read gets an ALERT naming the
    error rather than stopping the run."""
    import duckdb   # here: ``import skewless`` stays light (tests/unit/test_public_api.py)

    cfg: MonitoringConfig = config.monitoring
    w = Windows.of(now, cfg.period_days, cfg.baseline_days, cfg.current_days)
    report = MonitorReport(now)
    for view in views:
        th = cfg.thresholds(view.name)
        skip = _skips(cfg, view.name)
        feats = columns(view, join_keys.get(view.name, ()))
        scan: OfflineScan | None = None
        try:
            scan = scan_view(con, view, config.repo_path, feats, w, cfg.sample_size,
                             cfg.min_rows, join_keys.get(view.name, ()))
        except (SkewlessError, duckdb.Error) as e:   # named in the report, not raised
            why = str(e) if isinstance(e, SkewlessError) else f"{type(e).__name__}: {e}"
            report.checks.append(Check("freshness", view.name, None, "offline", None, "s", None,
                                       None, ALERT, f"the source cannot be read: {why}"))
        if scan is not None:
            if "freshness" not in skip:
                report.checks.append(_freshness_offline(view, th, scan, w))
            if "completeness" not in skip:
                report.checks.extend(_completeness_offline(view, feats, th, scan, w))
            report.checks.extend(_distribution(view, feats, th, cfg, scan, skip))
        if online and view.name in online and cfg.online_sample_keys > 0:
            if view.aggregations:   # its online records are tiles, not feature values
                report.checks.append(Check(
                    "freshness", view.name, None, "online", None, "s", None, None, OK,
                    "online checks skipped: an aggregated view stores tiles, not values "
                    "(materialization health below covers it)"))
            else:
                report.checks.extend(_online(view, feats, th, online[view.name], now, cfg, skip))
        if materialization is not None and view.online and "materialization" not in skip:
            report.checks.append(_materialization(view, th, materialization.get(view.name), now))
    if latency is not None:
        report.checks.extend(latency.checks(cfg, [v.name for v in views],
                                            {v.name for v in views if "latency" in _skips(cfg, v.name)}))
    return report


# --- freshness ---------------------------------------------------------------------------------
def _freshness_offline(view: FeatureView, th: MonitorThresholds, scan: OfflineScan, w: Windows) -> Check:
    warn = _max_age(view, th)
    alert = warn + th.freshness_grace_seconds if warn is not None else None
    series = freshness_series(scan, w)
    if scan.newest is None:
        return Check("freshness", view.name, None, "offline", None, "s", warn, alert,
                     ALERT if warn is not None else OK,
                     "the source holds no row up to now", series)
    age = max((w.now - scan.newest).total_seconds(), 0.0)
    if warn is None:
        return Check("freshness", view.name, None, "offline", age, "s", None, None, OK,
                     "not graded: the view has no ttl and monitoring has no "
                     "freshness_max_age_seconds (docs/monitoring.md)", series)
    return Check("freshness", view.name, None, "offline", age, "s", warn, alert,
                 above(age, warn, alert), f"newest event {_iso(scan.newest)}", series)


def freshness_series(scan: OfflineScan, w: Windows) -> list[dict[str, Any]]:
    """One point per day of the period: at the day's end (``now`` for today), how old the
    newest event up to then was (days before any event: no point)."""
    by_day = {d: mx for d, _, mx, _ in scan.days}
    out: list[dict[str, Any]] = []
    newest: datetime | None = None
    day = w.period_start.date()
    while day <= w.now.date():
        mx = by_day.get(day)
        if mx is not None and (newest is None or mx > newest):
            newest = mx
        at = min(datetime.combine(day + timedelta(days=1), dtime(), timezone.utc), w.now)
        if newest is not None:
            out.append({"at": _iso(at), "age_seconds": max((at - newest).total_seconds(), 0.0)})
        day += timedelta(days=1)
    return out


# --- completeness ------------------------------------------------------------------------------
def _completeness_offline(view: FeatureView, feats: dict[str, tuple[str, bool]],
                          th: MonitorThresholds, scan: OfflineScan, w: Windows) -> list[Check]:
    out = []
    for name in feats:
        series = [{"date": d.isoformat(), "non_null": nn[name] / n} for d, n, _, nn in scan.days if n]
        if scan.current_rows == 0:
            out.append(Check("completeness", view.name, name, "offline", None, "share",
                             th.completeness_warn, th.completeness_alert, OK,
                             f"no row in the current window (since {_iso(scan.windows.current_start)})",
                             series))
            continue
        share = scan.current_non_null[name] / scan.current_rows
        out.append(Check("completeness", view.name, name, "offline", share, "share",
                         th.completeness_warn, th.completeness_alert,
                         below(share, th.completeness_warn, th.completeness_alert),
                         f"{scan.current_non_null[name]:,} of {scan.current_rows:,} rows non-null "
                         f"in the current window, from {_iso(scan.windows.current_start)}", series))
    return out


def completeness(values: pa.Array | pa.ChunkedArray) -> float | None:
    """The share of values neither null nor NaN (None for no value at all)."""
    n = len(values)
    if n == 0:
        return None
    missing = values.null_count
    if pa.types.is_floating(values.type):
        missing += pc.sum(pc.is_nan(values)).as_py() or 0
    return (n - missing) / n


# --- distribution ------------------------------------------------------------------------------
def _distribution(view: FeatureView, feats: dict[str, tuple[str, bool]], th: MonitorThresholds,
                  cfg: MonitoringConfig, scan: OfflineScan, skip: set[str]) -> list[Check]:
    out: list[Check] = []
    for name, (_, numeric) in feats.items():
        wanted = [c for c in ("psi", "ks") if c not in skip]
        if not wanted:
            break
        note = None
        if not numeric:
            note = "skipped: not a numeric feature"
        elif scan.baseline_rows < cfg.min_rows or scan.current_rows < cfg.min_rows:
            note = (f"skipped: {scan.baseline_rows:,} baseline and {scan.current_rows:,} current "
                    f"rows (min_rows: {cfg.min_rows})")
        elif (min(scan.baseline_non_null.get(name, 0), scan.current_non_null.get(name, 0))
              < cfg.min_rows):
            # a mostly null column: a PSI of a handful of values is noise (docs/monitoring.md);
            # completeness is the check that speaks for it
            note = (f"skipped: {scan.baseline_non_null.get(name, 0):,} baseline and "
                    f"{scan.current_non_null.get(name, 0):,} current non-null values "
                    f"(min_rows: {cfg.min_rows})")
        elif name not in scan.samples or not all(len(x) for x in scan.samples[name]):
            note = "skipped: no non-null value in a window"
        if note is not None:
            out.extend(Check(c, view.name, name, "offline", None, "", _th(th, c)[0], _th(th, c)[1],
                             OK, note) for c in wanted)
            continue
        sb, sc = scan.samples[name]
        d = stats.drift(sb, sc, cfg.psi_bins, cfg.psi_epsilon)
        out.extend(_drift_checks(view.name, name, "offline", d, th, wanted))
    return out


def _th(th: MonitorThresholds, check: str) -> tuple[float | None, float | None]:
    return (th.psi_warn, th.psi_alert) if check == "psi" else (th.ks_warn, th.ks_alert)


def _drift_checks(view: str | None, feature: str, scope: str, d: stats.Drift,
                  th: MonitorThresholds, wanted: Sequence[str]) -> list[Check]:
    out = []
    for c in wanted:
        value = d.psi if c == "psi" else d.ks
        warn, alert = _th(th, c)
        out.append(Check(c, view, feature, scope, value, "", warn, alert, above(value, warn, alert),
                         f"baseline {d.baseline_rows:,} values, current {d.current_rows:,}"
                         + (f" ({len(d.edges) + 1} quantile bins)" if c == "psi" else ""),
                         d.series()))
    return out


# --- online (sampled) --------------------------------------------------------------------------
def _online(view: FeatureView, feats: dict[str, tuple[str, bool]], th: MonitorThresholds,
            where: tuple[Any, str], now: datetime, cfg: MonitoringConfig, skip: set[str]) -> list[Check]:
    store, table = where
    out: list[Check] = []
    try:
        keys = store.scan_keys(table, cfg.online_sample_keys)
        records = [r for r in store.read_batch({table: keys})[table] if r is not None] if keys else []
    except SkewlessError as e:
        return [Check("freshness", view.name, None, "online", None, "s", None, None, ALERT,
                      f"the online store cannot be read: {e}")]
    warn = _max_age(view, th)
    alert = warn + th.freshness_grace_seconds if warn is not None else None
    if "freshness" not in skip:
        if not records:
            out.append(Check("freshness", view.name, None, "online", None, "s", warn, alert,
                             ALERT if warn is not None and view.online else OK,
                             "the online table holds no record"))
        else:
            newest = max(r.event_ts for r in records)
            newest_ts = datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(microseconds=newest)
            age = max((now - newest_ts).total_seconds(), 0.0)
            out.append(Check("freshness", view.name, None, "online", age, "s", warn, alert,
                             above(age, warn, alert) if warn is not None else OK,
                             f"newest event {_iso(newest_ts)} among {len(records):,} sampled records"))
    if "completeness" not in skip and records:
        day = now.date().isoformat()
        for name in feats:
            present = sum(1 for r in records if _present(_value(r, name)))
            share = present / len(records)
            out.append(Check("completeness", view.name, name, "online", share, "share",
                             th.completeness_warn, th.completeness_alert,
                             below(share, th.completeness_warn, th.completeness_alert),
                             f"{present:,} of {len(records):,} sampled records non-null",
                             [{"date": day, "non_null": share}]))
    return out


def _present(value: Any) -> bool:
    """Not null and not NaN (a NaN is a missing float)."""
    return value is not None and not (isinstance(value, float) and value != value)


def _value(record: Any, name: str) -> Any:
    try:
        return record.vals[record.names.index(name)]
    except ValueError:
        return None


# --- materialization ---------------------------------------------------------------------------
def _materialization(view: FeatureView, th: MonitorThresholds, state: MaterializationState | None,
                     now: datetime) -> Check:
    warn = th.materialization_max_age_seconds or _max_age(view, th)
    alert = warn + th.freshness_grace_seconds if warn is not None else None
    if state is None or state.last_run is None:
        failed = state is not None and state.failures > 0
        return Check("materialization", view.name, None, "online", None, "s", warn, alert,
                     ALERT if failed else WARN,
                     "never materialized" + (f": {state.failures} failed run(s), the last: "
                                             f"{state.last_error}" if failed and state else "")
                     + "; run `skewless materialize-incremental`",
                     {"rows": None, "failures": state.failures if state else 0})
    age = max((now - state.last_run).total_seconds(), 0.0)
    status = above(age, warn, alert)
    detail = (f"last run {_iso(state.last_run)} wrote {state.rows or 0:,} rows; watermark "
              + (_iso(state.watermark) if state.watermark else "none"))
    if state.failures:
        status = ALERT
        detail += f"; {state.failures} failed run(s) since: {state.last_error}"
    return Check("materialization", view.name, None, "online", age, "s", warn, alert, status,
                 detail, {"rows": state.rows, "failures": state.failures})


# --- the feature log ---------------------------------------------------------------------------
def log_checks(table: pa.Table, now: datetime, cfg: MonitoringConfig,
               service: str | None = None) -> list[Check]:
    """Completeness per day and PSI / KS (baseline vs current window, as offline) of every
    served feature of a feature-log table (docs/feature-logging.md: ``<view>__<feature>`` value
    columns, ``__log_timestamp``), scope ``log``. A feature's share counts the served rows whose
    value is non-null. Non-numeric features get no distribution check (a note says so)."""
    w = Windows.of(now, cfg.period_days, cfg.baseline_days, cfg.current_days)
    if "__log_timestamp" not in table.column_names:
        raise ConfigError("the feature log table has no __log_timestamp column",
                          hint="read it with skewless.monitoring.feature_log.read_feature_logs")
    ts = table.column("__log_timestamp").cast(pa.timestamp("us", tz="UTC"))
    days = pc.strftime(ts, format="%Y-%m-%d")
    base_mask = pc.and_(pc.greater_equal(ts, pa.scalar(w.baseline_start, pa.timestamp("us", tz="UTC"))),
                        pc.less(ts, pa.scalar(w.current_start, pa.timestamp("us", tz="UTC"))))
    cur_mask = pc.and_(pc.greater_equal(ts, pa.scalar(w.current_start, pa.timestamp("us", tz="UTC"))),
                       pc.less_equal(ts, pa.scalar(w.now, pa.timestamp("us", tz="UTC"))))
    out: list[Check] = []
    for col in table.column_names:
        if col.startswith("__") or col.endswith(("__timestamp", "__status")) or "__" not in col:
            continue
        view, feature = col.split("__", 1)
        th = cfg.thresholds(view) if view in cfg.views else cfg
        values = table.column(col)
        series = []
        for day in sorted(set(d for d in days.to_pylist() if d is not None)):
            mask = pc.equal(days, day)
            share = completeness(values.filter(mask))
            if share is not None:
                series.append({"date": day, "non_null": share})
        share = completeness(values.filter(cur_mask))
        out.append(Check("completeness", view, feature, "log", share, "share",
                         th.completeness_warn, th.completeness_alert,
                         below(share, th.completeness_warn, th.completeness_alert),
                         "served values non-null in the current window"
                         + (f" (service {service})" if service else ""), series))
        if not (pa.types.is_integer(values.type) or pa.types.is_floating(values.type)):
            out.extend(Check(c, view, feature, "log", None, "", *_th(th, c), OK,
                             "skipped: not a numeric feature") for c in ("psi", "ks"))
            continue
        b = values.filter(base_mask).to_numpy(zero_copy_only=False).astype("float64")
        c = values.filter(cur_mask).to_numpy(zero_copy_only=False).astype("float64")
        b, c = b[~np.isnan(b)], c[~np.isnan(c)]
        if b.size < cfg.min_rows or c.size < cfg.min_rows:
            out.extend(Check(k, view, feature, "log", None, "", *_th(th, k), OK,
                             f"skipped: {b.size:,} baseline and {c.size:,} current values "
                             f"(min_rows: {cfg.min_rows})") for k in ("psi", "ks"))
            continue
        out.extend(_drift_checks(view, feature, "log",
                                 stats.drift(b, c, cfg.psi_bins, cfg.psi_epsilon), th, ("psi", "ks")))
    return out

