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


def test_fallback_records_come_back_whole_and_are_invisible_to_the_collector():
    """The fallback keeps answers packed (bytes: never tracked by the garbage collector, so a
    full cache adds nothing to collection pauses); unpacked, every kind of stored value, layout
    and header is what was put."""
    import gc

    wide = Record(1_705_292_390_000_001, -(1 << 62), ("f", "i", "s", "b", "arr", "n", "ts"),
                  (1.5, -(1 << 62), "ünï", b"\x00\xff", (1, None, 3), None, 1_700_000_000_000_000))
    narrow = Record(5, 6, ("f",), (2.5,))   # another layout in the same answer
    c = RecordCache(ttl_seconds=0, max_entries=100)
    c.put({"t": [wide, None, narrow]}, {"t": [b"\x91\xa1k", b"\x00", b"z"]})
    assert not any(gc.is_tracked(x) for x in c._recent["t"])
    assert c.last("t", [b"\x91\xa1k", b"\x00", b"z"]) == [(wide,), (None,), (narrow,)]
    got = c.last("t", [b"\x91\xa1k"])[0][0]
    assert got.names == wide.names and got.vals == wide.vals and type(got.vals[4]) is tuple
