"""``skewless init``: create the runnable fraud example repo."""

from __future__ import annotations

import os
import shutil
import time
from datetime import date, datetime, timezone
from importlib import resources
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape
from rich.text import Text

from skewless.cli._common import console, guarded, repo_of
from skewless.cli.templates import FILES, generate_data
from skewless.errors import InvalidRequestError

# Besides the template files and generate_data.OUTPUTS: state left by a previous run of the
# example (its registry and online store), removed by --force so the repo starts fresh.
_STATE_FILES = tuple(f"data/{db}{suffix}" for db in ("registry.db", "online.db")
                     for suffix in ("", "-wal", "-shm", "-journal"))


def register(app: typer.Typer) -> None:
    app.command("init")(init)


@guarded
def init(
    ctx: typer.Context,
    directory: Annotated[Optional[Path], typer.Argument(
        help="Where to create the repo (default: the --repo directory, i.e. '.').",
        show_default=False)] = None,
    force: Annotated[bool, typer.Option(
        "--force", "-f",
        help="Write into a non-empty directory: overwrite the example's files and regenerate its "
        "data/ (resetting its registry and online store). Other files are left alone.")] = False,
    data_end: Annotated[Optional[str], typer.Option(
        "--data-end", metavar="DATE",
        help="The day the example data ends (its newest rows are stamped at that UTC midnight), "
        "e.g. 2024-04-01 for the original 2024 example. Default: the latest midnight at least "
        "25 hours ago, so serving right away shows values and no row lies in the future.",
        show_default=False)] = None,
) -> None:
    """Create the fraud example repo: config, definitions and generated Parquet data."""
    target = directory if directory is not None else repo_of(ctx)
    end = _data_end(data_end)  # checked before anything is written
    started = time.perf_counter()
    removed = create_repo(target, force)
    with console.status("Generating example data..."):
        generated = generate_data.generate(target, end=end)
    elapsed = time.perf_counter() - started

    console.print(f"Created the [bold]fraud[/] example feature repo in "
                  f"[bold]{escape(str(target.resolve()))}[/] ({elapsed:.1f}s)", soft_wrap=True)
    if removed:
        console.print(Text(f"  --force: replaced {', '.join(removed)}", style="yellow"), soft_wrap=True)
    console.print("  feature_store.yaml   project 'fraud', embedded registry and stores")
    console.print("  features.py          entities user, merchant; feature views user_spend,\n"
                  "                       merchant_risk, user_merchant; service fraud_model_v1")
    console.print("  README.md            what is where")
    for path, rows in generated.rows.items():
        note = "  (hive-partitioned by month)" if not path.endswith(".parquet") else ""
        console.print(f"  {path:<28} {rows:>7,} rows{note}")
    console.print(f"  data from {generated.start:%Y-%m-%d} to {generated.end:%Y-%m-%d} (UTC)")
    here = Path.cwd().resolve()
    console.print("\nNext:")
    if target.resolve() != here:
        console.print(Text(f"  cd {os.path.relpath(target.resolve(), here)}"), soft_wrap=True)
    console.print("  skewless plan     # check the definitions, see what apply would do")
    console.print("  skewless apply    # register them")


def _data_end(value: str | None) -> datetime | None:
    """``--data-end``: an ISO date (or a datetime at a UTC midnight)."""
    if value is None:
        return None
    text = value.strip()
    try:
        end = (datetime.fromisoformat(text) if "T" in text or " " in text
               else datetime.combine(date.fromisoformat(text), datetime.min.time()))
    except ValueError:
        raise InvalidRequestError(f"--data-end {value!r} is not an ISO date",
                                  hint="e.g. --data-end 2024-04-01") from None
    end = end.replace(tzinfo=timezone.utc) if end.tzinfo is None else end.astimezone(timezone.utc)
    if end != end.replace(hour=0, minute=0, second=0, microsecond=0):
        raise InvalidRequestError(f"--data-end {value!r} is not a UTC midnight",
                                  hint="give a date, e.g. --data-end 2024-04-01")
    if end > generate_data.default_end():
        raise InvalidRequestError(
            f"--data-end {end:%Y-%m-%d} would put example rows in the future (late corrections "
            "are written up to 25 hours after the day they restate)",
            hint=f"give {generate_data.default_end():%Y-%m-%d} or earlier, or leave --data-end out")
    return end


def create_repo(target: Path, force: bool) -> list[str]:
    """Copy the template files into ``target`` (refusing a non-empty directory unless
    ``force``). Returns the paths a forced run replaced."""
    if target.exists() and not target.is_dir():
        raise InvalidRequestError(f"{target} exists and is not a directory",
                                  hint="pass a new directory name: skewless init NEW_DIR")
    if target.exists() and any(target.iterdir()) and not force:
        raise InvalidRequestError(
            f"directory {target.resolve()} is not empty; refusing to overwrite it",
            hint="choose a new directory (skewless init NEW_DIR), or pass --force to overwrite the "
            "example's files and regenerate its data/ (other files are left alone)")
    removed = []
    for rel in (*FILES, *generate_data.OUTPUTS, *_STATE_FILES):
        path = target / rel
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
        else:
            continue
        removed.append(rel)
    target.mkdir(parents=True, exist_ok=True)
    templates = resources.files("skewless.cli.templates")
    for name in FILES:
        (target / name).write_bytes(templates.joinpath(name).read_bytes())
    return removed
