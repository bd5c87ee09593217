"""``online-status``: per online view, what the online store holds and how fresh it is.

The watermark is coverage (docs/online.md): "materialized up to t" means every source row usable
by t (``event_ts + availability_delay <= t``; its event time up to t without a delay) is in the
online store. Intervals covered by explicit windows
that do not join the covered prefix are listed apart (``covered``): the holes between them are
what the next ``materialize-incremental`` fills.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from skewless.context import RuntimeContext
from skewless.online import legacy_table_names
from skewless.online.base import StoreIdentity
from skewless.times import to_utc
from skewless.registry import RegistryStore, Snapshot
from skewless.registry.diff import materialization_signature
from skewless.services.materialize import STATE, Coverage, Interval, online_views, void_coverage


@dataclass(frozen=True)
class ViewStatus:
    view: str
    table: str
    entities: int                  # records in the online table
    materialized: bool             # some interval is covered
    watermark: datetime | None     # covered from the beginning up to this time: every row usable by then
    age: timedelta | None          # how far the watermark is behind the clock
    last_run: datetime | None      # when the last materialize or rebuild finished
    last_run_rows: int | None      # rows that run wrote
    ttl: timedelta | None
    covered: tuple[Interval, ...] = ()   # every covered interval (the first from None: the watermark)
    legacy_records: int = 0        # records under the view's pre-upgrade table name (table empty)
    # coverage recorded for another online store (or for this one before it lost its data),
    # which does not count: the store id it was recorded for ("" for one recorded before ids)
    other_store: str | None = None
    availability_delay: timedelta | None = None   # the source's: rows land that long after
                                                  # their event time

    @property
    def all_outside_ttl(self) -> bool:
        """Whether every stored record is older than the ttl now: the newest row the watermark
        covers has an event time of at most ``watermark - availability_delay``, so that holds
        once ``age + availability_delay > ttl``."""
        return (self.age is not None and self.ttl is not None
                and self.age + (self.availability_delay or timedelta(0)) > self.ttl)

    @property
    def holes(self) -> bool:
        """Whether some interval is covered beyond a hole (the next incremental run fills it)."""
        return len(self.covered) > (1 if self.watermark is not None else 0)


def _time(state: dict[str, Any], key: str) -> datetime | None:
    value = state.get(key)
    return to_utc(datetime.fromisoformat(value)) if value else None


def online_status(ctx: RuntimeContext, snapshot: Snapshot) -> list[ViewStatus]:
    """One status per online view of ``snapshot``, in registry order, from the context's online
    store and registry; ages are taken at the context's clock."""
    store, registry = ctx.online_store, ctx.registry
    now = to_utc(ctx.now())
    out = []
    identity = store.identity()
    for view in online_views(snapshot, None):
        table = snapshot.online_table(view.name)
        state = registry.get_state(snapshot.project, STATE, snapshot.online_key(view.name)) or {}
        signature = materialization_signature(snapshot, view)
        coverage = Coverage.of(state, signature, identity)
        other = (state.get("store") or "") if void_coverage(state, signature, identity) else None
        watermark = coverage.watermark
        entities = store.count(table)
        # an empty table whose records sit under the name of an earlier version: not rebuilt yet
        legacy = store.count(legacy_table_names(snapshot.project, snapshot.online_key(view.name))[0]) \
            if entities == 0 else 0
        out.append(ViewStatus(
            view=view.name, table=table, entities=entities, legacy_records=legacy,
            materialized=bool(coverage.intervals), watermark=watermark,
            age=now - watermark if watermark is not None else None,
            last_run=_time(state, "at"), last_run_rows=state.get("rows"), ttl=view.ttl,
            covered=coverage.intervals, other_store=other,
            availability_delay=view.batch_source.availability_delay))
    return out


@dataclass(frozen=True)
class StoreMismatch:
    """The online store does not hold what the registry's coverage says it holds."""

    code: str                  # online_store_ + empty, outdated, replaced or behind
    views: tuple[str, ...]     # views whose recorded coverage does not count
    message: str
    hint: str


def store_mismatch(identity: StoreIdentity | None, registry: RegistryStore, snapshot: Snapshot
                   ) -> StoreMismatch | None:
    """Whether the online store whose identity is ``identity`` lost the data the registry
    recorded for some online views (None when not): what readiness answers then."""
    states = registry.list_state(snapshot.project, STATE)
    views = tuple(v.name for v in online_views(snapshot, None)
                  if void_coverage(states.get(snapshot.online_key(v.name)),
                                   materialization_signature(snapshot, v), identity))
    if not views:
        return None
    names = ", ".join(views)
    hint = ("run `skewless materialize-incremental`: it backfills these views from the beginning "
            "(or `skewless rebuild-online`)")
    if identity is not None and identity.id is None:
        return StoreMismatch(
            "online_store_outdated", views,
            f"the online store holds only tables an earlier skewless version wrote, under table "
            f"names this version no longer reads; the registry records {len(views)} view(s) as "
            f"materialized in it: {names}",
            "run `skewless rebuild-online` once (it also drops the old tables; "
            "docs/online-stores.md, \"Upgrading from {project}__{view} names\"), or "
            "`skewless materialize-incremental`")
    if identity is None:
        return StoreMismatch(
            "online_store_empty", views,
            f"the online store is empty (it has no identity: restarted empty, or its file was "
            f"deleted) but the registry records {len(views)} view(s) as materialized in it: {names}",
            hint)
    if all((states.get(snapshot.online_key(v)) or {}).get("store") == identity.id for v in views):
        return StoreMismatch(
            "online_store_behind", views,
            f"the online store (id {identity.id}) holds {identity.writes:,} writes, fewer than the "
            f"registry recorded {len(views)} view(s) as materialized at: it was put back to an "
            f"older copy of itself (a backup restored, Redis reloaded from an older snapshot, a "
            f"lagging replica promoted) and lost later writes: {names}",
            hint)
    return StoreMismatch(
        "online_store_replaced", views,
        f"the online store (id {identity.id or 'none yet: data written before store ids'}) is not "
        f"the one the registry recorded {len(views)} view(s) as materialized in (it was replaced, "
        f"or restarted empty and written since): {names}",
        hint)
