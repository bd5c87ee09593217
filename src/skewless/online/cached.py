"""CachedStore: the in-process cache as a wrapper around any online store.

``CachedStore(store, ttl_seconds, max_entries)`` is an ``OnlineStore`` itself (every operation
is the wrapped store's) that adds, on reads (``read``), the hot-key cache and the fallback of
``skewless.online.cache.RecordCache`` (``cache.ttl_seconds``, ``cache.max_entries`` in
``feature_store.yaml``; docs/online.md):

- keys read less than ``ttl_seconds`` ago are answered from the cache, the others from the
  store, in one ``read_batch``;
- if the store does not answer (``OnlineStoreError``), the keys of the tables named in
  ``fallback`` (views declared ``fallback="cache"``) get the last record this process read for
  them, and every other key ``GONE``; the ``Answer`` carries the store's error and says which
  values came from the cache, so the service can mark them ``CACHED`` and the response
  ``degraded``.

Writes through the wrapper invalidate what they must: ``write_batch`` and ``swap`` forget the hot
keys of their tables (a write is read back at once), ``drop`` forgets everything about the
dropped tables (their records are never served again).

With ``ttl_seconds == 0`` and no fallback table in a read, ``read`` is the store's
``read_batch`` behind one check.

Record-agnostic: the wrapper maps a table's bytes key to what the store returned for it, as it
is; it never looks inside a record. TTL and visibility are the reader's business
(``plan/visibility.py``), applied to cached records as to fresh ones. Only the fallback packs
records (to keep them out of the garbage collector's sight), through the cache's ``Packer``. A
future record type (aggregation tiles) fits through unchanged if the store returns it as a
``Record`` (tile fields as the record's names and values, the tile's end as its event time);
a type of its own needs a ``Packer`` for it, passed as ``packer=``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from enum import Enum
from typing import Any

from skewless.errors import OnlineStoreError
from skewless.online.base import OnlineCapabilities, OnlineStore, RecordUpdate, StoreIdentity
from skewless.online.cache import Packer, RecordCache
from skewless.online.codec import Record


class Gone(Enum):
    """The value of a key the store did not answer for and the cache had nothing for."""

    GONE = "gone"


GONE = Gone.GONE


#: What a read returned, as a plain tuple (built on every read: no class to construct):
#: ``(records, store_error, seconds, cached)``. ``records``: per table, the value of each key in
#: order (a record, None where nothing is stored, ``GONE`` where neither the store nor the cache
#: could tell). ``store_error``: the store's message when it did not answer (else None); then
#: ``cached`` flags, per table and key, the values the fallback served from the cache (else
#: None). ``seconds``: the store round trip.
Answer = tuple[dict[str, list[Any]], "str | None", float, "dict[str, list[bool]] | None"]


class CachedStore:
    """An online store with the in-process cache in front of it (see the module docstring).

    ``store``: the store to wrap, or a function opening it on first use. ``packer``: how the
    fallback packs records (default: ``Record``s)."""

    def __init__(self, store: OnlineStore | Callable[[], OnlineStore], ttl_seconds: float = 0.0,
                 max_entries: int = 0, packer: Packer | None = None) -> None:
        self._store: OnlineStore | None = None if callable(store) else store
        self._open: Callable[[], OnlineStore] | None = store if callable(store) else None
        self.cache = RecordCache(ttl_seconds, max_entries, packer)
        self._hot = self.cache.hot                  # the hot-key cache is on
        self._keeps = max_entries > 0               # the fallback can keep answers

    @property
    def store(self) -> OnlineStore:
        """The wrapped store."""
        if self._store is None:
            assert self._open is not None
            self._store = self._open()
        return self._store

    # --- reads -------------------------------------------------------------------------------
    def read(self, keys: Mapping[str, Sequence[bytes]], fallback: frozenset[str] = frozenset()
             ) -> Answer:
        """The records of ``keys`` (per table, in order), from the hot-key cache and the store;
        when the store does not answer, from the fallback for the tables in ``fallback`` and
        ``GONE`` elsewhere. Never raises OnlineStoreError."""
        store = self._store or self.store
        if not self._hot and not (fallback and self._keeps):
            t0 = time.perf_counter()
            try:
                return store.read_batch(keys), None, time.perf_counter() - t0, None
            except OnlineStoreError as err:
                return ({t: [GONE] * len(ks) for t, ks in keys.items()}, err.message,
                        time.perf_counter() - t0, {t: [False] * len(ks) for t, ks in keys.items()})
        cache = self.cache
        hot = self._hot
        entries: dict[str, list[Any]] = {}
        need: Mapping[str, Sequence[bytes]] = keys
        if hot:
            now_m = time.monotonic()
            entries = {t: cache.fresh(t, ks, now_m) for t, ks in keys.items()}
            need = {t: [k for k, e in zip(ks, entries[t]) if e is None] for t, ks in keys.items()}
            need = {t: ks for t, ks in need.items() if ks}
        t0 = time.perf_counter()
        try:
            fetched = store.read_batch(need) if need else {}
        except OnlineStoreError as err:
            seconds = time.perf_counter() - t0
            got: dict[str, list[Any]] = {}
            served: dict[str, list[bool]] = {}
            for t, ks in need.items():
                last = cache.last(t, ks) if t in fallback else [None] * len(ks)
                got[t] = [GONE if e is None else e[0] for e in last]
                served[t] = [e is not None for e in last]
            if not hot:
                return got, err.message, seconds, served
            # hot-key hits are live answers: not flagged
            hits = {t: [None if e is None else (False,) for e in es] for t, es in entries.items()}
            return _merge(entries, got), err.message, seconds, _merge(hits, served)
        elapsed = time.perf_counter() - t0
        if self._keeps:
            cache.put(fetched, need, fallback=bool(fallback))
        return (_merge(entries, fetched) if hot else fetched), None, elapsed, None

    def read_batch(self, keys: Mapping[str, Sequence[bytes]]) -> dict[str, list[Record | None]]:
        """The wrapped store's ``read_batch`` (the protocol's read: no cache, errors raised)."""
        return self.store.read_batch(keys)

    # --- writes: invalidate, then the wrapped store's ---------------------------------------
    def write_batch(self, rows: Mapping[str, Sequence[tuple[bytes, Record]]]) -> int:
        try:
            return self.store.write_batch(rows)
        finally:
            self.cache.forget_hot(rows.keys())

    def update_batch(self, table: str, keys: Sequence[bytes], update: RecordUpdate) -> int:
        try:
            return self.store.update_batch(table, keys, update)
        finally:
            self.cache.forget_hot((table,))

    def swap(self, table: str, staging: str) -> None:
        try:
            self.store.swap(table, staging)
        finally:
            self.cache.forget_hot((table, staging))

    def drop(self, tables: Sequence[str]) -> None:
        try:
            self.store.drop(tables)
        finally:
            self.cache.clear(tables)

    def forget_hot(self) -> None:
        """Drop every hot-key entry (after writes that went to the wrapped store directly)."""
        self.cache.forget_hot()

    def reopen(self) -> None:
        """Forget the store opened (when it was given as a function, it is opened again on
        next use) and everything cached from it."""
        if self._open is not None:
            self._store = None
        self.cache.clear()

    def clear(self) -> None:
        """Forget everything cached."""
        self.cache.clear()

    # --- the rest of the protocol: the wrapped store's ---------------------------------------
    @property
    def name(self) -> str:
        return self.store.name

    @property
    def capabilities(self) -> OnlineCapabilities:
        return self.store.capabilities

    def create(self, tables: Sequence[str]) -> None:
        self.store.create(tables)

    def identity(self) -> StoreIdentity | None:
        return self.store.identity()

    def ping(self) -> None:
        self.store.ping()

    def set_aside_if_unreadable(self) -> str | None:
        return self.store.set_aside_if_unreadable()

    def count(self, table: str) -> int:
        return self.store.count(table)

    def scan_keys(self, table: str, limit: int) -> list[bytes]:
        return self.store.scan_keys(table, limit)

    def close(self) -> None:
        if self._store is not None:
            self._store.close()

    # --- the cache's totals (metrics: skewless_cache_requests_total) -------------------------
    @property
    def hits(self) -> int:
        """Keys answered by the hot-key cache."""
        return self.cache.hits

    @property
    def misses(self) -> int:
        """Keys the hot-key cache had to ask the store for."""
        return self.cache.misses

    @property
    def fallbacks(self) -> int:
        """Keys answered from the cache while the store did not answer."""
        return self.cache.fallbacks


def _merge(entries: dict[str, list[Any]], fetched: Mapping[str, Sequence[Any]]) -> dict[str, list[Any]]:
    """Hot-key entries (``(record, read time)`` or None) with the store's answers for the Nones."""
    out: dict[str, list[Any]] = {}
    for t, es in entries.items():
        got = iter(fetched.get(t, ()))
        out[t] = [next(got) if e is None else e[0] for e in es]
    return out
