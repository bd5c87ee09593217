"""``skewless audit`` (the skew audit, docs/audit.md) and ``skewless logs compact`` (feature log
compaction and retention, docs/feature-logging.md)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich import box
from rich.table import Table
from rich.text import Text

from skewless.cli._common import RepoGroup, console, err_console, guarded, open_store, plural

logs_app = typer.Typer(cls=RepoGroup, no_args_is_help=True,
                       help="Feature logs of online reads (docs/feature-logging.md).")


def register(app: typer.Typer) -> None:
    app.command("audit")(audit)
    logs_app.command("compact")(compact_logs)
    app.add_typer(logs_app, name="logs")


def _rate(x: float) -> str:
    return f"{x:.2%}" if x else "0"


def _num(x: Any) -> str:
    return "-" if x is None else f"{x:.6g}"


@guarded
def audit(
    ctx: typer.Context,
    service: Annotated[str, typer.Option("--service", "-s", help="The feature service whose logs to audit.")],
    since: Annotated[str, typer.Option(
        "--since", help="Start of the period: a duration before now (30m, 12h, 1d) or an ISO time.")] = "1d",
    until: Annotated[Optional[str], typer.Option(
        "--until", help="End of the period (excluded): a duration before now or an ISO time (default: now).")] = None,
    json_path: Annotated[Optional[Path], typer.Option(
        "--json", help="Also write the result as JSON here (it is always written to "
        "data/monitoring/audit/<service>.json).")] = None,
    mismatch_rate: Annotated[Optional[float], typer.Option(
        "--mismatch-rate", help="Alert over this share of mismatched values (default: audit.mismatch_rate, 0).")] = None,
    missing_online_rate: Annotated[Optional[float], typer.Option(
        "--missing-online-rate", help="Alert over this share of values missing online (default 0.01).")] = None,
    missing_offline_rate: Annotated[Optional[float], typer.Option(
        "--missing-offline-rate", help="Alert over this share of values missing offline (default 0.01).")] = None,
    float_tolerance: Annotated[Optional[float], typer.Option(
        "--float-tolerance", help="Floats are equal within this relative tolerance (default 1e-6).")] = None,
    float_abs_tolerance: Annotated[Optional[float], typer.Option(
        "--float-abs-tolerance", help="... plus this absolute one (default 1e-12).")] = None,
    worst: Annotated[Optional[int], typer.Option(
        "--worst", help="Entities with the largest differences to show per feature (default 10).")] = None,
) -> None:
    """Replay a feature service's logged online requests through the offline join at their
    logged times and compare, per feature: mismatch rate, values missing online or offline,
    mean absolute and relative difference, and the worst entities with both values. Exits 1
    when a threshold is crossed (and on an error). See docs/audit.md."""
    store = open_store(ctx)
    report = store.audit(service, since=since, until=until, mismatch_rate=mismatch_rate,
                         missing_online_rate=missing_online_rate,
                         missing_offline_rate=missing_offline_rate,
                         float_tolerance=float_tolerance,
                         float_abs_tolerance=float_abs_tolerance, worst=worst)
    data = report.to_dict()
    if json_path is not None:
        from skewless.monitoring.results import write_json_atomic
        write_json_atomic(json_path, data)
    console.print(summary_table(report, console.width))
    for f in report.features:
        if f.status != "ALERT" or not f.worst:
            continue
        w = Table(title=f"Worst entities of {f.feature}", title_justify="left", box=box.SIMPLE_HEAD)
        for col in ("entity", "logged at", "online", "offline", "abs diff"):
            w.add_column(col)
        for row in f.worst:
            w.add_row(json.dumps(row["entity"]), str(row["log_timestamp"]), json.dumps(row["online"]),
                      json.dumps(row["offline"]), _num(row["abs_diff"]))
        console.print(w)
    if report.failed:
        bad = [f.feature for f in report.features if f.status == "ALERT"]
        err_console.print(Text.assemble(("ALERT: ", "bold red"), f"{', '.join(bad)} crossed a threshold "
                                        f"({data['thresholds']})"), soft_wrap=True)
        raise typer.Exit(1)


@guarded
def compact_logs(
    ctx: typer.Context,
    service: Annotated[Optional[list[str]], typer.Option(
        "--service", "-s", help="Only this feature service's logs (repeatable; default: all).")] = None,
    small_mb: Annotated[float, typer.Option("--small-mb", help="Merge log files smaller than this.")] = 16.0,
    target_mb: Annotated[float, typer.Option("--target-mb", help="Merged files grow up to this.")] = 128.0,
    grace_seconds: Annotated[float, typer.Option(
        "--grace-seconds", help="Delete replaced files only this long after the switch.")] = 600.0,
    retention_days: Annotated[Optional[int], typer.Option(
        "--retention-days", help="Delete partitions older than this many days (default: "
        "logging.retention_days; none when unset).")] = None,
) -> None:
    """Merge each feature log partition's small files into one, atomically and safely while
    readers run, and delete partitions past the retention. See docs/feature-logging.md."""
    store = open_store(ctx)
    reports = store.compact_feature_logs(service or None, small_bytes=int(small_mb * 2**20),
                                         target_bytes=int(target_mb * 2**20),
                                         grace_seconds=grace_seconds, retention_days=retention_days)
    for r in reports:
        console.print(f"{r.root}: {plural(r.partitions, 'partition')}, "
                      f"{plural(sum(r.merged.values()), 'file')} merged into {len(r.merged)} "
                      f"({r.rows:,} rows); files {r.files_before:,} -> {r.files_after:,}; "
                      f"{plural(len(r.expired), 'partition')} past retention deleted", soft_wrap=True)


def summary_table(report: Any, width: int) -> Table:
    """The audit's table, one row per feature, for a console ``width`` columns wide: on a
    narrow one (80 columns, a pipe) the mean differences are left out, so the feature names
    keep room (every figure is in --json)."""
    data = report.to_dict()
    t = Table(title=f"Skew audit of {report.service}: {plural(report.rows, 'logged row')} from "
              f"{data['since']} to {data['until']}", title_justify="left", title_style="bold",
              box=box.SIMPLE_HEAD)
    wide = width >= 120
    cols = ("feature", "rows", "mismatch", "miss online", "miss offline", "abs diff", "rel diff",
            "status") if wide else ("feature", "mismatch", "miss online", "miss offline", "status")
    for col in cols:
        t.add_column(col, no_wrap=col != "feature", overflow="fold")
    for f in report.features:
        cells = {"feature": f.feature, "rows": f"{f.compared:,}", "mismatch": _rate(f.mismatch_rate),
                 "miss online": _rate(f.missing_online_rate), "miss offline": _rate(f.missing_offline_rate),
                 "abs diff": _num(f.mean_abs_diff), "rel diff": _num(f.mean_rel_diff),
                 "status": Text(f.status, style="bold red" if f.status == "ALERT" else "green")}
        t.add_row(*(cells[c] for c in cols))
    return t
