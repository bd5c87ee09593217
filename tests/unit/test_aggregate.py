"""The partial-aggregate library (skewless.aggregate): merge is associative and commutative,
the compact form round-trips, and a window read from tiles equals a brute-force scan of the
events (the reference engine's, which does not use the library), on generated events with
edges, late events, duplicates, bursts, nulls and empty windows."""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from skewless.aggregate import (EMPTY, FUNCTIONS, MINUTE, Partial, dedup_events, default_tile, finalize,
                                floor_tile, format_window, merge, merge_all, partials_by_key, read_window,
                                same_value, tile_partials, update, window_bounds, window_tiles)
from skewless.aggregate.windows import DAY, HOUR
from skewless.engines.reference_aggregate import aggregate, dedup

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
TILE = 5 * MINUTE
BASE = 1_700_000_100_000_000   # a tile start (multiple of 5 min)


def _partial_close(a: Partial, b: Partial) -> bool:
    """Field by field within the float tolerance; once a NaN or an infinity is in (the mean
    and M2 are then NaN or infinite in an order-dependent way), every function's value."""
    la, lb = a.to_list(), b.to_list()
    if all(same_value(x, y) for x, y in zip(la, lb)):
        return True
    if math.isfinite(a.mean) and math.isfinite(b.mean):
        return False
    return (a.count, a.last and a.last[:2]) == (b.count, b.last and b.last[:2]) and all(
        same_value(finalize(a, f), finalize(b, f)) for f in FUNCTIONS)


# --- strategies ------------------------------------------------------------------------------

# event times cluster on tile edges (exactly on, one microsecond either side) and bursts
times = st.one_of(
    st.builds(lambda k, d: BASE + k * TILE + d, st.integers(-3, 12), st.sampled_from([-1, 0, 1])),
    st.integers(BASE - 3 * TILE, BASE + 12 * TILE),
    st.just(BASE + 4 * TILE + 17),   # a burst: many events at one time
)
ints = st.one_of(st.none(), st.integers(-1000, 1000))
floats = st.one_of(st.none(), st.floats(-1e3, 1e3, allow_nan=False).map(lambda x: round(x, 3)),
                   # ordered (NaN above every number) and propagated alike on every path
                   st.sampled_from([math.nan, math.inf, -math.inf]))
created = st.one_of(st.none(), st.integers(0, 5))


def events_of(values: st.SearchStrategy[Any]) -> st.SearchStrategy[list[tuple[int, int, int | None, Any]]]:
    """(key, ts, created, value) lists: two keys, so one key's burst is another's empty window."""
    return st.lists(st.tuples(st.sampled_from([1, 2]), times, created, values), max_size=40)


def partial_of(events: list[tuple[int, int, int | None, Any]]) -> Partial:
    p = EMPTY
    for _, ts, c, v in events:
        p = update(p, v, ts, c)
    return p


# --- merge ---------------------------------------------------------------------------------------

@settings(max_examples=150, deadline=None)
@given(st.one_of(st.tuples(events_of(ints), events_of(ints), events_of(ints)),
                 st.tuples(events_of(floats), events_of(floats), events_of(floats))))
def test_merge_is_associative_and_commutative(parts: tuple[Any, Any, Any]) -> None:
    a, b, c = (partial_of(e) for e in parts)
    left, right = merge(merge(a, b), c), merge(a, merge(b, c))
    assert _partial_close(left, right)
    assert _partial_close(merge(a, b), merge(b, a))
    # exact parts are exact whatever the order
    for x, y in ((left, right), (merge(a, b), merge(b, a))):
        assert x.count == y.count and same_value(x.min, y.min) and same_value(x.max, y.max)
        assert (x.last is None) == (y.last is None)
        if x.last is not None and y.last is not None:
            assert x.last[:2] == y.last[:2] and same_value(x.last[2], y.last[2])
    assert _partial_close(left, partial_of(parts[0] + parts[1] + parts[2]))
    assert merge(a, EMPTY) == a and merge(EMPTY, a) == a


@settings(max_examples=100, deadline=None)
@given(events_of(st.one_of(ints, floats)))
def test_every_function_of_a_merged_partial_equals_brute_force(events: list[Any]) -> None:
    p = partial_of(events)
    rows = [(ts, c, v) for _, ts, c, v in events]
    for f in FUNCTIONS:
        assert same_value(finalize(p, f), aggregate(rows, f)), f


@given(st.one_of(events_of(ints), events_of(floats), events_of(st.one_of(st.none(), st.text(max_size=3)))))
def test_the_compact_form_round_trips_through_json(events: list[Any]) -> None:
    import json

    p = partial_of(events)
    back = Partial.from_list(json.loads(json.dumps(p.to_list())))
    assert all(same_value(x, y) for x, y in zip(back.to_list(), p.to_list()))


# --- tiles against brute force ----------------------------------------------------------------

def _table(events: list[tuple[int, int, int | None, Any]], value_type: pa.DataType) -> pa.Table:
    return pa.table({
        "k": pa.array([e[0] for e in events], pa.int64()),
        "ts": pa.array([e[1] for e in events], pa.int64()).cast(pa.timestamp("us", "UTC")),
        "created": pa.array([e[2] for e in events], pa.int64()).cast(pa.timestamp("us", "UTC")),
        "v": pa.array([e[3] for e in events], value_type),
    })


def _window_from_tiles(events: list[Any], value_type: pa.DataType, key: int, t: int, window: int,
                       tile: int) -> Partial:
    """The window at ``t`` the way the online path reads it at ``t`` (``read_window`` over the
    key's stored tiles, when every stored event is before ``t``), and the way the offline
    engines do (full tiles from every event's partials, the head tile from the events before
    ``t``): both must agree."""
    table = _table(events, value_type)
    parts = partials_by_key(tile_partials(table, ["k"], "ts", "created", "v", tile), ["k"])
    start, head = window_bounds(t, window, tile)
    full = [parts.get((key, s), EMPTY) for s in range(start, head, tile)]
    before = [e for e in events if e[1] < t]
    head_parts = partials_by_key(tile_partials(_table(before, value_type), ["k"], "ts", "created", "v",
                                               tile), ["k"]) if before else {}
    offline = merge_all(full + [head_parts.get((key, head), EMPTY)])
    online = read_window({s: p for (k, s), p in head_parts.items() if k == key}, t, window, tile)
    assert _partial_close(offline, online)
    return offline


@settings(max_examples=150, deadline=None)
@given(st.sampled_from([(pa.int64(), ints), (pa.float64(), floats)]).flatmap(
           lambda tv: st.tuples(st.just(tv[0]), events_of(tv[1]))),
       st.lists(times, min_size=1, max_size=4), st.integers(1, 4), st.sampled_from([MINUTE, TILE]))
def test_a_window_read_from_tiles_equals_a_brute_force_scan(
        data: tuple[pa.DataType, list[Any]], label_times: list[int], tiles: int, tile: int) -> None:
    value_type, events = data
    window = tiles * tile
    for t in label_times:
        start = floor_tile(t - window, tile)
        for key in (1, 2):
            p = _window_from_tiles(events, value_type, key, t, window, tile)
            scanned = [(ts, c, v) for k, ts, c, v in events if k == key and start <= ts < t]
            for f in FUNCTIONS:
                assert same_value(finalize(p, f), aggregate(scanned, f)), (f, t, key)


def test_the_window_rule_on_its_edges() -> None:
    """An event exactly at t is out; one exactly at the rounded-down tail is in; one a
    microsecond before the tail is out; the tail rounds down to the tile."""
    t = BASE + 7 * MINUTE            # 2 min into a 5-minute tile
    start, head = window_bounds(t, HOUR, TILE)
    assert head == BASE + TILE and start == floor_tile(t - HOUR, TILE) == BASE + TILE - HOUR
    assert list(window_tiles(t, HOUR, TILE)) == list(range(start, head + TILE, TILE))
    assert len(window_tiles(t, HOUR, TILE)) == HOUR // TILE + 1
    events = [(1, t, None, 1), (1, start, None, 10), (1, start - 1, None, 100), (1, t - 1, None, 1000)]
    p = _window_from_tiles(events, pa.int64(), 1, t, HOUR, TILE)
    assert finalize(p, "sum") == 1010.0 and finalize(p, "count") == 2
    assert finalize(EMPTY, "count") == 0 and finalize(EMPTY, "sum") is None


def test_times_before_1970_round_down() -> None:
    assert floor_tile(-1, TILE) == -TILE and floor_tile(-TILE, TILE) == -TILE
    t = pa.table({"k": [1], "ts": pa.array([-1], pa.int64()).cast(pa.timestamp("us", "UTC")),
                  "v": [3]})
    assert tile_partials(t, ["k"], "ts", None, "v", TILE).column("tile").to_pylist() == [-TILE]


def test_default_tiles_and_names() -> None:
    assert default_tile(30 * MINUTE) == 5 * MINUTE and default_tile(12 * HOUR - 1) == 5 * MINUTE
    assert default_tile(12 * HOUR) == HOUR and default_tile(12 * DAY - 1) == HOUR
    assert default_tile(12 * DAY) == DAY and default_tile(90 * DAY) == DAY
    assert [format_window(w) for w in (30 * MINUTE, HOUR, 7 * DAY, 90 * DAY, 36 * HOUR, 90 * MINUTE)] == \
        ["30m", "1h", "7d", "90d", "36h", "90m"]


def test_last_breaks_ties_by_created_then_value() -> None:
    t = BASE
    p = partial_of([(1, t, 2, 5), (1, t, 3, 1), (1, t - 1, 9, 100)])
    assert finalize(p, "last") == 1                  # same time: the later write
    p = partial_of([(1, t, None, 5), (1, t, None, 7), (1, t, None, 6)])
    assert finalize(p, "last") == 7                  # same time and write: the larger value
    assert finalize(partial_of([(1, t, 0, 4), (1, t, None, 9)]), "last") == 4   # null created is oldest
    assert finalize(partial_of([(1, t, None, None)]), "last") is None            # nulls skipped


def test_strings_timestamps_and_bools() -> None:
    ts = pa.array([BASE, BASE + 1, BASE + 2], pa.int64()).cast(pa.timestamp("us", "UTC"))
    table = pa.table({"k": [1, 1, 1], "ts": ts, "s": ["b", None, "a"], "when": ts, "flag": [True, False, None]})
    for col, expect in (("s", ("a", "b", "a", 2)), ("when", (BASE, BASE + 2, BASE + 2, 3)),
                        ("flag", (False, True, False, 2))):
        parts = partials_by_key(tile_partials(table, ["k"], "ts", None, col, TILE), ["k"])
        p = parts[(1, floor_tile(BASE, TILE))]
        assert (finalize(p, "min"), finalize(p, "max"), finalize(p, "last"), finalize(p, "count")) == expect


def test_stddev_is_stable_on_large_offsets() -> None:
    """Welford / Chan keep the spread of values far from zero (a naive sum of squares loses
    it entirely at 1e9)."""
    xs = [1e9 + d for d in (4.0, 7.0, 13.0, 16.0)]
    parts = [partial_of([(1, BASE + i, None, x)]) for i, x in enumerate(xs)]
    p = merge(merge(parts[0], parts[1]), merge(parts[2], parts[3]))
    assert finalize(p, "stddev_pop") == pytest.approx(4.743416490252569, rel=1e-9)
    assert finalize(p, "stddev_samp") == pytest.approx(5.477225575051661, rel=1e-9)
    assert finalize(partial_of([(1, BASE, None, 3.0)]), "stddev_samp") is None
    assert finalize(partial_of([(1, BASE, None, 3.0)]), "stddev_pop") == 0.0


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["a", "b", "c", None]), times, created,
                          st.one_of(st.none(), st.integers(0, 3))), max_size=20))
def test_dedup_keeps_the_latest_write_of_each_event(rows: list[Any]) -> None:
    table = pa.table({
        "id": pa.array([r[0] for r in rows], pa.string()),
        "ts": pa.array([r[1] for r in rows], pa.int64()).cast(pa.timestamp("us", "UTC")),
        "created": pa.array([r[2] for r in rows], pa.int64()).cast(pa.timestamp("us", "UTC")),
        "v": pa.array([r[3] for r in rows], pa.int64()),
    })
    kept = dedup_events(table, "id", "ts", "created", ["v"])
    got = sorted(((r["id"], (r["ts"] - EPOCH) // timedelta(microseconds=1), r["v"])
                  for r in kept.to_pylist()), key=repr)
    brute = dedup([{"id": r[0], "ts": r[1], "created": r[2], "values": {"v": r[3]}} for r in rows], ["v"])
    want = sorted(((r["id"], r["ts"], r["values"]["v"]) for r in brute), key=repr)
    assert got == want
    assert kept.num_rows == len(brute)


def test_same_value_takes_an_infinity_for_itself() -> None:
    # a float sum that overflows is inf on every path: inf - inf is NaN, never within the
    # tolerance, so the comparison must not go through the difference
    inf = float("inf")
    assert same_value(inf, inf) and same_value(-inf, -inf)
    assert not same_value(inf, -inf) and not same_value(inf, 1e308) and not same_value(1e308, inf)
    assert not same_value(inf, float("nan")) and same_value(float("nan"), float("nan"))


def test_integer_sums_past_64_bits_stay_exact() -> None:
    # Arrow's int64 sum wraps (two of 2**63 - 1 gave -2); the tiles are built from it at
    # materialization, so online served -2 where DuckDB's HUGEINT sum gave 2**64 - 2
    import pyarrow as pa

    from skewless.aggregate import partials_by_key, tile_partials
    big = 2**63 - 1
    events = pa.table({"k": [1, 1, 1, 2], "ts": pa.array([0, 1, 2, 0], pa.timestamp("us", "UTC")),
                       "n": pa.array([big, big, None, -(2**63)], pa.int64())})
    parts = partials_by_key(tile_partials(events, ["k"], "ts", None, "n", 60_000_000), ["k"])
    assert parts[(1, 0)].sum == 2 * big and type(parts[(1, 0)].sum) is int
    assert parts[(2, 0)].sum == -(2**63)
    assert (parts[(1, 0)].min, parts[(1, 0)].max, parts[(1, 0)].last[2]) == (big, big, big)
    assert finalize(parts[(1, 0)], "sum") == float(2 * big)
    assert finalize(parts[(1, 0)], "mean") == float(2 * big) / 2


def test_integers_past_64_bits_are_stored_online() -> None:
    # msgpack holds 64 bits; a tile's exact sum is stored as a WIDE_INT extension
    from skewless.online.codec import pack_vals, unpack_vals
    vals = (2**64, -(2**63) - 1, 2**200, -(2**200), 2**63 - 1, -(2**63), 2**64 - 1, 0, (2**70, 1))
    assert unpack_vals(pack_vals(vals)) == vals


def test_huge_finite_values_keep_a_finite_stddev_when_materialized() -> None:
    # a tile of finite values whose sum overflows: Arrow's mean (sum / count) was inf, and
    # finalize took the tile for one holding an infinity: stddev NaN online after materialize,
    # 0.0 after a push of the same events (Welford), 0.0 in DuckDB and the reference engine
    from skewless.aggregate import partials_by_key, tile_partials
    events = pa.table({"k": [1, 1, 2, 2, 2], "ts": pa.array([0, 1, 0, 1, 2], pa.timestamp("us", "UTC")),
                       "x": [1e308, 1e308, 1.5e308, 1.5e308, math.inf]})
    parts = partials_by_key(tile_partials(events, ["k"], "ts", None, "x", 60_000_000), ["k"])
    pushed = EMPTY
    for i, v in enumerate([1e308, 1e308]):
        pushed = update(pushed, v, i)
    for f in ("stddev_pop", "stddev_samp"):
        assert finalize(parts[(1, 0)], f) == finalize(pushed, f) == 0.0
        assert math.isnan(finalize(parts[(2, 0)], f))   # an infinity in the tile: NaN still
    assert finalize(parts[(1, 0)], "mean") == math.inf == finalize(pushed, "mean")   # IEEE sum
