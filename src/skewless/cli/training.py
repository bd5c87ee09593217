"""``skewless historical``: write a point-in-time correct training set to Parquet."""

from __future__ import annotations

import os
import time
from datetime import datetime
from pathlib import Path
from typing import Annotated, Optional

import pyarrow as pa
import pyarrow.parquet as pq
import typer
from rich.progress import (BarColumn, Progress, SpinnerColumn, TaskProgressColumn, TextColumn,
                           TimeElapsedColumn)
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from skewless.cli._common import console, guarded, open_store, plural
from skewless.engines.base import JobProgress, RetrievalJob
from skewless.errors import InvalidRequestError
from skewless.times import to_utc

OUTPUT_FORMATS = {".parquet": "Parquet", ".csv": "CSV"}


def register(app: typer.Typer) -> None:
    app.command("historical")(historical)


def read_entities(path: Path, timestamp_column: str) -> pa.Table:
    """Entity rows from a Parquet file/directory or a CSV file. In a CSV, a timestamp column
    read as text is parsed (naive means UTC)."""
    if not path.exists():
        raise InvalidRequestError(f"entities file {path} does not exist",
                                  hint="pass a Parquet or CSV file with the join keys and "
                                  f"'{timestamp_column}' columns")
    try:
        if path.suffix.lower() == ".csv":
            from pyarrow import csv

            table = csv.read_csv(path)
        else:
            table = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as e:
        raise InvalidRequestError(f"cannot read entities file {path}: {e}",
                                  hint="pass a Parquet file (or directory) or a .csv file") from None
    if timestamp_column in table.column_names and pa.types.is_string(table.schema.field(timestamp_column).type):
        import pandas as pd

        text = table.column(timestamp_column).to_pandas()
        parsed = pd.to_datetime(text, utc=True, format="ISO8601", errors="coerce")
        bad = parsed.isna() & text.notna()
        if bad.any():
            row = int(bad.to_numpy().argmax())
            raise InvalidRequestError(
                f"entities file {path}: column '{timestamp_column}' row {row + 1} holds "
                f"{text.iloc[row]!r}, which is not an ISO timestamp",
                hint="write timestamps like 2024-01-15T10:00:00Z (naive means UTC)")
        i = table.column_names.index(timestamp_column)
        table = table.set_column(i, timestamp_column, pa.array(parsed, type=pa.timestamp("us", tz="UTC")))
    return table


def _parse_as_of(value: str | None) -> datetime | None:
    return None if value is None else to_utc(value, "--as-of")


def output_format(path: Path) -> str:
    """The format of ``--output``, from its extension: .parquet or .csv; anything else is
    refused before any work (docs/cli.md)."""
    if path.is_dir():
        raise InvalidRequestError(f"--output {path} is a directory; pass a file path",
                                  hint=f"e.g. --output {path / 'training.parquet'}")
    suffix = path.suffix.lower()
    if suffix not in OUTPUT_FORMATS:
        shown = f"'{path.suffix}'" if path.suffix else "no extension"
        raise InvalidRequestError(
            f"--output {path} has {shown}; historical writes "
            + " or ".join(f"{name} ({ext})" for ext, name in OUTPUT_FORMATS.items()),
            hint=f"name the file {path.with_suffix('.parquet').name} or {path.with_suffix('.csv').name}")
    return OUTPUT_FORMATS[suffix]


def write_csv(parquet: Path, target: Path) -> None:
    """``parquet`` as CSV at ``target``, batch by batch, replaced atomically. Timestamps are
    written in ISO 8601 (UTC), as ``--entities`` reads them back."""
    from pyarrow import csv

    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    try:
        source = pq.ParquetFile(parquet)
        with csv.CSVWriter(tmp, source.schema_arrow) as writer:
            for batch in source.iter_batches():
                writer.write_batch(batch)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


def _feature_refs(features: list[str] | None) -> list[str]:
    return [ref.strip() for item in features or [] for ref in item.split(",") if ref.strip()]


def null_counts(path: Path, columns: list[str]) -> dict[str, int]:
    """Nulls per column of a Parquet file, read batch by batch (the file may be large)."""
    counts = dict.fromkeys(columns, 0)
    for batch in pq.ParquetFile(path).iter_batches(columns=columns):
        for c in columns:
            counts[c] += batch.column(c).null_count
    return counts


@guarded
def historical(
    ctx: typer.Context,
    entities: Annotated[Path, typer.Option(
        "--entities", "-e", show_default=False,
        help="Parquet (file or directory) or CSV of entity rows: the join keys and "
        "event_timestamp; other columns (labels) pass through.")],
    output: Annotated[Path, typer.Option(
        "--output", "-o", show_default=False,
        help="File to write, Parquet (.parquet) or CSV (.csv) by its extension (replaced atomically).")],
    features: Annotated[Optional[list[str]], typer.Option(
        "--features", "-f", show_default=False,
        help="Feature references view:feature (view:* for all), comma-separated or repeated.")] = None,
    service: Annotated[Optional[str], typer.Option(
        "--service", "-s", show_default=False, help="A feature service instead of --features.")] = None,
    full_feature_names: Annotated[bool, typer.Option(
        "--full-feature-names", help="Name columns view__feature instead of feature.")] = False,
    as_of: Annotated[Optional[str], typer.Option(
        "--as-of", show_default=False,
        help="ISO timestamp: only source rows known by then count, to rebuild a training set "
        "exactly.")] = None,
) -> None:
    """Write a point-in-time correct training set to Parquet or CSV.

    For each entity row, every requested feature takes the value known at the row's timestamp
    (never a later one). Rows keep their order and their other columns.
    """
    refs = _feature_refs(features)
    if bool(refs) == bool(service):
        raise InvalidRequestError("pass exactly one of --features and --service",
                                  hint="e.g. --service fraud_model_v1, or --features "
                                  "user_spend:amount_sum_7d,merchant_risk:risk_score")
    cutoff = _parse_as_of(as_of)
    fmt = output_format(output)
    store = open_store(ctx)
    started = time.perf_counter()
    entity_table = read_entities(entities, store.config.entity_timestamp_column)
    job = store.get_historical_features(entity_table, features=refs or service,
                                        full_feature_names=full_feature_names, as_of=cutoff)
    # CSV: the Parquet result (streamed by the engine) next to the target, then converted
    parquet_out = output if fmt == "Parquet" else output.with_name(f".{output.name}.parquet-{os.getpid()}")
    try:
        written = _join_with_progress(job, entity_table.num_rows, parquet_out)
        if fmt == "CSV":
            write_csv(written, output)
        _report(job, written, output, started)   # read from the Parquet result
    finally:
        if fmt == "CSV" and parquet_out.exists():
            parquet_out.unlink()


def _join_with_progress(job: RetrievalJob, rows: int, path: Path) -> Path:
    """``job.to_parquet(path)`` under a progress display: a spinner and the elapsed time while
    the engine cannot tell how far it is, a bar once it can (DuckDB's progress of the running
    step: one step per view), then the rows written (docs/cli.md)."""
    title = f"Point-in-time join of {plural(rows, 'row')}"
    with Progress(SpinnerColumn(finished_text="[green]done"), TextColumn("[bold]{task.description}"),
                  BarColumn(), TaskProgressColumn(), TextColumn("{task.fields[step]}"),
                  TimeElapsedColumn(), console=console) as progress:
        task = progress.add_task(title, total=None, step="")

        def report(p: JobProgress) -> None:
            if p.done:
                progress.update(task, total=100.0, completed=100.0,
                                step=f"{plural(p.rows or 0, 'row')} written")
            elif p.percent is None:
                progress.update(task, step=p.step)
            else:
                progress.update(task, total=100.0, completed=p.percent, step=p.step)
        job.progress = report
        return Path(job.to_parquet(path))


def _report(job: RetrievalJob, written: Path, output: Path, started: float) -> None:
    elapsed = time.perf_counter() - started
    meta = pq.ParquetFile(written)
    schema = meta.schema_arrow
    feature_cols = job.feature_columns
    nulls = null_counts(written, feature_cols)
    rows = meta.metadata.num_rows
    console.print(f"Wrote [bold]{plural(rows, 'row')}[/] x {plural(len(schema.names), 'column')} to "
                  f"[bold]{escape(str(output))}[/] in {elapsed:.2f}s", soft_wrap=True)
    passthrough = [c for c in schema.names if c not in feature_cols]
    console.print(Text(f"  entity columns: {', '.join(passthrough)}"), soft_wrap=True)
    t = Table("feature", "type", "nulls", "null %", title=f"{plural(len(feature_cols), 'feature')}",
              title_justify="left")
    for c in feature_cols:
        pct = 100.0 * nulls[c] / rows if rows else 0.0
        t.add_row(Text(c), str(schema.field(c).type), f"{nulls[c]:,}", f"{pct:.1f}")
    console.print(t)
