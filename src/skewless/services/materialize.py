"""Materialization: offline source -> online store, the latest row per entity, only if newer.

Idempotent and order-independent (the store keeps the greatest (event, created) pair), and
resumable: a view's coverage is recorded in the registry only after all its rows are written,
so a run killed midway is simply repeated. Coverage lives in the registry's state table, apart
from the definitions, keyed by the view's online table generation (``Snapshot.online_key``):
a re-created or force-changed view starts with none (docs/online.md).

**A watermark means coverage.** Each view's state records the intervals of landing time
(``event_ts + availability_delay``: the event time itself when the source declares no delay,
``plan/visibility.py``) whose source rows are all in the online store (``covered``), and the
created-time mark below which no row is late. "Materialized up to t" (the watermark, ``end``)
means every source row usable by t (landed by t) is covered, and no row that lands later is
written: the first interval starts at the beginning and reaches t. An explicit window
``materialize(start, end)`` adds ``[start, end]``; it moves the watermark only if it joins the
covered prefix. An incremental run up to ``end`` fills every hole before ``end`` (one window
per hole, from the beginning when nothing is covered) and, when the source has a created
timestamp column, also reads the rows whose created time is at or after the mark (late rows
of covered intervals), then records everything up to ``end`` as covered.

The mark only ever moves to a created time the run has seen while it had read every row
before (or stays), so a late row is never lost: an explicit window leaves the mark as it was,
an incremental run that read every row up to ``end`` moves it to the newest created time seen.
Coverage recorded for another definition of the view (``materialization_signature``: a field
added since) does not count, so the next incremental run reads the whole source again and
fills the new field in. Nor does coverage recorded for another online store
(``coverage_holds``: the store's identity changed, e.g. Redis restarted empty, or it has none):
the next incremental run backfills the view from the beginning (docs/online.md, "The online
store's identity"). A run that finds, at its end, coverage recorded meanwhile by a run of
another definition (an apply changed the fields while both wrote) records none: the records
of either may have replaced the other's without the other's fields, so the next incremental
run reads the whole source again.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pyarrow as pa

from skewless.context import RuntimeContext
from skewless.define import FeatureView
from skewless.errors import (MaterializationError, OnlineStoreError, SkewlessError, SourceError,
                             UnknownObjectError, closest)
from skewless.kernels.source import (CREATED_AHEAD_HINT, check_view_source, created_after, resolve_source,
                                     source_files)
from skewless.online import OnlineStore
from skewless.online.base import StoreIdentity, coverage_holds
from skewless.online.codec import OLDEST, Record, encode_key, from_micros, micros
from skewless.times import to_utc
from skewless.plan.materialize import CREATED_TS, EVENT_TS, materialize_request
from skewless.plan.aggregate import usable_before
from skewless.plan.visibility import view_visibility
from skewless.registry import RegistryStore, Snapshot
from skewless.registry.diff import materialization_signature
from skewless.services.tiles import earliest_created_since, materialize_tiles, require_tiles

STATE = "materialization"
_NO_CREATED_YET = datetime(1, 1, 1, tzinfo=timezone.utc)
US = timedelta(microseconds=1)
RowsCallback = Callable[[str, int], None]
Interval = tuple["datetime | None", datetime]   # [start, end], both inclusive; None: the beginning


def _lower(a: datetime | None, b: datetime | None) -> datetime | None:
    """The earlier mark, None (unknown: every created time may be late) being the earliest."""
    return None if a is None or b is None else min(a, b)


def _iso(ts: datetime | None) -> str | None:
    return ts.isoformat() if ts is not None else None


def _ts(value: str | None) -> datetime | None:
    return to_utc(datetime.fromisoformat(value)) if value else None


@dataclass(frozen=True)
class Coverage:
    """What a view's online table holds for sure: every source row whose landing time (event
    time plus the source's availability delay) is in one of ``intervals`` (sorted, disjoint),
    except rows created at or after ``created_high`` (None: any row with a created time may be
    late), in the online store whose identity is ``store``, once it counts ``writes`` writes
    (``StoreIdentity.writes``)."""

    signature: str
    intervals: tuple[Interval, ...] = ()
    created_high: datetime | None = None
    store: str | None = None
    writes: int = 0

    @classmethod
    def of(cls, state: dict[str, Any] | None, signature: str,
           identity: StoreIdentity | None) -> Coverage:
        """The coverage a state records, if recorded under ``signature`` for the online store
        whose identity is ``identity`` (else none: states of older versions, of another
        definition of the view, or of another store or one that lost its data do not count)."""
        store = identity.id if identity is not None else None
        if state is None or not recorded(state, signature) or not _holds(state, identity):
            return cls(signature, store=store)
        intervals = tuple((_ts(a), _ts(b)) for a, b in state["covered"])
        return cls(signature, _merge(intervals), _ts(state.get("created_high")), store,  # type: ignore[arg-type]
                   int(state.get("writes") or 0))

    @property
    def watermark(self) -> datetime | None:
        """Covered from the beginning up to this landing time (None: the beginning is not)."""
        if self.intervals and self.intervals[0][0] is None:
            return self.intervals[0][1]
        return None

    def holes(self, end: datetime) -> list[Interval]:
        """The landing-time intervals up to ``end`` not covered, in order."""
        out: list[Interval] = []
        cursor: datetime | None = None     # the first instant not covered yet; None: the beginning
        for a, b in self.intervals:        # sorted, disjoint and never adjacent (``_merge``)
            if a is not None and (cursor is None or cursor <= end):
                out.append((cursor, min(a - US, end)))
            cursor = b + US
        if cursor is None or cursor <= end:
            out.append((cursor, end))
        return out

    def cover(self, start: datetime | None, end: datetime, seen: datetime | None,
              incremental: bool) -> Coverage:
        """The coverage after a run that read every row of ``[start, end]`` (an incremental
        run: every row up to ``end``, and the late rows) and saw created times up to ``seen``."""
        intervals = _merge((*self.intervals, (start, end)))
        if not self.intervals:
            high = seen
        elif incremental and all(b <= end for _, b in self.intervals):
            high = seen if self.created_high is None else max(self.created_high, seen or self.created_high)
        else:
            high = self.created_high
        return replace(self, intervals=intervals, created_high=high)

    def union(self, other: Coverage) -> Coverage:
        if not other.intervals:
            return self
        if not self.intervals:
            return other
        return replace(self, intervals=_merge((*self.intervals, *other.intervals)),
                       created_high=_lower(self.created_high, other.created_high),
                       writes=max(self.writes, other.writes))

    def to_state(self, rows: int, total_rows: int) -> dict[str, Any]:
        return {"signature": self.signature, "store": self.store, "writes": self.writes,
                "covered": [[_iso(a), _iso(b)] for a, b in self.intervals],
                "end": _iso(self.watermark), "created_high": _iso(self.created_high),
                "rows": rows, "total_rows": total_rows,
                "at": datetime.now(timezone.utc).isoformat()}


def recorded(state: dict[str, Any] | None, signature: str) -> bool:
    """Whether ``state`` records coverage of the view's definition ``signature`` (for some store)."""
    return state is not None and state.get("signature") == signature and "covered" in state


def void_coverage(state: dict[str, Any] | None, signature: str,
                  identity: StoreIdentity | None) -> bool:
    """Whether ``state`` records coverage of this definition that does not count because it was
    recorded for another online store (or for this one before it lost its data)."""
    return state is not None and recorded(state, signature) and not _holds(state, identity)


def _holds(state: dict[str, Any], identity: StoreIdentity | None) -> bool:
    return coverage_holds(state.get("store"), identity, int(state.get("writes") or 0))


def _merge(intervals: Sequence[Interval]) -> tuple[Interval, ...]:
    """Sorted, with overlapping or adjacent (1us apart) intervals joined."""
    ordered = sorted(intervals, key=lambda iv: (iv[0] is not None, iv[0] or iv[1]))
    out: list[Interval] = []
    for a, b in ordered:
        if out:
            pa_, pb = out[-1]
            if a is None or a <= pb + US:
                out[-1] = (pa_, max(pb, b))
                continue
        out.append((a, b))
    return tuple(out)


@dataclass
class ViewReport:
    view: str
    rows: int
    start: datetime | None
    end: datetime
    seconds: float
    backfill: bool = False   # coverage recorded for another store did not count: read from the start


def online_views(snapshot: Snapshot, names: Sequence[str] | None) -> list[FeatureView]:
    if names is None:
        return [v for v in snapshot.feature_views.values() if v.online]
    out = []
    for n in names:
        if n not in snapshot.feature_views:
            raise UnknownObjectError(f"feature view '{n}' is unknown; {closest(n, snapshot.feature_views)}")
        view = snapshot.feature_views[n]
        if not view.online:
            raise MaterializationError(f"feature view '{n}' has online=False; it is not served online")
        out.append(view)
    return out


def check_sources(snapshot: Snapshot, views: Sequence[FeatureView], repo_path: str | Path,
                  created_limit: datetime | None = None, end: datetime | None = None) -> None:
    """Every file of every view's source against its declaration, by the one conformance table
    (docs/types.md), before anything is written: a drifted file is a SourceError naming the
    view, the file, the column and a bad row; the online store and the watermarks stay as they
    were, for every view of the run. With ``created_limit`` (the clock plus
    ``created_timestamp_tolerance_seconds``), a created time later than it, in a row the run
    reads (landed by ``end``), is such a problem too
    (docs/online.md#created-times-ahead-of-the-clock)."""
    problems: list[str] = []
    ahead: list[str] = []   # created times ahead of the clock (not a type problem)
    for view in views:
        resolved = resolve_source(view.batch_source, repo_path)
        # the newest event time the run reads: what has landed by ``end``
        last = view_visibility(view).available_until(end) if end is not None else None
        found = check_view_source(view, snapshot.join_keys(view), resolved)
        problems.extend(found)
        created = view.batch_source.created_timestamp_column
        if created and created_limit is not None and not found:
            for sf in source_files(resolved, view.name):
                late = created_after(sf, created, created_limit, view.batch_source.timestamp_field, last)
                if late is not None:
                    ahead.append(
                        f"feature view '{view.name}': {sf.path}: column '{created}': {late.count} "
                        f"row(s) created after {created_limit.isoformat()} (the clock plus "
                        f"created_timestamp_tolerance_seconds), among the rows with an event time up "
                        f"to {last.isoformat() if last else 'any'}; first: row {late.row}, {late.value}")
    if problems or ahead:
        names = ", ".join(f"'{v.name}'" for v in views)
        what = " and ".join(
            (["does not match the declared types"] if problems else [])
            + (["holds created times ahead of the clock"] if ahead else []))
        hints = ((["fix or remove the file(s) named (or change the declared types, then "
                   "`skewless apply`); see docs/types.md"] if problems else [])
                 + ([CREATED_AHEAD_HINT] if ahead else []))
        raise SourceError(
            f"source data {what}; nothing was written online and no watermark moved "
            f"(feature view(s) {names}):\n" + "\n".join(f"  - {p}" for p in problems + ahead),
            hint="; ".join(hints))


def check_window(start: datetime | None, end: datetime, now: datetime) -> tuple[datetime | None, datetime]:
    end = to_utc(end)
    start = to_utc(start) if start is not None else None
    if end > now:
        raise MaterializationError(
            f"end {end.isoformat()} is in the future (now is {now.isoformat()})",
            hint="materialize up to now at most: the online store must never run ahead of what the "
            "offline join would know")
    if start is not None and start > end:
        raise MaterializationError(f"start {start.isoformat()} is after end {end.isoformat()}",
                                   hint="swap them")
    return start, end


def _storable_column(col: pa.ChunkedArray | pa.Array) -> list[Any]:
    """A column as Python values the online codec stores: timestamps (and lists of them) as
    microseconds since the epoch, computed by Arrow rather than via Python datetimes."""
    t = col.type
    if pa.types.is_timestamp(t):
        col = col.cast(pa.timestamp("us", t.tz)).cast(pa.int64())
    elif (pa.types.is_list(t) or pa.types.is_large_list(t)) and pa.types.is_timestamp(t.value_type):
        col = col.cast(pa.list_(pa.timestamp("us", t.value_type.tz))).cast(pa.list_(pa.int64()))
    return col.to_pylist()  # type: ignore[no-any-return]


def batch_records(batch: pa.RecordBatch, join_keys: Sequence[str], features: Sequence[str]
                  ) -> list[tuple[bytes, Record]]:
    """Arrow rows of the latest-row query -> (encoded key, Record) pairs."""
    keys = zip(*(batch.column(k).to_pylist() for k in join_keys))
    event = batch.column(EVENT_TS).cast(pa.int64()).to_pylist()
    created = [OLDEST if c is None else c for c in batch.column(CREATED_TS).cast(pa.int64()).to_pylist()]
    names = tuple(features)
    rows = zip(*(_storable_column(batch.column(f)) for f in features)) if features else \
        iter(lambda: (), None)
    return [(encode_key(key), Record(ev, cr, names, vals))
            for key, ev, cr, vals in zip(keys, event, created, rows)]


FAILURES = "materialization_failures"


def materialize(ctx: RuntimeContext, snapshot: Snapshot, *, end: datetime,
                start: datetime | None = None, views: Sequence[str] | None = None,
                now: datetime | None = None, incremental: bool = False,
                on_rows: RowsCallback | None = None, batch_rows: int = 100_000,
                since: Coverage | None = None) -> list[ViewReport]:
    """``_materialize`` (below), recording failed runs for the monitors (docs/monitoring.md,
    "Materialization"): a run that raises adds one to the consecutive failures of each view it
    was asked for (state ``materialization_failures``: count, time by the context's clock,
    error); a view's successful run clears its count."""
    selected = [v.name for v in online_views(snapshot, views)]
    try:
        reports = _materialize(ctx, snapshot, end=end, start=start, views=views, now=now,
                               incremental=incremental, on_rows=on_rows, batch_rows=batch_rows,
                               since=since)
    except Exception as e:
        _record_failure(ctx, snapshot, selected, e)
        raise
    try:
        failed = ctx.registry.list_state(snapshot.project, FAILURES)
        for r in reports:
            if snapshot.online_key(r.view) in failed:
                ctx.registry.delete_state(snapshot.project, FAILURES, snapshot.online_key(r.view))
    except SkewlessError:   # the run is done; a registry that cannot record it is told apart
        ctx.log.warning("could not clear the recorded materialization failures", exc_info=True)
    return reports


def _record_failure(ctx: RuntimeContext, snapshot: Snapshot, views: Sequence[str],
                    error: BaseException) -> None:
    at = to_utc(ctx.now()).isoformat()
    text = f"{type(error).__name__}: {error}"[:500]
    try:
        for name in views:
            key = snapshot.online_key(name)
            prev = ctx.registry.get_state(snapshot.project, FAILURES, key) or {}
            ctx.registry.set_state(snapshot.project, FAILURES, key, {
                "failures": int(prev.get("failures") or 0) + 1, "at": at, "error": text})
    except SkewlessError:   # the original error matters more: it is raised
        ctx.log.warning("could not record the materialization failure", exc_info=True)


def _materialize(ctx: RuntimeContext, snapshot: Snapshot, *, end: datetime,
                 start: datetime | None = None, views: Sequence[str] | None = None,
                 now: datetime | None = None, incremental: bool = False,
                 on_rows: RowsCallback | None = None, batch_rows: int = 100_000,
                 since: Coverage | None = None) -> list[ViewReport]:
    """Materialize ``views`` (default: every online view of ``snapshot``) with the context's
    engine, online store and registry. An explicit window covers the rows landing in
    ``[start, end]`` (``start <= event_ts + availability_delay <= end``; ``event_ts`` itself
    without a delay);
    an incremental run covers everything up to ``end``: every hole in the view's coverage
    (whatever earlier runs left out) plus late rows (module docstring). Coverage is recorded
    once all the view's rows are written. ``since`` (one view only) replaces the recorded
    coverage as the run's starting point: ``rebuild-online`` catches up from what it built,
    not from what a concurrent run recorded meanwhile. ``now`` defaults to the context's clock.
    A source row created after ``now`` plus the context's created-timestamp tolerance fails
    the run before anything is written (SourceError naming the view, the file, the rows); the
    created-time mark never passes ``now``."""
    engine, store, registry = ctx.engine, ctx.online_store, ctx.registry
    repo_path = ctx.repo_path
    now = ctx.now() if now is None else now
    start, end = check_window(start, end, now)
    reports = []
    selected = online_views(snapshot, views)
    for view in selected:   # every view checked before anything is written
        if view.aggregations:
            require_tiles(store, view, "materialization")
    check_sources(snapshot, selected, repo_path, to_utc(now) + ctx.created_tolerance, end)
    for view in selected:
        t0 = time.perf_counter()
        key = snapshot.online_key(view.name)
        signature = materialization_signature(snapshot, view)
        table = snapshot.online_table(view.name)
        identity = _claimed_identity(store, table)
        state0 = registry.get_state(snapshot.project, STATE, key)
        backfill = since is None and void_coverage(state0, signature, identity)
        before = since or Coverage.of(state0, signature, identity)
        created_col = view.batch_source.created_timestamp_column
        requests: list[tuple[datetime | None, datetime, datetime | None]] = [(start, end, None)]
        if view.aggregations:
            # an aggregated view covers the events usable at ``end`` (the value at ``end`` never
            # counts an event at ``end``): without a delay its coverage ends 1us before, with one
            # at ``end`` (landing times; docs/aggregations.md)
            rows, seen, covered_to = _materialize_tiles(ctx, snapshot, view, table, before, start,
                                                        end, incremental, now, on_rows)
            if covered_to is None:
                reports.append(ViewReport(view.name, 0, before.watermark or end, end, 0.0))
                continue
            if not incremental and start is not None and start > covered_to:
                after = before   # materialize(end, end): no event is before end and after start
            else:
                after = before.cover(None if incremental else start, covered_to, seen, incremental)
        elif incremental:
            windows = before.holes(end)
            late: datetime | None = None
            if created_col and before.intervals:
                late = before.created_high or _NO_CREATED_YET
            if not windows and late is None:
                reports.append(ViewReport(view.name, 0, before.watermark or end, end, 0.0))
                continue
            requests = [(s_, e_, None) for s_, e_ in windows]
            if late is not None:
                if requests and requests[-1][1] == end:
                    requests[-1] = (requests[-1][0], end, late)
                else:   # nothing new to cover: late rows only
                    requests.append((end + US, end, late))
        if not view.aggregations:
            rows, seen = _write_latest(ctx, snapshot, view, table, requests, now, since, on_rows,
                                       batch_rows)
            after = before.cover(None if incremental else start, end, seen, incremental)
        if rows:   # the store must hold at least the writes that stored them
            after = replace(after, writes=max(after.writes, _writes_of(store, identity)))
        prev = registry.get_state(snapshot.project, STATE, key) or {}
        if prev != (state0 or {}) and prev.get("signature") not in (None, signature):
            # A run of another definition of the view (a field added or removed by an apply
            # meanwhile) recorded coverage while this one wrote: either run's records may have
            # replaced the other's, without the other's fields. Neither covers anything now:
            # the next incremental run reads the whole source again and fills every field.
            after = Coverage(signature, store=identity.id)
        else:
            latest = Coverage.of(prev, signature, identity)
            if latest != before:   # another run recorded coverage meanwhile: keep both, conservatively
                after = after.union(latest)
        registry.set_state(snapshot.project, STATE, key, after.to_state(
            rows=rows, total_rows=prev.get("total_rows", 0) + rows))
        if since is None:   # (the rebuild's catch-up is checked by the rebuild)
            check_not_retired(registry, snapshot, view.name, store, wrote=True,
                              operation="materialization")
        reports.append(ViewReport(view.name, rows, requests[0][0], end, time.perf_counter() - t0,
                                  backfill))
    return reports


def _write_latest(ctx: RuntimeContext, snapshot: Snapshot, view: FeatureView, table: str,
                  requests: Sequence[tuple[datetime | None, datetime, datetime | None]],
                  now: datetime, since: Coverage | None, on_rows: RowsCallback | None,
                  batch_rows: int) -> tuple[int, datetime | None]:
    """The latest row per entity of each request window, written only if newer. Returns the
    rows written and the latest created time seen (never past ``now``)."""
    engine, store, registry, repo_path = ctx.engine, ctx.online_store, ctx.registry, ctx.repo_path
    rows = 0
    seen: datetime | None = None
    for w_start, w_end, created_after in requests:
        request = materialize_request(snapshot, view, repo_path, w_end, w_start, created_after)
        features = [f.output for f in request.features]
        for batch in engine.latest(request, batch_rows):
            records = batch_records(batch, request.join_keys, features)
            try:
                store.write_batch({table: records})
            except OnlineStoreError:   # its table dropped by an apply that retired it?
                if since is None:
                    check_not_retired(registry, snapshot, view.name, store, wrote=True,
                                      operation="materialization")
                raise
            rows += len(records)
            top = max((r.created_ts for _, r in records), default=OLDEST)
            if top != OLDEST:
                top_dt = min(from_micros(top), to_utc(now))   # the mark never passes the clock
                seen = top_dt if seen is None else max(seen, top_dt)
            if on_rows:
                on_rows(view.name, len(records))
    return rows, seen


def _materialize_tiles(ctx: RuntimeContext, snapshot: Snapshot, view: FeatureView, table: str,
                       before: Coverage, start: datetime | None, end: datetime, incremental: bool,
                       now: datetime, on_rows: RowsCallback | None
                       ) -> tuple[int, datetime | None, datetime | None]:
    """Rebuild the tiles of aggregated ``view`` (skewless.services.tiles) for the events usable
    at ``end``: before ``end`` and, with a source availability delay, landed by then
    (``event_ts + availability_delay <= end``; ``plan/visibility.py``), so the online store
    never holds an event before it is usable. An explicit window from the tile holding the
    events landing at ``start``; an incremental run from the first hole of ``before`` (landing
    times, as every view's coverage) and, when the source has a created timestamp, from the
    earliest late event if earlier. Returns (events read, latest created time seen, the end of
    the coverage in landing times: the last landing time usable at ``end``, i.e. ``end`` - 1us
    without a delay and ``end`` with one, or None when an incremental run had nothing to do)."""
    store, repo_path = ctx.online_store, ctx.repo_path
    delay_us = view_visibility(view).delay_us
    end_us = micros(end)
    # the exclusive bound of the event times usable at ``end`` (plan/aggregate.py's rule)
    hi_us = usable_before(end_us, delay_us)
    last = from_micros(hi_us + delay_us) - US
    if incremental:   # holes in landing times: their events from landing - delay
        spans: list[int | None] = [None if a is None else micros(a) - delay_us
                                   for a, _ in before.holes(last)]
        created_col = view.batch_source.created_timestamp_column
        if created_col and before.intervals:
            mark = before.created_high or _NO_CREATED_YET
            earliest = earliest_created_since(snapshot, view, repo_path, micros(mark), hi_us)
            if earliest is not None:
                spans.append(earliest)
        if not spans:
            return 0, None, None
    else:
        spans = [None if start is None else micros(start) - delay_us]
    # one span from the earliest start: the tiles between holes are rebuilt too (whole tiles;
    # replace_tiles never puts a tile back to an earlier bound than the stored one)
    lo = None if None in spans else min(x for x in spans if x is not None)
    # (with a delay, a tile that pushes filled beyond hi_us is rebuilt with the events usable now)
    usable_us = usable_before(micros(to_utc(now)), delay_us) if delay_us else None
    rows, _keys, created = materialize_tiles(store, snapshot, view, table, repo_path, lo, hi_us,
                                             None if usable_us is None else max(usable_us, hi_us))
    if on_rows and rows:
        on_rows(view.name, rows)
    seen = None if created is None else min(from_micros(created), to_utc(now))
    return rows, seen, last


_AGAIN = {"rebuild": "run `skewless rebuild-online` again to rebuild the views as they are now",
          "materialization": "run `skewless materialize-incremental` again: it covers the views as "
                             "they are now"}


def check_not_retired(registry: RegistryStore, snapshot: Snapshot, view: str, store: OnlineStore,
                      wrote: bool, operation: str) -> None:
    """Raise MaterializationError if an apply deleted ``view`` or moved it to a new online
    generation since ``snapshot`` (its table is retired: serving never reads it, docs/online.md
    "Online state follows the registry"). ``operation``: "rebuild" or "materialization".

    Once the run has written (``wrote``), the table and its state are removed first: an apply
    that committed before this check may have dropped the table before the run's writes
    re-created it, and one that commits after it drops the table itself, so no retired table
    outlives the run."""
    current = registry.load(snapshot.project)
    if view in current.feature_views and current.online_key(view) == snapshot.online_key(view):
        return
    if wrote:
        store.drop([snapshot.online_table(view)])
        registry.delete_state(snapshot.project, STATE, snapshot.online_key(view))
    what = "deleted" if view not in current.feature_views else "re-created or changed destructively"
    raise MaterializationError(
        f"{operation} of feature view '{view}': the view was {what} by an apply (registry version "
        f"{current.version}; this run started from version {snapshot.version}), so its online "
        f"table is retired; nothing this {operation} wrote for it is served",
        hint=_AGAIN[operation])


def _writes_of(store: OnlineStore, identity: StoreIdentity) -> int:
    """The store's write count now, if it is still the store ``identity`` names (else 0: the
    coverage recorded for ``identity`` does not count anyway)."""
    now = store.identity()
    return now.writes if now is not None and now.id == identity.id else 0


def _claimed_identity(store: OnlineStore, table: str) -> StoreIdentity:
    """Create ``table`` (which claims the store's identity if it has none: a blank store) and
    return the identity the run records its coverage for."""
    store.create([table])
    identity = store.identity()
    if identity is None or identity.id is None:
        raise OnlineStoreError(
            f"the online store lost its identity while table {table} was being created "
            "(it restarted empty meanwhile?)", hint="run the command again")
    return identity


def watermarks(registry: RegistryStore, project: str,
               identity: StoreIdentity | None) -> dict[str, dict[str, Any]]:
    """Per feature view, the materialization state of its current online table in the online
    store whose identity is ``identity`` (views never materialized, or whose coverage no longer
    holds, are left out). ``"end"`` is the watermark: covered from the beginning up to it
    (absent if nothing is)."""
    snapshot = registry.load(project)
    states = registry.list_state(project, STATE)
    out = {}
    for name, view in snapshot.feature_views.items():
        state = states.get(snapshot.online_key(name))
        coverage = Coverage.of(state, materialization_signature(snapshot, view), identity)
        if state is not None and coverage.intervals:
            out[name] = state
    return out


__all__ = ["Coverage", "ViewReport", "materialize", "watermarks", "micros"]
