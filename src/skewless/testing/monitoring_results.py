"""Realistic monitor and audit results, shaped exactly as ``skewless monitor --json`` and
``skewless audit --json`` write them (docs/report.md, "Where the inputs come from"), for the
report's tests and for trying the report without a monitored repo.

The story is the example repo's fraud model: two views, ``user_spend`` (TTL 30 days) and
``merchant_stats`` (TTL 1 day, grace 6 hours), served by ``fraud_model_v1``.

- ``monitor_result("healthy")``: every check OK.
- ``monitor_result("incident")``: the seed's incident and friends: ``merchant_stats``'s
  materialization stalled three days ago (freshness ALERT online, materialization ALERT),
  ``user_spend:avg_amount_7d`` turned null two days ago (completeness ALERT offline, WARN in
  the log), ``merchant_stats:merchant_category_risk_score`` shifted (PSI and KS ALERT), a
  slightly drifted ``user_spend:amount_sum_7d`` (PSI WARN), and a p99 over its warn line.
- ``audit_result(...)``: the skew audit of ``fraud_model_v1``; with ``incident=True``,
  ``merchant_category_risk_score`` mismatches on 37% of the logged rows, with its worst
  merchants; ``hostile=True`` puts markup in an entity value and in a served string value.
- ``monitor_history(...)``: past runs, one per day, as ``history.jsonl`` holds them.

Every function is deterministic (a seeded generator and a fixed ``now``).
"""

from __future__ import annotations

import math
import random
from datetime import datetime, timedelta, timezone
from typing import Any, Literal

NOW = datetime(2026, 11, 30, 6, 0, tzinfo=timezone.utc)
HOSTILE = "<script>alert(1)</script>"

DAY = 86_400.0
VIEWS = {
    # view: (ttl seconds, grace seconds, features)
    "user_spend": (30 * DAY, DAY, ["amount_sum_7d", "txn_count_7d", "avg_amount_7d"]),
    "merchant_stats": (DAY, 6 * 3_600.0, ["merchant_category_risk_score", "txn_count_1d"]),
}
SERVICE = "fraud_model_v1"

Scenario = Literal["healthy", "incident"]


def _iso(t: datetime) -> str:
    return t.isoformat()


def _status(value: float | None, warn: float | None, alert: float | None,
            lower_is_worse: bool = False) -> str:
    """OK / WARN / ALERT of ``value`` against its lines (crossing upward, or downward when
    ``lower_is_worse``), as the monitor reports it."""
    if value is None:
        return "OK"

    def crossed(line: float | None) -> bool:
        if line is None:
            return False
        return value <= line if lower_is_worse else value >= line

    return "ALERT" if crossed(alert) else "WARN" if crossed(warn) else "OK"


def _check(check: str, view: str | None, feature: str | None, scope: str, value: float | None,
           unit: str, warn: float | None, alert: float | None, detail: str, series: Any,
           lower_is_worse: bool = False) -> dict[str, Any]:
    return {"check": check, "view": view, "feature": feature, "scope": scope, "value": value,
            "unit": unit, "warn": warn, "alert": alert,
            "status": _status(value, warn, alert, lower_is_worse), "detail": detail,
            "series": series}


def _quantile_edges(sample: list[float], bins: int) -> list[float]:
    ordered = sorted(sample)
    return [ordered[min(len(ordered) - 1, int(i * len(ordered) / bins))] for i in range(bins)] + [ordered[-1]]


def _counts(sample: list[float], edges: list[float]) -> list[int]:
    counts = [0] * (len(edges) - 1)
    for x in sample:
        i = 0
        while i < len(counts) - 1 and x >= edges[i + 1]:
            i += 1
        counts[i] += 1
    return counts


def _psi(baseline: list[int], current: list[int]) -> float:
    nb, nc = sum(baseline), sum(current)
    total = 0.0
    for b, c in zip(baseline, current):
        pb, pc = max(b / nb, 1e-4), max(c / nc, 1e-4)
        total += (pc - pb) * math.log(pc / pb)
    return total


def _ks(baseline: list[int], current: list[int]) -> float:
    nb, nc = sum(baseline), sum(current)
    cb = cc = 0.0
    worst = 0.0
    for b, c in zip(baseline, current):
        cb += b / nb
        cc += c / nc
        worst = max(worst, abs(cb - cc))
    return worst


def _distribution(rng: random.Random, view: str, feature: str, scope: str, shift: float,
                  scale: float, bins: int = 10) -> list[dict[str, Any]]:
    """A PSI check and a KS check of ``view:feature`` over quantile bins of a lognormal-ish
    baseline, the current sample shifted by ``shift`` standard units."""
    base = [math.exp(rng.gauss(0.0, 0.6)) * scale for _ in range(4_000)]
    cur = [math.exp(rng.gauss(shift * 0.6, 0.6)) * scale for _ in range(3_000)]
    edges = _quantile_edges(base, bins)
    edges[0] = min(edges[0], min(cur))
    edges[-1] = max(edges[-1], max(cur))
    b, c = _counts(base, edges), _counts(cur, edges)
    series = {"edges": [round(e, 4) for e in edges], "baseline": b, "current": c}
    psi, ks = _psi(b, c), _ks(b, c)
    where = "offline store" if scope == "offline" else "feature log"
    window = "baseline 2026-10-01..2026-10-31 vs current 2026-11-23..2026-11-30"
    return [
        _check("psi", view, feature, scope, round(psi, 4), "psi", 0.1, 0.25,
               f"PSI {psi:.3f} over {bins} quantile bins ({where}, {window})", series),
        _check("ks", view, feature, scope, round(ks, 4), "ks", 0.1, 0.2,
               f"KS statistic {ks:.3f} ({where}, {window})", series),
    ]


def monitor_result(scenario: Scenario = "incident", now: datetime = NOW, days: int = 7,
                   seed: int = 14, feature_prefix: str = "", stalled_days: float = 3.0) -> dict[str, Any]:
    """A monitor result (``MonitorReport.to_dict()``) for ``scenario`` at ``now``, with
    ``days`` daily points in each series. In the incident, ``merchant_stats``'s newest event
    is frozen ``stalled_days`` before ``now``. ``feature_prefix`` is prepended to every
    feature name (a test passes markup there)."""
    rng = random.Random(seed)
    incident = scenario == "incident"
    checks: list[dict[str, Any]] = []
    day_starts = [now - timedelta(days=days - 1 - i) for i in range(days)]
    frozen = now - timedelta(days=stalled_days, hours=0.4)   # merchant_stats's last event

    for view, (ttl, grace, _features) in VIEWS.items():
        for scope in ("online", "offline"):
            series: list[dict[str, Any]] = []
            for at in day_starts:
                if view == "merchant_stats" and incident and scope == "online" and at > frozen:
                    # the materialization stalled: the age grows with the clock
                    age = (at - frozen).total_seconds()
                elif view == "merchant_stats":
                    age = (0.4 + rng.random() * 0.5) * 3_600
                else:
                    age = (2 + rng.random() * 4) * 3_600 if scope == "online" else (8 + rng.random() * 10) * 3_600
                series.append({"at": _iso(at), "age_seconds": round(age, 1)})
            value = float(series[-1]["age_seconds"])
            newest = now - timedelta(seconds=value)
            checks.append(_check(
                "freshness", view, None, scope, value, "seconds", ttl, ttl + grace,
                f"newest event {newest:%Y-%m-%d %H:%M} UTC, {value / 3_600:.1f} h old "
                f"(ttl {ttl / 3_600:.0f} h, grace {grace / 3_600:.0f} h)", series))

    for view, (_ttl, _grace, features) in VIEWS.items():
        for feature in features:
            for scope in ("offline", "log"):
                series = []
                for i, at in enumerate(day_starts):
                    share = 1.0 - rng.random() * 0.002
                    if incident and view == "user_spend" and feature == "avg_amount_7d" and i >= days - 2:
                        share = 0.62 if scope == "offline" else 0.985
                    series.append({"date": at.date().isoformat(), "non_null": round(share, 4)})
                value = float(series[-1]["non_null"])
                checks.append(_check(
                    "completeness", view, feature_prefix + feature, scope, value, "ratio", 0.99, 0.95,
                    f"{value:.1%} non-null on {series[-1]['date']}", series, lower_is_worse=True))

    for view, (_ttl, _grace, features) in VIEWS.items():
        for feature in features:
            shift = 0.0
            if incident and feature == "merchant_category_risk_score":
                shift = 1.1
            elif incident and feature == "amount_sum_7d":
                shift = 0.35
            scale = 40.0 if "amount" in feature else 1.0 if "risk" in feature else 12.0
            for scope in ("offline", "log"):
                checks.extend(_distribution(rng, view, feature_prefix + feature, scope,
                                            shift + rng.gauss(0, 0.02), scale))

    p50, p95, p99 = (0.00042, 0.0011, 0.0139) if incident else (0.00038, 0.0009, 0.0021)
    checks.append(_check("latency", None, None, "server", p99, "seconds", 0.01, 0.05,
                         f"p99 {p99 * 1e3:.1f} ms of online reads (p50 {p50 * 1e3:.2f} ms, "
                         f"p95 {p95 * 1e3:.2f} ms) from the server's histograms",
                         {"p50": p50, "p95": p95, "p99": p99}))

    for view, (ttl, grace, _features) in VIEWS.items():
        stalled = incident and view == "merchant_stats"
        age = (now - frozen).total_seconds() if stalled else 0.5 * 3_600
        detail = (f"last run {now - timedelta(seconds=age):%Y-%m-%d %H:%M} UTC failed: "
                  "source file data/merchant_stats.parquet unreadable; 0 rows written"
                  if stalled else f"last run {now - timedelta(seconds=age):%Y-%m-%d %H:%M} UTC "
                  "succeeded, 10,000 rows written, 0 failures")
        checks.append(_check("materialization", view, None, "offline", age, "seconds",
                             ttl, ttl + grace, detail, None))

    worst = max(("OK", "WARN", "ALERT").index(c["status"]) for c in checks)
    return {"generated_at": _iso(now), "status": ("OK", "WARN", "ALERT")[worst], "checks": checks}


def monitor_history(scenario: Scenario = "incident", now: datetime = NOW, runs: int = 7,
                    seed: int = 14) -> list[dict[str, Any]]:
    """``runs`` past monitor results, one a day, oldest first, ending at ``now`` (the last is
    ``monitor_result(scenario, now)``); the incident starts three days before ``now``."""
    out = []
    for i in range(runs):
        ago = runs - 1 - i
        kind: Scenario = scenario if ago < 3 else "healthy"
        out.append(monitor_result(kind, now=now - timedelta(days=ago), seed=seed if ago == 0 else seed + i,
                                  stalled_days=3.0 - ago))
    return out


def audit_result(incident: bool = True, hostile: bool = False, now: datetime = NOW,
                 rows: int = 86_412, seed: int = 14) -> dict[str, Any]:
    """An audit result (``AuditReport.to_dict()``) of ``fraud_model_v1`` over the day before
    ``now``. ``incident``: ``merchant_category_risk_score`` served from a weekly table,
    mismatching on 37% of the rows. ``hostile``: an entity value and a served value carry
    ``<script>alert(1)</script>``."""
    rng = random.Random(seed)
    threshold = 0.01
    features = []
    for view, (_ttl, _grace, names) in VIEWS.items():
        key = "user_id" if view == "user_spend" else "merchant_id"
        for name in names:
            skewed = incident and name == "merchant_category_risk_score"
            rate = 0.3712 if skewed else round(rng.random() * 0.0008, 5)
            worst = []
            if skewed or rate > 0:
                for j in range(5 if skewed else 2):
                    entity: Any = 5_000 + rng.randrange(1_000) if key == "merchant_id" else 1_000 + rng.randrange(500)
                    if hostile and j == 0:
                        entity = HOSTILE
                    online = round(rng.uniform(0.05, 0.3), 4)
                    offline = round(online + (rng.uniform(0.3, 0.6) if skewed else rng.uniform(0.01, 0.05)), 4)
                    served: Any = HOSTILE if hostile and j == 1 else online
                    worst.append({
                        "entity": {key: entity},
                        "log_timestamp": _iso(now - timedelta(hours=rng.uniform(0, 24))),
                        "online": served, "offline": offline,
                        "abs_diff": None if isinstance(served, str) else round(abs(offline - online), 4),
                    })
                worst.sort(key=lambda w: -(w["abs_diff"] or 0.0))
            compared = rows - rng.randrange(200)
            features.append({
                "feature": f"{view}:{name}", "compared": compared, "mismatch_rate": rate,
                "missing_online_rate": round(rng.random() * 0.002, 5),
                "missing_offline_rate": round(rng.random() * 0.001, 5),
                "mean_abs_diff": round(0.21 if skewed else rng.random() * 0.01, 5) if rate else None,
                "mean_rel_diff": round(0.64 if skewed else rng.random() * 0.001, 5) if rate else None,
                "status": "ALERT" if rate >= threshold else "OK",
                "worst": worst,
            })
    return {"service": SERVICE, "since": _iso(now - timedelta(days=1)), "until": _iso(now),
            "rows": rows, "failed": any(f["status"] == "ALERT" for f in features),
            "thresholds": {"mismatch_rate": threshold, "missing_online_rate": 0.05,
                           "missing_offline_rate": 0.05},
            "features": features}
