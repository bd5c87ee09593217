"""Online serving: the latest materialized values, with the offline join's TTL and defaults.

Status per value: ``PRESENT``; ``NOT_FOUND`` (nothing stored for the entity, or one of its join
keys is null: it matches nothing, as in the offline join); ``OUTSIDE_TTL`` (stored, but older
than ``ttl`` at request time: treated exactly as the offline join treats it, as missing);
``CACHED`` (the online store did not answer: the value is the last one this process read, for
views declared ``fallback="cache"``, within the view's ttl); ``UNAVAILABLE`` (the online store
did not answer and the in-process cache had no value: the fallback chain is store -> cache ->
``on_missing``). Missing values get the field default when ``on_missing="default"``, null
otherwise; ``on_missing="fail"`` raises FeatureUnavailableError instead (fail closed).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, NamedTuple

import pandas as pd
import pyarrow as pa

from skewless import types as T
from skewless.backends import require
from skewless.engines.base import pandas_types_mapper
from skewless.errors import (FeatureUnavailableError, InvalidRequestError, RequestTooLargeError,
                             SkewlessError)
from skewless.online import OnlineStore
from skewless.online.cached import GONE, Answer, CachedStore
from skewless.online.codec import (KEY_INT_RANGE, Record, encode_key, from_micros, key_int_fits, micros,
                                   restore)
from skewless.kernels import on_demand as on_demand_kernel
from skewless.plan.on_demand import OnDemandRequest
from skewless.aggregate import EMPTY, Partial, finalize
from skewless.online.tiles import read_state, window_partial
from skewless.plan.online import OnlinePlan, OnlineView

PRESENT, NOT_FOUND, OUTSIDE_TTL, UNAVAILABLE = "PRESENT", "NOT_FOUND", "OUTSIDE_TTL", "UNAVAILABLE"
CACHED = "CACHED"   # served from the in-process cache because the online store did not answer

_KEY_FAMILIES: dict[str, tuple[type, ...]] = {"Int32": (int,), "Int64": (int,), "String": (str,),
                                               "Bytes": (bytes,)}


def _key_value(view: OnlineView, i: int, row: Mapping[str, Any], k: str, t: T.ValueType | None) -> Any:
    try:
        v = row[k]
    except KeyError:
        raise InvalidRequestError(
            f"entity row {i} has no join key '{k}' (needed by feature view '{view.view}'); "
            f"it has {sorted(row)}", hint=f"add '{k}' to every entity row") from None
    except TypeError:
        raise InvalidRequestError(f"entity row {i} must be a dict of join keys, got {type(row).__name__}") from None
    if hasattr(v, "item") and not isinstance(v, (str, bytes)):
        v = v.item()  # numpy scalars
    if isinstance(v, bool) or not isinstance(v, (int, str, bytes)):
        if v is None or v is pd.NA or v is pd.NaT or (isinstance(v, float) and v != v):
            return None  # a null key matches nothing, as in the offline join: NOT_FOUND
        big = isinstance(v, float) and v.is_integer() and abs(v) >= 2 ** 63
        raise InvalidRequestError(
            f"entity row {i}: join key '{k}' = {v!r} has type {type(v).__name__}; keys are int or str"
            + (" (JSON integers beyond the 64-bit range arrive as floats)" if big else ""),
            hint=f"integer keys must lie in {KEY_INT_RANGE}" if big else None)
    if t is not None and t.name in _KEY_FAMILIES and not isinstance(v, _KEY_FAMILIES[t.name]):
        raise InvalidRequestError(
            f"entity row {i}: join key '{k}' = {v!r} has type {type(v).__name__}, but feature view "
            f"'{view.view}' declares it {t.name}", hint="send the key with its declared type")
    if type(v) is int and not key_int_fits(v):
        raise InvalidRequestError(
            f"entity row {i}: join key '{k}' = {v} is beyond the 64-bit integer range "
            f"({KEY_INT_RANGE}); no entity of feature view '{view.view}' can have it",
            hint="send the key as the source stores it")
    return v




_PLAIN_KEY_TYPES: dict[str | None, frozenset[type]] = {
    "Int32": frozenset({int}), "Int64": frozenset({int}), "String": frozenset({str}),
    "Bytes": frozenset({bytes}), None: frozenset({int, str, bytes})}


def _encode_single_keys(view: OnlineView, rows: Sequence[Mapping[str, Any]]) -> list[bytes] | None:
    """Keys of a one-key view when every row is a dict holding a plain value of the declared
    type (the usual request); None sends the rows through ``_key_value``, which converts numpy
    scalars and names the bad row."""
    k, t = view.join_keys[0], view.key_types[0]
    allowed = _PLAIN_KEY_TYPES.get(t.name if t is not None else None)
    if allowed is None:
        return None
    try:
        col = [row[k] for row in rows]
    except (KeyError, TypeError, IndexError):
        return None
    if not set(map(type, col)) <= allowed:
        return None
    try:
        return [encode_key((v,)) for v in col]
    except OverflowError:   # an int beyond 64 bits: _key_value names the row and the value
        return None


class ColumnGroup(NamedTuple):
    """Feature columns of one view that share their statuses and event times: all of a view's
    features do, except where a record predates a field added to the view (then each feature
    is its own group). Lets consumers (the feature server's encoder and metrics) work once per
    view instead of once per column."""

    view: str                          # the feature view ('' when not known: FeatureClient)
    outputs: tuple[str, ...]           # response columns, in response order
    statuses: list[str]                # per entity row
    event_micros: list[int | None]     # per entity row: event time in microseconds, or None


class OnlineResponse:
    """Feast-shaped result: ``to_dict()`` maps each column (join keys, then features) to a list.
    ``statuses`` and ``event_timestamps`` give, per feature, each value's status and event time.
    ``store_error`` is set when the online store did not answer and the values came from the
    fallback chain (cache, then ``on_missing``); ``read_seconds`` is the store round trip.
    ``groups`` lists the feature columns by shared statuses and event times, in column order.
    ``dtypes`` gives each feature column's declared type: ``to_df`` takes its dtypes from them
    (docs/types.md), so they never depend on which values happen to be missing."""

    def __init__(self, keys: dict[str, list[Any]], values: dict[str, list[Any]],
                 groups: Sequence[ColumnGroup], store_error: str | None = None,
                 read_seconds: float = 0.0,
                 dtypes: Mapping[str, T.ValueType | None] | None = None) -> None:
        self.keys = keys
        self.values = values
        self.dtypes: Mapping[str, T.ValueType | None] = dtypes or {}
        self.groups = groups   # lists shared by a group's columns: copied by ``statuses``
        self._event_timestamps: dict[str, list[datetime | None]] | None = None
        self.store_error = store_error
        self.read_seconds = read_seconds

    @property
    def statuses(self) -> dict[str, list[str]]:
        """Per feature, each value's status: PRESENT, NOT_FOUND, OUTSIDE_TTL, CACHED or
        UNAVAILABLE."""
        return {name: g.statuses[:] for g in self.groups for name in g.outputs}

    @property
    def event_micros(self) -> dict[str, list[int | None]]:
        """Per feature, each value's event time in microseconds since the epoch (or None);
        the columns of a group are one shared list: read, do not modify."""
        return {name: g.event_micros for g in self.groups for name in g.outputs}

    @property
    def event_timestamps(self) -> dict[str, list[datetime | None]]:
        """Per feature, each value's event time (UTC), or None where nothing is stored.
        Converted on first access (once per group): most callers never read them."""
        if self._event_timestamps is None:
            conv: dict[int | None, datetime | None] = {None: None}
            out: dict[str, list[datetime | None]] = {}
            for g in self.groups:
                col = [conv[us] if us in conv else conv.setdefault(us, from_micros(us))  # type: ignore[arg-type]
                       for us in g.event_micros]
                for name in g.outputs:
                    out[name] = col[:]
            self._event_timestamps = out
        return self._event_timestamps

    def to_dict(self, include_event_timestamps: bool = False, include_statuses: bool = False
                ) -> dict[str, list[Any]]:
        out: dict[str, list[Any]] = {**self.keys, **self.values}
        if include_statuses:
            out.update({f"{k}__status": v for k, v in self.statuses.items()})
        if include_event_timestamps:
            out.update({f"{k}__event_timestamp": v for k, v in self.event_timestamps.items()})
        return out

    def to_df(self, include_event_timestamps: bool = False, include_statuses: bool = False) -> pd.DataFrame:
        """The response as a frame whose feature columns have the dtypes of training frames
        (``get_historical_features(...).to_df()``): nullable ``Int64``/``Int32``, ``boolean``,
        ``float64``/``float32``, object strings, UTC timestamps, whatever values are missing.
        Join keys keep the types they were sent with."""
        frame = pd.DataFrame(self.to_dict(include_event_timestamps, include_statuses))
        for name, values in self.values.items():
            frame[name] = _typed_column(values, self.dtypes.get(name))
        if include_event_timestamps:
            for name, stamps in self.event_timestamps.items():
                frame[f"{name}__event_timestamp"] = _typed_column(stamps, T.UnixTimestamp)
        return frame


def _typed_column(values: Sequence[Any], dtype: T.ValueType | None) -> Any:
    """A column of served values as pandas gets it from Arrow with the training frames' type
    mapping; values are returned as they are when they do not fit the type (or it is unknown)."""
    if dtype is None:
        return list(values)
    try:
        return pa.array(values, type=dtype.to_arrow()).to_pandas(types_mapper=pandas_types_mapper)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError):
        return list(values)


def _mark_cached(cached: Sequence[bool], groups: Sequence[ColumnGroup]) -> None:
    """Statuses of the values served from the cache while the store was down (``cached``: per
    row): ``CACHED`` instead of ``PRESENT`` (docs/online.md: a degraded answer says which values
    were not served live). Called only when the store did not answer."""
    rows = [i for i, c in enumerate(cached) if c]
    for g in groups:
        sts = g.statuses
        for i in rows:
            if sts[i] is PRESENT:
                sts[i] = CACHED


def get_online_features(store: OnlineStore | CachedStore, plan: OnlinePlan, entity_rows: Sequence[Mapping[str, Any]],
                        now: datetime) -> OnlineResponse:
    """The response for ``entity_rows`` at ``now``, read from ``store`` in one ``read``: a
    ``CachedStore`` adds its hot-key cache and fallback (any other store is read as it is)."""
    if plan.aggregated:
        require_aggregations(store, plan)
    reads = encode_reads(plan, entity_rows)
    reader = store if isinstance(store, CachedStore) else CachedStore(store)
    return assemble(plan, entity_rows, reader.read(reads, plan.fallback_tables), micros(now))


Request = tuple[OnlinePlan, Sequence[Mapping[str, Any]]]


def get_online_features_many(store: OnlineStore | CachedStore, requests: Sequence[Request | SkewlessError], now: datetime
                             ) -> list[OnlineResponse | SkewlessError]:
    """Several requests with one store round trip for all of them: each request's keys are
    validated and encoded on their own, read together, and each response is assembled from its
    share of the records exactly as ``get_online_features`` would. A request's error (a bad key,
    a fail-closed view without a value, or an error passed in) takes its place in the result;
    the other requests are answered."""
    out: list[OnlineResponse | SkewlessError | None] = [None] * len(requests)
    merged: dict[str, list[bytes]] = {}
    fallback: set[str] = set()
    todo: list[tuple[int, OnlinePlan, Sequence[Mapping[str, Any]], dict[str, tuple[int, int]]]] = []
    for i, item in enumerate(requests):
        if isinstance(item, SkewlessError):
            out[i] = item
            continue
        plan, rows = item
        try:
            if plan.aggregated:
                require_aggregations(store, plan)
            reads = encode_reads(plan, rows)
        except SkewlessError as e:
            out[i] = e
            continue
        spans = {}
        for table, ks in reads.items():
            col = merged.setdefault(table, [])
            spans[table] = (len(col), len(col) + len(ks))
            col.extend(ks)
        fallback |= plan.fallback_tables
        todo.append((i, plan, rows, spans))
    if todo:
        reader = store if isinstance(store, CachedStore) else CachedStore(store)
        records, store_error, seconds, cached = reader.read(merged, frozenset(fallback))
        now_us = micros(now)
        for i, plan, rows, spans in todo:
            mine = ({table: records[table][a:b] for table, (a, b) in spans.items()}, store_error, seconds,
                    None if cached is None else {t: cached[t][a:b] for t, (a, b) in spans.items()})
            try:
                out[i] = assemble(plan, rows, mine, now_us)
            except SkewlessError as e:
                out[i] = e
    return out  # type: ignore[return-value]


def require_aggregations(store: OnlineStore | CachedStore, plan: OnlinePlan) -> None:
    """UnsupportedError naming the store when it cannot serve the plan's aggregated views
    (capability ``aggregations``)."""
    if getattr(store.capabilities, "aggregations", None) is True:
        return   # the usual case, checked without building the message
    views = ", ".join(f"'{v.view}'" for v in plan.views if v.aggs)
    require("online_store", store.name, store.capabilities, "aggregations",
            f"aggregated feature view(s) {views} (docs/aggregations.md)")


def check_entity_count(n: int, limit: int) -> None:
    """Refuse a request of ``n`` entity rows over ``limit`` (``serving.max_entities_per_request``)
    with RequestTooLargeError (HTTP 413), before any work."""
    if n > limit:
        raise RequestTooLargeError(
            f"the request has {n:,} entity rows, over the limit of {limit:,} per request "
            "(serving.max_entities_per_request)",
            hint=f"split it into requests of at most {limit:,} entity rows, or raise "
            "serving.max_entities_per_request in feature_store.yaml (docs/server.md)")


def encode_reads(plan: OnlinePlan, entity_rows: Sequence[Mapping[str, Any]]) -> dict[str, list[bytes]]:
    """The store keys to read, per table: every row's join keys checked and encoded (views
    keyed alike share one encoding).

    A null key part (``None``, NaN, ``pd.NA``, ``pd.NaT``) is encoded as null: no stored key
    holds one (materialization skips source rows with a null key and push refuses them), so
    the row reads as NOT_FOUND, exactly as the offline join matches nothing for a null key
    (docs/online.md). Rows with nulls leave the one-key fast path, which requests without
    nulls keep."""
    if isinstance(entity_rows, Mapping) or not isinstance(entity_rows, Sequence):
        raise InvalidRequestError("entity_rows must be a list of dicts, e.g. [{'user_id': 1}]")
    reads: dict[str, list[bytes]] = {}
    encoded: dict[tuple[Any, ...], list[bytes]] = {}
    for view in plan.views:
        sig = view.key_signature
        if sig not in encoded:
            fast = _encode_single_keys(view, entity_rows) if len(view.join_keys) == 1 else None
            encoded[sig] = fast if fast is not None else [
                encode_key([_key_value(view, i, row, k, t) for k, t in zip(view.join_keys, view.key_types)])
                for i, row in enumerate(entity_rows)]
        reads[view.table] = encoded[sig]
    return reads


def assemble(plan: OnlinePlan, entity_rows: Sequence[Mapping[str, Any]], answer: Answer,
             now_us: int) -> OnlineResponse:
    """The response from the records read for ``entity_rows``: statuses (visibility at
    ``now_us``), defaults, event times; raises FeatureUnavailableError for a fail-closed view
    without a value."""
    records, store_error, read_seconds, cached = answer
    keys = {k: [row[k] for row in entity_rows] for k in plan.join_keys}
    values: dict[str, list[Any]] = {}
    groups: list[ColumnGroup] = []
    for view in plan.views:
        recs = records[view.table]
        first_group = len(groups)
        if view.aggs:
            _assemble_aggregated(view, entity_rows, recs, now_us, values, groups, store_error)
            if cached is not None:
                _mark_cached(cached[view.table], groups[first_group:])
            continue
        cutoff = view.visibility.oldest_us(now_us)
        # One status and one timestamp per row for the whole view; features only differ when a
        # record predates a field added to the view (then that field is NOT_FOUND).
        row_status = [NOT_FOUND if r is None else UNAVAILABLE if r is GONE
                      else OUTSIDE_TTL if cutoff is not None and r.event_ts < cutoff
                      else PRESENT for r in recs]
        if view.on_missing == "fail" and any(st is not PRESENT for st in row_status):
            i = next(j for j, st in enumerate(row_status) if st is not PRESENT)
            _fail(view, entity_rows[i], row_status[i], recs[i], store_error)
        row_stamp: list[int | None] = [None if r is None or r is GONE else r.event_ts for r in recs]
        layout = _common_layout(recs) if all(st is PRESENT for st in row_status) else None
        extract = _extractor(view, layout) if layout is not None else None
        if extract is not None:
            # the usual case: every record present, all written with the same fields
            cols = list(zip(*[r.vals for r in recs])) if recs else []  # type: ignore[union-attr]
            for out, i, dtype in extract:
                col = cols[i] if cols else ()
                values[out] = list(col) if dtype is None else [restore(v, dtype) for v in col]
            groups.append(ColumnGroup(view.view, view.outputs, row_status, row_stamp))
        else:
            _assemble(view, recs, row_status, row_stamp, values, groups)
        if cached is not None:
            _mark_cached(cached[view.table], groups[first_group:])
    if plan.on_demand is not None:
        return _on_demand(plan, plan.on_demand, entity_rows, keys, values, groups, store_error,
                          read_seconds)
    return OnlineResponse(keys, values, groups, store_error, read_seconds, plan.dtypes)


def _on_demand(plan: OnlinePlan, request: OnDemandRequest, entity_rows: Sequence[Mapping[str, Any]],
               keys: dict[str, list[Any]], values: dict[str, list[Any]], groups: list[ColumnGroup],
               store_error: str | None, read_seconds: float) -> OnlineResponse:
    """The answer of a request naming on-demand views: the read's columns (working names) run
    through the one runner (``kernels/on_demand.online``), then the requested columns in
    request order. An on-demand value is PRESENT, or NOT_FOUND where it is null; it has no
    event time."""
    out = on_demand_kernel.online(request, values, entity_rows)
    by_column = {col: g for g in groups for col in g.outputs}
    final: list[ColumnGroup] = []
    for col, name in request.columns:
        g = by_column.get(col)
        if g is not None:
            final.append(ColumnGroup(g.view, (name,), g.statuses, g.event_micros))
        else:
            view = col.split("__", 1)[0]
            final.append(ColumnGroup(view, (name,), [NOT_FOUND if v is None else PRESENT for v in out[name]],
                                     [None] * len(entity_rows)))
    return OnlineResponse(keys, out, final, store_error, read_seconds, request.dtypes)  # type: ignore[arg-type]


def _assemble_aggregated(view: OnlineView, entity_rows: Sequence[Mapping[str, Any]],
                         recs: Sequence[Any], now_us: int, values: dict[str, list[Any]],
                         groups: list[ColumnGroup], store_error: str | None) -> None:
    """Columns of an aggregated view (docs/aggregations.md, "Online"): each key's tile state
    merged for the window ending at ``now_us``. Features of one column, window and tile share
    their statuses and event times (one group): ``PRESENT`` when the window holds a non-null
    value of the column, the event time being the latest such event's; ``NOT_FOUND`` for an
    empty window (count 0, the others null; a null value is the field default under
    ``on_missing="default"``, as offline);
    ``UNAVAILABLE`` when the store did not answer. ``on_missing="fail"`` raises for a key the
    store holds nothing for (or could not answer for)."""
    if view.on_missing == "fail":
        for i, r in enumerate(recs):
            if r is None or r is GONE:
                _fail(view, entity_rows[i], NOT_FOUND if r is None else UNAVAILABLE, None, store_error)
    states = [None if r is None or r is GONE else read_state(r) for r in recs]
    use_default = view.on_missing == "default"
    # one partial per (column, window, tile) and row, shared by that window's functions
    # (and statuses and event times: one group per run of the window's features)
    windows: dict[tuple[str, int, int], tuple[list[Partial], list[str], list[int | None]]] = {}
    for window, outputs, members in view.agg_runs:
        got = windows.get(window)
        if got is None:
            parts = [EMPTY if state is None else window_partial(state, *window, now_us) for state in states]
            got = windows[window] = (
                parts,
                [UNAVAILABLE if r is GONE else PRESENT if p.count else NOT_FOUND for r, p in zip(recs, parts)],
                [p.last[0] if p.last is not None else None for p in parts])
        parts = got[0]
        for f, function in members:
            default, dtype = f.default, f.dtype
            col: list[Any] = []
            for p in parts:
                value = finalize(p, function)
                if value is None:
                    if use_default:
                        value = default
                elif f.restore:
                    value = restore(value, dtype)
                col.append(value)
            values[f.output] = col
        groups.append(ColumnGroup(view.view, outputs, got[1], got[2]))


def _extractor(view: OnlineView, layout: tuple[str, ...]
               ) -> tuple[tuple[str, int, T.ValueType | None], ...] | None:
    """Where each feature of ``view`` sits in a record of ``layout`` (memoized per view:
    few layouts exist), or None if some feature is not in it."""
    try:
        return view._extractors[layout]
    except KeyError:
        pass
    pos = _positions(layout)
    ext = (tuple((f.output, pos[f.name], f.dtype if f.restore else None) for f in view.features)
           if all(f.name in pos for f in view.features) else None)
    if len(view._extractors) < 64:
        view._extractors[layout] = ext
    return ext


_POSITIONS: dict[tuple[str, ...], dict[str, int]] = {}


def _positions(layout: tuple[str, ...]) -> dict[str, int]:
    """Field name -> index in a record of ``layout`` (few layouts exist: cached for good)."""
    pos = _POSITIONS.get(layout)
    if pos is None:
        pos = _POSITIONS[layout] = {n: i for i, n in enumerate(layout)}
    return pos


def _common_layout(recs: Sequence[Record | None]) -> tuple[str, ...] | None:
    """The field names shared by every record, or None if they differ (or some are missing)."""
    if not recs or recs[0] is None:
        return () if not recs else None
    names = recs[0].names
    for r in recs:
        if r is None or (r.names is not names and r.names != names):
            return None
    return names


def _assemble(view: OnlineView, recs: Sequence[Record | None], row_status: list[str],
              row_stamp: list[int | None], values: dict[str, list[Any]],
              groups: list[ColumnGroup]) -> None:
    """Columns of one view, record by record: missing records, stale ones, and records written
    before a field was added to the view (that field is NOT_FOUND for them)."""
    use_default = view.on_missing == "default"
    shared = True  # every feature has the view's row statuses: one group
    cols: list[tuple[str, list[str]]] = []
    for f in view.features:
        vals: list[Any] = []
        sts: list[str] = []
        for r, st in zip(recs, row_status):
            if st is PRESENT:
                i = _positions(r.names).get(f.name)  # type: ignore[union-attr]
                if i is None:
                    st = NOT_FOUND
                else:
                    v = r.vals[i]  # type: ignore[union-attr]
                    vals.append(restore(v, f.dtype) if f.restore else v)
            if st is not PRESENT:
                # a list default (Array field) is copied: one object shared by every response
                # would carry a caller's in-place change into every later one
                vals.append((list(f.default) if type(f.default) is list else f.default)
                            if use_default else None)
            sts.append(st)
        values[f.output] = vals
        cols.append((f.output, sts))
        shared = shared and sts == row_status
    if shared:
        groups.append(ColumnGroup(view.view, view.outputs, row_status, row_stamp))
        return
    for out, sts in cols:
        groups.append(ColumnGroup(view.view, (out,), sts,
                                  [None if st is NOT_FOUND else us for st, us in zip(sts, row_stamp)]))


def _fail(view: OnlineView, row: Mapping[str, Any], status: str, rec: Any,
          store_error: str | None = None) -> None:
    entity = dict(zip(view.join_keys, (row[k] for k in view.join_keys)))
    if status == UNAVAILABLE:
        raise FeatureUnavailableError(
            f"feature view '{view.view}' cannot be served for entity {entity}: the online store "
            f"did not answer ({store_error}) and the view is declared on_missing='fail'",
            hint="bring the online store back; views with fallback='cache' serve recently read "
            "values meanwhile")
    age = "" if rec is None else f" (last value at {from_micros(rec.event_ts).isoformat()})"
    raise FeatureUnavailableError(
        f"feature view '{view.view}' has no {'fresh ' if rec else ''}value for entity "
        f"{entity}: {status}{age}; the view is declared on_missing='fail'",
        hint="materialize the view (`skewless materialize-incremental`) or change on_missing")
