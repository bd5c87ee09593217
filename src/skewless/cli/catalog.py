"""``skewless ls``, ``describe`` and ``history``: what the registry holds, and how it got there."""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Any, Optional

import typer
from rich import box
from rich.measure import Measurement
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from skewless.cli._common import console, fmt_tags, fmt_ttl, guarded, open_store
from skewless.define import Entity, FeatureService, FeatureView
from skewless.errors import UnknownObjectError, closest
from skewless.registry import Snapshot


class Kind(str, Enum):
    entities = "entities"
    views = "views"
    services = "services"


def register(app: typer.Typer) -> None:
    app.command("ls")(ls)
    app.command("describe")(describe)
    app.command("history")(history)


Cell = str | Text


def _table(title: str, *columns: str, wrap: tuple[str, ...] = ("description", "tags")) -> Table:
    """A listing: identifiers never wrap; the free-text columns named in ``wrap`` take what
    width is left."""
    t = Table(title=title, title_justify="left", title_style="bold", box=box.SIMPLE_HEAD,
              show_edge=False, pad_edge=False)
    for c in columns:
        if c in wrap:
            t.add_column(c, overflow="fold", ratio=1, min_width=12)
        else:
            t.add_column(c, no_wrap=True)
    return t


def show_listing(title: str, columns: tuple[str, ...], rows: list[list[Cell]],
                 wrap: tuple[str, ...] = ("description", "tags")) -> None:
    """A table when the terminal is wide enough for it; otherwise one block per row (name, then
    its other columns as ``key  value`` lines), so nothing is cut off on a narrow terminal."""
    table = _table(title, *columns, wrap=wrap)
    for row in rows:
        table.add_row(*map(_text, row))
    needed = Measurement.get(console, console.options.update_width(10_000), table).minimum
    if needed <= console.width:
        console.print(table)
        return
    console.print(Text(title, style="bold"))
    for row in rows:
        console.print(Text("  ") + _text(row[0]))
        grid = _props([(c, v) for c, v in zip(columns[1:], row[1:])])
        console.print(Padding(grid, (0, 0, 0, 4)))


def _dash(value: str) -> str:
    return value if value else "-"


def _text(cell: Cell) -> Text:
    """User text is never rich markup: 'view[a, b]' must print as it is."""
    return cell if isinstance(cell, Text) else Text(cell)


def show_entities(snap: Snapshot) -> None:
    rows: list[list[Cell]] = [
        [Text(e.name, style="bold"), ", ".join(e.join_keys), _dash(e.description), _dash(e.owner),
         _dash(fmt_tags(e.tags))] for e in snap.entities.values()]
    show_listing(f"Entities ({len(rows)})", ("name", "join keys", "description", "owner", "tags"), rows)


def show_views(snap: Snapshot) -> None:
    rows: list[list[Cell]] = []
    for v in snap.feature_views.values():
        n = len(v.features_for(set(snap.join_keys(v))))
        rows.append([Text(v.name, style="bold"), ", ".join(v.entities), str(n), fmt_ttl(v.ttl),
                     v.batch_source.path, _dash(v.description), _dash(v.owner), _dash(fmt_tags(v.tags))])
    show_listing(f"Feature views ({len(rows)})", ("name", "entities", "features", "ttl", "source",
                                                  "description", "owner", "tags"), rows)


def _service_features(snap: Snapshot, svc: FeatureService) -> list[tuple[str, list[str], bool]]:
    """(view, features, whole view?) for each projection of ``svc``."""
    out = []
    for p in svc.projections:
        view = snap.feature_views.get(p.view_name)
        if p.features is not None:
            out.append((p.view_name, list(p.features), False))
        elif view is not None:
            out.append((p.view_name, [f.name for f in view.features_for(set(snap.join_keys(view)))], True))
        else:
            out.append((p.view_name, [], True))
    return out


def show_services(snap: Snapshot) -> None:
    rows: list[list[Cell]] = []
    for s in snap.feature_services.values():
        parts = [f"{v} (all {len(f)})" if whole else f"{v}[{', '.join(f)}]"
                 for v, f, whole in _service_features(snap, s)]
        rows.append([Text(s.name, style="bold"), "\n".join(parts), _dash(s.description),
                     _dash(s.owner), _dash(fmt_tags(s.tags))])
    show_listing(f"Feature services ({len(rows)})",
                 ("name", "features", "description", "owner", "tags"), rows)


@guarded
def ls(
    ctx: typer.Context,
    kind: Annotated[Optional[Kind], typer.Argument(
        help="What to list (default: everything).", show_default=False)] = None,
) -> None:
    """List registered entities, feature views and feature services."""
    store = open_store(ctx)
    snap = store.snapshot()
    if snap.version == 0:
        console.print(f"Project '{store.project}' has nothing registered yet: run `skewless apply`.")
        return
    shows = {Kind.entities: show_entities, Kind.views: show_views, Kind.services: show_services}
    for k, show in shows.items():
        if kind is None or kind == k:
            show(snap)
    console.print(f"[dim]project '{store.project}', registry version {snap.version}[/]")


def _find(snap: Snapshot, name: str) -> list[Any]:
    """Every object called ``name`` (an entity may share its name with a view)."""
    return [obj for _, n, obj in snap.objects() if n == name]


def _props(rows: list[tuple[str, Cell]]) -> Table:
    t = Table.grid(padding=(0, 2))
    t.add_column(style="bold cyan", no_wrap=True)
    t.add_column(overflow="fold")
    for k, v in rows:
        t.add_row(k, _text(v))
    return t


def describe_entity(snap: Snapshot, e: Entity) -> None:
    used = [v.name for v in snap.feature_views.values() if e.name in v.entities]
    console.print(Text(f"Entity {e.name}", style="bold underline"))
    console.print(_props([
        ("join keys", ", ".join(e.join_keys)),
        ("description", _dash(e.description)),
        ("owner", _dash(e.owner)),
        ("tags", _dash(fmt_tags(e.tags))),
        ("used by views", _dash(", ".join(used))),
    ]))


def describe_view(snap: Snapshot, v: FeatureView) -> None:
    keys = snap.join_keys(v)
    src = v.batch_source
    push = v.push_source
    services = [s.name for s in snap.feature_services.values()
                if any(p.view_name == v.name for p in s.projections)]
    console.print(Text(f"Feature view {v.name}", style="bold underline"))
    console.print(_props([
        ("description", _dash(v.description)),
        ("entities", ", ".join(f"{e} ({', '.join(snap.entities[e].join_keys)})"
                               if e in snap.entities else e for e in v.entities)),
        ("join keys", ", ".join(keys)),
        ("source", f"{src.path} (name {src.name})"),
        ("push source", f"{push.name} (push writes into {push.push_dir})" if push else "-"),
        ("timestamp field", src.timestamp_field),
        ("created timestamp", _dash(src.created_timestamp_column or "")),
        ("field mapping", _dash(", ".join(f"{a} -> {b}" for a, b in src.field_mapping.items()))),
        ("ttl", fmt_ttl(v.ttl)),
        ("on missing", v.on_missing),
        ("online", "yes" if v.online else "no"),
        ("owner", _dash(v.owner)),
        ("tags", _dash(fmt_tags(v.tags))),
        ("used by services", _dash(", ".join(services))),
    ]))
    rows: list[list[Cell]] = []
    for f in v.schema:
        role = "join key" if f.name in keys else "feature"
        default = "-" if f.default is None else repr(f.default)
        if f.default is not None and v.on_missing != "default" and role == "feature":
            default += f" (unused: on_missing={v.on_missing})"
        rows.append([Text(f.name, style="bold" if role == "feature" else "dim"), str(f.dtype), role,
                     default, _dash(f.description), _dash(fmt_tags(f.tags))])
    show_listing(f"Fields ({len(v.features_for(set(keys)))} features)",
                 ("name", "type", "role", "default", "description", "tags"), rows)


def describe_service(snap: Snapshot, s: FeatureService) -> None:
    console.print(Text(f"Feature service {s.name}", style="bold underline"))
    console.print(_props([
        ("description", _dash(s.description)),
        ("owner", _dash(s.owner)),
        ("tags", _dash(fmt_tags(s.tags))),
    ]))
    rows: list[list[Cell]] = []
    for vname, feats, whole in _service_features(snap, s):
        view = snap.feature_views.get(vname)
        fields = {f.name: f for f in view.schema} if view else {}
        for fname in feats:
            f = fields.get(fname)
            rows.append([Text(fname, style="bold"), vname + (" (whole view)" if whole else ""),
                         str(f.dtype) if f else "?", _dash(f.description) if f else "-"])
    show_listing(f"Features ({len(rows)})", ("feature", "view", "type", "description"), rows)


@guarded
def describe(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="An entity, feature view or feature service.")],
) -> None:
    """Show everything about one registered entity, feature view or feature service.

    For a view: its source, TTL, missing-value policy and each field with its type, default
    and description.
    """
    store = open_store(ctx)
    snap = store.snapshot()
    found = _find(snap, name)
    if not found:
        raise UnknownObjectError(
            f"'{name}' is not an entity, feature view or feature service of project "
            f"'{store.project}'; {closest(name, [n for _, n, _ in snap.objects()])}",
            hint="run `skewless ls` to see what is registered, or `skewless apply` to register it")
    for i, obj in enumerate(found):
        if i:
            console.print()
        if isinstance(obj, Entity):
            describe_entity(snap, obj)
        elif isinstance(obj, FeatureView):
            describe_view(snap, obj)
        else:
            describe_service(snap, obj)


_OPS = {"create": ("+", "green"), "update": ("~", "yellow"), "delete": ("-", "red")}


@guarded
def history(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="How many applies to show.")] = 20,
) -> None:
    """Show past applies, newest first: version, time, user and what changed."""
    store = open_store(ctx)
    entries = store.history(limit)
    if not entries:
        console.print(f"Project '{store.project}' has no apply history yet: run `skewless apply`.")
        return
    rows: list[list[Cell]] = []
    for h in entries:
        changes = Text()
        for i, c in enumerate(h.changes):
            sym, style = _OPS.get(c.get("op", ""), ("?", ""))
            if i:
                changes.append("\n")
            changes.append(f"{sym} {c['kind'].replace('_', ' ')} {c['name']}", style=style)
            if c.get("destructive"):
                changes.append(" DESTRUCTIVE", style="bold red")
            if c.get("breaking"):
                changes.append(" BREAKING: " + "; ".join(c["breaking"]), style="bold red")
            elif c.get("details"):
                changes.append(f" ({'; '.join(c['details'])})", style="dim")
        rows.append([Text(f"version {h.version}", style="bold"),
                     h.applied_at.strftime("%Y-%m-%d %H:%M:%S"), h.user, changes])
    show_listing(f"Apply history of project '{store.project}'",
                 ("version", "applied at (UTC)", "user", "changes"), rows, wrap=("changes",))
