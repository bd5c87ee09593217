"""``monitor``: run the monitors of ``skewless.monitoring.monitors`` over the registered views
with the context's engine, online store, registry and clock, and record the result
(``data/monitoring/last.json``, ``history.jsonl``; docs/monitoring.md)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from skewless.context import RuntimeContext
from skewless.define import FeatureView
from skewless.monitoring import latency, results
from skewless.errors import SkewlessError
from skewless.monitoring.monitors import (ALERT, Check, MaterializationState, MonitorReport,
                                          check_views, log_checks, run)
from skewless.registry import Snapshot
from skewless.services.materialize import FAILURES
from skewless.services.online_status import online_status
from skewless.times import to_utc


def monitor(ctx: RuntimeContext, snapshot: Snapshot, views: Sequence[str] | None = None,
            record: bool = True) -> MonitorReport:
    """Every check of ``views`` (default: every feature view of ``snapshot``) at the context's
    clock. ``record``: also write ``last.json`` and a line of ``history.jsonl`` under
    ``<repo>/data/monitoring``. Raises ConfigError for a ``monitoring.views`` entry naming
    no view, UnknownObjectError for an unknown view in ``views``."""
    cfg = ctx.config.monitoring
    known = list(snapshot.feature_views)
    check_views(cfg, known, views)
    selected: list[FeatureView] = [snapshot.feature_views[n] for n in (views or known)]
    now = to_utc(ctx.now())
    online_views = [v for v in selected if v.online]
    online: dict[str, tuple[Any, str]] = {}
    states: dict[str, MaterializationState] | None = None
    unreadable: Check | None = None
    if online_views:
        try:
            store = ctx.raw_online_store
            failures = ctx.registry.list_state(snapshot.project, FAILURES)
            statuses = online_status(ctx, snapshot)
        except SkewlessError as e:   # the offline checks still run; this is an ALERT
            unreadable = Check("materialization", None, None, "online", None, "", None, None,
                               ALERT, f"the online store cannot be read: {e}")
        else:
            online = {v.name: (store, snapshot.online_table(v.name)) for v in online_views}
            states = {}
            for st in statuses:
                f = failures.get(snapshot.online_key(st.view)) or {}
                states[st.view] = MaterializationState(
                    st.view, st.last_run, st.last_run_rows, st.watermark,
                    int(f.get("failures") or 0), f.get("error"))
    perc = latency.collect(cfg, ctx.config.resolve)
    con = ctx.engine.connect() if hasattr(ctx.engine, "connect") else _duckdb()
    try:
        report = run(con, ctx.config, selected, {v.name: snapshot.join_keys(v) for v in selected},
                     now, online, states, perc)
    finally:
        con.close()
    if unreadable is not None:
        report.checks.insert(0, unreadable)
    report.checks.extend(_log_checks(ctx, snapshot, now, {v.name for v in selected}))
    if record:
        results.record(report.to_dict(), ctx.config.resolve(results.MONITORING_DIR))
    return report


def _log_checks(ctx: RuntimeContext, snapshot: Snapshot, now: datetime, views: set[str]) -> list[Check]:
    """The checks over what was served (scope ``log``): completeness and distribution of each
    feature of ``views`` in every feature service's log of the monitored period
    (docs/monitoring.md, "From the feature log"). A service that logged nothing adds none."""
    from skewless.monitoring import feature_log   # duckdb: loaded when a monitor runs

    cfg = ctx.config.monitoring
    out: list[Check] = []
    for svc in snapshot.feature_services.values():
        table = feature_log.read_feature_logs(ctx.config, svc.name, since=now - timedelta(days=cfg.period_days),
                                              root=feature_log.log_root(ctx.config, svc))
        if table.num_rows:
            out += [c for c in log_checks(table, now, cfg, service=svc.name) if c.view in views]
    return out


def _duckdb() -> Any:
    """A DuckDB connection when the offline engine is not DuckDB (the monitors' scans are
    DuckDB SQL over the Parquet sources whatever the engine)."""
    import duckdb

    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    return con
