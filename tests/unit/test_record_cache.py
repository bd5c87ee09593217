"""RecordCache: bounded per table, hot-key freshness by its own ttl, fallback by last value."""

from __future__ import annotations

from skewless.online.cache import RecordCache
from skewless.online.codec import Record


def rec(v: int) -> Record:
    return Record.of(v, v, {"v": v})


def test_bounded_per_table_oldest_insertions_dropped_first():
    c = RecordCache(ttl_seconds=10, max_entries=3)
    keys = [bytes([i]) for i in range(5)]
    c.put({"t": [rec(i) for i in range(5)]}, {"t": keys}, now=0.0)
    assert [e is not None for e in c.fresh("t", keys, now=1.0)] == [False, False, True, True, True]
    c.put({"u": [rec(9)]}, {"u": keys[:1]}, now=0.0)
    assert c.fresh("u", keys[:1], now=1.0)[0] == (rec(9), 0.0)  # another table has its own bound


def test_fallback_keeps_the_latest_reads_bounded():
    c = RecordCache(ttl_seconds=0, max_entries=4)
    c.put({"t": [rec(1), None]}, {"t": [b"a", b"b"]})
    c.put({"t": [rec(2), rec(3)]}, {"t": [b"a", b"c"]})
    # newest answer wins; "read and not found" is (None,), "never read" is None
    assert c.last("t", [b"a", b"b", b"c", b"z"]) == [(rec(2),), (None,), (rec(3),), None]
    c.put({"t": [rec(4), rec(5)]}, {"t": [b"d", b"e"]})   # 6 > 4 entries: the oldest read goes
    assert c.last("t", [b"b", b"a", b"d"]) == [None, (rec(2),), (rec(4),)]
    assert c.fallbacks == 3 + 2


def test_hot_lookup_respects_its_ttl_and_counts():
    c = RecordCache(ttl_seconds=5, max_entries=10)
    c.put({"t": [rec(1), None]}, {"t": [b"a", b"b"]}, now=100.0)
    assert c.fresh("t", [b"a", b"b", b"c"], now=104.0) == [(rec(1), 100.0), (None, 100.0), None]
    assert (c.hits, c.misses) == (2, 1)
    assert c.fresh("t", [b"a"], now=105.5) == [None]


def test_disabled_cache_keeps_nothing():
    c = RecordCache(ttl_seconds=0, max_entries=0)
    c.put({"t": [rec(1)]}, {"t": [b"a"]})
    assert not c.hot and c.last("t", [b"a"]) == [None]
