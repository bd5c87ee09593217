"""``skewless plan`` and ``skewless apply``: the repo's .py files are the source of truth.

Both load every definition of the repo (``FeatureStore.load_repo``) and hand them, with the
files' load errors, to ``FeatureStore.plan_repo`` / ``apply_repo``: the registry ends up holding
exactly what the repo defines, and a definition deleted from the repo is deleted on apply.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.text import Text

from skewless.cli._common import console, err_console, guarded, open_store, plural
from skewless.errors import InvalidRequestError
from skewless.store import FeatureStore, LoadedRepo, PlanResult

_LINE_STYLES = {"+ ": "green", "~ ": "yellow", "- ": "red", "    ! ": "bold red"}


def register(app: typer.Typer) -> None:
    app.command("plan")(plan)
    app.command("apply")(apply)


def render_plan(result: PlanResult) -> Text:
    """``PlanResult.render()`` in colour: create green, update yellow, delete red, BREAKING and
    DESTRUCTIVE bold red; the summary line in bold."""
    lines = result.render().splitlines()
    out = Text()
    for i, line in enumerate(lines):
        if i:
            out.append("\n")
        style = next((s for prefix, s in _LINE_STYLES.items() if line.startswith(prefix)), "")
        if i == len(lines) - 1 and not style:
            style = "bold"
        marks = [m for m in ("  BREAKING", "  DESTRUCTIVE") if m in line and line.startswith(("~", "-"))]
        if marks:
            head = line[: line.index(marks[0])]
            out.append(head, style=style)
            for m in marks:
                out.append("  ")
                out.append(m.strip(), style="bold red")
        else:
            out.append(line, style=style)
    return out


def _load(ctx: typer.Context) -> tuple[FeatureStore, LoadedRepo]:
    store = open_store(ctx)  # reads feature_store.yaml first: a config error stops here
    with console.status("Loading definitions..."):
        loaded = store.load_repo()
    return store, loaded


def _nothing_defined(loaded: LoadedRepo, store: FeatureStore) -> str | None:
    """A warning when the repo defines nothing at all but the registry holds definitions: a
    mirror apply would delete them all, which is almost always a wrong --repo."""
    if loaded.objects or loaded.problems:
        return None
    held = len(store.snapshot().objects())
    if not held:
        return None
    return (f"no definitions found in {store.repo_path} ({plural(len(loaded.files), 'Python file')} "
            f"scanned); applying would delete all {held} registered objects")


@guarded
def plan(ctx: typer.Context) -> None:
    """Check every definition against the registry and the data; show what apply would change.

    Nothing is written. Every problem is reported at once; breaking changes are marked.
    """
    store, loaded = _load(ctx)
    with console.status("Checking definitions and sources..."):
        result = store.plan_repo(loaded)
    console.print(render_plan(result), soft_wrap=True)
    warning = _nothing_defined(loaded, store)
    if warning:
        console.print(Text(f"warning: {warning}", style="bold yellow"), soft_wrap=True)
    if result.destructive:
        console.print(Text(
            f"apply will drop the online state of {plural(len(result.destructive), 'feature view')} "
            "(DESTRUCTIVE): their served values are gone until materialized again (docs/online.md).",
            style="bold yellow"), soft_wrap=True)
    if result.breaking:
        console.print(Text(
            f"apply will refuse {plural(len(result.breaking), 'breaking change')}: give the new "
            "definition a versioned name, or run `skewless apply --force` if you mean it.",
            style="bold red"), soft_wrap=True)
    elif result.changes:
        console.print("Run `skewless apply` to apply these changes.")


@guarded
def apply(
    ctx: typer.Context,
    force: Annotated[bool, typer.Option(
        "--force", help="Apply breaking changes (removed, renamed or retyped fields) too, and "
        "an empty repo's deletion of everything.")] = False,
) -> None:
    """Register the repo's definitions: the registry will hold exactly what the repo defines.

    Breaking changes are refused unless --force; a refused apply changes nothing.
    """
    store, loaded = _load(ctx)
    warning = _nothing_defined(loaded, store)
    if warning and not force:
        raise InvalidRequestError(warning + "; nothing was changed",
                                  hint="check --repo points at your feature repo, or pass --force "
                                  "to delete everything")
    with console.status("Applying..."):
        result = store.apply_repo(loaded, force=force)
    console.print(render_plan(result), soft_wrap=True)
    for problem in result.cleanup_errors:
        err_console.print(Text.assemble(("warning: ", "bold yellow"), problem), soft_wrap=True)
    if not result.changes:
        console.print(f"Registry of project '{store.project}' unchanged at version {result.version}.")
        return
    forced = f" ({plural(len(result.breaking), 'breaking change')} forced)" if result.breaking else ""
    console.print(Text(f"Applied: registry of project '{store.project}' is now at version "
                       f"{result.version}{forced}.", style="bold green"), soft_wrap=True)
