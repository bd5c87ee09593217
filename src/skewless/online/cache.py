"""The in-process cache of online records: hot keys and the fallback when the store is down.

Two uses, each bounded by ``max_entries`` per table:

- **hot keys** (``ttl_seconds > 0``): a key read less than ``ttl_seconds`` ago is answered from
  the cache without a store round trip;
- **fallback**: when the online store does not answer, the last record read for a key is
  served instead (the caller applies the view's ``ttl`` to it as to any record, so a cached
  value is never served past the view's TTL).

The hot-key map is key -> (record or None, monotonic read time), oldest insertions dropped
first. The fallback keeps the answers of the latest reads whole (recording one costs a deque
append per table, so serving pays almost nothing for it) and indexes them by key only when the
store is down. It keeps each answer as one msgpack blob: bytes, which the garbage collector
never tracks. Kept as Python objects, cached records were walked by every collection, and since
the ring frees as many objects as it keeps, collections came seldom and took long: 30-50 ms
pauses of a serving process, the whole p99 of a 100 x 50 request.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from itertools import repeat
from typing import Any, Protocol

import msgpack

from skewless.online.codec import Record, restored, storable

Entry = tuple["Record | None", float]


class Packer(Protocol):
    """How the fallback packs one answer (the keys read and their records) into bytes, and
    back. The cache never looks into a record otherwise: a record type of its own (aggregation
    tiles, say) fits through it with a packer of its own."""

    def pack(self, keys: Sequence[bytes], recs: Sequence[Any]) -> bytes: ...

    def unpack(self, blob: bytes) -> Iterator[tuple[bytes, Any]]: ...


class RecordPacker:
    """``Record`` answers as msgpack: a row per record (event time, created time, layout number,
    values), each distinct layout (field names) stored once in the packer."""

    def __init__(self) -> None:
        self._layouts: dict[tuple[str, ...], int] = {}     # a record's field names, by number
        self._layout_names: list[tuple[str, ...]] = []

    def pack(self, keys: Sequence[bytes], recs: Sequence[Record | None]) -> bytes:
        ids = self._layouts
        rows: list[tuple[int, int, int, Sequence[Any]] | None] = []
        for r in recs:
            if r is None:
                rows.append(None)
                continue
            i = ids.get(r.names)
            if i is None:
                i = ids[r.names] = len(self._layout_names)
                self._layout_names.append(r.names)
            rows.append((r.event_ts, r.created_ts, i, r.vals))
        return msgpack.packb((keys, rows), use_bin_type=True, default=storable)  # type: ignore[no-any-return]

    def unpack(self, blob: bytes) -> Iterator[tuple[bytes, Record | None]]:
        keys, rows = msgpack.unpackb(blob, raw=False, use_list=False, ext_hook=restored)
        names = self._layout_names
        for k, row in zip(keys, rows):
            yield k, (None if row is None else Record(row[0], row[1], names[row[2]], row[3]))


class RecordCache:
    """Both maps, per table. Records are kept as the store returned them (the fallback packs
    them with ``packer``, a ``RecordPacker`` by default). Thread-safe. Driven by
    ``skewless.online.cached.CachedStore``, which wraps an online store with it."""

    def __init__(self, ttl_seconds: float = 0.0, max_entries: int = 10_000,
                 packer: Packer | None = None) -> None:
        self.ttl_seconds = ttl_seconds
        self.max_entries = max_entries
        self._hot: dict[str, dict[bytes, Entry]] = {}
        # fallback: the answers of recent reads, whole, newest last (O(1) to record a read);
        # indexed by key only when the store is down and a lookup is needed
        self._recent: dict[str, deque[bytes]] = {}        # packed answers (_pack), oldest first
        self._recent_sizes: dict[str, deque[int]] = {}    # records in each
        self._recent_n: dict[str, int] = {}
        self._index: dict[str, dict[bytes, Record | None]] = {}
        self._packer: Packer = packer or RecordPacker()
        self._lock = threading.Lock()
        self.hits = 0        # keys answered by the hot-key cache
        self.misses = 0      # keys the hot-key cache had to ask the store for
        self.fallbacks = 0   # keys answered from the cache while the store was down

    @property
    def hot(self) -> bool:
        return self.ttl_seconds > 0 and self.max_entries > 0

    def put(self, records: Mapping[str, Sequence[Record | None]], keys: Mapping[str, Sequence[bytes]],
            now: float | None = None, fallback: bool = True) -> None:
        """Remember what the store just answered for ``keys`` (for hot-key lookups when the
        hot-key cache is on, for the fallback when ``fallback``)."""
        if self.max_entries <= 0:
            return
        with self._lock:
            if self.hot:
                now = time.monotonic() if now is None else now
                for table, recs in records.items():
                    d = self._hot.setdefault(table, {})
                    d.update(zip(keys[table], zip(recs, repeat(now))))
                    excess = len(d) - self.max_entries
                    if excess > 0:
                        for k in [k for k, _ in zip(d, range(excess))]:
                            del d[k]
            if fallback:
                for table, recs in records.items():
                    ring = self._recent.get(table)
                    if ring is None:
                        ring = self._recent[table] = deque()
                        self._recent_sizes[table] = deque()
                    sizes = self._recent_sizes[table]
                    ring.append(self._packer.pack(keys[table], recs))
                    sizes.append(len(recs))
                    n = self._recent_n.get(table, 0) + len(recs)
                    while n > self.max_entries and len(ring) > 1:
                        ring.popleft()
                        n -= sizes.popleft()
                    self._recent_n[table] = n
                    self._index.pop(table, None)

    def fresh(self, table: str, keys: Sequence[bytes], now: float | None = None
              ) -> list[Entry | None]:
        """Hot-key lookup: the entries read less than ``ttl_seconds`` ago, None elsewhere."""
        now = time.monotonic() if now is None else now
        oldest = now - self.ttl_seconds
        d = self._hot.get(table)
        if d is None:
            self.misses += len(keys)
            return [None] * len(keys)
        out: list[Entry | None] = []
        for k in keys:
            e = d.get(k)
            out.append(e if e is not None and e[1] >= oldest else None)
        hits = sum(e is not None for e in out)
        self.hits += hits
        self.misses += len(keys) - hits
        return out

    def last(self, table: str, keys: Sequence[bytes]) -> list[tuple[Record | None] | None]:
        """Fallback lookup: the last record read for each key (a 1-tuple, so that "read, and
        not found" differs from "never read": None)."""
        with self._lock:
            index = self._index.get(table)
            if index is None:
                index = {}
                for blob in self._recent.get(table, ()):
                    index.update(self._packer.unpack(blob))  # newest last: wins
                self._index[table] = index
        out: list[tuple[Record | None] | None] = [(index[k],) if k in index else None for k in keys]
        self.fallbacks += sum(e is not None for e in out)
        return out

    def forget_hot(self, tables: Iterable[str] | None = None) -> None:
        """Drop the hot-key entries of ``tables`` (None: of every table), after a write through
        this process: read-after-write."""
        with self._lock:
            if tables is None:
                self._hot.clear()
            else:
                for t in tables:
                    self._hot.pop(t, None)

    def clear(self, tables: Iterable[str] | None = None) -> None:
        """Forget everything about ``tables`` (None: every table), hot keys and fallback alike:
        their records are never to be served again (dropped tables)."""
        with self._lock:
            maps: tuple[dict[str, Any], ...] = (self._hot, self._recent, self._recent_sizes,
                                                self._recent_n, self._index)
            for m in maps:
                if tables is None:
                    m.clear()
                else:
                    for t in tables:
                        m.pop(t, None)
