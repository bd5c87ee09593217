"""``skewless materialize``, ``materialize-incremental``, ``rebuild-online`` and
``online-status``: fill the online store from the offline one, and see how fresh it is."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Annotated, Any, Optional, TypeVar

import typer
from rich.progress import (BarColumn, Progress, ProgressColumn, Task, TaskID, TextColumn,
                           TimeElapsedColumn, TimeRemainingColumn)
from rich.table import Table
from rich.text import Text

from skewless.cli._common import console, err_console, guarded, open_store, plural
from skewless.cli.catalog import Cell, show_listing
from skewless.errors import SkewlessError
from skewless.store import RebuildReport, ViewReport, ViewStatus
from skewless.times import to_utc

R = TypeVar("R")

_VIEWS_HELP = "Only these feature views, comma-separated or repeated (default: every online view)."
_MAX_MISMATCHES_SHOWN = 20


def register(app: typer.Typer) -> None:
    app.command("materialize")(materialize)
    app.command("materialize-incremental")(materialize_incremental)
    app.command("rebuild-online")(rebuild_online)
    app.command("online-status")(online_status)


# --- arguments -------------------------------------------------------------------------------
def parse_time(value: str, what: str, now: Callable[[], datetime]) -> datetime:
    """An ISO date or datetime (naive means UTC), or ``now``: ``skewless.times.to_utc``, the
    parser the SDK uses too."""
    return to_utc(value, what, now)


def _view_names(views: list[str] | None) -> list[str] | None:
    names = [v.strip() for item in views or [] for v in item.split(",") if v.strip()]
    return names or None


ViewsOption = Annotated[Optional[list[str]], typer.Option(
    "--views", "-v", show_default=False, help=_VIEWS_HELP)]


# --- formatting ------------------------------------------------------------------------------
def fmt_time(ts: datetime | None) -> str:
    if ts is None:
        return "-"
    ts = ts.astimezone(timezone.utc)
    text = ts.strftime("%Y-%m-%d %H:%M:%S")
    return (text[:10] if text.endswith("00:00:00") else text) + " UTC"


def _short(ts: datetime | None) -> str:
    return ts.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S") if ts is not None else "-"


def fmt_age(age: timedelta | None) -> str:
    """A duration for humans: ``3d 4h``, ``5m 12s``, ``0.4s``; negative means 'ahead'."""
    if age is None:
        return "-"
    secs = age.total_seconds()
    sign = "-" if secs < 0 else ""
    secs = abs(secs)
    if secs < 60:
        return f"{sign}{secs:.1f}s"
    parts = []
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)):
        if secs >= size:
            parts.append(f"{int(secs // size)}{unit}")
            secs %= size
        if len(parts) == 2:
            break
    return sign + " ".join(parts)


def describe_key(entity: dict[str, Any]) -> str:
    """An entity's join keys for humans: ``user_id=1001, merchant='m1'``."""
    return ", ".join(f"{k}={v!r}" for k, v in entity.items())


def fmt_rate(rows: int, seconds: float) -> str:
    return f"{rows / seconds:,.0f}" if seconds > 0 and rows else "-"


class RowsColumn(ProgressColumn):
    """Rows written so far."""

    def render(self, task: Task) -> Text:
        n = int(task.completed)
        return Text(f"{n:,} row{'' if n == 1 else 's'}", style="progress.download")


class RateColumn(ProgressColumn):
    """Rows per second since the view started."""

    def render(self, task: Task) -> Text:
        elapsed = task.elapsed
        rate = f"{task.completed / elapsed:,.0f} rows/s" if elapsed and task.completed else ""
        return Text(rate, style="progress.data.speed")


def _progress() -> Progress:
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(bar_width=16), RowsColumn(),
                    RateColumn(), TimeElapsedColumn(), TimeRemainingColumn(), console=console)


def _run_per_view(names: list[str], title: str, estimates: dict[str, int], results: list[R],
                  run: Callable[[str, Callable[[str, int], None]], list[R]]) -> float:
    """Run ``run(view, on_rows)`` for each view in turn, appending to ``results`` (so a caller
    can show what finished before an error), under one progress display: a bar per view with
    rows, rows/s, elapsed time and, given an estimate of its rows, the time left. Returns the
    seconds taken."""
    started = time.perf_counter()
    with _progress() as progress:
        tasks: dict[str, TaskID] = {
            n: progress.add_task(f"{title} {n}", total=estimates.get(n) or None, start=False)
            for n in names}
        rows = dict.fromkeys(names, 0)

        def on_rows(view: str, n: int) -> None:
            rows[view] += n
            progress.update(tasks[view], completed=rows[view])

        for name in names:
            progress.start_task(tasks[name])
            results.extend(run(name, on_rows))
            progress.update(tasks[name], total=rows[name])  # a full bar, even at 0 rows
            progress.stop_task(tasks[name])
    return time.perf_counter() - started


# --- materialize -----------------------------------------------------------------------------
def _materialize_summary(reports: list[ViewReport], elapsed: float, incremental: bool) -> None:
    t = Table("view", "rows", "window", "seconds", "rows/s", title_justify="left",
              title=f"Materialized {plural(sum(r.rows for r in reports), 'row')} of "
              f"{plural(len(reports), 'view')} in {elapsed:.2f}s")
    for r in reports:
        if incremental and r.rows == 0 and r.start is not None and r.start >= r.end:
            window = f"up to date (watermark {fmt_time(r.start)})"
        else:
            start = fmt_time(r.start) if r.start is not None else "the beginning"
            window = f"{start} .. {fmt_time(r.end)}"
        t.add_row(Text(r.view, style="bold"), f"{r.rows:,}", window, f"{r.seconds:.2f}",
                  fmt_rate(r.rows, r.seconds))
    console.print(t)
    backfilled = [r.view for r in reports if r.backfill]
    if backfilled:
        console.print(Text.assemble(("note: ", "bold yellow"), (
            "the online store is not the one the registry recorded these views as materialized in "
            "(it restarted empty, was replaced, or was put back to an older copy of itself), so "
            "they were materialized from the beginning: "
            + ", ".join(backfilled))), soft_wrap=True)


def _run_materialize(names: list[str], incremental: bool,
                     run: Callable[[str, Callable[[str, int], None]], list[ViewReport]]) -> None:
    reports: list[ViewReport] = []
    try:
        elapsed = _run_per_view(names, "materialize", {}, reports, run)
    except SkewlessError:
        if reports:
            console.print("Views materialized before the failure:")
            _materialize_summary(reports, sum(r.seconds for r in reports), incremental)
        raise
    _materialize_summary(reports, elapsed, incremental)


@guarded
def materialize(
    ctx: typer.Context,
    start: Annotated[str, typer.Argument(
        help="Window start: ISO date or datetime, naive means UTC.", show_default=False)],
    end: Annotated[str, typer.Argument(
        help="Window end (inclusive), at most now: ISO date or datetime, or 'now'.",
        show_default=False)],
    views: ViewsOption = None,
) -> None:
    """Write each entity's latest row with START <= event time <= END to the online store.

    With a source's availability_delay, the window is of landing times (event time + delay):
    only rows usable by END are written.

    A row is written only if newer than the stored one, so runs are idempotent and may overlap
    or arrive in any order. Each view's watermark advances to END once all its rows are written.
    """
    store = open_store(ctx)
    start_ts = parse_time(start, "START", store.clock)
    end_ts = parse_time(end, "END", store.clock)
    names = [v.name for v in store.online_views(_view_names(views))]
    store.check_materialize_window(start_ts, end_ts)  # before any progress display appears
    _run_materialize(names, False, lambda n, on_rows: store.materialize(
        start_ts, end_ts, views=[n], on_rows=on_rows))


@guarded
def materialize_incremental(
    ctx: typer.Context,
    end: Annotated[Optional[str], typer.Argument(
        help="Materialize up to this time (default: now): ISO date or datetime, naive means UTC.",
        show_default=False)] = None,
    views: ViewsOption = None,
) -> None:
    """Materialize what arrived since each view's watermark, up to END (default: now).

    Late rows (an old event time, a created timestamp newer than the last run's) are picked up
    too. A view never materialized starts from the beginning of its source.
    """
    store = open_store(ctx)
    end_ts = parse_time(end, "END", store.clock) if end is not None else store.clock()
    names = [v.name for v in store.online_views(_view_names(views))]
    store.check_materialize_window(None, end_ts)  # before any progress display appears
    _run_materialize(names, True, lambda n, on_rows: store.materialize_incremental(
        end_ts, views=[n], on_rows=on_rows))


# --- rebuild-online --------------------------------------------------------------------------
def _rebuild_summary(reports: list[RebuildReport], elapsed: float) -> None:
    t = Table("view", "entities", "stored", "count", "sampled", "mismatches", "seconds",
              title=f"Rebuilt {plural(len(reports), 'view')} in {elapsed:.2f}s", title_justify="left")
    for r in reports:
        t.add_row(Text(r.view, style="bold"), f"{r.entities:,}", f"{r.stored:,}",
                  Text("ok", style="green") if r.count_ok else Text("MISMATCH", style="bold red"),
                  f"{r.sample_size:,}",
                  Text(f"{len(r.mismatches):,}", style="green" if not r.mismatches else "bold red"),
                  f"{r.seconds:.2f}")
    console.print(t)
    wrong = [(r.view, m) for r in reports for m in r.mismatches]
    if wrong:
        d = Table("view", "entity", "feature", "online", "offline",
                  title=f"Values that differ from the offline join (first {_MAX_MISMATCHES_SHOWN})"
                  if len(wrong) > _MAX_MISMATCHES_SHOWN else "Values that differ from the offline join",
                  title_justify="left")
        for view, m in wrong[:_MAX_MISMATCHES_SHOWN]:
            d.add_row(view, Text(describe_key(m.entity)), m.feature, Text(repr(m.online)), Text(repr(m.offline)))
        console.print(d)


@guarded
def rebuild_online(ctx: typer.Context, views: ViewsOption = None) -> None:
    """Rebuild the online store from the offline store (disaster recovery).

    Each view is materialized up to now into a fresh table that then replaces the live one
    atomically, so serving keeps answering throughout; its watermark is set to now. Then the
    new table is verified: one record per entity with a source row, and a random sample of
    served values equal to the offline join at now. Exits 1 if verification finds a difference.
    A view whose rebuild fails keeps its live table. Pushes and materializations may go on
    meanwhile: what reaches the offline store during the rebuild is caught up after the swap.
    A second rebuild of a view being rebuilt is refused, naming the run that holds its lease
    (docs/online.md, "Leases").
    """
    store = open_store(ctx)
    snapshot = store.snapshot()
    names = [v.name for v in store.online_views(_view_names(views))]
    # The current record counts estimate the work, for a time-left figure (none when the store
    # cannot be read: rebuild-online moves a damaged store aside first).
    try:
        estimates = {n: store.online_store.count(snapshot.online_table(n)) for n in names}
    except SkewlessError:
        estimates = {}
    reports: list[RebuildReport] = []
    try:
        elapsed = _run_per_view(names, "rebuild", estimates, reports,
                                lambda n, on_rows: store.rebuild_online([n], on_rows=on_rows))
    except SkewlessError:
        if reports:
            console.print("Views rebuilt before the failure:")
            _rebuild_summary(reports, sum(r.seconds for r in reports))
        raise
    _rebuild_summary(reports, elapsed)
    bad = [r for r in reports if not r.ok]
    for r in reports:
        if r.set_aside:
            console.print(Text.assemble(("note: ", "bold yellow"), r.set_aside + (
                "; the views not rebuilt by this run are not served until "
                "`skewless materialize-incremental` backfills them" if views else "")), soft_wrap=True)
    if bad:
        problems = []
        for r in bad:
            if not r.count_ok:
                problems.append(f"'{r.view}' holds {r.stored:,} records for {r.entities:,} entities")
            if r.mismatches:
                problems.append(f"'{r.view}' serves {plural(len(r.mismatches), 'value')} that differ "
                                "from the offline join")
        err_console.print(Text.assemble(("error: ", "bold red"), "verification failed: " + "; ".join(problems)),
                          soft_wrap=True)
        err_console.print(Text.assemble(("hint: ", "bold yellow"),
                                        "run `skewless rebuild-online` again (a brand-new entity pushed "
                                        "right at the swap counts as an extra record); if it persists, "
                                        "report it as a bug"),
                          soft_wrap=True)
        raise typer.Exit(1)
    total = sum(r.entities for r in reports)
    sampled = sum(r.sample_size for r in reports)
    console.print(f"Verified: {total:,} {'entity' if total == 1 else 'entities'} written and stored; "
                  f"the served values of {sampled:,} sampled entities equal the offline join. "
                  f"Took {elapsed:.2f}s.")


# --- online-status ---------------------------------------------------------------------------
def _coverage_cell(s: ViewStatus) -> Text:
    """The watermark (covered from the beginning up to it), then any window covered beyond a
    hole, in yellow; "never" when nothing is covered."""
    if not s.materialized:
        return Text("never", style="yellow")
    out = Text(_short(s.watermark) if s.watermark is not None else "-")
    windows = [iv for iv in s.covered if iv[0] is not None]
    for a, b in windows[:3]:
        out.append(f" + {_short(a)}..{_short(b)}", style="yellow")
    if len(windows) > 3:
        out.append(f" + {len(windows) - 3} more", style="yellow")
    return out


@guarded
def online_status(ctx: typer.Context) -> None:
    """Per online view: entities stored, watermark, its age and the last run."""
    store = open_store(ctx)
    statuses = store.online_status()
    if not statuses:
        console.print("No online feature views are registered (run `skewless apply`).")
        return
    rows: list[list[Cell]] = []
    for s in statuses:
        age = Text(fmt_age(s.age), style="yellow" if s.all_outside_ttl else "")
        rows.append([Text(s.view, style="bold"), f"{s.entities:,}", _coverage_cell(s),
                     age, _short(s.last_run)])
    show_listing(f"Online store ({store.online_store.name}), {fmt_time(store.clock())}; times in UTC",
                 ("view", "entities", "materialized up to", "age", "last run"), rows,
                 wrap=("materialized up to", "last run"))
    legacy = [s for s in statuses if s.legacy_records]
    if legacy:
        err_console.print(Text.assemble(
            ("warning: ", "bold yellow"),
            f"{', '.join(repr(s.view) for s in legacy)}: the online table is empty and "
            f"{sum(s.legacy_records for s in legacy):,} records sit under the table name of an "
            "earlier skewless version; run `skewless rebuild-online` once after the upgrade "
            "(docs/online-stores.md, \"Upgrading from {project}__{view} names\")"), soft_wrap=True)
    lost = [s for s in statuses if s.other_store is not None]
    if lost:
        err_console.print(Text.assemble(("warning: ", "bold red"), (
            f"the online store does not hold what the registry recorded for {len(lost)} view(s) "
            f"({', '.join(s.view for s in lost)}): it restarted empty, was replaced, or was put "
            "back to an older copy of itself (a restored backup, an older snapshot); they are "
            "shown as never materialized. Run `skewless materialize-incremental` (it backfills "
            "them from the beginning) or `skewless rebuild-online`.")), soft_wrap=True)
    if any(not s.materialized and s.other_store is None for s in statuses):
        console.print("Run `skewless materialize-incremental` to fill the views never materialized.")
    if any(s.holes or (s.materialized and s.watermark is None) for s in statuses):
        console.print("Some views are covered only in windows (yellow): rows outside them are not "
                      "online yet; `skewless materialize-incremental` fills the holes.")
    if any(s.all_outside_ttl for s in statuses):
        console.print("An age past the view's ttl (less its source's availability delay; yellow) "
                      "means every served value of it is OUTSIDE_TTL until the next run.")
