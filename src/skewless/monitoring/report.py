"""The monitoring report: one self-contained HTML page people read (docs/report.md).

``render_report(monitor, audits, history=...)`` turns a monitor result
(``MonitorReport.to_dict()``, what ``skewless monitor --json`` writes) and audit results
(``AuditReport.to_dict()``, ``skewless audit --json``) into one HTML page: a header summary
(overall status, OK / WARN / ALERT counts, the ALERT lines first), then plotly plots of
freshness over time, null rates per feature and day, PSI and KS per feature, baseline vs
current histograms, audit mismatches per feature with the worst entities, and latency
percentiles. plotly.js is inlined once, so the page needs no network to be viewed.

Every string that comes from the data (view, feature and entity names, values, details) is
escaped: in the HTML with ``html.escape``, in the plot specs as JSON whose ``<``, ``>`` and
``&`` are ``\\u`` escapes (a value ``</script>`` cannot end the script element), and in plot
text through ``report_plots.label`` (plotly.js reads a little HTML there).

``validate_monitor`` and ``validate_audit`` check the shapes first and raise
``InvalidRequestError`` naming the file, the check and the key.
"""

from __future__ import annotations

import html
import json
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from skewless.errors import InvalidRequestError
from skewless.monitoring import report_plots as P

DEFAULT_TITLE = "skewless monitoring report"
STATUSES = ("OK", "WARN", "ALERT")
CHECK_KINDS = ("freshness", "completeness", "psi", "ks", "latency", "materialization")
FIX_MONITOR = "it is what `skewless monitor --json PATH` writes (docs/report.md)"
FIX_AUDIT = "it is what `skewless audit --service NAME --since 1d --json PATH` writes (docs/report.md)"


@dataclass
class RenderedReport:
    """The page and what is in it: ``status`` (the worst of the monitor's status and the
    audits', an audit that failed counting as ALERT), ``counts`` of monitor checks per status,
    ``plots`` the number of plot divs (each ``div.plot`` of the page), ``sections_empty`` the
    sections that had no data."""

    html: str
    status: str
    counts: dict[str, int]
    plots: int
    sections_empty: list[str] = field(default_factory=list)


# -- validation -----------------------------------------------------------------------------

def validate_monitor(monitor: Any, where: str = "the monitor result") -> dict[str, Any]:
    """``monitor`` if it has the monitor result's shape (docs/monitoring.md, docs/report.md);
    InvalidRequestError naming ``where``, the check's index and the key otherwise."""
    if not isinstance(monitor, Mapping):
        raise InvalidRequestError(f"{where} is a JSON {type(monitor).__name__}, not an object",
                                  hint=FIX_MONITOR)
    checks = monitor.get("checks")
    if not isinstance(checks, list):
        raise InvalidRequestError(f"{where} has no 'checks' list", hint=FIX_MONITOR)
    if "status" in monitor and str(monitor["status"]).upper() not in STATUSES:
        raise InvalidRequestError(f"{where} has status {monitor['status']!r}",
                                  hint="a status is OK, WARN or ALERT; " + FIX_MONITOR)
    for i, c in enumerate(checks):
        if not isinstance(c, Mapping):
            raise InvalidRequestError(f"{where}: checks[{i}] is not an object", hint=FIX_MONITOR)
        for key in ("check", "status"):
            if key not in c:
                raise InvalidRequestError(f"{where}: checks[{i}] has no '{key}'", hint=FIX_MONITOR)
        if str(c["status"]).upper() not in STATUSES:
            raise InvalidRequestError(
                f"{where}: checks[{i}] ({c['check']}) has status {c['status']!r}",
                hint="a status is OK, WARN or ALERT; " + FIX_MONITOR)
        series = c.get("series")
        if series is not None and not isinstance(series, (list, Mapping)):
            raise InvalidRequestError(f"{where}: checks[{i}] ({c['check']}) has a 'series' that is "
                                      "neither a list nor an object", hint=FIX_MONITOR)
    return dict(monitor)


def validate_audit(audit: Any, where: str = "the audit result") -> dict[str, Any]:
    """``audit`` if it has the audit result's shape (docs/audit.md, docs/report.md);
    InvalidRequestError naming ``where``, the feature's index and the key otherwise."""
    if not isinstance(audit, Mapping):
        raise InvalidRequestError(f"{where} is a JSON {type(audit).__name__}, not an object",
                                  hint=FIX_AUDIT)
    for key in ("service", "features"):
        if key not in audit:
            raise InvalidRequestError(f"{where} has no '{key}'", hint=FIX_AUDIT)
    if not isinstance(audit["features"], list):
        raise InvalidRequestError(f"{where}: 'features' is not a list", hint=FIX_AUDIT)
    for i, f in enumerate(audit["features"]):
        if not isinstance(f, Mapping) or "feature" not in f:
            raise InvalidRequestError(f"{where}: features[{i}] is not an object with a 'feature'",
                                      hint=FIX_AUDIT)
        if not isinstance(f.get("worst", []), list):
            raise InvalidRequestError(f"{where}: features[{i}] ({f['feature']}): 'worst' is not a list",
                                      hint=FIX_AUDIT)
    return dict(audit)


# -- formatting -----------------------------------------------------------------------------

def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _status_of(d: Mapping[str, Any]) -> str:
    s = str(d.get("status", "OK")).upper()
    return s if s in STATUSES else "OK"


def _badge(status: str) -> str:
    return f'<span class="badge {status.lower()}">{_e(status)}</span>'


def _seconds(v: float) -> str:
    a = abs(v)
    if a >= 2 * 86_400:
        return f"{v / 86_400:.1f} d"
    if a >= 2 * 3_600:
        return f"{v / 3_600:.1f} h"
    if a >= 120:
        return f"{v / 60:.1f} min"
    if a >= 1:
        return f"{v:.1f} s"
    if a >= 1e-3:
        return f"{v * 1e3:.3g} ms"
    return f"{v * 1e6:.3g} µs"


def fmt_value(value: Any, unit: Any) -> str:
    """A check's value (or threshold) for reading: seconds as s/min/h/d or ms/µs, a ratio as
    a percentage, other numbers to 4 significant digits with their unit."""
    if value is None:
        return "–"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if not math.isfinite(float(value)):
        return str(value)
    u = str(unit or "")
    if u in ("s", "seconds", "second"):
        return _seconds(float(value))
    if u in ("ratio", "share", "fraction"):
        return f"{100.0 * value:.2f}%"
    if u in ("%", "percent"):
        return f"{value:.2f}%"
    text = f"{value:.4g}"
    return f"{text} {u}" if u and u.lower() not in ("psi", "ks") else text


def _cell(value: Any) -> str:
    """A served or offline value in a table cell (numbers to 6 significant digits)."""
    if value is None:
        return "null"
    if isinstance(value, float):
        return f"{value:.6g}" if math.isfinite(value) else str(value)
    if isinstance(value, (str, int, bool)):
        return str(value)
    return json.dumps(value, default=str)


def _pct(v: Any) -> str:
    return f"{100.0 * v:.2f}%" if isinstance(v, (int, float)) and not isinstance(v, bool) else "–"


def _time(v: Any) -> str:
    """An ISO timestamp as ``YYYY-MM-DD HH:MM:SS UTC`` (as given when it does not parse)."""
    try:
        t = datetime.fromisoformat(str(v).replace("Z", "+00:00"))
    except ValueError:
        return _cell(v)
    if t.tzinfo is not None:
        t = t.astimezone(timezone.utc)
    return t.strftime("%Y-%m-%d %H:%M:%S") + (" UTC" if t.tzinfo is not None else "")


def _int(v: Any) -> str:
    return f"{v:,}" if isinstance(v, int) and not isinstance(v, bool) else _cell(v)


def _what(c: Mapping[str, Any]) -> str:
    return P.check_name(c)


# -- the page -------------------------------------------------------------------------------

def _audit_failed(audit: Mapping[str, Any]) -> bool:
    """The audit crossed a threshold: it says so, or one of its features is ALERT."""
    return bool(audit.get("failed")) or any(_status_of(f) == "ALERT" for f in audit["features"])


def _summary(monitor: Mapping[str, Any] | None, audits: Sequence[Mapping[str, Any]],
             notes: Sequence[str]) -> tuple[str, str, dict[str, int]]:
    checks = list(monitor.get("checks") or ()) if monitor else []
    counts = Counter(_status_of(c) for c in checks)
    failed = [a for a in audits if _audit_failed(a)]
    ranks = [P.STATUS_RANK[_status_of(monitor)] if monitor else 0] + [P.STATUS_RANK[_status_of(c)] for c in checks]
    if failed:
        ranks.append(2)
    status = STATUSES[max(ranks)]

    lines: list[tuple[int, str]] = []
    for c in checks:
        s = _status_of(c)
        if s != "OK":
            line = (f"{_badge(s)} <b>{_e(c['check'])}</b> · {_e(_what(c))}: "
                    f"{_e(fmt_value(c.get('value'), c.get('unit')))}"
                    f" (warn {_e(fmt_value(c.get('warn'), c.get('unit')))}, "
                    f"alert {_e(fmt_value(c.get('alert'), c.get('unit')))})"
                    + (f" — {_e(c['detail'])}" if c.get("detail") else ""))
            lines.append((P.STATUS_RANK[s], line))
    for a in audits:
        limit = (a.get("thresholds") or {}).get("mismatch_rate")
        for f in a["features"]:
            if _status_of(f) == "ALERT":
                lines.append((2, f"{_badge('ALERT')} <b>audit</b> · {_e(a['service'])} · {_e(f['feature'])}: "
                                 f"mismatch {_e(_pct(f.get('mismatch_rate')))} of "
                                 f"{_e(_int(f.get('compared')))} compared rows "
                                 f"(threshold {_e(_pct(limit))})"))
    lines.sort(key=lambda x: -x[0])

    parts = [f'<section id="summary"><div class="status-line">{_badge(status)}'
             f'<span class="overall">overall status</span>']
    if monitor is not None:
        parts.append('<span class="counts">monitor checks: ' + " · ".join(
            f'<span class="count {s.lower() if counts.get(s) else "none"}">{counts.get(s, 0)} {s}</span>' for s in reversed(STATUSES))
            + f' <span class="muted">(run at {_e(monitor.get("generated_at", "?"))})</span></span>')
    if audits:
        parts.append(f'<span class="counts">audits: {len(failed)} of {len(audits)} crossed a threshold</span>')
    parts.append("</div>")
    if lines:
        parts.append('<ul class="alerts">' + "".join(f"<li>{line}</li>" for _, line in lines) + "</ul>")
    else:
        parts.append('<p class="ok-line">Every check is OK.</p>' if (monitor or audits)
                     else '<p class="empty">No monitor or audit result was given.</p>')
    for note in notes:
        parts.append(f'<p class="note">note: {_e(note)}</p>')
    parts.append("</section>")
    return "".join(parts), status, dict(counts)


def _checks_table(checks: Sequence[Mapping[str, Any]]) -> str:
    rows = sorted(checks, key=lambda c: (-P.STATUS_RANK[_status_of(c)], str(c.get("check")), _what(c)))
    body = "".join(
        f"<tr><td>{_badge(_status_of(c))}</td><td>{_e(c.get('check'))}</td><td>{_e(_what(c))}</td>"
        f"<td class=num>{_e(fmt_value(c.get('value'), c.get('unit')))}</td>"
        f"<td class=num>{_e(fmt_value(c.get('warn'), c.get('unit')))}</td>"
        f"<td class=num>{_e(fmt_value(c.get('alert'), c.get('unit')))}</td>"
        f"<td>{_e(c.get('detail') or '')}</td></tr>" for c in rows)
    return ('<table class="checks"><thead><tr><th>status</th><th>check</th><th>view:feature (scope)</th>'
            '<th>value</th><th>warn</th><th>alert</th><th>detail</th></tr></thead>'
            f"<tbody>{body}</tbody></table>")


def _entity(entity: Any) -> str:
    if isinstance(entity, Mapping):
        return ", ".join(f"{k}={_cell(v)}" for k, v in entity.items())
    return _cell(entity)


def _audit_tables(audit: Mapping[str, Any]) -> str:
    feats = sorted(audit["features"], key=lambda f: (-P.STATUS_RANK[_status_of(f)],
                                                     -(P.num(f.get("mismatch_rate")) or 0.0), str(f["feature"])))
    body = "".join(
        f"<tr><td>{_badge(_status_of(f))}</td><td>{_e(f['feature'])}</td>"
        f"<td class=num>{_e(_int(f.get('compared')))}</td>"
        f"<td class=num>{_e(_pct(f.get('mismatch_rate')))}</td>"
        f"<td class=num>{_e(_pct(f.get('missing_online_rate')))}</td>"
        f"<td class=num>{_e(_pct(f.get('missing_offline_rate')))}</td>"
        f"<td class=num>{_e(_cell(f.get('mean_abs_diff')))}</td>"
        f"<td class=num>{_e(_pct(f.get('mean_rel_diff')) if f.get('mean_rel_diff') is not None else 'null')}</td></tr>"
        for f in feats)
    out = ['<table class="audit"><thead><tr><th>status</th><th>feature</th><th>compared rows</th>'
           '<th>mismatch</th><th>missing online</th><th>missing offline</th><th>mean |diff|</th>'
           f"<th>mean relative diff</th></tr></thead><tbody>{body}</tbody></table>"]
    worst = [(f, w) for f in feats for w in (f.get("worst") or ()) if isinstance(w, Mapping)]
    if worst:
        rows = "".join(
            f"<tr><td>{_e(f['feature'])}</td><td class=entity>{_e(_entity(w.get('entity')))}</td>"
            f"<td class=time>{_e(_time(w.get('log_timestamp')))}</td><td class=num>{_e(_cell(w.get('online')))}</td>"
            f"<td class=num>{_e(_cell(w.get('offline')))}</td>"
            f"<td class=num>{_e(_cell(w.get('abs_diff')))}</td></tr>" for f, w in worst)
        out.append('<h4>Worst entities (served online vs recomputed offline at the logged time)</h4>'
                   '<table class="worst"><thead><tr><th>feature</th><th>entity</th><th>logged at</th>'
                   f"<th>online (served)</th><th>offline</th><th>|diff|</th></tr></thead><tbody>{rows}</tbody></table>")
    else:
        out.append('<p class="empty">No mismatching entity in this audit.</p>')
    return "".join(out)


class _Page:
    def __init__(self) -> None:
        self.parts: list[str] = []
        self.specs: list[dict[str, Any]] = []
        self.empty: list[str] = []

    def plots(self, plots: Sequence[P.Plot], grid: bool = False) -> None:
        cells = []
        for p in plots:
            pid = f"plot-{len(self.specs) + 1}"
            self.specs.append({"id": pid, "data": p.figure["data"], "layout": p.figure["layout"]})
            cells.append(f'<div class="plot" id="{pid}" data-kind="{_e(p.kind)}" data-key="{_e(p.key)}" '
                         f'style="height:{p.height}px"></div>')
        self.parts.append(f'<div class="{"grid" if grid else "stack"}">{"".join(cells)}</div>')

    def section(self, sid: str, title: str, intro: str) -> None:
        self.parts.append(f'<section id="{sid}"><h2>{_e(title)}</h2><p class="intro">{intro}</p>')

    def end(self) -> None:
        self.parts.append("</section>")

    def nothing(self, sid: str, text: str) -> None:
        self.empty.append(sid)
        self.parts.append(f'<p class="empty">{text}</p>')


def _thresholds(checks: Sequence[Mapping[str, Any]], kind: str) -> str:
    pairs = sorted({(c.get("warn"), c.get("alert"), str(c.get("unit") or "")) for c in checks
                    if c.get("check") == kind}, key=str)
    if len(pairs) != 1:
        return "per check (see the table at the bottom)"
    warn, alert, unit = pairs[0]
    return f"warn at {_e(fmt_value(warn, unit))}, alert at {_e(fmt_value(alert, unit))}"


def _script_json(value: Any) -> str:
    """JSON that is safe inside a ``<script>`` element: no ``<``, ``>`` or ``&`` left."""
    text = json.dumps(value, separators=(",", ":"), allow_nan=False)
    return text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")


def _template() -> dict[str, Any]:
    import plotly.io as pio

    layout = pio.templates["plotly_white"].layout.to_plotly_json()
    return {"layout": layout}


def render(monitor: Mapping[str, Any] | None, audits: Sequence[Mapping[str, Any]] = (),
           title: str = DEFAULT_TITLE, history: Sequence[Mapping[str, Any]] = (),
           sources: Sequence[str] = (), notes: Sequence[str] = (),
           now: datetime | None = None) -> RenderedReport:
    """The page and its summary (``RenderedReport``); arguments as ``render_report``."""
    from plotly.offline import get_plotlyjs

    if monitor is not None:
        monitor = validate_monitor(monitor)
    audits = [validate_audit(a, f"audit result #{i + 1}") for i, a in enumerate(audits)]
    history = [h for h in history if isinstance(h, Mapping)]
    checks: list[Mapping[str, Any]] = list(monitor["checks"]) if monitor else []
    no_monitor = "no monitor result was given (run <code>skewless monitor</code>)"
    page = _Page()
    summary, status, counts = _summary(monitor, audits, notes)
    page.parts.append(summary)

    page.section("freshness", "Freshness over time",
                 "Age of the newest event (now minus max event time) per view, online and offline, "
                 "one point per day, against the view's TTL (warn) and TTL + grace (alert). "
                 "A line that climbs steadily is a stalled pipeline.")
    plots = P.freshness_plots(checks, history, str(monitor.get("generated_at") or "") if monitor else None)
    page.plots(plots, grid=True) if plots else page.nothing(
        "freshness", "No freshness check in the monitor result." if monitor else no_monitor.capitalize() + ".")
    page.end()

    page.section("completeness", "Null rates per feature and day",
                 "Share of null values per feature and day, in the offline store, online or in the "
                 f"feature log. Completeness thresholds on the non-null share: {_thresholds(checks, 'completeness')}.")
    plots = P.completeness_plot(checks)
    page.plots(plots) if plots else page.nothing(
        "completeness", "No completeness check in the monitor result." if monitor else no_monitor.capitalize() + ".")
    page.end()

    page.section("drift", "Distribution drift: PSI and KS per feature",
                 "Baseline window vs current window, per feature. PSI below 0.1 is stable, 0.1–0.25 "
                 "a moderate shift, above 0.25 a major one; KS is the largest gap between the two "
                 "cumulative distributions (0 to 1). Ticks mark each feature's warn and alert lines; "
                 "the worst feature is on top.")
    plots = P.drift_bar_plots(checks)
    page.plots(plots) if plots else page.nothing(
        "drift", "No PSI or KS check in the monitor result." if monitor else no_monitor.capitalize() + ".")
    page.end()

    page.section("histograms", "Baseline vs current histograms",
                 "Share of rows per bin; the bins are quantiles of the baseline, so the baseline is "
                 "about flat and a drifted feature piles up at one end. Worst first.")
    plots, left_out = P.histogram_plots(checks)
    page.plots(plots, grid=True) if plots else page.nothing(
        "histograms", "No histogram in the PSI / KS checks." if monitor else no_monitor.capitalize() + ".")
    if left_out:
        page.parts.append(f'<p class="note">{left_out} more feature(s), all OK, are not drawn; '
                          "their PSI and KS are in the drift plot and the table below.</p>")
    page.end()

    page.section("audit", "Skew audit: served vs recomputed offline",
                 "Each logged request replayed through the point-in-time join at its logged time: per "
                 "feature, the share of rows whose served value differs from the offline one, and the "
                 "rows missing on either side.")
    if not audits:
        page.nothing("audit", "No audit result was given (run <code>skewless audit --service NAME --since 1d</code>).")
    for a in audits:
        fails = _audit_failed(a)
        page.parts.append(
            f'<h3>{_badge("ALERT" if fails else "OK")} {_e(a["service"])} '
            f'<span class="muted">{_e(_time(a.get("since", "?")))} → {_e(_time(a.get("until", "?")))}, '
            f'{_e(_int(a.get("rows")))} logged rows</span></h3>')
        plots = P.audit_plot(a)
        page.plots(plots) if plots else page.nothing("audit", "This audit compared no feature.")
        page.parts.append(_audit_tables(a))
    page.end()

    page.section("latency", "Latency percentiles",
                 "p50 / p95 / p99 of online reads from the feature server's histograms, in milliseconds.")
    plots = P.latency_plots(checks, history)
    page.plots(plots, grid=len(plots) > 1) if plots else page.nothing(
        "latency", "No latency check in the monitor result (the server's histograms were not read)."
        if monitor else no_monitor.capitalize() + ".")
    page.end()

    page.section("checks", "Every check", "All the monitor's checks, worst first.")
    if checks:
        page.parts.append(_checks_table(checks))
    else:
        page.nothing("checks", "No check in the monitor result." if monitor else no_monitor.capitalize() + ".")
    page.end()

    made = (now or datetime.now(timezone.utc)).strftime("%Y-%m-%d %H:%M:%S UTC")
    source_line = (" · inputs: " + ", ".join(f"<code>{_e(s)}</code>" for s in sources)) if sources else ""
    document = "".join([
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)}</title><style>{_CSS}</style>",
        f"<script>{get_plotlyjs()}</script></head><body>",
        f'<header><h1>{_e(title)}</h1><p class="muted">rendered {made}{source_line} · '
        'how to read it: docs/report.md</p></header><main>',
        *page.parts,
        "</main>",
        f'<script type="application/json" id="skewless-template">{_script_json(_template())}</script>',
        f'<script type="application/json" id="skewless-plots">{_script_json(page.specs)}</script>',
        f"<script>{_JS}</script></body></html>",
    ])
    return RenderedReport(document, status, counts, len(page.specs), page.empty)


def render_report(monitor: Mapping[str, Any] | None, audits: Sequence[Mapping[str, Any]] = (),
                  title: str = DEFAULT_TITLE, history: Sequence[Mapping[str, Any]] = (),
                  sources: Sequence[str] = ()) -> str:
    """One self-contained HTML page (a ``str``, UTF-8 when written) from a monitor result
    (``MonitorReport.to_dict()``, or None: its sections then say none was given), audit results
    (``AuditReport.to_dict()`` each) and ``history`` (past monitor results, oldest first, as
    ``data/monitoring/history.jsonl`` holds them; past runs' freshness and latency join the
    plots). ``sources`` names the input files in the header. The page loads nothing from the
    network: plotly.js is inlined (about 4.5 MB).

    Raises InvalidRequestError naming the check or feature when an input does not have the
    result's shape (docs/report.md, "Where the inputs come from")."""
    return render(monitor, audits, title, history, sources).html


_CSS = """
:root { --ok:#2e7d32; --warn:#e08600; --alert:#c62828; --muted:#5f6b76; --line:#e3e7eb; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.45 system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif;
       color: #1d2329; background: #f6f7f9; }
header { padding: 20px 32px 8px; background: #fff; border-bottom: 1px solid var(--line); }
header h1 { margin: 0 0 4px; font-size: 24px; }
main { padding: 8px 32px 48px; max-width: 1500px; }
section { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 16px 20px; margin: 16px 0; }
h2 { margin: 0 0 4px; font-size: 19px; }
h3 { margin: 18px 0 8px; font-size: 16px; }
h4 { margin: 16px 0 6px; font-size: 14px; }
.intro { margin: 0 0 12px; color: var(--muted); max-width: 1100px; }
.muted { color: var(--muted); font-weight: normal; font-size: 13px; }
.empty { color: var(--muted); font-style: italic; margin: 4px 0; }
.note { color: var(--muted); font-size: 13px; margin: 4px 0; }
.badge { display: inline-block; min-width: 54px; text-align: center; padding: 1px 8px; border-radius: 10px;
         color: #fff; font-weight: 600; font-size: 12px; letter-spacing: .03em; }
.badge.ok { background: var(--ok); } .badge.warn { background: var(--warn); } .badge.alert { background: var(--alert); }
.status-line { display: flex; flex-wrap: wrap; align-items: center; gap: 8px 18px; }
.status-line > .badge { font-size: 18px; padding: 4px 16px; border-radius: 14px; }
.overall { font-weight: 600; }
.count { font-weight: 600; } .count.none { color: var(--muted); font-weight: normal; } .count.ok { color: var(--ok); } .count.warn { color: var(--warn); } .count.alert { color: var(--alert); }
.alerts { list-style: none; padding: 0; margin: 12px 0 0; }
.alerts li { padding: 5px 0; border-top: 1px solid var(--line); }
.ok-line { color: var(--ok); font-weight: 600; margin: 10px 0 0; }
.grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(520px, 1fr)); gap: 12px; }
.stack > .plot { margin-bottom: 12px; }
.plot { width: 100%; min-width: 0; overflow: hidden; border: 1px solid var(--line); border-radius: 6px; }
table { border-collapse: collapse; width: 100%; font-size: 13px; margin: 8px 0; }
th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { background: #f0f2f5; font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.time { white-space: nowrap; }
td.entity { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; word-break: break-all; }
code { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 13px; }
"""

# Reads the plot specs (JSON, never evaluated as script) and draws them; sets
# body[data-plots-rendered] once every plot is drawn, body[data-plots-failed] when one failed
# (the browser test waits for either).
_JS = """
(function () {
  var specs = JSON.parse(document.getElementById('skewless-plots').textContent);
  var template = JSON.parse(document.getElementById('skewless-template').textContent);
  var config = {displaylogo: false, responsive: true};
  Promise.all(specs.map(function (s) {
    s.layout.template = template;
    return Plotly.newPlot(s.id, s.data, s.layout, config);
  })).then(function () {
    document.body.setAttribute('data-plots-rendered', String(specs.length));
  }, function (e) {
    document.body.setAttribute('data-plots-failed', String(e));
  });
})();
"""
