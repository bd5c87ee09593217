"""Disaster recovery: rebuild the online store from the offline store (``rebuild-online``).

The offline store is the source of truth (every write path lands there first:
``docs/online.md#push``), so each online table can be rebuilt from it. Per view, holding the
view's lease (``rebuild-online:<online key>``, docs/online.md "Leases"):

1. materialize everything up to ``now`` (the latest row per entity) into a staging table
   private to this run (``skewless.online.staging_table``: named by the lease's token);
2. swap it in: readers see the old table, then the new one, never a gap;
3. record the view as covered from the beginning up to ``now`` (its watermark);
4. catch up: an incremental materialization up to the clock's time after the swap writes what
   reached the offline store during the rebuild (rows after ``now``, late rows): a push or a
   ``materialize`` whose online write landed in the old table before the swap wrote offline
   first, so this run reads it back;
5. verify: the new table held one record per entity that has a source row usable at ``now``
   (``event_ts + availability_delay <= now``), and, on a random sample of entities, serving
   answers exactly what the offline join answers at the catch-up's time (values, nulls, defaults and TTL); a sampled record newer
   than that time was written by a concurrent push and is not the rebuild's to check. A
   difference may be a row that reached the offline store just after the catch-up read it: up
   to ``SETTLE_ROUNDS`` times, the run catches up again and verifies again, so only a
   difference that stays is reported.

Every view's lease is taken before anything is touched: a second run over any of the same
views is refused with a LeaseHeldError naming the holder, and changes nothing. A run whose
holder was killed blocks the next one only until its lease expires; the next run then drops the
dead run's staging table. Concurrent ``materialize`` runs and pushes need no pause: step 4
writes back what the swap replaced (late rows whose event time is at or before ``now`` are
caught up through the created timestamp column, as in any incremental run). After the swap and
until step 4 ends, values pushed during the rebuild may read as their previous value. An apply
that retires the view's table during the rebuild makes it fail, leaving no table behind
(``services.materialize.check_not_retired``).

Before any of this, a store whose data cannot be read (a SQLite file with damaged pages) is
moved aside and replaced by a blank one (``OnlineStore.set_aside_if_unreadable``; the report
says where it went), so the recovery tool can always recover.

A view whose rebuild fails (source unreadable, store down) keeps its live table untouched: the
staging table is dropped and the error names the view. Views rebuilt before it stay rebuilt.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import numpy as np
import pyarrow as pa

from skewless import types as T
from skewless.backends import require
from skewless.context import RuntimeContext
from skewless.define import FeatureView
from skewless.errors import SkewlessError
from skewless.online import legacy_table_names, staging_table
from skewless.online.codec import OLDEST, decode_key, from_micros, micros
from skewless.times import to_utc
from skewless.plan.aggregate import usable_before
from skewless.plan.visibility import view_visibility
from skewless.plan.materialize import materialize_request
from skewless.plan.online import build_online_plan
from skewless.registry import Snapshot
from skewless.registry.lease import LEASE_SECONDS, Holding, held
from skewless.services import online as online_svc
from skewless.services import retrieve
from skewless.services.tiles import materialize_tiles, require_tiles
from skewless.aggregate import same_value
from skewless.registry.diff import materialization_signature
from skewless.services.materialize import (STATE, US, Coverage, RowsCallback, check_not_retired,
                                           batch_records, check_sources, materialize, online_views)

SAMPLE_SIZE = 100
SETTLE_ROUNDS = 2   # extra catch-up + verification rounds when the sample differs (docs/online.md)


def lease_name(key: str) -> str:
    """The lease a rebuild of view state ``key`` (``Snapshot.online_key``) holds: one per view,
    since each view has its own staging table and swap; rebuilds of other views may run."""
    return f"rebuild-online:{key}"


@dataclass(frozen=True)
class Mismatch:
    """One sampled value where serving and the offline join disagree."""

    entity: dict[str, Any]
    feature: str
    online: Any
    offline: Any


@dataclass
class RebuildReport:
    view: str
    entities: int           # entities with a source row at or before ``now`` (rows written)
    stored: int             # records in the new online table right after the swap
    sample_size: int        # entities whose values were compared with the offline join
    mismatches: list[Mismatch] = field(default_factory=list)
    seconds: float = 0.0    # rebuild and verification
    now: datetime | None = None
    caught_up: int = 0      # rows the catch-up wrote (what reached the offline store meanwhile)
    set_aside: str | None = None   # the damaged store moved aside before this view's rebuild

    @property
    def count_ok(self) -> bool:
        return self.stored == self.entities

    @property
    def ok(self) -> bool:
        return self.count_ok and not self.mismatches


def rebuild_online(ctx: RuntimeContext, snapshot: Snapshot, *, views: Sequence[str] | None = None,
                   now: datetime | None = None, on_rows: RowsCallback | None = None,
                   sample_size: int = SAMPLE_SIZE, batch_rows: int = 100_000,
                   lease_seconds: float = LEASE_SECONDS) -> list[RebuildReport]:
    """Rebuild the online tables of ``views`` (default: every online view) from the offline
    store as of ``now`` (default: the context's clock), swap them in atomically, set the
    watermarks to ``now``, catch up with what arrived meanwhile (up to the context's clock,
    never before ``now``) and verify against the offline join (entity rows timestamped in the
    context's ``entity_timestamp_column``).

    Holds each view's lease (``lease_seconds``, renewed while it runs) for the whole run.
    Raises LeaseHeldError, before anything is touched, if another run holds one of them;
    LeaseLostError (nothing swapped in) if this run stalled so long that another took over.
    A store whose data cannot be read is first moved aside (the first report's ``set_aside``
    says where)."""
    now = to_utc(ctx.now() if now is None else now)
    online_store, registry = ctx.online_store, ctx.registry
    require("online_store", online_store.name, online_store.capabilities, "atomic_swap",
            "rebuild-online (it swaps each rebuilt table in atomically)")
    reports = []
    selected = online_views(snapshot, views)
    for view in selected:   # every source checked before any table is touched
        if view.aggregations:
            require_tiles(online_store, view, "rebuild-online")
        try:   # created times too: the catch-up would refuse them only after the swap
            check_sources(snapshot, [view], ctx.repo_path, now + ctx.created_tolerance, now)
        except SkewlessError as e:
            _prefix(e, f"rebuild of feature view '{view.name}' failed and its online table was "
                       "left untouched (so was every other view's): ")
            raise
    with ExitStack() as leases:
        holdings = {view.name: leases.enter_context(held(
            registry, snapshot.project, lease_name(snapshot.online_key(view.name)),
            f"rebuild-online of feature view '{view.name}'", lease_seconds)) for view in selected}
        set_aside = online_store.set_aside_if_unreadable()
        for view in selected:
            reports.append(_rebuild_view(ctx, snapshot, view, now, holdings[view.name], on_rows,
                                         sample_size, batch_rows, set_aside))
            set_aside = None
    return reports


def _rebuild_view(ctx: RuntimeContext, snapshot: Snapshot, view: FeatureView, now: datetime,
                  holding: Holding, on_rows: RowsCallback | None, sample_size: int,
                  batch_rows: int, set_aside: str | None) -> RebuildReport:
    t0 = time.perf_counter()
    store, registry = ctx.online_store, ctx.registry
    key = snapshot.online_key(view.name)
    table = snapshot.online_table(view.name)
    check_not_retired(registry, snapshot, view.name, store, wrote=False, operation="rebuild")
    if holding.previous is not None:   # a run killed midway left its staging table
        store.drop([staging_table(snapshot.project, key, holding.previous.token)])
    written, created_high = _build_and_swap(ctx, snapshot, view, now, on_rows, batch_rows, holding)
    stored = store.count(table)
    prev = registry.get_state(snapshot.project, STATE, key) or {}
    identity = store.identity()   # claimed by the staging table's create
    if created_high is not None:
        created_high = min(created_high, now)   # the created-time mark never passes the clock
    # an aggregated view holds the events usable at ``now``: before it and, with an availability
    # delay, landed by it; its coverage (landing times) ends 1us before ``now`` without a delay,
    # at ``now`` with one (docs/aggregations.md)
    delay_us = view_visibility(view).delay_us
    covered_to = (from_micros(usable_before(micros(now), delay_us) + delay_us) - US
                  if view.aggregations else now)
    coverage = Coverage(materialization_signature(snapshot, view), ((None, covered_to),), created_high,
                        identity.id if identity is not None else "",
                        identity.writes if identity is not None else 0)
    registry.set_state(snapshot.project, STATE, key, coverage.to_state(
        rows=written, total_rows=prev.get("total_rows", 0) + written))
    check_not_retired(registry, snapshot, view.name, store, wrote=True, operation="rebuild")
    until, caught_up = now, 0
    keys = store.scan_keys(table, sample_size)
    mismatches: list[Mismatch] = []
    for _ in range(1 + SETTLE_ROUNDS):
        # catch up to the clock, then verify the sample at that time; a difference may be a row
        # that reached the offline store after the catch-up read it (a file landing, a push):
        # catch up again and verify again, so only a difference that stays is reported
        until = max(to_utc(ctx.now()), until)
        (caught,) = materialize(ctx, snapshot, views=[view.name], end=until, now=until,
                                incremental=True, on_rows=on_rows, batch_rows=batch_rows,
                                since=coverage)
        caught_up += caught.rows
        mismatches = _verify_sample(ctx, snapshot, view, keys, until)
        if not mismatches:
            break
    store.drop(legacy_table_names(snapshot.project, key))   # the view's tables before the upgrade
    return RebuildReport(view.name, written, stored, len(keys), mismatches,
                         time.perf_counter() - t0, now, caught_up=caught_up,
                         set_aside=set_aside)


def _build_and_swap(ctx: RuntimeContext, snapshot: Snapshot, view: FeatureView, now: datetime,
                    on_rows: RowsCallback | None, batch_rows: int,
                    holding: Holding) -> tuple[int, datetime | None]:
    """Materialize ``view`` up to ``now`` into this run's staging table, then swap it in if
    the run still holds its lease. Returns the rows written and the highest created timestamp
    seen. On failure the staging table is dropped and the live table is left as it was."""
    engine, store = ctx.engine, ctx.online_store
    table = snapshot.online_table(view.name)
    staging = staging_table(snapshot.project, snapshot.online_key(view.name), holding.lease.token)
    written, created_high = 0, OLDEST
    try:
        store.create([staging])
        if view.aggregations:
            require_tiles(store, view, "rebuild-online")
            written, _keys, created = materialize_tiles(
                store, snapshot, view, staging, ctx.repo_path, None,
                usable_before(micros(now), view_visibility(view).delay_us))
            if on_rows and written:
                on_rows(view.name, written)
            holding.confirm()
            store.swap(table, staging)
            return written, (from_micros(created) if created is not None else None)
        request = materialize_request(snapshot, view, ctx.repo_path, now)
        features = [f.output for f in request.features]
        for batch in engine.latest(request, batch_rows):
            records = batch_records(batch, request.join_keys, features)
            store.write_batch({staging: records})
            written += len(records)
            created_high = max([created_high, *(r.created_ts for _, r in records)])
            if on_rows:
                on_rows(view.name, len(records))
            holding.check()
        holding.confirm()
        store.swap(table, staging)
    except BaseException as e:
        try:
            store.drop([staging])
        except Exception:  # noqa: BLE001 - the original error matters more
            pass
        if isinstance(e, SkewlessError):
            _prefix(e, f"rebuild of feature view '{view.name}' failed and its online table was "
                       "left untouched: ")
        raise
    return written, (from_micros(created_high) if created_high != OLDEST else None)


def _prefix(e: SkewlessError, text: str) -> None:
    """Say which view failed, keeping the error's type, hint and retryability."""
    e.message = text + e.message
    e.args = (e.message if not e.hint else f"{e.message}\n  hint: {e.hint}",)


def _verify_sample(ctx: RuntimeContext, snapshot: Snapshot, view: FeatureView, keys: list[bytes],
                   now: datetime) -> list[Mismatch]:
    """Serve the sampled entities at ``now`` and compare with the offline join at ``now``
    (entities whose stored record is newer than ``now`` are skipped)."""
    join_keys = snapshot.join_keys(view)
    feats = view.served_features(set(join_keys))
    if not keys or not feats:
        return []
    refs = [f"{view.name}:{f.name}" for f in feats]
    entities = [dict(zip(join_keys, decode_key(k))) for k in keys]

    plan = build_online_plan(snapshot, refs, full_feature_names=True)
    # Fail-closed views would raise on the first stale entity; the offline join reads them as null.
    plan = replace(plan, views=tuple(replace(v, on_missing="null") if v.on_missing == "fail" else v
                                     for v in plan.views))
    response = online_svc.get_online_features(ctx.raw_online_store, plan, entities, now)
    served = response.values
    # a record not usable yet at ``now`` (newer than ``now`` less the availability delay) was
    # written by a concurrent push after ``now``: not the rebuild's to check
    newest = plan.views[0].visibility.newest_us(micros(now))
    newer = {i for stamps in response.event_micros.values() for i, us in enumerate(stamps)
             if us is not None and us > newest}

    by_name = {f.name: f for f in view.schema}
    columns: dict[str, pa.Array] = {}
    for k in join_keys:
        values = [e[k] for e in entities]
        declared = by_name[k].dtype.to_arrow() if k in by_name else None
        columns[k] = pa.array(values, type=declared) if declared is not None else pa.array(values)
    timestamp_column = ctx.timestamp_column
    columns[timestamp_column] = pa.array([now] * len(entities), type=pa.timestamp("us", tz="UTC"))
    offline = retrieve.get_historical_features(
        ctx, snapshot, pa.table(columns), refs, full_feature_names=True).to_arrow()

    out = []
    for f in feats:
        name = f"{view.name}__{f.name}"
        want = offline.column(name).to_pylist()
        got = served[name]
        for i, entity in enumerate(entities):
            if i not in newer and not _same(_norm(got[i], f.dtype), _norm(want[i], f.dtype)):
                out.append(Mismatch(entity, f.name, got[i], want[i]))
    return out


def _same(a: Any, b: Any) -> bool:
    """Equal; floats within the aggregations' tolerance (``skewless.aggregate.same_value``:
    paths add floats in different orders, docs/aggregations.md, "Floats")."""
    if isinstance(a, float) or isinstance(b, float):
        return same_value(a, b)
    return bool(a == b)


def _norm(value: Any, dtype: T.ValueType) -> Any:
    """A value in a comparable form: in its declared precision, timestamps as microseconds,
    NaN equal to NaN."""
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        element = dtype.element if isinstance(dtype, T.Array) else dtype
        return [_norm(v, element) for v in value]
    if isinstance(value, datetime):
        return micros(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if dtype is T.Float32:
            return float(np.float32(value))
    return value


__all__ = ["Mismatch", "RebuildReport", "lease_name", "rebuild_online"]
