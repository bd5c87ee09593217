"""What every command shares: the console, the ``--repo`` option, error reporting.

A command never lets a ``SkewlessError`` escape as a traceback: ``@guarded`` prints
``error: <message>`` and ``hint: <hint>`` and exits with status 1.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import typer
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


def repo_of(ctx: typer.Context) -> Path:
    state = ctx.find_root().obj
    return state.repo if isinstance(state, CliState) else Path(".")


def open_store(ctx: typer.Context) -> FeatureStore:
    """The FeatureStore of the ``--repo`` directory (config errors surface as SkewlessError)."""
    from skewless.store import FeatureStore

    return FeatureStore(repo_of(ctx))


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
