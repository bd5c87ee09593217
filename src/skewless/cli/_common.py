"""What every command shares: the console, the ``--repo`` option, error reporting.

A command never lets a ``SkewlessError`` escape as a traceback: ``@guarded`` prints
``error: <message>`` and ``hint: <hint>`` and exits with status 1.

``--repo`` is accepted before the command (``skewless --repo x plan``) and after it
(``skewless plan --repo x``), for every command: ``RepoGroup`` adds it to each command that does
not declare its own. Given after the command, it wins over the one before it.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional, TypeVar

import typer
from typer.core import TyperGroup
from rich.console import Console
from rich.text import Text

from skewless.errors import SkewlessError

if TYPE_CHECKING:
    from skewless.store import FeatureStore

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class CliState:
    """Options given before the command (``skewless --repo PATH <command>``)."""

    repo: Path


REPO_HELP = "The feature repo: the directory holding feature_store.yaml."


def repo_of(ctx: typer.Context) -> Path:
    state = ctx.find_root().obj
    return state.repo if isinstance(state, CliState) else Path(".")


def _set_repo(ctx: typer.Context, value: Optional[Path]) -> None:
    """``--repo`` given after the command: it replaces the one given before (or the default)."""
    if value is not None:
        ctx.find_root().obj = CliState(repo=Path(os.path.expanduser(str(value))))


def _repo_option() -> Any:
    """A ``--repo`` / ``-r`` option as typer builds it, setting the root's repo when given."""
    probe = typer.Typer()

    @probe.command()
    def _probe(repo: Annotated[Optional[Path], typer.Option(
            "--repo", "-r", callback=_set_repo, expose_value=False, show_default=False,
            help=REPO_HELP + " Also accepted before the command.")] = None) -> None:
        """Only its option is used."""

    return typer.main.get_command(probe).params[0]


class RepoGroup(TyperGroup):
    """The app's command group: every command accepts ``--repo`` / ``-r`` after its name too."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for command in self.commands.values():
            if not any("--repo" in getattr(p, "opts", ()) for p in command.params):
                command.params.append(_repo_option())


def open_store(ctx: typer.Context) -> FeatureStore:
    """The FeatureStore of the ``--repo`` directory (config errors surface as SkewlessError).
    Its config notes (Feast spellings mapped, docs/configuration.md) go to stderr, once."""
    from skewless.store import FeatureStore

    store = FeatureStore(repo_of(ctx))
    print_notes(store.config.notes)
    return store


def print_notes(notes: Iterable[str]) -> None:
    """``note: <what maps to what>`` on stderr, one line each."""
    for line in notes:
        err_console.print(Text.assemble(("note: ", "bold cyan"), line), soft_wrap=True)


def report_error(e: SkewlessError) -> None:
    """``error: <message>`` then ``hint: <hint>``, on stderr."""
    err_console.print(Text.assemble(("error: ", "bold red"), e.message), soft_wrap=True)
    if e.hint:
        err_console.print(Text.assemble(("hint: ", "bold yellow"), e.hint), soft_wrap=True)


def guarded(fn: F) -> F:
    """Run a command; a SkewlessError becomes a two-line report and exit status 1."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except SkewlessError as e:
            report_error(e)
            raise typer.Exit(1) from None

    return wrapper  # type: ignore[return-value]


def fmt_ttl(ttl: timedelta | None) -> str:
    if ttl is None:
        return "none"
    secs = int(ttl.total_seconds())
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60)):
        if secs % size == 0:
            return f"{secs // size}{unit}"
    return f"{secs}s"


def fmt_tags(tags: dict[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(tags.items()))


def plural(n: int, word: str) -> str:
    return f"{n:,} {word}" + ("" if n == 1 else "s")


def bullet_list(items: Iterable[str]) -> str:
    return "\n".join(f"  - {i}" for i in items)
