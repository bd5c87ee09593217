"""``skewless monitor``: the monitors' table (OK / WARN / ALERT), their JSON, and alerts to a
webhook; exit status 1 on ALERT (docs/monitoring.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.table import Table
from rich.text import Text

from skewless.cli._common import console, err_console, guarded, open_store

_STYLE = {"OK": "green", "WARN": "yellow", "ALERT": "bold red"}


def register(app: typer.Typer) -> None:
    app.command("monitor")(monitor)


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "s":
        for size, name in ((86_400, "d"), (3_600, "h"), (60, "m")):
            # a unit that shows the value to the tenth (25 hours is 25.0h, not 1.0d)
            if abs(value) >= size and (round(value / size, 1) * size == round(value, 6)
                                       or abs(value) >= 10 * size or size == 60):
                return f"{value / size:.1f}{name}"
        return f"{value:.3f}s" if abs(value) < 1 else f"{value:.0f}s"
    if unit == "share":
        return f"{value:.1%}"
    return f"{value:.3f}"


def _thresholds(c: dict[str, Any]) -> str:
    if c["warn"] is None and c["alert"] is None:
        return "-"
    op = "<" if c["check"] == "completeness" else ">"
    parts = []
    if c["warn"] is not None:
        parts.append(f"warn {op} {_fmt(c['warn'], c['unit'])}")
    if c["alert"] is not None:
        parts.append(f"alert {op} {_fmt(c['alert'], c['unit'])}")
    return ", ".join(parts)


def render(data: dict[str, Any]) -> Table:
    """The monitor result JSON as a rich table, one row per check."""
    table = Table(title=f"monitor at {data['generated_at']}: {data['status']}", title_justify="left")
    for col in ("check", "view", "feature", "scope", "value", "thresholds", "status", "detail"):
        table.add_column(col, overflow="fold")
    for c in data["checks"]:
        table.add_row(c["check"], c["view"] or "-", c["feature"] or "-", c["scope"],
                      _fmt(c["value"], c["unit"]), _thresholds(c),
                      Text(c["status"], style=_STYLE[c["status"]]), c["detail"])
    return table


@guarded
def monitor(
    ctx: typer.Context,
    view: Annotated[Optional[list[str]], typer.Option(
        "--view", "-v", help="A view to check (repeat for several; default: every feature view).")] = None,
    json_path: Annotated[Optional[Path], typer.Option(
        "--json", help="Also write the result JSON to this file.")] = None,
    webhook: Annotated[Optional[str], typer.Option(
        "--webhook", help="POST the ALERT checks as JSON to this URL (default: "
        "monitoring.webhook_url), with monitoring.webhook_retries retries of at most "
        "monitoring.webhook_timeout_seconds each.")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No table: the summary line only.")] = False,
) -> None:
    """Check freshness, completeness, drift (PSI, KS), latency and materialization per view
    and feature; exit 1 on ALERT. Writes data/monitoring/last.json (the server's /metrics
    exports it) and a line of data/monitoring/history.jsonl."""
    from skewless.monitoring.results import alert_payload, post_alerts, write_json_atomic

    store = open_store(ctx)
    report = store.monitor(views=view or None)
    data = report.to_dict()
    if json_path is not None:
        write_json_atomic(json_path, data)
    if not quiet:
        console.print(render(data))
    counts = {s: sum(1 for c in data["checks"] if c["status"] == s) for s in ("OK", "WARN", "ALERT")}
    console.print(Text.assemble(("status: ", "bold"), (data["status"], _STYLE[data["status"]]),
                                f" ({counts['OK']} ok, {counts['WARN']} warn, {counts['ALERT']} alert)"))
    cfg = store.config.monitoring
    url = webhook or cfg.webhook_url
    if url and counts["ALERT"]:
        sent = post_alerts(url, alert_payload(data, store.project), cfg.webhook_timeout_seconds,
                           cfg.webhook_retries)
        if sent.ok:
            console.print(f"webhook: {counts['ALERT']} alert(s) posted to {url} "
                          f"(attempt {sent.attempts})")
        else:
            err_console.print(Text.assemble(("warning: ", "bold yellow"),
                                            f"webhook {url} failed after {sent.attempts} attempt(s): "
                                            f"{sent.error}"), soft_wrap=True)
    if json_path is not None:
        console.print(f"wrote {json_path}")
    if report.status == "ALERT":
        raise typer.Exit(1)

