"""``skewless ls``, ``describe`` and ``history``: what the registry holds, and how it got there."""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum
from typing import Annotated, Any, Optional

import typer
from rich import box
from rich.measure import Measurement
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from skewless.cli._common import console, fmt_tags, fmt_ttl, guarded, open_store
from skewless.define import (Entity, FeatureService, FeatureView, Field, FileSource, FeatureViewProjection,
                             OnDemandFeatureView, PushSource, RequestSource)
from skewless.define._common import FrozenMixin
from skewless.errors import UnknownObjectError, closest
from skewless.registry import Snapshot


class Kind(str, Enum):
    entities = "entities"
    views = "views"
    on_demand = "on-demand"
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


# --- cells, derived from each kind's field list (define/_fields.py) ----------------------------

Render = Callable[[Snapshot, Any], Cell]


def _cell(value: Any) -> Cell:
    """A field's value as a cell, by its type: text (``-`` when empty), yes/no, tags, a list."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict):
        return _dash(fmt_tags(value))
    if isinstance(value, (tuple, list)):
        return ", ".join(map(str, value))
    return _dash("" if value is None else str(value))


def _features(snap: Snapshot, v: FeatureView) -> tuple[Field, ...]:
    return v.served_features(set(snap.join_keys(v)))


# (kind, field) -> its cell in ``ls`` and ``describe``, where the value alone does not say it
_CELLS: dict[tuple[type, str], Render] = {
    (Entity, "name"): lambda snap, e: Text(e.name, style="bold"),
    (FeatureView, "name"): lambda snap, v: Text(v.name, style="bold"),
    (FeatureView, "schema"): lambda snap, v: str(len(_features(snap, v))),
    (FeatureView, "source"): lambda snap, v: v.batch_source.path + (
        f" (+{fmt_ttl(v.batch_source.availability_delay)})" if v.batch_source.availability_delay else ""),
    (FeatureView, "ttl"): lambda snap, v: fmt_ttl(v.ttl),
    (OnDemandFeatureView, "name"): lambda snap, v: Text(v.name, style="bold"),
    (OnDemandFeatureView, "schema"): lambda snap, v: str(len(v.schema)),
    (OnDemandFeatureView, "sources"): lambda snap, v: "\n".join(_on_demand_sources(v)),
    (OnDemandFeatureView, "udf"): lambda snap, v: repr(v.udf),
    (FeatureService, "name"): lambda snap, s: Text(s.name, style="bold"),
    (FeatureService, "projections"): lambda snap, s: "\n".join(
        f"{v} (all {len(f)})" if whole else f"{v}[{', '.join(f)}]"
        for v, f, whole in _service_features(snap, s)),
    (FeatureService, "logging_config"): lambda snap, s: "-" if s.logging_config is None else (
        f"sample {s.logging_config.sample_rate:g}"
        + (f" to {s.logging_config.path}" if s.logging_config.path else "")),
}


def _on_demand_sources(v: OnDemandFeatureView) -> list[str]:
    """Each source of an on-demand view: ``view[a, b]`` / ``view (all)``, ``request name[a: Int64]``."""
    out = []
    for src in v.sources:
        if isinstance(src, RequestSource):
            out.append(f"request {src.name}[" + ", ".join(f"{f.name}: {f.dtype}" for f in src.schema) + "]"
                       + (f" - {src.description}" if src.description else ""))
        elif isinstance(src, FeatureViewProjection):
            out.append(f"{src.view_name} (all)" if src.features is None
                       else f"{src.view_name}[{', '.join(src.features)}]")
    return out


def _ls_columns(cls: type[FrozenMixin], *more: tuple[str, tuple[int, str]]) -> list[tuple[str, str]]:
    """(field, heading) of each ``ls`` column of a kind (and of the columns ``more`` that are no
    field: (name, (column, heading))), in column order."""
    columns = sorted([(f.ls, f.name) for f in cls.FIELDS if f.ls] + [(at, name) for name, at in more])
    return [(name, at[1]) for at, name in columns]


def _field_cell(snap: Snapshot, obj: Any, name: str) -> Cell:
    render = _CELLS.get((type(obj), name))
    return render(snap, obj) if render else _cell(getattr(obj, name))


def _show_kind(snap: Snapshot, title: str, cls: type[FrozenMixin], objects: list[Any]) -> None:
    """One ``ls`` table: a column per field of the kind's field list that has an ``ls`` column."""
    columns = _ls_columns(cls)
    rows = [[_field_cell(snap, obj, name) for name, _ in columns] for obj in objects]
    show_listing(f"{title} ({len(rows)})", tuple(h for _, h in columns), rows)


def show_entities(snap: Snapshot) -> None:
    _show_kind(snap, "Entities", Entity, list(snap.entities.values()))


def show_views(snap: Snapshot) -> None:
    _show_kind(snap, "Feature views", FeatureView, list(snap.feature_views.values()))


def show_on_demand(snap: Snapshot) -> None:
    _show_kind(snap, "On-demand feature views", OnDemandFeatureView,
               list(snap.on_demand_feature_views.values()))


def _service_features(snap: Snapshot, svc: FeatureService) -> list[tuple[str, list[str], bool]]:
    """(view, features, whole view?) for each projection of ``svc``."""
    out = []
    for p in svc.projections:
        view = snap.feature_views.get(p.view_name)
        odfv = snap.on_demand_feature_views.get(p.view_name)
        if p.features is not None:
            out.append((p.view_name, list(p.features), False))
        elif view is not None:
            out.append((p.view_name, [f.name for f in _features(snap, view)], True))
        elif odfv is not None:
            out.append((p.view_name, odfv.field_names, True))
        else:
            out.append((p.view_name, [], True))
    return out


def show_services(snap: Snapshot) -> None:
    _show_kind(snap, "Feature services", FeatureService, list(snap.feature_services.values()))


@guarded
def ls(
    ctx: typer.Context,
    kind: Annotated[Optional[Kind], typer.Argument(
        help="What to list (default: everything).", show_default=False)] = None,
) -> None:
    """List registered entities, feature views, on-demand feature views and feature services."""
    store = open_store(ctx)
    snap = store.snapshot()
    if snap.version == 0:
        console.print(f"Project '{store.project}' has nothing registered yet: run `skewless apply`.")
        return
    shows = {Kind.entities: show_entities, Kind.views: show_views, Kind.on_demand: show_on_demand,
             Kind.services: show_services}
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


Rows = list[tuple[str, Cell]]


def _label(cls: type[FrozenMixin], name: str) -> str:
    spec = next(f for f in cls.FIELDS if f.name == name)
    return spec.describe[1] if spec.describe else name


def _entities_rows(snap: Snapshot, v: FeatureView) -> Rows:
    """A view's entities (each with its join keys), then its join-key columns."""
    return [(_label(FeatureView, "entities"),
             ", ".join(f"{e} ({', '.join(snap.entities[e].join_keys)})" if e in snap.entities else e
                       for e in v.entities)),
            (_label(Entity, "join_keys"), ", ".join(snap.join_keys(v)))]


def _source_rows(snap: Snapshot, v: FeatureView) -> Rows:
    """The rows of a view's source: the batch source's fields and the push source's, in the
    rows their field lists give. A source's name and description are shown in its first row."""
    src, push = v.batch_source, v.push_source
    about = f" - {src.description}" if src.description else ""
    cells: dict[str, Cell] = {
        "path": f"{src.path} (name {src.name}){about}",
        "timestamp_field": src.timestamp_field,
        "created_timestamp_column": _dash(src.created_timestamp_column or ""),
        "field_mapping": _dash(", ".join(f"{a} -> {b}" for a, b in src.field_mapping.items())),
        "availability_delay": (f"{fmt_ttl(src.availability_delay)} (a row is usable that long "
                               "after its event time)") if src.availability_delay else "-",
        "event_id_column": _dash(src.event_id_column or ""),
        "name": (f"{push.name} (push writes into {push.push_dir})"
                 + (f" - {push.description}" if push.description else "")) if push else "-",
    }
    rows = [(f.describe, cells[f.name]) for cls in (FileSource, PushSource) for f in cls.FIELDS
            if f.describe]
    return [(label, cell) for (_, label), cell in sorted(rows, key=lambda r: r[0][0])]


# (kind, field) -> its ``describe`` rows, where it takes more than one
_DESCRIBE_ROWS: dict[tuple[type, str], Callable[[Snapshot, Any], Rows]] = {
    (FeatureView, "entities"): _entities_rows,
    (FeatureView, "source"): _source_rows,
}


def _describe_rows(snap: Snapshot, obj: FrozenMixin) -> Rows:
    """The property rows of ``describe`` for one definition, from its kind's field list."""
    cls = type(obj)
    rows: Rows = []
    for f in sorted((f for f in cls.FIELDS if f.describe), key=lambda f: f.describe or (0, "")):
        render = _DESCRIBE_ROWS.get((cls, f.name))
        label = f.describe[1] if f.describe else f.name
        rows.extend(render(snap, obj) if render else [(label, _field_cell(snap, obj, f.name))])
    return rows


def describe_entity(snap: Snapshot, e: Entity) -> None:
    used = [v.name for v in snap.feature_views.values() if e.name in v.entities]
    console.print(Text(f"Entity {e.name}", style="bold underline"))
    console.print(_props([*_describe_rows(snap, e), ("used by views", _dash(", ".join(used)))]))


def _field_cells(v: FeatureView, keys: tuple[str, ...], f: Field) -> dict[str, Cell]:
    role = "join key" if f.name in keys else "feature"
    default = "-" if f.default is None else repr(f.default)
    if f.default is not None and v.on_missing != "default" and role == "feature":
        default += f" (unused: on_missing={v.on_missing})"
    return {"name": Text(f.name, style="bold" if role == "feature" else "dim"), "dtype": str(f.dtype),
            "role": role, "default": default, "description": _dash(f.description),
            "tags": _dash(fmt_tags(f.tags))}


def describe_view(snap: Snapshot, v: FeatureView) -> None:
    keys = snap.join_keys(v)
    services = [s.name for s in snap.feature_services.values()
                if any(p.view_name == v.name for p in s.projections)]
    on_demand = [o.name for o in snap.on_demand_feature_views.values()
                 if any(p.view_name == v.name for p in o.view_sources)]
    console.print(Text(f"Feature view {v.name}", style="bold underline"))
    console.print(_props([*_describe_rows(snap, v), ("used by services", _dash(", ".join(services))),
                          *([("read by on-demand views", ", ".join(on_demand))] if on_demand else [])]))
    # the field table: Field's ``ls`` columns, with each field's role (join key or feature)
    columns = _ls_columns(Field, ("role", (2, "role")))
    rows: list[list[Cell]] = []
    for f in v.schema:
        cells = _field_cells(v, keys, f)
        rows.append([cells[name] for name, _ in columns])
    show_listing(f"Fields ({len(_features(snap, v))} features)", tuple(h for _, h in columns), rows)


def describe_on_demand(snap: Snapshot, v: OnDemandFeatureView) -> None:
    """An on-demand view: its properties, its output fields, then the stored function's text."""
    services = [s.name for s in snap.feature_services.values()
                if any(p.view_name == v.name for p in s.projections)]
    console.print(Text(f"On-demand feature view {v.name}", style="bold underline"))
    console.print(_props([*_describe_rows(snap, v), ("used by services", _dash(", ".join(services)))]))
    columns = _ls_columns(Field)
    rows: list[list[Cell]] = []
    for f in v.schema:
        cells: dict[str, Cell] = {"name": Text(f.name, style="bold"), "dtype": str(f.dtype),
                 "default": "-" if f.default is None else repr(f.default),
                 "description": _dash(f.description), "tags": _dash(fmt_tags(f.tags))}
        rows.append([cells[name] for name, _ in columns])
    show_listing(f"Fields ({len(v.schema)} features)", tuple(h for _, h in columns), rows)
    console.print(Text("Function (as stored; docs/on-demand.md)", style="bold cyan"))
    bound = [f"{k} = import {t}" for k, t in v.udf.spec["imports"].items()] + \
        [f"{k} = {c!r}" for k, c in v.udf.spec["constants"].items()]
    console.print(Text("\n".join([*bound, v.udf.spec["source"].rstrip()])), markup=False)


def describe_service(snap: Snapshot, s: FeatureService) -> None:
    console.print(Text(f"Feature service {s.name}", style="bold underline"))
    console.print(_props(_describe_rows(snap, s)))
    rows: list[list[Cell]] = []
    for vname, feats, whole in _service_features(snap, s):
        view = snap.feature_views.get(vname) or snap.on_demand_feature_views.get(vname)
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
        elif isinstance(obj, OnDemandFeatureView):
            describe_on_demand(snap, obj)
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
