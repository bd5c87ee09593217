"""CachedStore: the hot-key and fallback cache as a wrapper around a real online store (SQLite).
Writes through it invalidate what they must; turned off, it keeps nothing; it never looks inside
a record."""

from __future__ import annotations

import pickle
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from skewless.online.cache import RecordCache
from skewless.online.cached import CachedStore
from skewless.online.codec import Record
from skewless.online.sqlite import SqliteOnlineStore


def rec(v: int) -> Record:
    return Record.of(v, v, {"v": v})


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteOnlineStore]:
    s = SqliteOnlineStore(tmp_path / "online.db")
    s.create(["t", "u", "t_staging"])
    s.write_batch({"t": [(b"a", rec(1))], "u": [(b"a", rec(1))]})
    yield s
    s.close()


def test_turned_off_it_is_the_store_and_keeps_nothing(store):
    c = CachedStore(store, ttl_seconds=0, max_entries=10)
    records, store_error, _, cached = c.read({"t": [b"a", b"z"]})
    assert records == {"t": [rec(1), None]} and store_error is None and cached is None
    assert not c.cache._hot and not c.cache._recent and (c.hits, c.misses) == (0, 0)
    # a read with a fallback table keeps the answer for the fallback
    c.read({"t": [b"a"]}, fallback=frozenset({"t"}))
    assert c.cache.last("t", [b"a"]) == [(rec(1),)]


def test_a_write_through_the_wrapper_is_read_back_at_once(store):
    c = CachedStore(store, ttl_seconds=3600, max_entries=10)
    assert c.read({"t": [b"a"], "u": [b"a"]})[0] == {"t": [rec(1)], "u": [rec(1)]}
    assert c.read({"t": [b"a"]})[0] == {"t": [rec(1)]} and c.hits == 1
    c.write_batch({"t": [(b"a", rec(2))]})
    assert c.read({"t": [b"a"], "u": [b"a"]})[0] == {"t": [rec(2)], "u": [rec(1)]}
    assert c.hits == 2   # u's hot entry survived a write to t


def test_a_swap_through_the_wrapper_is_read_back_at_once(store):
    c = CachedStore(store, ttl_seconds=3600, max_entries=10)
    c.read({"t": [b"a"]})
    store.write_batch({"t_staging": [(b"a", rec(5))]})
    c.swap("t", "t_staging")
    assert c.read({"t": [b"a"]})[0] == {"t": [rec(5)]}


def test_a_drop_through_the_wrapper_forgets_the_table(store):
    c = CachedStore(store, ttl_seconds=3600, max_entries=10)
    c.read({"t": [b"a"], "u": [b"a"]}, fallback=frozenset({"t", "u"}))
    c.drop(["t"])
    assert c.cache.last("t", [b"a"]) == [None] and c.cache.last("u", [b"a"]) == [(rec(1),)]
    assert c.read({"t": [b"a"]})[0] == {"t": [None]}


def test_the_store_is_opened_on_first_use(store):
    opened: list[int] = []

    def open_store() -> SqliteOnlineStore:
        opened.append(1)
        return store

    c = CachedStore(open_store, ttl_seconds=0, max_entries=10)
    assert not opened
    assert c.read({"t": [b"a"]})[0] == {"t": [rec(1)]} and c.name == "sqlite"
    c.read({"t": [b"a"]})
    assert opened == [1]


class TilePacker:
    """A packer for a record type of its own (here: plain tuples standing for tiles)."""

    def pack(self, keys: Sequence[bytes], recs: Sequence[Any]) -> bytes:
        return pickle.dumps((list(keys), list(recs)))

    def unpack(self, blob: bytes) -> Iterator[tuple[bytes, Any]]:
        keys, recs = pickle.loads(blob)
        return zip(keys, recs)


def test_the_cache_never_looks_inside_a_record():
    tile = ("tile", 1_700_000_000, (3, 10.5))   # not a Record
    c = RecordCache(ttl_seconds=60, max_entries=10, packer=TilePacker())
    c.put({"tiles": [tile, None]}, {"tiles": [b"k", b"m"]}, now=0.0)
    assert c.fresh("tiles", [b"k"], now=1.0) == [(tile, 0.0)]
    assert c.last("tiles", [b"k", b"m"]) == [(tile,), (None,)]
