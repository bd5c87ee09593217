"""The report's plots: one plotly figure per question a reader asks (docs/report.md).

Each builder takes checks of the monitor result (contract: ``MonitorReport.to_dict()``) or an
audit result (``AuditReport.to_dict()``) and returns ``Plot`` values, or an empty list when it
has nothing to draw (the page then says so in one line). Every string from the data goes
through ``label`` first: plotly.js reads a small HTML subset in titles, tick labels and hover
text, so a feature name ``<b>x</b>`` would otherwise render bold, and ``label`` makes it show
as written.

plotly is imported lazily (only ``render_report`` needs it).
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

STATUS_RANK = {"OK": 0, "WARN": 1, "ALERT": 2}
STATUS_COLOR = {"OK": "#2e7d32", "WARN": "#e08600", "ALERT": "#c62828"}
WARN_COLOR = STATUS_COLOR["WARN"]
ALERT_COLOR = STATUS_COLOR["ALERT"]
SCOPE_COLOR = {"online": "#1f77b4", "offline": "#6a3d9a", "log": "#17becf", "server": "#1f77b4"}
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif"


@dataclass(frozen=True)
class Plot:
    """One figure of the page: ``kind`` names the section (freshness, completeness, psi, ks,
    histogram, audit, latency), ``key`` what it is about (a view, a feature, a service),
    ``figure`` the plotly figure as a JSON-ready dict (``data`` and ``layout``), ``height``
    in CSS pixels."""

    kind: str
    key: str
    figure: dict[str, Any]
    height: int


def label(value: Any) -> str:
    """``value`` as plotly.js shows it verbatim: ``&``, ``<`` and ``>`` as entities (plotly.js
    decodes them back for display; its pseudo-HTML never sees a tag)."""
    return html.escape(str(value), quote=False)


def check_name(check: Mapping[str, Any]) -> str:
    """``view:feature (scope)``, ``view (scope)`` or ``scope`` for a check, unescaped."""
    view, feature, scope = check.get("view"), check.get("feature"), check.get("scope")
    what = f"{view}:{feature}" if view and feature else str(feature or view or "")
    return f"{what} ({scope})" if what else str(scope)


def _status(check: Mapping[str, Any]) -> str:
    s = str(check.get("status", "OK")).upper()
    return s if s in STATUS_RANK else "OK"


def num(x: Any) -> float | None:
    """A finite float, or None (JSON nulls, strings, NaN and infinities are not drawn)."""
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return None
    f = float(x)
    return f if math.isfinite(f) else None


def _figure(data: list[Any], title: str, height: int, **layout: Any) -> dict[str, Any]:
    import plotly.graph_objects as go

    fig = go.Figure(data=data)
    base: dict[str, Any] = {
        "title": {"text": title, "x": 0.0, "xanchor": "left", "font": {"size": 15}},
        "height": height, "margin": {"l": 70, "r": 24, "t": 56, "b": 100},
        "font": {"family": FONT, "size": 13}, "hoverlabel": {"namelength": -1},
        "legend": {"orientation": "h", "yref": "container", "y": 0.0, "yanchor": "bottom",
                   "xanchor": "left", "x": 0.0},
    }
    base.update(layout)
    fig.update_layout(**base)
    spec: dict[str, Any] = json.loads(fig.to_json())
    spec["layout"].pop("template", None)   # the page applies one template to every figure
    return spec


# -- freshness ------------------------------------------------------------------------------

_TIME_UNITS = (("days", 86_400.0), ("hours", 3_600.0), ("minutes", 60.0), ("seconds", 1.0))


def time_unit(seconds: Iterable[float]) -> tuple[str, float]:
    """The unit (name, seconds in it) of an age axis: hours, unless every age is under two
    hours (minutes, or seconds under two minutes) or over two days (days)."""
    values = [v for v in seconds if v > 0]
    if not values:
        return "hours", 3_600.0
    if max(values) < 120.0:
        return "seconds", 1.0
    if max(values) < 7_200.0:
        return "minutes", 60.0
    if min(values) >= 2 * 86_400.0:
        return "days", 86_400.0
    return "hours", 3_600.0


def human_seconds(v: float) -> str:
    """``v`` seconds as ``30 d``, ``30 h``, ``15 min``, ``12 s`` or ``250 ms`` (a unit is used
    from two of it on: 30 hours reads ``30 h``, not ``1.25 d``)."""
    for name, size in (("d", 86_400.0), ("h", 3_600.0), ("min", 60.0)):
        if abs(v) >= 2 * size:
            return f"{v / size:.3g} {name}"
    return f"{v:.3g} s" if abs(v) >= 1 else f"{v * 1e3:.3g} ms"


def freshness_plots(checks: Sequence[Mapping[str, Any]], history: Sequence[Mapping[str, Any]],
                    generated_at: str | None = None) -> list[Plot]:
    """Per view: the age of the newest event (now minus max event time) over time, online and
    offline, from each check's daily ``series``, plus the value each past monitor run found
    (``history``), against the warn (the TTL) and alert (TTL + grace) lines. Log-scale y: an age
    of minutes and a TTL of 30 days fit on one axis."""
    import plotly.graph_objects as go

    by_view: dict[str, list[Mapping[str, Any]]] = {}
    for c in checks:
        if c.get("check") == "freshness":
            by_view.setdefault(str(c.get("view") or "(all views)"), []).append(c)
    past: dict[tuple[str, str], list[tuple[str, float]]] = {}
    for run in history:
        at = run.get("generated_at")
        if not at:
            continue
        for c in run.get("checks") or ():
            if isinstance(c, Mapping) and c.get("check") == "freshness" and (v := num(c.get("value"))) is not None:
                past.setdefault((str(c.get("view") or "(all views)"), str(c.get("scope"))), []).append((str(at), v))

    plots = []
    for view, view_checks in sorted(by_view.items()):
        seconds: list[float] = []
        lines: dict[float, set[str]] = {}
        for c in view_checks:
            for p in c.get("series") or ():
                if isinstance(p, Mapping) and (v := num(p.get("age_seconds"))) is not None:
                    seconds.append(v)
            if (v := num(c.get("value"))) is not None:
                seconds.append(v)
            for which in ("warn", "alert"):
                if (t := num(c.get(which))) is not None and t > 0:
                    lines.setdefault(t, set()).add(which)
        unit, size = time_unit(seconds)
        traces: list[Any] = []
        for c in sorted(view_checks, key=lambda c: str(c.get("scope"))):
            scope = str(c.get("scope"))
            pts = [(str(p.get("at")), v) for p in c.get("series") or ()
                   if isinstance(p, Mapping) and (v := num(p.get("age_seconds"))) is not None]
            if not pts and generated_at and (v := num(c.get("value"))) is not None:
                pts = [(generated_at, v)]                 # no series: the run's own value
            color = SCOPE_COLOR.get(scope, "#555")
            if pts:
                traces.append(go.Scatter(
                    x=[t for t, _ in pts], y=[max(v / size, 1e-6) for _, v in pts], mode="lines+markers",
                    name=label(f"{scope} (daily, from the data)"), line={"color": color, "width": 2},
                    hovertemplate=f"{label(scope)}: %{{y:.3g}} {unit}<br>%{{x}}<extra></extra>"))
            runs = past.get((view, scope), [])
            if runs:
                traces.append(go.Scatter(
                    x=[t for t, _ in runs], y=[max(v / size, 1e-6) for _, v in runs], mode="markers",
                    name=label(f"{scope} (at each monitor run)"),
                    marker={"color": color, "symbol": "diamond-open", "size": 9},
                    hovertemplate=f"{label(scope)} at a monitor run: %{{y:.3g}} {unit}<br>%{{x}}<extra></extra>"))
        if not traces:
            continue
        shapes, notes = [], []
        for t, kinds in sorted(lines.items()):
            which = "alert" if "alert" in kinds else "warn"
            color = ALERT_COLOR if which == "alert" else WARN_COLOR
            text = "alert (TTL + grace)" if which == "alert" else "warn (TTL)"
            shapes.append({"type": "line", "xref": "paper", "x0": 0, "x1": 1, "y0": t / size, "y1": t / size,
                           "line": {"color": color, "dash": "dash", "width": 1.5}})
            notes.append({"xref": "paper", "x": 1, "xanchor": "right", "y": math.log10(t / size),
                          "yanchor": "bottom" if which == "alert" else "top", "showarrow": False,
                          "font": {"color": color, "size": 12}, "bgcolor": "rgba(255,255,255,0.8)",
                          "text": f"{text}: {human_seconds(t)}"})
        worst = max((_status(c) for c in view_checks), key=STATUS_RANK.__getitem__)
        plots.append(Plot("freshness", view, _figure(
            traces, f"{label(view)}: age of the newest event ({worst})", 340,
            xaxis={"title": {"text": "time (UTC)"}},
            yaxis={"title": {"text": f"age ({unit}, log scale)"}, "type": "log", "dtick": 1,
                   "tickformat": ",~r"},
            shapes=shapes, annotations=notes), 340))
    return plots


# -- completeness ---------------------------------------------------------------------------

def completeness_plot(checks: Sequence[Mapping[str, Any]]) -> list[Plot]:
    """One heatmap: a row per feature and scope, a column per day, the cell the share of null
    values that day (100% minus the series' ``non_null``), its text the percentage."""
    import plotly.graph_objects as go

    rows: list[tuple[str, dict[str, float]]] = []
    for c in checks:
        if c.get("check") != "completeness":
            continue
        per_day = {str(p.get("date")): 100.0 * (1.0 - v) for p in c.get("series") or ()
                   if isinstance(p, Mapping) and (v := num(p.get("non_null"))) is not None}
        if not per_day and (v := num(c.get("value"))) is not None:
            per_day = {"latest": 100.0 * (1.0 - v)}
        if per_day:
            rows.append((check_name(c), per_day))
    if not rows:
        return []
    rows.sort(key=lambda r: r[0], reverse=True)   # plotly draws the first row at the bottom
    days = sorted({d for _, per_day in rows for d in per_day})
    z = [[per_day.get(d) for d in days] for _, per_day in rows]
    top = max((v for row in z for v in row if v is not None), default=0.0)
    height = max(240, 30 * len(rows) + 120)
    heat = go.Heatmap(
        x=days, y=[label(name) for name, _ in rows], z=z, zmin=0.0, zmax=max(5.0, top),
        colorscale=[[0.0, "#f7fbf7"], [0.2, "#ffe08a"], [0.5, "#f39c3d"], [1.0, "#c62828"]],
        # the cell's text from Python: a day without data is blank (a texttemplate would
        # print a bare "%" there)
        text=[["" if v is None else f"{v:.1f}%" for v in row] for row in z],
        texttemplate="%{text}", textfont={"size": 11}, xgap=2, ygap=2,
        colorbar={"title": {"text": "null %"}, "ticksuffix": "%"},
        hovertemplate="%{y}<br>%{x}: %{z:.2f}% null<extra></extra>")
    return [Plot("completeness", "all", _figure(
        [heat], "Null rate per feature and day (% of values)", height,
        xaxis={"title": {"text": "day (UTC)"}, "type": "category"},
        yaxis={"automargin": True}, margin={"l": 70, "r": 24, "t": 56, "b": 60}), height)]


# -- distribution ---------------------------------------------------------------------------

def _distribution_checks(checks: Sequence[Mapping[str, Any]]
                         ) -> dict[tuple[str, str, str], dict[str, Mapping[str, Any]]]:
    """(view, feature, scope) -> {"psi": check, "ks": check}."""
    out: dict[tuple[str, str, str], dict[str, Mapping[str, Any]]] = {}
    for c in checks:
        if c.get("check") in ("psi", "ks"):
            key = (str(c.get("view") or ""), str(c.get("feature") or ""), str(c.get("scope")))
            out.setdefault(key, {})[str(c["check"])] = c
    return out


def _severity_order(groups: dict[tuple[str, str, str], dict[str, Mapping[str, Any]]]
                    ) -> list[tuple[str, str, str]]:
    """Worst first: the highest status of the pair, then the PSI value, then the name."""
    def key(k: tuple[str, str, str]) -> tuple[int, float, tuple[str, str, str]]:
        pair = groups[k]
        rank = max(STATUS_RANK[_status(c)] for c in pair.values())
        psi = num(pair["psi"].get("value")) if "psi" in pair else None
        return (-rank, -(psi or 0.0), k)
    return sorted(groups, key=key)


def drift_bar_plots(checks: Sequence[Mapping[str, Any]]) -> list[Plot]:
    """One figure, a row per feature and scope (worst on top): PSI bars on the left, KS bars
    on the right, coloured by status, each row's warn and alert lines as ticks on its bar."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    groups = _distribution_checks(checks)
    order = [k for k in reversed(_severity_order(groups))   # worst on top (plotly draws bottom-up)
             if any(num(c.get("value")) is not None for c in groups[k].values())]
    if not order:
        return []
    names = [label(check_name(next(iter(groups[k].values())))) for k in order]
    metrics = (("psi", "PSI (0 = same distribution)"), ("ks", "KS statistic (0..1)"))
    fig = make_subplots(rows=1, cols=2, shared_yaxes=True, horizontal_spacing=0.06,
                        subplot_titles=["PSI (population stability index)",
                                        "KS statistic (two-sample Kolmogorov-Smirnov)"])
    legend_shown: set[str] = set()
    for col, (metric, axis) in enumerate(metrics, start=1):
        rows = [(n, groups[k].get(metric)) for n, k in zip(names, order)]
        shown = [(n, c, v) for n, c in rows if c is not None and (v := num(c.get("value"))) is not None]
        fig.add_trace(go.Bar(
            x=[v for _, _, v in shown], y=[n for n, _, _ in shown], orientation="h",
            name=metric.upper(), showlegend=False,
            marker={"color": [STATUS_COLOR[_status(c)] for _, c, _ in shown]},
            text=[f"{v:.3f}" for _, _, v in shown], textposition="outside", cliponaxis=False,
            hovertemplate=f"%{{y}}<br>{metric.upper()} %{{x:.4f}}<extra></extra>"), row=1, col=col)
        tops = [v for _, _, v in shown]
        for which, color in (("warn", WARN_COLOR), ("alert", ALERT_COLOR)):
            pts = [(n, t) for n, c, _ in shown if (t := num(c.get(which))) is not None]
            tops += [t for _, t in pts]
            if pts:
                fig.add_trace(go.Scatter(
                    x=[t for _, t in pts], y=[n for n, _ in pts], mode="markers", name=f"{which} line",
                    legendgroup=which, showlegend=which not in legend_shown,
                    marker={"symbol": "line-ns", "size": 20, "line": {"width": 3, "color": color}},
                    hovertemplate=f"{which} at %{{x}}<extra></extra>"), row=1, col=col)
                legend_shown.add(which)
        fig.update_xaxes(title_text=axis, range=[0, max(tops + [0.01]) * 1.22], row=1, col=col)
    height = max(280, 30 * len(order) + 160)
    layout = {k: v for k, v in fig.layout.to_plotly_json().items() if k != "template"}
    layout["yaxis"] = {**layout.get("yaxis", {}), "automargin": True}
    return [Plot("drift", "all", _figure(
        list(fig.data), "Drift per feature: baseline window vs current window", height,
        bargap=0.3, **layout), height)]


def _edge(x: float) -> str:
    return f"{x:.3g}" if abs(x) < 1e5 else f"{x:.2e}"


def bin_labels(edges: Sequence[Any], n: int) -> list[str]:
    """``[a, b)`` labels of ``n`` bins from ``edges`` (``n + 1`` bounds, or the ``n - 1``
    inner ones); ``bin i`` when the edges do not fit."""
    e = [num(x) for x in edges]
    if len(e) == n - 1:
        inner = e
        e = [None, *inner, None]
    if len(e) != n + 1:
        return [f"bin {i + 1}" for i in range(n)]
    out = []
    for i in range(n):
        lo, hi = e[i], e[i + 1]
        last = i == n - 1
        if lo is None and hi is None:
            out.append(f"bin {i + 1}")
        elif lo is None:
            out.append(f"< {_edge(hi)}")  # type: ignore[arg-type]
        elif hi is None:
            out.append(f"≥ {_edge(lo)}")
        else:
            out.append(f"[{_edge(lo)}, {_edge(hi)}{']' if last else ')'}")
    return out


MAX_HISTOGRAMS = 24


def histogram_plots(checks: Sequence[Mapping[str, Any]], limit: int = MAX_HISTOGRAMS) -> tuple[list[Plot], int]:
    """Per feature and scope: baseline vs current share of rows in each bin (the bins of the
    PSI check, quantiles of the baseline, so the baseline is about flat), worst first; every
    WARN and ALERT one, then OK ones up to ``limit`` plots in all. Returns the plots and the
    number of OK ones left out."""
    import plotly.graph_objects as go

    groups = _distribution_checks(checks)
    plots: list[Plot] = []
    left_out = 0
    for key in _severity_order(groups):
        pair = groups[key]
        if len(plots) >= limit and all(_status(c) == "OK" for c in pair.values()):
            left_out += 1
            continue
        series = next((c.get("series") for c in (pair.get("psi"), pair.get("ks"))
                       if c is not None and isinstance(c.get("series"), Mapping)), None)
        if not series:
            continue
        base = [num(x) or 0.0 for x in series.get("baseline") or ()]
        cur = [num(x) or 0.0 for x in series.get("current") or ()]
        n = max(len(base), len(cur))
        if n == 0 or (sum(base) == 0 and sum(cur) == 0):
            continue
        names = bin_labels(series.get("edges") or (), n)
        traces = []
        for name, counts, color in (("baseline", base, "#9e9e9e"), ("current", cur, "#1f77b4")):
            total = sum(counts)
            if total <= 0:
                continue
            shares = [100.0 * x / total for x in counts] + [0.0] * (n - len(counts))
            traces.append(go.Bar(
                x=names, y=shares, name=f"{name} ({int(total):,} rows)", marker={"color": color},
                customdata=[int(x) for x in counts] + [0] * (n - len(counts)),
                hovertemplate=f"{name} %{{x}}: %{{y:.1f}}% of rows (%{{customdata:,}})<extra></extra>"))
        stats = ", ".join(f"{m.upper()} {v:.3f} {_status(c)}" for m, c in sorted(pair.items(), reverse=True)
                          if (v := num(c.get("value"))) is not None)
        view, feature, scope = key
        what = f"{view}:{feature}" if view else feature
        plots.append(Plot("histogram", f"{what} ({scope})", _figure(
            traces, f"{label(what)} ({label(scope)})<br><span style='font-size:12px'>{stats}</span>", 420,
            barmode="group", bargap=0.15,
            xaxis={"title": {"text": "bin (value range, baseline quantiles)"}, "type": "category",
                   "tickangle": -35, "tickfont": {"size": 11}},
            yaxis={"title": {"text": "share of rows (%)"}, "ticksuffix": "%"},
            margin={"l": 70, "r": 24, "t": 70, "b": 120}), 420))
    return plots, left_out


# -- audit ----------------------------------------------------------------------------------

def audit_plot(audit: Mapping[str, Any]) -> list[Plot]:
    """Per feature of one audit: the mismatch rate (% of the compared rows), coloured by
    status, with the audit's mismatch threshold as a tick; the missing-online and
    missing-offline rates are in the hover text and the table under the plot."""
    import plotly.graph_objects as go

    feats = [f for f in audit.get("features") or () if isinstance(f, Mapping)]
    if not feats:
        return []
    feats.sort(key=lambda f: (STATUS_RANK[_status(f)], num(f.get("mismatch_rate")) or 0.0,
                              str(f.get("feature"))))   # worst on top: plotly draws bottom-up
    names = [label(f.get("feature")) for f in feats]
    values = [100.0 * (num(f.get("mismatch_rate")) or 0.0) for f in feats]
    missing = [[100.0 * (num(f.get(k)) or 0.0) for k in ("missing_online_rate", "missing_offline_rate")]
               for f in feats]
    traces: list[Any] = [go.Bar(
        x=values, y=names, orientation="h", name="mismatch (% of compared rows)", showlegend=False,
        marker={"color": [STATUS_COLOR[_status(f)] for f in feats]}, customdata=missing,
        text=[f"{v:.2f}%" for v in values], textposition="outside", cliponaxis=False,
        hovertemplate=("%{y}<br>mismatch %{x:.3f}%<br>missing online %{customdata[0]:.3f}%"
                       "<br>missing offline %{customdata[1]:.3f}%<extra></extra>"))]
    threshold = num((audit.get("thresholds") or {}).get("mismatch_rate"))
    if threshold is not None:
        traces.append(go.Scatter(
            x=[100.0 * threshold] * len(names), y=names, mode="markers",
            name=f"mismatch threshold ({100.0 * threshold:.3g}%)",
            marker={"symbol": "line-ns", "size": 22, "line": {"width": 3, "color": ALERT_COLOR}},
            hovertemplate=f"threshold {100.0 * threshold:.3g}%<extra></extra>"))
    top = max(values + [100.0 * (threshold or 0.0), 1.0])
    height = max(260, 34 * len(feats) + 170)
    service = str(audit.get("service"))
    return [Plot("audit", service, _figure(
        traces, f"Mismatch rate per feature: {label(service)}", height, bargap=0.3,
        xaxis={"title": {"text": "served value differs from the offline one (% of compared rows)"},
               "ticksuffix": "%", "range": [0, top * 1.15]},
        yaxis={"automargin": True}), height)]


# -- latency --------------------------------------------------------------------------------

def latency_plots(checks: Sequence[Mapping[str, Any]],
                  history: Sequence[Mapping[str, Any]]) -> list[Plot]:
    """p50/p95/p99 of online reads in milliseconds (grouped bars per latency check) with the
    warn and alert lines; with two or more past monitor runs, the same percentiles over time."""
    import plotly.graph_objects as go

    lat = [c for c in checks if c.get("check") == "latency" and isinstance(c.get("series"), Mapping)
           and any(num(c["series"].get(q)) is not None for q in ("p50", "p95", "p99"))]
    plots = []
    if lat:
        names = [label(check_name(c)) for c in lat]
        traces: list[Any] = []
        for q, color in (("p50", "#90caf9"), ("p95", "#42a5f5"), ("p99", "#0d47a1")):
            values = [1e3 * v if (v := num(c["series"].get(q))) is not None else None for c in lat]
            traces.append(go.Bar(x=names, y=values, name=q, marker={"color": color},
                                 text=[f"{v:.2f} ms" if v is not None else "" for v in values],
                                 textposition="outside", cliponaxis=False,
                                 hovertemplate=f"%{{x}} {q}: %{{y:.3f}} ms<extra></extra>"))
        shapes, notes, tops = [], [], []
        for which, color in (("warn", WARN_COLOR), ("alert", ALERT_COLOR)):
            for t in sorted({t for c in lat if (t := num(c.get(which))) is not None}):
                ms = 1e3 * t
                tops.append(ms)
                shapes.append({"type": "line", "xref": "paper", "x0": 0, "x1": 1, "y0": ms, "y1": ms,
                               "line": {"color": color, "dash": "dash", "width": 1.5}})
                notes.append({"xref": "paper", "x": 0, "xanchor": "left", "y": ms, "yanchor": "bottom",
                              "showarrow": False, "font": {"color": color, "size": 12},
                              "text": f"{which} (on the checked value): {ms:.3g} ms"})
        all_ms = [1e3 * v for c in lat for q in ("p50", "p95", "p99")
                  if (v := num(c["series"].get(q))) is not None]
        top = max(all_ms + tops + [0.001])
        plots.append(Plot("latency", "now", _figure(
            traces, "Online read latency percentiles (latest monitor run)", 360, barmode="group",
            xaxis={"title": {"text": "latency check"}},
            yaxis={"title": {"text": "latency (ms)"}, "range": [0, top * 1.2]},
            shapes=shapes, annotations=notes), 360))

    over: dict[str, list[tuple[str, float]]] = {}
    for run in history:
        for c in run.get("checks") or ():
            if isinstance(c, Mapping) and c.get("check") == "latency" and isinstance(c.get("series"), Mapping):
                for q in ("p50", "p95", "p99"):
                    if (v := num(c["series"].get(q))) is not None:
                        over.setdefault(f"{check_name(c)} {q}", []).append((str(run.get("generated_at")), 1e3 * v))
    if over and max(len(v) for v in over.values()) >= 2:
        traces = [go.Scatter(x=[t for t, _ in pts], y=[v for _, v in pts], mode="lines+markers",
                             name=label(name), hovertemplate="%{x}: %{y:.3f} ms<extra></extra>")
                  for name, pts in sorted(over.items())]
        plots.append(Plot("latency", "history", _figure(
            traces, "Online read latency at each monitor run", 340,
            xaxis={"title": {"text": "monitor run (UTC)"}},
            yaxis={"title": {"text": "latency (ms)"}, "rangemode": "tozero"}), 340))
    return plots
