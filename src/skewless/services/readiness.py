"""Readiness: whether a process may get serving traffic (``FeatureStore.readiness``; the feature
server's ``GET /ready`` renders it, docs/server.md#get-ready-and-get-health).

Ready when the online store answers ``ping()``, holds what the registry recorded (its identity
is the one the views' coverage was recorded for: not a store restarted empty or replaced) and
every online view has a watermark there (was materialized at least once), so a cold, empty
store gets no traffic.

When the registry cannot be read (a full or read-only disk, a corrupt file) but serving has a
last good snapshot and the process was ready (``was_ready``: its previous probe passed), it
stays ready: it answers correctly for the definitions it holds. The report then says
``"registry": "stale"``, how old the snapshot is and why the registry is unreadable.
Otherwise ``"registry": "ok"``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from skewless.context import RuntimeContext
from skewless.errors import OnlineStoreDamagedError, RegistryError, SkewlessError
from skewless.online.base import StoreIdentity
from skewless.registry import RegistryHealth, Snapshot
from skewless.registry.diff import materialization_signature
from skewless.services.materialize import STATE, online_views, watermarks
from skewless.services.online_status import store_mismatch



@dataclass(frozen=True)
class Readiness:
    """A readiness verdict: ``ready``, and ``report``, the JSON object ``GET /ready`` answers
    (``ready``, ``online_store``, ``views``, ``not_materialized``, ``registry``; when not ready
    also ``code``, ``message`` and ``hint``)."""

    ready: bool
    report: dict[str, Any]


def readiness(ctx: RuntimeContext, *, fresh_snapshot: Callable[[], Snapshot],
              serving_snapshot: Callable[[], Snapshot], health: Callable[[], RegistryHealth],
              was_ready: bool = False) -> Readiness:
    """The verdict (module docstring). ``fresh_snapshot`` reads the registry now (a
    RegistryError when it cannot, also for a registry lost since the last read);
    ``serving_snapshot`` is the last good one the process serves; ``health`` tells how the
    serving definitions stand. Never raises a SkewlessError: every failure is a verdict."""
    try:
        ctx.online_store.ping()
        identity = ctx.online_store.identity()
    except SkewlessError as e:
        return _not_ready(e, online_store="damaged" if isinstance(e, OnlineStoreDamagedError)
                          else "unreachable")
    try:
        snap = fresh_snapshot()
        views = [v.name for v in online_views(snap, None)]
        lost = store_mismatch(identity, ctx.registry, snap)
        marks = watermarks(ctx.registry, ctx.project, identity)
    except RegistryError as e:
        current = health()
        age = current.age()
        stale = {"registry": "stale" if current.read_at is not None else "unreadable",
                 "registry_version": current.version,
                 "registry_snapshot_age_seconds": None if age is None else round(age, 3),
                 "registry_error": e.to_dict()}
        if was_ready and current.read_at is not None:
            served = serving_snapshot()
            return Readiness(True, {
                "ready": True, "online_store": "ok",
                "views": [v.name for v in online_views(served, None)], "not_materialized": [],
                **stale, "message": f"serving the definitions read {age:.0f} s ago "
                f"(registry version {current.version}): {e.message}", "hint": e.hint})
        return _not_ready(e, online_store="ok", **stale)
    except SkewlessError as e:
        return _not_ready(e, online_store="ok")
    if lost is not None:
        return Readiness(False, {
            "ready": False, "code": lost.code, "online_store": lost.code.removeprefix("online_store_"),
            "views": views, "not_materialized": list(lost.views), "message": lost.message,
            "hint": lost.hint, "registry": "ok"})
    if not views:
        return Readiness(False, {
            "ready": False, "code": "not_ready", "online_store": "ok", "views": [],
            "not_materialized": [],
            "message": f"project '{ctx.project}' has no online feature views registered",
            "hint": "run `skewless apply`, then `skewless materialize-incremental`",
            "registry": "ok"})
    missing = [v for v in views if not (marks.get(v) or {}).get("end")]
    if missing:
        return Readiness(False, _not_materialized(ctx, snap, identity, views, missing))
    return Readiness(True, {"ready": True, "online_store": "ok", "views": views,
                            "not_materialized": [], "registry": "ok"})


def _not_ready(e: SkewlessError, **fields: Any) -> Readiness:
    return Readiness(False, {"ready": False, "code": e.code, "message": e.message, "hint": e.hint,
                             **fields})


def _not_materialized(ctx: RuntimeContext, snap: Snapshot, identity: StoreIdentity | None,
                      views: list[str], missing: list[str]) -> dict[str, Any]:
    """The report on online views without a watermark: never materialized, or materialized in
    this store under an earlier definition (a field added since)."""
    states = ctx.registry.list_state(ctx.project, STATE)

    def redefined(v: str) -> bool:
        state = states.get(snap.online_key(v)) or {}
        return (identity is not None and identity.id is not None
                and state.get("store") == identity.id and state.get("signature")
                != materialization_signature(snap, snap.feature_views[v]))
    changed = [v for v in missing if redefined(v)]
    never = [v for v in missing if v not in changed]
    parts = ([f"{len(never)} of {len(views)} online view(s) never materialized: " + ", ".join(never)]
             if never else []) + ([
        f"{len(changed)} online view(s) not materialized under their current definition (a "
        "field was added since their last run; it is NOT_FOUND until the next run): "
        + ", ".join(changed)] if changed else [])
    return {"ready": False, "code": "not_ready", "online_store": "ok", "views": views,
            "not_materialized": missing, "message": "; ".join(parts),
            "hint": "run `skewless materialize-incremental` (or `skewless materialize START END`)",
            "registry": "ok"}


__all__ = ["Readiness", "readiness"]
