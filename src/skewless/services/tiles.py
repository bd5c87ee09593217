"""The tiles of aggregated views online: built from the offline events (materialize,
materialize-incremental, rebuild-online) or merged from pushed rows (push, the stream consumer),
with the one library of partial aggregates (``skewless.aggregate``) and written by the online
store's read-modify-write (``update_batch``, capability ``aggregations``).

docs/aggregations.md, "Online", has the rules; ``skewless.online.tiles`` the tile state.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from skewless.aggregate import STATE_COLUMNS, dedup_events, floor_tile, tile_partials
from skewless.aggregate.partial import row_partial
from skewless.backends import require
from skewless.define import FeatureView
from skewless.kernels.batch import cast
from skewless.kernels.source import read_conformed, resolve_source
from skewless.online import OnlineStore
from skewless.online.codec import Record, encode_key
from skewless.online.tiles import BuiltTile, Event, TileLayout, add_events, replace_tiles
from skewless.plan.online import tile_layout
from skewless.registry import Snapshot

UTC_MICROS = pa.timestamp("us", tz="UTC")
KEYS_PER_CHUNK = 5000   # keys whose tiles are built (Python objects) and written at once
_TS, _CREATED, _ID = "__ts", "__created", "__event_id"


def require_tiles(store: OnlineStore, view: FeatureView, what: str) -> None:
    """UnsupportedError naming the store unless it can keep tiles (capability
    ``aggregations``)."""
    require("online_store", store.name, store.capabilities, "aggregations",
            f"{what} of aggregated feature view '{view.name}' (its per-key tiles need an atomic "
            "read-modify-write; docs/aggregations.md)")


def _columns(view: FeatureView, keys: Sequence[str]) -> list[str]:
    """The aggregated columns, by the view's names."""
    return list(dict.fromkeys(a.column for a in view.aggregations))


def events_table(snapshot: Snapshot, view: FeatureView, repo_path: str | Path, lo_us: int | None,
                 hi_us: int) -> pa.Table:
    """The view's source events with ``lo_us <= ts < hi_us`` (None: from the beginning), with
    columns named as the view names them: the join keys, ``__ts`` and ``__created`` (int64
    microseconds; created null when the source has none), ``__event_id`` (when declared) and
    the aggregated columns, each conformed to its declared type (docs/types.md). Rows with a
    null key are left out (they match nothing, as in the offline join); duplicates of an event
    id are one event (``skewless.aggregate.dedup_events``)."""
    src = view.batch_source
    keys = snapshot.join_keys(view)
    declared = {f.name: f.dtype.to_arrow() for f in view.schema}
    cols = _columns(view, keys)
    want: dict[str, pa.DataType | None] = {}
    for name in [*keys, *cols]:
        want[src.source_column(name)] = declared.get(name)
    want[src.timestamp_field] = UTC_MICROS
    if src.created_timestamp_column:
        want[src.created_timestamp_column] = UTC_MICROS
    if src.event_id_column:
        want.setdefault(src.event_id_column, None)
    raw = read_conformed(resolve_source(src, repo_path), want, view.name)
    ts = pc.cast(pc.cast(raw.column(src.timestamp_field), UTC_MICROS), pa.int64())
    out: dict[str, Any] = {name: raw.column(src.source_column(name)) for name in [*keys, *cols]}
    out[_TS] = ts
    out[_CREATED] = (pc.cast(pc.cast(raw.column(src.created_timestamp_column), UTC_MICROS), pa.int64())
                     if src.created_timestamp_column else pa.nulls(raw.num_rows, pa.int64()))
    if src.event_id_column:
        out[_ID] = raw.column(src.event_id_column)
    table = pa.table(out)
    mask = pc.less(table.column(_TS), pa.scalar(hi_us, pa.int64()))
    if lo_us is not None:
        mask = pc.and_(mask, pc.greater_equal(table.column(_TS), pa.scalar(lo_us, pa.int64())))
    for k in keys:
        mask = pc.and_(mask, pc.is_valid(table.column(k)))
    table = table.filter(pc.fill_null(mask, False))
    if src.event_id_column and table.num_rows:
        table = dedup_events(table, _ID, _TS, _CREATED, cols)
    return table


Built = dict[bytes, dict[int, dict[int, BuiltTile]]]


def key_codes(events: pa.Table, keys: Sequence[str]) -> tuple[pa.Table, list[bytes]]:
    """``events`` with a column ``__key``: a code per distinct entity key (Arrow's group-by and
    join, no Python per row), and the encoded key (``encode_key``) of each code."""
    uniq = events.select(list(keys)).group_by(list(keys)).aggregate([])
    uniq = uniq.append_column("__key", pa.array(range(uniq.num_rows), pa.int64()))
    encoded = [encode_key(v) for v in zip(*(uniq.column(k).to_pylist() for k in keys))]
    return events.join(uniq, list(keys), join_type="inner"), encoded


def build_tiles(work: pa.Table, by_code: Sequence[bytes], layout: TileLayout, hi_us: int) -> Built:
    """The tiles of ``work`` (``events_table`` rows with ``key_codes``' ``__key``) per encoded
    key, tile size and start: each tile holds its events before ``hi_us``, and is exact for the
    events before ``min(its end, hi_us)``. For the tile holding ``hi_us`` (of each size),
    ``full`` holds every event of ``work`` in it, beyond ``hi_us`` too (``BuiltTile``)."""
    out: Built = {}
    if not work.num_rows:
        return out
    ts = work.column(_TS)
    below = work.filter(pc.less(ts, pa.scalar(hi_us, pa.int64())))
    out = _build(below, by_code, layout, list(layout.keep_us), hi_us)
    for size in layout.keep_us:
        if hi_us % size == 0:
            continue   # hi is a tile edge: no tile holds events on both sides
        start = floor_tile(hi_us, size)
        inside = work.filter(pc.and_(pc.greater_equal(ts, pa.scalar(start, pa.int64())),
                                     pc.less(ts, pa.scalar(start + size, pa.int64()))))
        for key, sizes in _build(inside, by_code, layout, [size], hi_us).items():
            target = out.setdefault(key, {}).setdefault(size, {}).get(start)
            if target is None:
                target = out[key][size][start] = BuiltTile(hi_us, 0, 0, {},
                                                           [] if layout.event_ids else None)
            target.full = sizes[size][start]
    return out


def _build(work: pa.Table, by_code: Sequence[bytes], layout: TileLayout, sizes: Sequence[int],
           hi_us: int) -> Built:
    out: Built = {}
    if not work.num_rows:
        return out
    ts = work.column(_TS)
    for size in sizes:
        tile = pc.subtract(ts, _mod(ts, size))
        tiled = work.append_column("__tile", tile)
        # rows, latest event time and event ids per (key, tile): null values included
        aggs: list[tuple[Any, ...]] = [(_TS, "count"), (_TS, "max")]
        if layout.event_ids:
            aggs.append((_ID, "list"))
        stats = tiled.group_by(["__key", "__tile"]).aggregate(aggs)
        ids = stats.column(f"{_ID}_list").to_pylist() if layout.event_ids else None
        for i, (k, start, rows, top) in enumerate(zip(
                stats.column("__key").to_pylist(), stats.column("__tile").to_pylist(),
                stats.column(f"{_TS}_count").to_pylist(), stats.column(f"{_TS}_max").to_pylist())):
            tile_ids = None
            if ids is not None:
                tile_ids = [x for x in ids[i] if x is not None]
            out.setdefault(by_code[k], {}).setdefault(size, {})[start] = BuiltTile(
                min(start + size, hi_us), top, rows, {}, tile_ids)
        for c in layout.columns:
            parts = tile_partials(work, ["__key"], _TS, _CREATED, c, size)
            rows_ = parts.select(["__key", "tile", *STATE_COLUMNS]).to_pylist()
            for row in rows_:
                built = out[by_code[row["__key"]]][size][row["tile"]]
                built.partials[c] = row_partial(row)
    return out


def _mod(ts: Any, size: int) -> Any:
    rem = pc.subtract(ts, pc.multiply(pc.divide(ts, size), size))
    return pc.if_else(pc.less(rem, 0), pc.add(rem, size), rem)


def write_built(store: OnlineStore, table: str, built: dict[bytes, dict[int, dict[int, BuiltTile]]],
                layout: TileLayout, chunk: int = 2000) -> int:
    """Put rebuilt tiles in place (``replace_tiles``) with the store's read-modify-write.
    Returns the number of keys written."""
    keys = list(built)
    n = 0
    for i in range(0, len(keys), chunk):
        part = keys[i:i + chunk]

        def change(key: bytes, stored: Record | None) -> Record | None:
            return replace_tiles(stored, built[key], layout)

        n += store.update_batch(table, part, change)
    return n


def materialize_tiles(store: OnlineStore, snapshot: Snapshot, view: FeatureView, table: str,
                      repo_path: str | Path, lo_us: int | None, hi_us: int,
                      usable_us: int | None = None) -> tuple[int, int, int | None]:
    """Rebuild, from the offline events, the tiles of ``view`` from the one holding ``lo_us``
    (None: every tile) up to ``hi_us`` (exclusive): every tile size's tiles are rebuilt from
    their start, so the tiles holding ``lo_us`` are whole. ``usable_us`` (exclusive, at least
    ``hi_us``): with a source availability delay, the bound of the events usable now; the
    ``full`` variant of the tiles holding ``hi_us`` (``BuiltTile``) holds none after it, so a
    run never brings online an event before it lands. Returns (events read, keys written, the
    latest created time read or None)."""
    layout = tile_layout(view)
    start = None if lo_us is None else min(floor_tile(lo_us, s) for s in layout.keep_us)
    # the tiles holding hi_us are read whole (their ``full`` variant, see BuiltTile)
    until = max([hi_us] + [floor_tile(hi_us, s) + s for s in layout.keep_us if hi_us % s])
    if usable_us is not None:
        until = max(hi_us, min(until, usable_us))
    events = events_table(snapshot, view, repo_path, start, until)
    before = events.filter(pc.less(events.column(_TS), pa.scalar(hi_us, pa.int64())))
    created = pc.max(before.column(_CREATED)).as_py() if before.num_rows else None
    if not events.num_rows:
        return 0, 0, created
    work, by_code = key_codes(events, snapshot.join_keys(view))
    written = 0
    for lo in range(0, len(by_code), KEYS_PER_CHUNK):   # bounded memory: the tiles of a chunk
        codes = work.column("__key")
        chunk = work.filter(pc.and_(pc.greater_equal(codes, pa.scalar(lo, pa.int64())),
                                    pc.less(codes, pa.scalar(lo + KEYS_PER_CHUNK, pa.int64()))))
        written += write_built(store, table, build_tiles(chunk, by_code, layout, hi_us), layout)
    return before.num_rows, written, created


def earliest_created_since(snapshot: Snapshot, view: FeatureView, repo_path: str | Path,
                           created_us: int, hi_us: int) -> int | None:
    """The earliest event time among the events before ``hi_us`` created at or after
    ``created_us`` (late events an incremental run must bring in), or None."""
    events = events_table(snapshot, view, repo_path, None, hi_us)
    late = events.filter(pc.fill_null(pc.greater_equal(events.column(_CREATED),
                                                       pa.scalar(created_us, pa.int64())), False))
    return pc.min(late.column(_TS)).as_py() if late.num_rows else None


def push_tiles(store: OnlineStore, snapshot: Snapshot, view: FeatureView, table: str,
               rows: pa.Table, batch_id: str | None) -> int:
    """Merge pushed rows (file columns of the view's batch source, conformed) into the tiles of
    ``view``: one read-modify-write per key, an event id already merged (or the same batch
    merged before into a tile) counted once. Returns the number of keys written."""
    src = view.batch_source
    keys = snapshot.join_keys(view)
    layout = tile_layout(view)
    ts = pc.cast(pc.cast(rows.column(src.timestamp_field), UTC_MICROS), pa.int64()).to_pylist()
    created = (pc.cast(pc.cast(rows.column(src.created_timestamp_column), UTC_MICROS), pa.int64()).to_pylist()
               if src.created_timestamp_column else [None] * rows.num_rows)
    ids = (rows.column(src.event_id_column).to_pylist() if src.event_id_column
           and src.event_id_column in rows.column_names else [None] * rows.num_rows)
    declared = {f.name: f.dtype.to_arrow() for f in view.schema}
    values = {c: _storable(cast(rows.column(src.source_column(c)).combine_chunks(), declared[c]))
              for c in layout.columns}
    key_vals = zip(*(rows.column(src.source_column(k)).to_pylist() for k in keys))
    by_key: dict[bytes, list[Event]] = {}
    for i, kv in enumerate(key_vals):
        if any(v is None for v in kv):
            continue
        by_key.setdefault(encode_key(kv), []).append(
            Event(ts[i], created[i], {c: values[c][i] for c in layout.columns}, ids[i]))
    if not by_key:
        return 0

    def change(key: bytes, stored: Record | None) -> Record | None:
        return add_events(stored, by_key[key], layout, batch_id)

    return store.update_batch(table, list(by_key), change)


def _storable(col: Any) -> list[Any]:
    """A column as the tiles store values: timestamps as int64 microseconds."""
    if pa.types.is_timestamp(col.type):
        col = pc.cast(pc.cast(col, pa.timestamp("us", col.type.tz)), pa.int64())
    return col.to_pylist()  # type: ignore[no-any-return]


__all__ = ["build_tiles", "earliest_created_since", "events_table", "key_codes", "materialize_tiles", "push_tiles", "require_tiles",
           "write_built"]
