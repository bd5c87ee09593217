"""Per-key tiles of an aggregated view online: what the store holds, how it is updated, how a
read merges it (docs/aggregations.md, "Online").

An aggregated view's online table holds ONE record per entity key (``Record``, so reads go
through ``read_batch`` with the plain views, in one round trip), whose single value is the key's
**tile state**: per tile size of the view (``FeatureView.tile_of``; windows of one size share
their tiles), the tiles still inside the longest window of that size, each holding

- ``start``: the tile's start (microseconds since the epoch, epoch-aligned);
- ``hi``: the tile was last rebuilt from the offline store for its events before ``hi`` (0: it
  was only ever updated by pushes). Materialization replaces a tile only when its own bound is
  at least the stored one, so an older run never undoes a newer one;
- ``top``: the latest event time in the tile (the reported event time of a window);
- ``rows``: the number of events (null values included; status ``PRESENT`` needs one);
- one ``Partial`` (``skewless.aggregate``, as ``Partial.to_list``) per aggregated column;
- ``ids``: the event ids in the tile, when the source declares ``event_id_column`` (an event
  delivered twice counts once; cost: one id per event still inside the longest window);
- ``batches``: the push batch ids merged into the tile (a retried push counts once).

The record's event time is the latest event time of the state. Tiles are dropped once no read
at a time after every stored event can reach them: start before ``floor_tile(latest event -
window)`` for the longest window of their size. A read at ``t`` merges, per aggregation, the
tiles ``window_tiles(t, window, tile)`` with the library's ``merge`` and ``finalize``; the
head tile is taken whole: every stored event is before ``t`` (materialization stores the
events before its end; push refuses events after the push time).

All functions here are pure over plain values (``RecordUpdate``s for ``update_batch``).
"""

from __future__ import annotations

import struct
import sys
import zlib
from bisect import bisect_left
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgpack

import numpy as np

from skewless.aggregate import EMPTY, Partial, finalize, floor_tile, merge, update
from skewless.aggregate.partial import merge_each
from skewless.online.codec import OLDEST, Record, restored, storable

LAYOUT = ("__tiles__",)   # the names of a tile-state record (one value: the state)

# a tile, as stored: [start, hi, top, rows, {column: partial list}, ids or None, batches]
START, HI, TOP, ROWS, PARTS, IDS, BATCHES = range(7)

# Partial.to_list fields (skewless.aggregate.STATE_COLUMNS) and which ones ``finalize`` reads
# for each function; every read also reads count (the status) and last (the event time)
COUNT, SUM, MEAN, M2, MIN, MAX, LAST_TS, LAST_CREATED, LAST_VALUE = range(9)
_READS: dict[str, tuple[int, ...]] = {
    "count": (), "sum": (SUM,), "mean": (SUM,), "min": (MIN,), "max": (MAX,),
    "last": (LAST_CREATED, LAST_VALUE), "stddev_samp": (MEAN, M2), "stddev_pop": (MEAN, M2)}
_BLANK = EMPTY.to_list()


def _expand(fields: Sequence[int], kept: Sequence[Any]) -> Partial:
    """A partial from the fields kept of it (the others blank: no function of the view reads
    them; ``merge`` and ``update`` never mix fields, so the kept ones stay exact)."""
    values = list(_BLANK)
    for i, v in zip(fields, kept):
        values[i] = v
    return Partial.from_list(values)


def _trim(fields: Sequence[int], p: Partial) -> list[Any]:
    full = p.to_list()
    return [full[i] for i in fields]


@dataclass(frozen=True)
class AggSpec:
    """One aggregation of a view as the online path computes it."""

    output: str           # the response column
    column: str           # the source column (the view's name of it)
    function: str
    window_us: int
    tile_us: int


@dataclass(frozen=True)
class TileLayout:
    """What a view's tile state holds: its aggregated columns, its tile sizes, and for each
    tile size the longest window that reads it (how long its tiles are kept)."""

    columns: tuple[str, ...]
    keep_us: Mapping[int, int]        # tile size -> longest window of that size
    event_ids: bool                   # the source declares event_id_column
    # column -> the Partial.to_list fields its functions read (the suffix merges keep those)
    fields: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    # (tiles and suffix merges store those fields only: ``_expand`` / ``_trim``)

    @classmethod
    def of(cls, specs: Sequence[AggSpec], event_ids: bool) -> TileLayout:
        keep: dict[int, int] = {}
        fields: dict[str, set[int]] = {}
        for s in specs:
            keep[s.tile_us] = max(keep.get(s.tile_us, 0), s.window_us)
            # count (the status) and the latest value (the event time; merge compares whole
            # (ts, created, value) triples, so they are kept together) always
            fields.setdefault(s.column, {COUNT, LAST_TS, LAST_CREATED, LAST_VALUE}).update(
                _READS[s.function])
        return cls(tuple(dict.fromkeys(s.column for s in specs)), keep, event_ids,
                   {c: tuple(sorted(f)) for c, f in fields.items()})


# --- the state ---------------------------------------------------------------------------------

State = dict[int, list[list[Any]]]   # tile size -> tiles sorted by start


def _tile(t: Sequence[Any]) -> list[Any]:
    out = list(t)
    out[PARTS] = dict(out[PARTS])
    out[IDS] = None if out[IDS] is None else list(out[IDS])
    out[BATCHES] = list(out[BATCHES])
    return out


def state_of(rec: Record | None) -> State:
    """The tile state of a stored record, to update (empty for None, or a record of another
    layout)."""
    if rec is None or rec.names != LAYOUT:
        return {}
    tiles = msgpack.unpackb(zlib.decompress(rec.vals[1]), raw=False, use_list=True, ext_hook=restored)
    return {int(size): [_tile(t) for t in group] for size, group in tiles}


class ReadState:
    """A key's tile state as a read sees it: per tile size, the tile starts and the suffix
    merges as columns (``Partial.to_list`` order); a read looks at the one tile size and
    column it needs (``suffixes``, ``last``: decoded once, shared by the windows of one tile
    size); the tiles themselves stay packed until a read before some stored event needs them
    (``tiles``)."""

    __slots__ = ("groups", "_blob", "_tiles", "_seen")

    def __init__(self, groups: Mapping[int, Sequence[Any]], blob: bytes) -> None:
        self.groups = groups   # tile size -> the stored [size, starts, closed, last]
        self._blob = blob
        self._tiles: dict[int, list[Any]] | None = None
        self._seen: dict[tuple[int, str], tuple[Sequence[int], Sequence[int], list[Any], Partial]] = {}

    def suffixes(self, size: int, column: str) -> tuple[Sequence[int], Sequence[int], list[Any], Partial]:
        """For tile size ``size`` and ``column``: the tile starts, the fields kept, the closed
        suffix merges (one indexable per kept field) and the last tile's partial."""
        try:
            return self._seen[size, column]
        except KeyError:
            _, starts, closed, last = self.groups[size]
            kept, cols = closed[column]
            out = self._seen[size, column] = (
                _view(starts), kept, [_view(f) for f in cols], _expand(kept, last[column]))
            return out

    def tiles(self, size: int) -> list[Any]:
        if self._tiles is None:
            self._tiles = {int(sz): group for sz, group in
                           msgpack.unpackb(zlib.decompress(self._blob), raw=False, use_list=False,
                                                       ext_hook=restored)}
        return self._tiles.get(size, [])


def read_state(rec: Record) -> ReadState | None:
    """The tile state of a stored record, read only (None: a record of another layout)."""
    if rec.names != LAYOUT:
        return None
    return ReadState({g[0]: g for g in rec.vals[0]}, rec.vals[1])


# A column of numbers in a record (the tile starts; a field of the suffix merges) is stored
# packed when its values are all floats or all 64-bit ints (the usual case: counts, sums,
# times): one byte, ``d`` or ``q``, then the values little-endian, 8 bytes each; ``n``: all
# null, then their number. Decoding a record then makes one bytes object per column instead of
# one Python number per tile, and a read indexes the bytes in place (``_view``). Any other
# column (nulls among values, strings, bools, ints beyond 64 bits) stays a list; both forms
# are read.
_I64 = (-(2**63), 2**63 - 1)
_NATIVE = sys.byteorder == "little"   # memoryview.cast reads native order


def _pack_column(values: Sequence[Any]) -> bytes | list[Any]:
    if values and all(v is None for v in values):
        return b"n" + struct.pack("<q", len(values))
    if values and all(type(v) is float for v in values):
        return b"d" + struct.pack(f"<{len(values)}d", *values)
    if values and all(type(v) is int and _I64[0] <= v <= _I64[1] for v in values):
        return b"q" + struct.pack(f"<{len(values)}q", *values)
    return list(values)


def _view(column: bytes | Sequence[Any]) -> Sequence[Any]:
    """A stored column as an indexable sequence of its values (packed: read in place)."""
    if type(column) is not bytes:
        return column   # type: ignore[return-value]
    if column[0] == 110:   # "n"
        return (None,) * struct.unpack_from("<q", column, 1)[0]
    if _NATIVE:
        return memoryview(column)[1:].cast("d" if column[0] == 100 else "q")
    return struct.unpack_from(f"<{(len(column) - 1) // 8}{chr(column[0])}", column, 1)


def _unpack_column(column: bytes | Sequence[Any]) -> list[Any]:
    return list(_view(column))


def _drop(column: bytes | Sequence[Any], k: int) -> bytes | list[Any]:
    """A stored column without its first ``k`` values, as ``_pack_column`` would store it."""
    if type(column) is not bytes:
        return _pack_column(list(column)[k:])
    n = (struct.unpack_from("<q", column, 1)[0] if column[0] == 110 else (len(column) - 1) // 8) - k
    if n <= 0:
        return []
    if column[0] == 110:
        return b"n" + struct.pack("<q", n)
    return column[:1] + column[1 + 8 * k:]


_DTYPES = {100: np.dtype("<f8"), 113: np.dtype("<i8")}   # "d", "q"


def _merge_packed(kept: Sequence[int], fields: Sequence[Any], k: int, last: Partial) -> list[Any] | None:
    """The stored columns ``fields`` (less their first ``k`` values), each row merged with
    ``last``, then ``last`` itself appended: the library's ``merge_each`` over the packed
    columns. None when a column is not packed or ``merge_each`` declines (merge row by row)."""
    arrays: dict[int, np.ndarray | None] = {}
    for i, f in zip(kept, fields):
        if type(f) is not bytes:
            return None
        arrays[i] = None if f[0] == 110 else np.frombuffer(f, dtype=_DTYPES[f[0]], offset=1 + 8 * k)
    merged = merge_each(arrays, last)
    if merged is None:
        return None
    tail = last.to_list()
    rows = (len(fields[0]) - 1) // 8 - k   # the count column (kept first, always packed here)
    out: list[Any] = []
    for i in kept:
        a, v = merged[i], tail[i]
        if a is None:
            out.append(_pack_column([None] * rows + [v]))
        elif a.dtype == np.float64 and type(v) is float:
            out.append(b"d" + a.astype("<f8", copy=False).tobytes() + struct.pack("<d", v))
        elif a.dtype == np.int64 and type(v) is int and _I64[0] <= v <= _I64[1]:
            out.append(b"q" + a.astype("<i8", copy=False).tobytes() + struct.pack("<q", v))
        else:
            out.append(_pack_column(a.tolist() + [v]))
    return out


def _columns(rows: Sequence[Sequence[Any]], keep: Sequence[int]) -> list[Any]:
    return [list(keep), [_pack_column([r[i] for r in rows]) for i in keep]]


def _closed(tiles: Sequence[Sequence[Any]], layout: TileLayout) -> dict[str, list[Any]]:
    """Per column, the suffix merges of every tile but the last (column-wise, the kept
    fields)."""
    out: dict[str, list[Any]] = {}
    for c in layout.columns:
        acc = EMPTY
        rows: list[list[Any]] = []
        for t in reversed(tiles[:-1]):
            acc = merge(_expand(layout.fields[c], t[PARTS][c]), acc)
            rows.append(acc.to_list())
        rows.reverse()
        out[c] = _columns(rows, layout.fields[c])
    return out


def _reuse(old: Sequence[Any], starts: list[int], tiles: Sequence[Sequence[Any]],
           touched: set[int], layout: TileLayout) -> dict[str, list[Any]] | None:
    """The closed suffixes of a group from the previous record's, when only its last tile
    changed (a push of recent events, the usual case): the same, less the tiles pruned since;
    or, when the events opened a new last tile, each merged once with the previous last tile.
    None when an older tile changed (then they are computed again)."""
    old_starts, old_closed, old_last = _unpack_column(old[1]), old[2], old[3]
    if not old_starts or not starts or (touched - {starts[-1]}):
        return None
    if starts[-1] == old_starts[-1]:
        body = starts
        extra = None
    elif starts[-1] > old_starts[-1] and len(starts) >= 2 and starts[-2] == old_starts[-1]:
        body = starts[:-1]
        extra = old_last   # the previous last tile, now closed
    else:
        return None
    drop = len(old_starts) - len(body)
    if drop < 0 or list(old_starts[drop:]) != body:
        return None
    out: dict[str, list[Any]] = {}
    for c in layout.columns:
        kept, fields = old_closed[c]
        if list(kept) != list(layout.fields[c]):
            return None
        if extra is None:
            out[c] = [list(kept), [_drop(f, drop) for f in fields]]
            continue
        last = _expand(kept, extra[c])
        packed = _merge_packed(kept, fields, drop, last) if len(body) > 1 else None
        if packed is not None:
            out[c] = [list(kept), packed]
            continue
        cols = [_unpack_column(f)[drop:] for f in fields]
        rows = [merge(_expand(kept, [f[i] for f in cols]), last).to_list()
                for i in range(len(cols[0]) if cols else 0)]
        rows.append(last.to_list())
        out[c] = _columns(rows, kept)
    return out


def record_of(state: State, layout: TileLayout, previous: Record | None = None,
              touched: Mapping[int, set[int]] | None = None) -> Record:
    """The record of a tile state: ``(groups, tiles)``. ``tiles`` is the state itself, packed
    and compressed (msgpack, zlib level 1: half the bytes a read fetches; a read never decodes
    it). ``groups`` holds, per tile size, ``[size, starts (packed: ``_pack_column``),
    closed, last]``: the tile starts, the **suffix merges** of every tile but the last (for each
    column and tile i, the library's ``merge`` of the partials of tiles i, ..., last - 1,
    column-wise, the fields ``TileLayout.fields``) and the last tile's partials. A read at t
    after every stored event needs the tiles from ``floor_tile(t - window)`` on: one closed
    suffix merged with the last tile, whatever the window's length (docs/aggregations.md,
    "Online": cost). A push into the last tile (``touched``: tile starts changed per size,
    with the ``previous`` record) changes no closed suffix."""
    top = max((t[TOP] for tiles in state.values() for t in tiles), default=OLDEST)
    old = ({g[0]: g for g in previous.vals[0]} if previous is not None and touched is not None
           and previous.names == LAYOUT else {})
    groups = []
    for size, tiles in sorted(state.items()):
        starts = [t[START] for t in tiles]
        closed = None
        if size in old:
            closed = _reuse(old[size], starts, tiles, touched.get(size, set()) if touched else set(),
                            layout)
        if closed is None:
            closed = _closed(tiles, layout)
        groups.append([size, _pack_column(starts), closed,
                       {c: tiles[-1][PARTS][c] for c in layout.columns}])
    blob = zlib.compress(msgpack.packb([[size, tiles] for size, tiles in sorted(state.items())],
                                       use_bin_type=True, default=storable), 1)
    return Record(top, OLDEST, LAYOUT, (groups, blob))


def _prune(state: State, layout: TileLayout) -> State:
    """Drop tiles no read after the latest stored event can reach, and sizes the view no longer
    has."""
    top = max((t[TOP] for tiles in state.values() for t in tiles), default=None)
    out: State = {}
    for size, tiles in state.items():
        keep = layout.keep_us.get(size)
        if keep is None:
            continue
        oldest = floor_tile(top - keep, size) if top is not None else None
        kept = [t for t in tiles if oldest is None or t[START] >= oldest]
        if kept:
            out[size] = kept
    return out


# --- updates ---------------------------------------------------------------------------------

@dataclass
class Event:
    """One source row of an aggregated view: event time, created time (None), the values of
    the aggregated columns, the event id (None: the source declares none, or it is null)."""

    ts: int
    created: int | None
    values: Mapping[str, Any]
    event_id: Any = None


def _new_tile(start: int, layout: TileLayout) -> list[Any]:
    return [start, 0, OLDEST, 0, {c: _trim(layout.fields[c], EMPTY) for c in layout.columns},
            [] if layout.event_ids else None, []]


def add_events(stored: Record | None, events: Sequence[Event], layout: TileLayout,
               batch: str | None = None) -> Record | None:
    """``stored`` with ``events`` merged into their tiles (a push): an event whose id is
    already in the state, or a tile that already merged ``batch``, is skipped. None when
    nothing changed."""
    state = state_of(stored)
    changed = False
    touched_by_size: dict[int, set[int]] = {}
    for size in layout.keep_us:
        tiles = state.setdefault(size, [])
        starts = [t[START] for t in tiles]
        seen = ({i for t in tiles for i in (t[IDS] or ())} if layout.event_ids else set())
        touched = touched_by_size[size] = set()
        for e in events:
            if e.event_id is not None and e.event_id in seen:
                continue
            start = floor_tile(e.ts, size)
            i = bisect_left(starts, start)
            if i == len(starts) or starts[i] != start:
                tiles.insert(i, _new_tile(start, layout))
                starts.insert(i, start)
            tile = tiles[i]
            if batch is not None and batch in tile[BATCHES] and start not in touched:
                continue   # this batch was merged into this tile before (a retried push)
            touched.add(start)
            parts = tile[PARTS]
            for c in layout.columns:
                fields = layout.fields[c]
                parts[c] = _trim(fields, update(_expand(fields, parts[c]), e.values.get(c), e.ts, e.created))
            tile[TOP] = max(tile[TOP], e.ts)
            tile[ROWS] += 1
            if e.event_id is not None:
                seen.add(e.event_id)
                tile[IDS].append(e.event_id)
            changed = True
        if batch is not None:
            for t in tiles:
                if t[START] in touched and batch not in t[BATCHES]:
                    t[BATCHES].append(batch)
    if not changed:
        return None
    return record_of(_prune(state, layout), layout, stored, touched_by_size)


@dataclass
class BuiltTile:
    """A tile rebuilt from the offline store: its events before ``hi``. ``full``: for the tile
    holding ``hi``, the same tile with every event the offline store held in it (beyond
    ``hi`` too), used in place of the stored tile when pushes already put events at or after
    ``hi`` there (they are offline too, offline first), so a materialization never takes back
    what a push brought."""

    hi: int
    top: int
    rows: int
    partials: dict[str, Partial] = field(default_factory=dict)
    ids: list[Any] | None = None
    full: BuiltTile | None = None


def replace_tiles(stored: Record | None, built: Mapping[int, Mapping[int, BuiltTile]],
                  layout: TileLayout) -> Record | None:
    """``stored`` with the tiles ``built`` (tile size -> start -> tile) put in place of the
    stored ones whose ``hi`` is not greater (materialization; a tile holding pushed events at
    or after ``hi`` takes ``full``, see ``BuiltTile``). The batches a replaced tile had
    merged stay recorded (their rows are offline, hence in the rebuilt tile). None when nothing
    changed."""
    state = state_of(stored)
    changed = False
    for size, by_start in built.items():
        if size not in layout.keep_us:
            continue
        tiles = state.setdefault(size, [])
        starts = [t[START] for t in tiles]
        for start, b in sorted(by_start.items()):
            i = bisect_left(starts, start)
            old = tiles[i] if i < len(starts) and starts[i] == start else None
            if old is not None and old[HI] > b.hi:
                continue
            if b.full is not None and old is not None and old[ROWS] and old[TOP] >= b.hi:
                b = BuiltTile(b.hi, b.full.top, b.full.rows, b.full.partials, b.full.ids)
            if old is None and not b.rows:
                continue
            parts = {c: _trim(layout.fields[c], b.partials.get(c, EMPTY)) for c in layout.columns}
            new = [start, b.hi, b.top, b.rows, parts,
                   (list(b.ids or ()) if layout.event_ids else None),
                   list(old[BATCHES]) if old is not None else []]
            if old is not None:
                tiles[i] = new
            else:
                tiles.insert(i, new)
                starts.insert(i, start)
            changed = True
    if not changed:
        return None
    return record_of(_prune(state, layout), layout)


# --- reads -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class WindowValue:
    """An aggregation's value at ``t``: the value, the number of non-null values of its column
    in the window (0: the window is empty, docs/aggregations.md), the event time of the latest
    of them (None when empty)."""

    value: Any
    count: int
    top: int | None


def window_partial(state: ReadState, column: str, window_us: int, tile_us: int,
                   t_us: int) -> Partial:
    """The partial of ``column`` over the window ending at ``t_us``: a stored closed suffix
    merged with the last tile when no stored tile is after the head tile (every stored event
    is before ``t_us``, the rule), else the library's ``merge`` of the window's tiles."""
    if tile_us not in state.groups:
        return EMPTY
    starts, kept, cols, last = state.suffixes(tile_us, column)
    if not starts:
        return EMPTY
    lo = bisect_left(starts, floor_tile(t_us - window_us, tile_us))
    head = floor_tile(t_us, tile_us)
    if starts[-1] <= head and starts[-1] < t_us:
        n = len(starts)
        if lo == n:
            return EMPTY
        if lo == n - 1:
            return last
        return merge(_expand(kept, [f[lo] for f in cols]), last)
    # a read before some stored event (a past time): merge the window's tiles; the head tile
    # counts whole, unless t is its start (then none of its events is before t)
    total = EMPTY
    for t in state.tiles(tile_us)[lo:bisect_left(starts, head + (1 if t_us > head else 0))]:
        total = merge(total, _expand(kept, t[PARTS][column]))
    return total


def read_window(state: ReadState, spec: AggSpec, t_us: int) -> WindowValue:
    """The value of ``spec`` at ``t_us`` from a key's tile state (``window_partial``, then the
    library's ``finalize``)."""
    total = window_partial(state, spec.column, spec.window_us, spec.tile_us, t_us)
    return WindowValue(finalize(total, spec.function), total.count,
                       total.last[0] if total.last is not None else None)


__all__ = ["AggSpec", "BuiltTile", "Event", "LAYOUT", "TileLayout", "WindowValue", "add_events",
           "ReadState", "read_state", "read_window", "record_of", "replace_tiles", "state_of"]
