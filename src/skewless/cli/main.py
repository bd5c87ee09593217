"""The ``skewless`` app: global options, then each command group registers its commands."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from skewless import __version__
from skewless.cli import audit, catalog, definitions, monitor, online, repo_init, serve, stream, training
from skewless.cli._common import REPO_HELP, CliState, RepoGroup

app = typer.Typer(
    name="skewless",
    cls=RepoGroup,  # --repo after the command too
    help="skewless: a feature store with no training-serving skew by construction.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

# One module per command group; each adds its commands to the app.
for group in (repo_init, definitions, catalog, training, online, serve, stream, audit, monitor):
    group.register(app)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"skewless {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    repo: Annotated[Path, typer.Option(
        "--repo", "-r", envvar="SKEWLESS_REPO", show_envvar=True,
        help=REPO_HELP + " Also accepted after the command.",
    )] = Path("."),
    version: Annotated[bool, typer.Option(
        "--version", callback=_version, is_eager=True, help="Print the version and exit.",
    )] = False,
) -> None:
    """Global options, stored for the commands."""
    ctx.obj = CliState(repo=Path(os.path.expanduser(str(repo))))


def main() -> None:
    """Entry point of the ``skewless`` script."""
    app(prog_name="skewless")
