"""The skew audit: logged online answers replayed through the offline join (docs/audit.md).

For a feature service, the logged requests of a period (``monitoring.feature_log``) become an
entity frame (the logged join keys and request columns, ``event_timestamp`` = the logged
``__log_timestamp``) for ``get_historical_features`` with the service's features. Each logged
value is then compared with the offline value of the same row, per feature, in DuckDB over
Arrow (no per-row Python):

- **mismatch**: the two values differ. Integers, strings, booleans, timestamps and lists are
  compared exactly; floats are equal when ``|a - b| <= float_tolerance * max(|a|, |b|) +
  float_abs_tolerance``;
  two nulls are equal, a null and a value are not.
- **missing online**: the logged status is not PRESENT (nor CACHED) and the offline join has a
  value the online answer lacks (a mismatch whose online side was not served).
- **missing offline**: the online answer served a value (PRESENT or CACHED) and the offline join
  has none.
- **mean absolute difference** ``mean(|online - offline|)`` and **mean relative difference**
  ``mean(|online - offline| / max(|online|, |offline|))`` (0 when both are 0), over the rows
  where both are non-null numbers (null for other types).
- **worst**: the ``worst`` mismatched rows with the largest absolute difference (then the
  non-numeric and null ones), with the logged entity (join keys and request columns), the log
  time and both values.

A feature is ALERT when a rate is over its threshold (``audit`` of feature_store.yaml, or the
arguments); the report ``failed`` when any feature is. The result (``AuditReport.to_dict()``,
docs/audit.md) is also written to ``<repo>/data/monitoring/audit/<service>.json``
atomically.
"""

from __future__ import annotations

import base64
import json
import math
import os
import re
import time
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from skewless.errors import InvalidRequestError, UnknownObjectError, closest
from skewless.monitoring import feature_log as FL
from skewless.monitoring.results import MONITORING_DIR, audit_path, write_json_atomic

_SERVED = ("PRESENT", "CACHED")
_ROW = "__audit_row"
THRESHOLD_KEYS = ("mismatch_rate", "missing_online_rate", "missing_offline_rate")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str, argument: str = "--since") -> timedelta:
    """``"30s"``, ``"15m"``, ``"12h"``, ``"1d"`` (a number and a unit: s, m, h, d) as a
    timedelta; InvalidRequestError naming ``argument`` otherwise."""
    m = _DURATION.match(text) if isinstance(text, str) else None
    if m is None:
        raise InvalidRequestError(
            f"{argument} {text!r} is not a duration nor a time",
            hint="write a number and a unit (s, m, h, d), e.g. 1d or 12h, or an ISO time such "
            "as 2025-01-31T12:00:00 (docs/audit.md)")
    try:
        return timedelta(seconds=float(m.group(1)) * _UNITS[m.group(2)])
    except OverflowError:
        raise InvalidRequestError(
            f"{argument} {text!r} is too long a duration",
            hint="write a period of at most a few thousand years, e.g. 1d or 90d (docs/audit.md)") from None


def parse_time(value: Any, argument: str, now: datetime) -> datetime:
    """A ``since``/``until`` value: a duration before ``now`` (``"1d"``), ``"now"``, an ISO
    time or date, or a datetime (naive means UTC)."""
    from skewless.times import to_utc

    if isinstance(value, timedelta):
        return now - value
    if isinstance(value, str) and _DURATION.match(value):
        delta = parse_duration(value, argument)
        try:
            return now - delta
        except OverflowError:
            raise InvalidRequestError(
                f"{argument} {value!r} reaches before the year 1",
                hint="audit a shorter period, e.g. --since 90d (docs/audit.md)") from None
    try:
        return to_utc(value, argument, lambda: now)
    except InvalidRequestError:
        raise InvalidRequestError(
            f"{argument} {value!r} is not a duration nor a time",
            hint="write a number and a unit (s, m, h, d), e.g. 1d or 12h, or an ISO time such "
            "as 2025-01-31T12:00:00 (docs/audit.md)") from None


@dataclass
class FeatureAudit:
    """One feature's comparison (rates: shares of ``compared``, 0 to 1)."""

    feature: str                       # "view:feature"
    compared: int
    mismatch_rate: float
    missing_online_rate: float
    missing_offline_rate: float
    mean_abs_diff: float | None
    mean_rel_diff: float | None
    status: str                        # "OK" | "ALERT"
    worst: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"feature": self.feature, "compared": self.compared,
                "mismatch_rate": self.mismatch_rate, "missing_online_rate": self.missing_online_rate,
                "missing_offline_rate": self.missing_offline_rate, "mean_abs_diff": self.mean_abs_diff,
                "mean_rel_diff": self.mean_rel_diff, "status": self.status, "worst": self.worst}


@dataclass
class AuditReport:
    """The audit of one service over ``[since, until)`` (``to_dict``: docs/audit.md)."""

    service: str
    since: datetime
    until: datetime
    rows: int
    thresholds: dict[str, float]
    features: list[FeatureAudit]
    seconds: float = 0.0

    @property
    def failed(self) -> bool:
        return any(f.status == "ALERT" for f in self.features)

    def feature(self, name: str) -> FeatureAudit:
        """The audit of ``name`` ("view:feature"); KeyError if it was not compared."""
        for f in self.features:
            if f.feature == name:
                return f
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        return {"service": self.service, "since": self.since.isoformat(),
                "until": self.until.isoformat(), "rows": self.rows, "failed": self.failed,
                "thresholds": dict(self.thresholds),
                "features": [f.to_dict() for f in self.features]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AuditReport:
        """A report read back from its JSON (e.g. ``data/monitoring/audit/<service>.json``)."""
        feats = [FeatureAudit(**{k: f[k] for k in (
            "feature", "compared", "mismatch_rate", "missing_online_rate", "missing_offline_rate",
            "mean_abs_diff", "mean_rel_diff", "status")}, worst=list(f.get("worst", [])))
            for f in data["features"]]
        return cls(data["service"], datetime.fromisoformat(data["since"]),
                   datetime.fromisoformat(data["until"]), int(data["rows"]),
                   dict(data["thresholds"]), feats)


def report_path(repo_path: Path, service: str) -> Path:
    """Where each audit run of ``service`` leaves its JSON."""
    return audit_path(repo_path / MONITORING_DIR, service)


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _jsonable(v: Any) -> Any:
    if v is None or isinstance(v, (bool, int, str)):
        return v
    if isinstance(v, float):
        return v if math.isfinite(v) else str(v)
    if isinstance(v, (datetime, date)):
        return v.isoformat()
    if isinstance(v, Decimal):
        return float(v)
    if isinstance(v, bytes):
        return base64.b64encode(v).decode()
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    return str(v)


def audit(store: Any, service: str, since: Any = None, until: Any = None, *,
          mismatch_rate: float | None = None, missing_online_rate: float | None = None,
          missing_offline_rate: float | None = None, float_tolerance: float | None = None,
          float_abs_tolerance: float | None = None, worst: int | None = None,
          write: bool = True) -> AuditReport:
    """Audit ``service``'s logged requests of ``[since, until)`` (module docstring). ``store``:
    a FeatureStore. ``since``/``until``: a duration before now (``"1d"``, ``"12h"``), an ISO
    time, a datetime; default the last day. Thresholds and options default to ``audit`` of
    feature_store.yaml. Raises UnknownObjectError (unknown service), InvalidRequestError (bad
    times, no logged rows in the period: the message says where it looked)."""
    t0 = time.perf_counter()
    cfg = store.config
    now = store.clock()
    snap = store.snapshot()
    svc = snap.feature_services.get(service)
    if svc is None:
        raise UnknownObjectError(f"feature service '{service}' is not registered; "
                                 f"{closest(service, snap.feature_services)}",
                                 hint="`skewless ls feature-services` lists them")
    start = parse_time(since if since is not None else "1d", "--since", now)
    end = parse_time(until, "--until", now) if until is not None else now
    if start >= end:
        raise InvalidRequestError(f"--since ({start.isoformat()}) is not before --until ({end.isoformat()})",
                                  hint="audit a period that ends after it starts, e.g. --since 1d")
    options = cfg.audit
    limits = {"mismatch_rate": options.mismatch_rate if mismatch_rate is None else mismatch_rate,
              "missing_online_rate": options.missing_online_rate if missing_online_rate is None
              else missing_online_rate,
              "missing_offline_rate": options.missing_offline_rate if missing_offline_rate is None
              else missing_offline_rate}
    for key, value in limits.items():
        if not 0.0 <= float(value) <= 1.0:
            raise InvalidRequestError(f"threshold {key} = {value!r} is not a share from 0 to 1",
                                      hint="e.g. --mismatch-rate 0.01 alerts over 1% mismatches")
    tol = options.float_tolerance if float_tolerance is None else float(float_tolerance)
    abs_tol = options.float_abs_tolerance if float_abs_tolerance is None else float(float_abs_tolerance)
    for name, value, example in (("float_tolerance", tol, "--float-tolerance 1e-6"),
                                 ("float_abs_tolerance", abs_tol, "--float-abs-tolerance 1e-12")):
        if not (math.isfinite(value) and value >= 0.0):
            raise InvalidRequestError(f"{name} = {value!r} is not a finite number >= 0",
                                      hint=f"e.g. {example} (0: floats must be equal; docs/audit.md)")
    n_worst = options.worst if worst is None else int(worst)
    if n_worst < 0:
        raise InvalidRequestError(f"worst = {n_worst!r} is negative",
                                  hint="e.g. --worst 10 (0: no worst entities; docs/audit.md)")
    root = FL.log_root(cfg, svc)
    logs = FL.read_feature_logs(cfg, svc.name, start, end, root=root)
    if logs.num_rows == 0:
        raise InvalidRequestError(
            f"no logged requests of feature service '{service}' from {start.isoformat()} to "
            f"{end.isoformat()} under {FL.partition_dir(root, svc.name, '*').parent}",
            hint="turn feature logging on for it (logging.sample_rate in feature_store.yaml, or "
            "FeatureService(logging_config=LoggingConfig(...))), serve requests by the service, "
            "and audit a period that holds them (docs/feature-logging.md)")
    names = logs.column_names
    features = [c for c in names if c + FL.STATUS_SUFFIX in names and c + FL.TIMESTAMP_SUFFIX in names]
    per_feature = {c for f in features for c in (f, f + FL.STATUS_SUFFIX, f + FL.TIMESTAMP_SUFFIX)}
    entity_cols = [c for c in names if c not in per_feature and c not in FL.META_COLUMNS]
    ts_col = cfg.entity_timestamp_column
    rows = pa.array(range(logs.num_rows), pa.int64())
    entity = pa.table([*(logs[c] for c in entity_cols), logs[FL.LOG_TIMESTAMP], rows],
                      names=[*entity_cols, ts_col, _ROW])
    offline = store.get_historical_features(entity, features=svc, full_feature_names=True).to_arrow()
    compared = [f for f in features if f in offline.column_names]
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        logged = logs.append_column(_ROW, rows)
        con.register("logged", logged)
        con.register("offline", offline.select([_ROW, *compared]))
        offl = ", ".join(f"o.{_q(f)} AS {_q(f + '__offline')}" for f in compared)
        con.execute(f"CREATE TEMP TABLE j AS SELECT l.*{', ' + offl if offl else ''} "
                    f"FROM logged l JOIN offline o USING ({_q(_ROW)})")
        results = []
        for f in compared:
            try:
                results.append(_compare(con, logs.schema.field(f).type, f, entity_cols, (tol, abs_tol),
                                        n_worst, limits))
            except duckdb.Error as e:
                # e.g. the feature's type changed within the period: the log files' union
                # holds strings where the view now declares numbers
                view, _, feat = f.partition("__")
                raise InvalidRequestError(
                    f"feature '{view}:{feat}' of service '{svc.name}' cannot be compared: logged as "
                    f"{logs.schema.field(f).type}, offline {offline.schema.field(f).type} "
                    f"({str(e).splitlines()[0]})",
                    hint="did its type change within the period? audit a period after the change "
                    "(--since), or move the older log files out (docs/audit.md)") from None
    finally:
        con.close()
    report = AuditReport(svc.name, start, end, logs.num_rows,
                         {**limits, "float_tolerance": tol, "float_abs_tolerance": abs_tol}, results, time.perf_counter() - t0)
    if write:
        write_json_atomic(report_path(store.repo_path, svc.name), report.to_dict())
    return report


def _compare(con: duckdb.DuckDBPyConnection, dtype: pa.DataType, f: str, entity_cols: list[str],
             tol: tuple[float, float], n_worst: int, limits: dict[str, float]) -> FeatureAudit:
    on, off, st = _q(f), _q(f + "__offline"), _q(f + FL.STATUS_SUFFIX)
    numeric = (pa.types.is_integer(dtype) or pa.types.is_floating(dtype)
               or pa.types.is_decimal(dtype))
    if pa.types.is_floating(dtype):
        # DuckDB orders NaN above every number and NaN = NaN: without the isfinite guards a NaN
        # or an infinity against a number passes the tolerance (NaN <= tol * NaN, inf <= tol *
        # inf) and the skew is missed; equal NaNs or infinities are equal by `=`
        eq = (f"({on} = {off} OR (isfinite({on}) AND isfinite({off}) AND "
              f"abs({on} - {off}) <= {tol[0]!r} * greatest(abs({on}), abs({off})) + {tol[1]!r}))")
    else:
        eq = f"({on} = {off})"
    both = f"({on} IS NOT NULL AND {off} IS NOT NULL)"
    mism = f"(NOT (({on} IS NULL AND {off} IS NULL) OR ({both} AND {eq})))"
    served = f"({st} IN ('PRESENT', 'CACHED'))"
    # the differences are over the rows where both are finite numbers: a NaN or an infinity
    # (served and trained alike, or against a number) would make the means NaN or inf, written
    # as a bare NaN / Infinity in the JSON
    nums = (f"({both} AND isfinite({on}::DOUBLE) AND isfinite({off}::DOUBLE))"
            if pa.types.is_floating(dtype) else both)
    diff = f"(CASE WHEN {nums} THEN abs({on}::DOUBLE - {off}::DOUBLE) END)" if numeric else "NULL::DOUBLE"
    rel = (f"(CASE WHEN {nums} THEN (CASE WHEN abs({on}::DOUBLE - {off}::DOUBLE) = 0 THEN 0.0 ELSE "
           f"abs({on}::DOUBLE - {off}::DOUBLE) / greatest(abs({on}::DOUBLE), abs({off}::DOUBLE)) END) END)"
           if numeric else "NULL::DOUBLE")
    n, mis, miss_on, miss_off, mad, mrd = con.execute(
        f"SELECT count(*), count(*) FILTER (WHERE {mism}), "
        f"count(*) FILTER (WHERE {mism} AND NOT {served} AND {off} IS NOT NULL), "
        f"count(*) FILTER (WHERE {served} AND {off} IS NULL AND {on} IS NOT NULL), "
        f"avg({diff}), avg({rel}) FROM j").fetchone()  # type: ignore[misc]
    worst: list[dict[str, Any]] = []
    if n_worst > 0 and mis:
        cols = ", ".join(_q(c) for c in entity_cols)
        cur = con.execute(
            f"SELECT {cols + ', ' if cols else ''}{_q(FL.LOG_TIMESTAMP)}, {on}, {off}, {diff} AS d "
            f"FROM j WHERE {mism} ORDER BY d DESC NULLS LAST, {_q(FL.LOG_TIMESTAMP)}, {_q(_ROW)} "
            f"LIMIT {int(n_worst)}")
        for rec in cur.fetchall():
            k = len(entity_cols)
            worst.append({"entity": {c: _jsonable(v) for c, v in zip(entity_cols, rec[:k])},
                          "log_timestamp": _jsonable(rec[k]), "online": _jsonable(rec[k + 1]),
                          "offline": _jsonable(rec[k + 2]), "abs_diff": _jsonable(rec[k + 3])})
    rates = {"mismatch_rate": mis / n if n else 0.0, "missing_online_rate": miss_on / n if n else 0.0,
             "missing_offline_rate": miss_off / n if n else 0.0}
    status = "ALERT" if any(rates[k] > limits[k] for k in THRESHOLD_KEYS) else "OK"
    view, _, feat = f.partition("__")
    return FeatureAudit(f"{view}:{feat}", int(n), rates["mismatch_rate"], rates["missing_online_rate"],
                        rates["missing_offline_rate"], None if mad is None else float(mad),
                        None if mrd is None else float(mrd), status, worst)


class AuditGauges:
    """Prometheus gauges of audit reports in ``registry`` (a ``prometheus_client``
    CollectorRegistry): ``skewless_audit_mismatch_rate``, ``skewless_audit_missing_online_rate``,
    ``skewless_audit_missing_offline_rate``, ``skewless_audit_mean_abs_diff`` (labels
    ``service``, ``feature``), ``skewless_audit_rows`` and ``skewless_audit_failed`` (label
    ``service``). ``update(report)`` sets a service's values (a feature no longer audited is
    removed)."""

    def __init__(self, registry: Any) -> None:
        from prometheus_client import Gauge

        labels = ["service", "feature"]
        self.mismatch = Gauge("skewless_audit_mismatch_rate", "Share of logged values that differ "
                              "from the offline join's (docs/audit.md).", labels, registry=registry)
        self.missing_online = Gauge("skewless_audit_missing_online_rate", "Share of logged rows "
                                    "not served online that offline has a value for.", labels,
                                    registry=registry)
        self.missing_offline = Gauge("skewless_audit_missing_offline_rate", "Share of logged rows "
                                     "served online that offline has no value for.", labels,
                                     registry=registry)
        self.mean_abs_diff = Gauge("skewless_audit_mean_abs_diff", "Mean absolute difference of "
                                   "the logged and offline values (numeric features).", labels,
                                   registry=registry)
        self.rows = Gauge("skewless_audit_rows", "Logged rows the last audit compared.", ["service"],
                          registry=registry)
        self.failed = Gauge("skewless_audit_failed", "1 when the last audit crossed a threshold.",
                            ["service"], registry=registry)
        self._features: dict[str, set[str]] = {}

    def update(self, report: AuditReport) -> None:
        gauges = (self.mismatch, self.missing_online, self.missing_offline, self.mean_abs_diff)
        for old in self._features.get(report.service, set()) - {f.feature for f in report.features}:
            for g in gauges:
                try:
                    g.remove(report.service, old)
                except KeyError:
                    pass
        for f in report.features:
            self.mismatch.labels(report.service, f.feature).set(f.mismatch_rate)
            self.missing_online.labels(report.service, f.feature).set(f.missing_online_rate)
            self.missing_offline.labels(report.service, f.feature).set(f.missing_offline_rate)
            self.mean_abs_diff.labels(report.service, f.feature).set(
                f.mean_abs_diff if f.mean_abs_diff is not None else math.nan)
        self._features[report.service] = {f.feature for f in report.features}
        self.rows.labels(report.service).set(report.rows)
        self.failed.labels(report.service).set(1 if report.failed else 0)


def audit_gauges(report: AuditReport, registry: Any) -> AuditGauges:
    """New ``AuditGauges`` in ``registry``, set from ``report``."""
    gauges = AuditGauges(registry)
    gauges.update(report)
    return gauges


__all__ = ["AuditGauges", "AuditReport", "FeatureAudit", "audit", "audit_gauges", "parse_duration",
           "parse_time", "report_path"]
