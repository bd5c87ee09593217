"""``skewless report``: the monitoring report, one self-contained HTML page (docs/report.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from skewless.cli._common import console, guarded, open_store


def register(app: typer.Typer) -> None:
    app.command("report")(report)


_STYLE = {"OK": "bold green", "WARN": "bold yellow", "ALERT": "bold red"}


@guarded
def report(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option("--out", "-o", help="The HTML file to write.")] = Path("report.html"),
    monitor_json: Annotated[Optional[Path], typer.Option(
        "--monitor-json", show_default=False,
        help="A monitor result (`skewless monitor --json PATH`).")] = None,
    audit_json: Annotated[Optional[list[Path]], typer.Option(
        "--audit-json", show_default=False,
        help="An audit result (`skewless audit --json PATH`); repeat for several.")] = None,
    title: Annotated[str, typer.Option("--title", help="The page's title.")] = "skewless monitoring report",
) -> None:
    """Write the monitoring report: one HTML page, viewable offline, with plots of freshness,
    null rates, PSI/KS and histograms, audit mismatches and latency.

    With no --monitor-json / --audit-json, reads the repo's data/monitoring/last.json (written by
    `skewless monitor`), history.jsonl and audit/*.json (written by `skewless audit`). With
    either, only the files given. Exit status 0 whatever the status on the page. See
    docs/report.md.
    """
    store = open_store(ctx)
    explicit = monitor_json is not None or bool(audit_json)
    written = store.report(out, monitor=monitor_json,
                           audits=list(audit_json or []) if explicit else None, title=title)
    counts = " · ".join(f"{written.counts.get(s, 0)} {s}" for s in ("ALERT", "WARN", "OK"))
    monitored = monitor_json is not None or not explicit
    console.print(f"wrote {written.path} ({written.size_bytes / 1e6:.1f} MB, {written.plots} plots): "
                  f"status [{_STYLE.get(written.status, 'bold')}]{written.status}[/] "
                  + (f"(monitor checks: {counts})" if monitored else "(no monitor result)"),
                  soft_wrap=True)
    for note in written.notes:
        console.print(f"note: {note}", markup=False, soft_wrap=True)
