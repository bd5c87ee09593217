"""plan / apply: validate every definition, diff against the registry, refuse breaking changes.

Nothing is written unless every check passes: problems are gathered into one report first.

Online state follows the registry (docs/online.md). A view deleted, re-created or changed so
that its stored records no longer fit (``registry.diff.online_reset``) retires its online
table. The order, so that the registry is always consistent and nothing old is ever served:

1. one registry transaction commits the definitions with the views' new generations (so every
   reader resolves a new table name from then on), deletes the materialization state of the
   retired tables and lists those tables as retired (state namespace ``online_retired``);
2. then the retired tables are dropped from the online store, each crossed off the list once
   dropped. A drop that fails (the store is down) leaves the table listed: the apply still
   succeeded, ``PlanResult.cleanup_errors`` says which table is left, and every later apply
   tries again. A retired table is never read again (its name is never reused), so a
   leftover only costs space.
"""

from __future__ import annotations

import getpass
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from skewless.context import RuntimeContext
from skewless.define import Entity, FeatureService, FeatureView
from skewless.errors import BreakingChangeError, PlanError, SkewlessError, closest
from skewless.kernels.source import ResolvedSource, check_view_source, resolve_source
from skewless.registry import Change, Snapshot, diff, kind_of
from skewless.services.materialize import STATE
from skewless.services.push import check_push_sources


@dataclass
class PlanResult:
    """What an apply would do (or did): the diff from the registry to the target state."""

    current: Snapshot
    target: Snapshot
    changes: list[Change] = field(default_factory=list)
    version: int | None = None  # set once applied
    dropped_tables: list[str] = field(default_factory=list)    # retired online tables dropped
    cleanup_errors: list[str] = field(default_factory=list)    # retired tables left (retried)

    @property
    def breaking(self) -> list[Change]:
        return [c for c in self.changes if c.breaking]

    @property
    def destructive(self) -> list[Change]:
        """Changes that drop online state (a view deleted, or starting a new online table)."""
        return [c for c in self.changes if c.destructive]

    def render(self) -> str:
        if not self.changes:
            return "No changes: the registry already matches your definitions."
        sym = {"create": "+", "update": "~", "delete": "-"}
        lines = []
        for c in self.changes:
            mark = ("  BREAKING" if c.breaking else "") + ("  DESTRUCTIVE" if c.destructive else "")
            lines.append(f"{sym[c.op]} {c.kind.replace('_', ' ')} {c.name}{mark}")
            lines.extend(f"    ! {b}" for b in c.breaking)
            lines.extend(f"    ! {d}" for d in c.destructive)
            lines.extend(f"    {d}" for d in c.details)
        n = {op: sum(c.op == op for c in self.changes) for op in sym}
        lines.append(f"{n['create']} to create, {n['update']} to update, {n['delete']} to delete"
                     + (f"; {len(self.breaking)} breaking" if self.breaking else "")
                     + (f"; {len(self.destructive)} destructive (online state dropped)"
                        if self.destructive else ""))
        return "\n".join(lines)


def next_version_name(name: str) -> str:
    m = re.match(r"^(.*)_v(\d+)$", name)
    return f"{m.group(1)}_v{int(m.group(2)) + 1}" if m else f"{name}_v2"


def build_target(current: Snapshot, objects: Iterable[Any], partial: bool,
                 delete: Iterable[Any] = ()) -> tuple[Snapshot, list[str]]:
    """The registry state after applying ``objects`` (``partial=False``: exactly these objects)."""
    problems: list[str] = []
    target = current.copy() if partial else Snapshot(current.project, current.version)
    given: dict[tuple[str, str], Any] = {}
    for obj in objects:
        try:
            kind = kind_of(obj)
        except TypeError as e:
            problems.append(str(e))
            continue
        key = (kind, obj.name)
        if key in given and given[key] != obj:
            problems.append(f"two different {kind.replace('_', ' ')}s are named '{obj.name}'; "
                            "names must be unique")
            continue
        given[key] = obj
    # Entities referenced by views as objects come along implicitly.
    for (kind, _), obj in list(given.items()):
        if kind == "feature_view":
            for ename, ent in obj.entity_objects.items():
                if ("entity", ename) in given and given[("entity", ename)] != ent:
                    problems.append(f"feature view '{obj.name}' uses an entity '{ename}' that differs "
                                    "from the entity of that name being applied")
                given.setdefault(("entity", ename), ent)
    for (kind, name), obj in given.items():
        target.table(kind)[name] = obj
    for obj in delete:
        kind = kind_of(obj)
        target.table(kind).pop(obj.name, None)
    return target, problems


def validate(target: Snapshot, repo_path: str | Path, check_sources: bool = True) -> list[str]:
    """Every cross-object problem in ``target``: unknown references, bad sources, clashes."""
    problems: list[str] = []
    names: dict[str, str] = {}
    for kind, name, _ in target.objects():
        if kind != "entity" and name in names:
            problems.append(f"'{name}' is the name of both a {names[name]} and a {kind.replace('_', ' ')}")
        names.setdefault(name, kind.replace("_", " "))
    for view in target.feature_views.values():
        unknown = [e for e in view.entities if e not in target.entities]
        for e in unknown:
            problems.append(f"feature view '{view.name}': entity '{e}' is unknown; "
                            f"{closest(e, target.entities)}")
        resolved: ResolvedSource | None = None
        if check_sources:
            try:
                resolved = resolve_source(view.batch_source, repo_path)
            except SkewlessError as e:
                problems.append(f"feature view '{view.name}': {e.message}")
        if unknown:
            continue
        keys = target.join_keys(view)
        if len(set(keys)) != len(keys):
            problems.append(f"feature view '{view.name}': its entities share a join key ({list(keys)})")
        if not view.aggregated and not view.features_for(set(keys)):
            problems.append(f"feature view '{view.name}': schema has no features besides the join keys")
        if resolved is not None:
            try:
                problems.extend(check_view_source(view, keys, resolved))
            except SkewlessError as e:
                problems.append(f"feature view '{view.name}': {e.message}")
    problems.extend(check_push_sources(target, repo_path, check_sources))
    for svc in target.feature_services.values():
        for p in svc.projections:
            pview = target.feature_views.get(p.view_name)
            if pview is None:
                problems.append(f"feature service '{svc.name}': feature view '{p.view_name}' is unknown; "
                                f"{closest(p.view_name, target.feature_views)}")
                continue
            known = pview.feature_names
            for f in p.features or []:
                if f not in known:
                    problems.append(f"feature service '{svc.name}': view '{pview.name}' has no feature "
                                    f"'{f}'; {closest(f, known)}")
    return problems


def plan(ctx: RuntimeContext, objects: Iterable[Any], *, partial: bool = True,
         delete: Iterable[Any] = (), extra_problems: Iterable[str] = (),
         check_sources: bool = True) -> PlanResult:
    """Validate ``objects`` against the context's registry (its project) and the repo's data,
    and diff, without writing anything. ``extra_problems`` (e.g. the repo files that failed to
    load) are reported first. Raises PlanError listing every problem."""
    current = ctx.registry.load(ctx.project)
    target, problems = build_target(current, objects, partial, delete)
    problems = list(extra_problems) + problems + validate(target, ctx.repo_path, check_sources)
    if problems:
        raise PlanError(problems, hint="fix these definitions, then run `skewless plan` again")
    changes = diff(current, target)
    target.generations = _generations(current, target, changes)
    return PlanResult(current, target, changes)


def _generations(current: Snapshot, target: Snapshot, changes: list[Change]) -> dict[str, int]:
    """The views' online generations after the apply (see ``Snapshot.generations``): a view
    created under a name never used keeps generation 0; one re-created, or updated
    destructively, gets the version this apply commits; a deleted view's entry stays."""
    version = current.version + 1
    out = dict(current.generations)
    for name in current.feature_views:
        out.setdefault(name, 0)   # registries written before generations existed
    for c in changes:
        if c.kind != "feature_view":
            continue
        if c.op == "create":
            out[c.name] = version if c.name in current.generations else 0
        elif c.op == "update" and c.destructive:
            out[c.name] = version
    return out


def retired_tables(current: Snapshot, target: Snapshot) -> dict[str, str]:
    """Online tables (online key -> table) whose view is deleted or in a new generation."""
    return {current.online_key(name): current.online_table(name) for name in current.feature_views
            if name not in target.feature_views or target.online_key(name) != current.online_key(name)}


def apply(ctx: RuntimeContext, objects: Iterable[Any], *, partial: bool = True,
          delete: Iterable[Any] = (), force: bool = False, extra_problems: Iterable[str] = (),
          user: str | None = None, check_sources: bool = True) -> PlanResult:
    """Plan, refuse breaking changes unless ``force``, then commit atomically with the version
    the plan was computed from (a concurrent apply makes this one fail with a conflict), then
    drop the online tables it retired (module docstring; the context's online store is opened
    only when there is one to drop)."""
    result = plan(ctx, objects, partial=partial, delete=delete, extra_problems=extra_problems,
                  check_sources=check_sources)
    if result.breaking and not force:
        lines = []
        for c in result.breaking:
            suggestion = next_version_name(c.name)
            lines.append(f"{c.kind.replace('_', ' ')} '{c.name}': " + "; ".join(c.breaking)
                         + f" (keep the old one and name the new one '{suggestion}')")
        raise BreakingChangeError(
            "breaking change(s) refused; nothing was changed:\n  - " + "\n  - ".join(lines),
            hint="models trained on the old definition would silently get other features: give the "
            "new definition a versioned name, or re-run with --force (force=True) if you mean it")
    if not result.changes:
        result.version = result.current.version
        _drop_retired(ctx, result)
        return result
    retired = retired_tables(result.current, result.target)
    state: dict[tuple[str, str], dict[str, Any] | None] = {}
    for key, table in retired.items():
        state[(STATE, key)] = None
        state[(RETIRED, table)] = {"view": key, "version": result.current.version + 1}
    result.version = ctx.registry.commit(result.target, result.current.version, result.changes,
                                         user or _user(), state)
    _drop_retired(ctx, result)
    return result


RETIRED = "online_retired"


def _drop_retired(ctx: RuntimeContext, result: PlanResult) -> None:
    """Drop every online table listed as retired (opening the context's online store only
    then); cross off those dropped, report the others."""
    registry, project = ctx.registry, ctx.project
    pending = sorted(registry.list_state(project, RETIRED))
    if not pending:
        return
    try:
        ctx.online_store.drop(pending)
    except Exception as e:  # noqa: BLE001 - reported, and retried by the next apply
        reason = e.message if isinstance(e, SkewlessError) else f"{type(e).__name__}: {e}"
        result.cleanup_errors.append(
            f"could not drop the retired online table(s) {pending} ({reason}); the registry "
            "is applied and nothing in them is served; the next `skewless apply` drops them")
        return
    for table in pending:
        registry.delete_state(project, RETIRED, table)
    result.dropped_tables.extend(pending)


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no login name in some containers
        return "unknown"


__all__ = ["PlanResult", "RETIRED", "apply", "plan", "build_target", "retired_tables", "validate",
           "Entity", "FeatureView", "FeatureService"]
