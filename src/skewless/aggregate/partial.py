"""Mergeable partial aggregates: one state per (key, tile, column), every function read from it.

A ``Partial`` summarises the non-null values of one column over a set of events (a tile, a
window, anything): their count, exact sum (a Python ``int`` for integer columns, a ``float``
otherwise), mean and M2 (the sum of squared deviations from the mean), min, max, and the latest
value with its event and created times. Every aggregation function is read from it by
``finalize``, so one partial per (key, tile, column) serves every aggregation of that column.

The operations (pure: they return new values, never modify their arguments):

- ``Partial()`` is the empty state (``EMPTY``); ``update(p, value, ts_us, created_us)`` adds
  one event (Welford's update for mean and M2);
- ``merge(a, b)`` combines two states: associative, and commutative (``last`` takes the greater
  of ``(ts, created, value)``, a total order, so even ties agree); mean and M2 by the parallel
  formula of Chan, Golub and LeVeque, "Updating Formulae and a Pairwise Algorithm for Computing
  Sample Variances" (Stanford CS report STAN-CS-79-773, 1979), also given in Knuth, TAOCP vol.
  2, 4.2.2::

      n = na + nb;  d = mean_b - mean_a;  mean = mean_a + d * nb / n;
      M2 = M2_a + M2_b + d * d * na * nb / n

- ``finalize(p, function)`` gives the feature value: ``count`` -> int (0 when empty); ``sum``,
  ``mean``, ``stddev_*`` -> float or None; ``min`` / ``max`` / ``last`` -> the column's value
  or None (timestamps as integer microseconds: ``to_arrow`` turns a list into the feature's
  Arrow column);
- ``p.to_list()`` / ``Partial.from_list(xs)``: a compact JSON-able form (nine scalars) to store
  a partial per (key, tile) in SQLite, Redis or memory; ``from_list(p.to_list()) == p``.

Building the partials of many tiles at once from events (vectorised, pyarrow)::

    table = tile_partials(events, keys=["user_id"], ts="ts", created="created",
                          column="amount", tile_us=5 * MINUTE)
    # one row per (user_id, tile): user_id, tile (int64 us), then STATE_COLUMNS
    parts = partials_by_key(table, keys=["user_id"])   # {(user_id, tile): Partial}

Reading a window at ``t_us`` (``skewless.aggregate.windows``): merge the partials of the tiles
``window_tiles(t_us, window_us, tile_us)`` (full tiles, then the head tile, whose events must
all be before ``t_us``), then ``finalize``::

    total = merge_all(parts.get((user, tile), EMPTY) for tile in window_tiles(t, w, s))
    value = finalize(total, "mean")

or, with one key's tiles as ``{tile start: Partial}``, ``read_window(tiles, t, w, s)``.

Floats: sums of floats depend on the order of addition, and the offline engines merge in
another order than the online path; equal means equal within ``isclose`` (docs/aggregations.md,
"Floats"). Integer sums are exact on every path.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any, NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from skewless import types as T
from skewless.aggregate.functions import FUNCTIONS
from skewless.aggregate.windows import floor_tile, window_tiles

# The state columns of a partials table (``tile_partials``), in ``to_list`` order.
STATE_COLUMNS = ("count", "sum", "mean", "m2", "min", "max", "last_ts", "last_created", "last_value")
TILE = "tile"

_OLDEST = -(2**63)   # a null created timestamp sorts as the oldest


class Partial(NamedTuple):
    """The state of one column over some events (see the module docstring). ``count`` counts
    non-null values; the other fields are meaningless (zero / None) while ``count`` is 0.
    ``last`` is ``(ts_us, created_us or None, value)`` of the latest value. Immutable; a named
    tuple because reads build several per request (three times cheaper than a dataclass)."""

    count: int = 0   # type: ignore[assignment]  # the field shadows tuple.count, on purpose
    sum: int | float = 0
    mean: float = 0.0
    m2: float = 0.0
    min: Any = None
    max: Any = None
    last: tuple[int, int | None, Any] | None = None

    def to_list(self) -> list[Any]:
        """The compact, JSON-able form: ``[count, sum, mean, m2, min, max, last_ts,
        last_created, last_value]`` (``STATE_COLUMNS``); values are ints, floats, strings,
        bools or None (timestamps as integer microseconds)."""
        ts, created, value = self.last if self.last is not None else (None, None, None)
        return [self.count, self.sum, self.mean, self.m2, self.min, self.max, ts, created, value]

    @classmethod
    def from_list(cls, xs: Sequence[Any]) -> Partial:
        """The partial ``to_list`` gave (a list read back from JSON is fine)."""
        count, total, mean, m2, lo, hi, ts, created, value = xs
        last = None if ts is None else (int(ts), None if created is None else int(created), value)
        return cls(int(count), total, float(mean), float(m2), lo, hi, last)


EMPTY = Partial()


def update(p: Partial, value: Any, ts_us: int, created_us: int | None = None) -> Partial:
    """``p`` with one more event: ``value`` at event time ``ts_us`` written at ``created_us``.
    A null ``value`` is skipped (``p`` unchanged). Welford's update for mean and M2."""
    if value is None:
        return p
    number = _numeric(value)
    one = Partial(1, value if number else 0, float(value) if number else 0.0, 0.0, value, value,
                  (ts_us, created_us, value))
    return merge(p, one)


def _numeric(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def merge(a: Partial, b: Partial) -> Partial:
    """The state of the events of ``a`` and of ``b`` together (associative and commutative;
    Chan et al.'s parallel formula for mean and M2, see the module docstring)."""
    if b.count == 0:
        return a
    if a.count == 0:
        return b
    n = a.count + b.count
    delta = b.mean - a.mean
    mean = a.mean + delta * b.count / n
    m2 = a.m2 + b.m2 + delta * delta * a.count * b.count / n
    # (the calls skipped when a side has none: the fields a view does not read are None)
    lo = a.min if b.min is None else b.min if a.min is None else _least(a.min, b.min)
    hi = a.max if b.max is None else b.max if a.max is None else _greatest(a.max, b.max)
    last = _later(a.last, b.last)
    return Partial(n, a.sum + b.sum, mean, m2, lo, hi, last)


def _later(a: tuple[int, int | None, Any] | None, b: tuple[int, int | None, Any] | None
           ) -> tuple[int, int | None, Any] | None:
    if a is None:
        return b
    if b is None:
        return a
    if a[0] != b[0]:   # (event time, created time, value), the value by _greatest's order
        return a if a[0] > b[0] else b
    ca = _OLDEST if a[1] is None else a[1]
    cb = _OLDEST if b[1] is None else b[1]
    if ca != cb:
        return a if ca > cb else b
    return a if _greatest(a[2], b[2]) is a[2] else b   # a tie: the greatest value (NaN above all)


# The order of values for min, max and the ties of last: the column's own, with NaN above every
# number (DuckDB's and PostgreSQL's order, and Arrow's sort): a window holding a NaN has max
# NaN, and min NaN only when every value is NaN (docs/aggregations.md, "Floats").
def _least(a: Any, b: Any) -> Any:
    if b is None:
        return a
    if a is None or b != b:   # b is NaN: a, a number (or NaN too), is not greater
        return a if a is not None else b
    if a != a:                # a is NaN, b a number
        return b
    return a if a <= b else b


def _greatest(a: Any, b: Any) -> Any:
    if b is None:
        return a
    if a is None:
        return b
    if a != a:                # a is NaN: nothing is greater
        return a
    if b != b:
        return b
    return a if a >= b else b


_I64_MAX = 2**63 - 1


def _typed(values: np.ndarray, scalar: Any) -> bool:
    """A column and a scalar of the same number type: float64 and float, int64 and int."""
    if values.dtype == np.float64:
        return type(scalar) is float
    return values.dtype == np.int64 and type(scalar) is int and -_I64_MAX - 1 <= scalar <= _I64_MAX


def merge_each(fields: Mapping[int, np.ndarray | None], b: Partial) -> dict[int, np.ndarray | None] | None:
    """``merge(a_i, b)`` for every row ``a_i`` at once, column-wise, bit for bit what ``merge``
    gives: the closed suffixes of a key's tiles when a new tile opens (``online/tiles.py``),
    where a loop of ``merge`` cost 2-3 µs a row.

    ``fields``: ``to_list`` position -> one column per kept field, float64 or int64 arrays of
    one length (``None``: a ``last_created`` that is null in every row); count (0) and
    ``last_ts`` (6) are required, and a field left out is one no caller reads (``merge`` never
    mixes fields, except mean, which M2 needs: give both). Returns the same fields merged, or
    None when the answer could differ from ``merge``'s by a bit: a row holding no value, a
    column of another type than ``b``'s value, an int sum beyond 64 bits, or a row whose
    ``last`` ties ``b``'s on (event time, created time), where the values decide. Then merge
    row by row."""
    if b.count == 0:
        return dict(fields)
    with np.errstate(all="ignore"):   # floats overflow to inf as Python's do, silently
        return _merge_each(fields, b)


def _merge_each(fields: Mapping[int, np.ndarray | None], b: Partial) -> dict[int, np.ndarray | None] | None:
    count, ts = fields.get(0), fields.get(6)
    if count is None or ts is None or count.dtype != np.int64 or ts.dtype != np.int64 or not len(count):
        return None
    if int(count.min()) <= 0 or b.last is None:
        return None
    out: dict[int, np.ndarray | None] = {}
    n = count + b.count
    n_f = n.astype(np.float64)
    bc = float(b.count)
    for i, a in fields.items():
        if i in (0, 6, 7, 8):
            continue
        if a is None:
            return None
        if i == 1:        # sum
            if not _typed(a, b.sum):
                return None
            if a.dtype == np.int64 and not (-_I64_MAX - 1 <= int(a.min()) + b.sum
                                            and int(a.max()) + b.sum <= _I64_MAX):
                return None
            out[1] = a + b.sum
        elif i in (2, 3):  # mean, M2: Chan et al., in merge's order of operations
            if a.dtype != np.float64:
                return None
            mean = fields.get(2)
            a_mean = mean if mean is not None and mean.dtype == np.float64 else np.zeros(len(a))
            delta = b.mean - a_mean
            if i == 2:
                out[2] = a_mean + delta * bc / n_f
            else:
                out[3] = (a + b.m2) + delta * delta * count.astype(np.float64) * bc / n_f
        elif i == 4:      # min: a's unless b's is smaller (NaN compares false, as in merge)
            if not _typed(a, b.min):
                return None
            keep = a <= b.min   # merge's _least: NaN above every number
            if a.dtype == np.float64:
                keep |= np.isnan(b.min)
            out[4] = np.where(keep, a, b.min)
        elif i == 5:
            if not _typed(a, b.max):
                return None
            keep = a >= b.max   # merge's _greatest
            if a.dtype == np.float64:
                keep |= np.isnan(a)
            out[5] = np.where(keep, a, b.max)
        else:
            return None
    b_ts, b_created, b_value = b.last
    created = fields.get(7)
    if 7 in fields:
        if created is None:
            if b_created is not None:
                return None   # a mix of null and set created times: row by row
            a_cr = np.full(len(ts), _OLDEST, dtype=np.int64)
        elif created.dtype != np.int64 or b_created is None:
            return None
        else:
            a_cr = created
    else:
        a_cr = np.full(len(ts), _OLDEST, dtype=np.int64)
    b_cr = _OLDEST if b_created is None else b_created
    if (np.equal(ts, b_ts) & np.equal(a_cr, b_cr)).any():
        return None       # the values would decide: merge's tuple comparison, row by row
    a_wins = (ts > b_ts) | (np.equal(ts, b_ts) & (a_cr > b_cr))
    out[0] = n
    out[6] = np.where(a_wins, ts, b_ts)
    if 7 in fields:
        out[7] = None if created is None else np.where(a_wins, created, b_cr)   # b_created, set
    if 8 in fields:
        value = fields[8]
        if value is None or not _typed(value, b_value):
            return None
        out[8] = np.where(a_wins, value, b_value)
    return {i: out[i] for i in fields}


def merge_all(partials: Iterable[Partial]) -> Partial:
    """All ``partials`` merged, left to right (``EMPTY`` for none)."""
    out = EMPTY
    for p in partials:
        out = merge(out, p)
    return out


def read_window(tiles: Mapping[int, Partial], t_us: int, window_us: int, tile_us: int) -> Partial:
    """The partial of the window at ``t_us`` from one key's stored tile partials (``tiles``:
    tile start in microseconds -> Partial; a missing tile is empty): the full tiles and the
    head tile of ``window_tiles``, merged in time order. The head tile's partial must hold only
    events before ``t_us`` (true at serving time, when ``t_us`` is now and nothing later has
    happened); offline, the engines take the head tile's events before ``t_us`` themselves."""
    return merge_all(tiles.get(start, EMPTY) for start in window_tiles(t_us, window_us, tile_us))


def finalize(p: Partial, function: str) -> Any:
    """The value of ``function`` over the events ``p`` summarises: ``count`` 0 and None for
    every other function when ``p`` holds no value; ``stddev_samp`` is None below two values.
    Raises ValueError for an unknown function."""
    if function == "count":
        return p.count
    if function not in FUNCTIONS:
        raise ValueError(f"unknown aggregation function {function!r}; known: {', '.join(FUNCTIONS)}")
    if p.count == 0:
        return None
    if function == "sum":
        return float(p.sum)
    if function == "mean":
        return float(p.sum) / p.count if isinstance(p.sum, float) else _int_mean(p.sum, p.count)
    if function == "min":
        return p.min
    if function == "max":
        return p.max
    if function == "last":
        return p.last[2] if p.last is not None else None
    if function == "stddev_samp" and p.count < 2:
        return None
    if not math.isfinite(p.mean):   # a NaN or an infinity in the window (docs: "Floats")
        return math.nan
    if function == "stddev_pop":
        return math.sqrt(max(p.m2, 0.0) / p.count)
    return math.sqrt(max(p.m2, 0.0) / (p.count - 1))


def _int_mean(total: int, count: int) -> float:
    """The mean of integers as the float nearest to ``total / count`` computed the way SQL
    engines do it: the sum as a double, divided by the count."""
    return float(total) / count


def to_arrow(values: Sequence[Any], function: str, column_type: T.ValueType) -> pa.Array:
    """``finalize`` results as the feature's Arrow column (``functions.output_type``):
    timestamps from integer microseconds, Float32 from Python floats."""
    from skewless.aggregate.functions import output_type

    out = output_type(function, column_type).to_arrow()
    if pa.types.is_timestamp(out):
        return pa.array(values, pa.int64()).cast(out)
    return pa.array(values, out)


# --- vectorised: partials of many (key, tile) at once --------------------------------------------

def _micros(column: pa.ChunkedArray | pa.Array) -> pa.Array:
    """A timestamp column as int64 microseconds since the epoch (naive means UTC)."""
    t = column.type
    if pa.types.is_timestamp(t):
        column = pc.cast(column, pa.timestamp("us", tz=t.tz), safe=False)
        return pc.cast(column, pa.int64())
    if pa.types.is_date(t):
        return pc.cast(pc.cast(column, pa.timestamp("us")), pa.int64())
    return pc.cast(column, pa.int64())


def tile_partials(events: pa.Table, keys: Sequence[str], ts: str, created: str | None,
                  column: str, tile_us: int) -> pa.Table:
    """The partial of ``column`` per (keys, tile) of ``events`` (vectorised, pyarrow).

    ``events`` holds the key columns, the event time ``ts`` (a timestamp column; naive means
    UTC), optionally the created time ``created`` and the value ``column``. Rows whose value is
    null are skipped; rows are never deduplicated here (``dedup_events`` first when the source
    declares an event id). Returns one row per (keys, tile) with a value: the key columns,
    ``tile`` (int64, the tile's start in microseconds) and ``STATE_COLUMNS`` (``count`` int64,
    ``sum`` int64 for integer columns (decimal128(38, 0) when a sum leaves 64 bits: read rows
    with ``row_partial``) / float64, ``mean`` and ``m2`` float64, ``min`` / ``max``
    / ``last_value`` of the column's type (timestamps as int64 microseconds), ``last_ts`` and
    ``last_created`` int64 microseconds). Row order is unspecified.
    """
    value = events.column(column)
    if pa.types.is_timestamp(value.type) or pa.types.is_date(value.type):
        value = _micros(value)
    if pa.types.is_dictionary(value.type):
        value = value.dictionary_decode()
    ts_us = _micros(events.column(ts))
    created_us = (_micros(events.column(created)) if created else
                  pa.nulls(len(events), pa.int64()))
    tile = pc.subtract(ts_us, _mod(ts_us, tile_us))
    base = pa.table({**{k: events.column(k) for k in keys}, TILE: tile, "_v": value,
                     "_ts": ts_us, "_created": pc.fill_null(created_us, _OLDEST),
                     "_created_raw": created_us})
    base = base.filter(pc.is_valid(base.column("_v")))
    integer = pa.types.is_integer(value.type)
    numeric = integer or pa.types.is_floating(value.type)
    if integer:
        base = base.set_column(base.schema.get_field_index("_v"), "_v", pc.cast(base.column("_v"), pa.int64()))
        # summed exactly: Arrow's int64 sum wraps past 64 bits (two of 2**63 - 1 gave -2)
        base = base.append_column("_wide", pc.cast(base.column("_v"), _WIDE))
    group = list(keys) + [TILE]
    if numeric:
        # mean and M2 are floats; an integer beyond 2**53 rounds to the nearest double, as
        # Python's float() does on the online path (``update``)
        x = pc.cast(base.column("_v"), pa.float64(), safe=False)
        base = base.append_column("_x", x)
    aggs: list[tuple[Any, ...]] = [("_v", "count")]
    if numeric:
        aggs += [("_wide" if integer else "_v", "sum"), ("_x", "mean"),
                 ("_x", "variance", pc.VarianceOptions(ddof=0))]
    aggs += [("_v", "min"), ("_v", "max")]
    if pa.types.is_floating(value.type):
        isnan = pc.is_nan(base.column("_v"))
        base = base.append_column("_nan", isnan).append_column("_number", pc.invert(isnan))
        base = base.append_column("_finite", pc.is_finite(base.column("_v")))
        aggs += [("_nan", "any"), ("_number", "any"), ("_finite", "all")]
    stats = base.group_by(group).aggregate(aggs)
    order = [(k, "ascending") for k in group] + [
        ("_ts", "ascending"), ("_created", "ascending"), ("_v", "ascending")]
    latest = base.sort_by(order).group_by(group, use_threads=False).aggregate(
        [("_ts", "last"), ("_created_raw", "last"), ("_v", "last")])
    stats = stats.join(latest, group, join_type="inner")
    n = len(stats)
    count = pc.cast(stats.column("_v_count"), pa.int64())
    if numeric:
        total = stats.column("_wide_sum" if integer else "_v_sum")
        if integer:   # int64 when every sum fits, else kept as decimals (``row_partial``)
            try:
                total = pc.cast(total, pa.int64())
            except pa.ArrowInvalid:
                pass
        mean = stats.column("_x_mean")
        m2 = pc.multiply(stats.column("_x_variance"), pc.cast(count, pa.float64()))
        if pa.types.is_floating(value.type):
            mean, m2 = _welford_where_overflowed(base, stats, group, mean, m2)
    else:
        total = pa.repeat(0, n).cast(pa.int64()) if n else pa.array([], pa.int64())
        mean = pa.array([0.0] * n, pa.float64())
        m2 = pa.array([0.0] * n, pa.float64())
    lo, hi = stats.column("_v_min"), stats.column("_v_max")
    if pa.types.is_floating(value.type):
        # Arrow's min and max skip NaN; the rule puts NaN above every number (``_least``,
        # ``_greatest``): max is NaN when the tile holds one, min only when it holds nothing else
        nan = pa.scalar(math.nan, lo.type)
        hi = pc.if_else(stats.column("_nan_any"), nan, hi)
        lo = pc.if_else(stats.column("_number_any"), lo, nan)
    cols = {**{k: stats.column(k) for k in keys}, TILE: stats.column(TILE), "count": count,
            "sum": total, "mean": mean, "m2": m2, "min": lo, "max": hi,
            "last_ts": stats.column("_ts_last"), "last_created": stats.column("_created_raw_last"),
            "last_value": stats.column("_v_last")}
    return pa.table(cols)


def _welford_where_overflowed(base: pa.Table, stats: pa.Table, group: list[str], mean: Any,
                              m2: Any) -> tuple[Any, Any]:
    """``mean`` and ``m2`` with the tiles of finite values whose Arrow mean or M2 overflowed
    (a sum past the double range: [1e308, 1e308] has mean inf, which ``finalize`` takes for a
    tile holding an infinity) computed again as the online path does (``update``, Welford's,
    which does not overflow there). Rare: nothing is done unless such a tile exists."""
    bad = pc.and_(stats.column("_finite_all"),
                  pc.invert(pc.and_(pc.is_finite(mean), pc.is_finite(m2))))
    if not pc.any(bad).as_py():
        return mean, m2
    rows = stats.select(group).append_column("_i", pa.array(range(len(stats)), pa.int64())).filter(bad)
    values = base.select([*group, "_x"]).join(rows, group, join_type="inner").select(["_i", "_x"])
    per: dict[int, Partial] = {}
    for i, x in zip(values.column("_i").to_pylist(), values.column("_x").to_pylist()):
        per[i] = update(per.get(i, EMPTY), x, 0)
    means, m2s = mean.to_pylist(), m2.to_pylist()
    for i, p in per.items():
        means[i], m2s[i] = p.mean, p.m2
    return pa.array(means, pa.float64()), pa.array(m2s, pa.float64())


def _mod(ts_us: pa.Array, tile_us: int) -> pa.Array:
    """``ts_us mod tile_us``, floored (non-negative for times before 1970 too)."""
    rem = pc.subtract(ts_us, pc.multiply(pc.divide(ts_us, tile_us), tile_us))   # truncated
    return pc.if_else(pc.less(rem, 0), pc.add(rem, tile_us), rem)


_WIDE = pa.decimal128(38, 0)   # exact integer sums: 38 digits hold 2**64 int64 values


def row_partial(row: Mapping[str, Any]) -> Partial:
    """The partial of one row of a ``tile_partials`` table (``to_pylist``): a wide integer
    sum, held as a decimal, comes back as the int it is."""
    values = [row[c] for c in STATE_COLUMNS]
    if isinstance(values[1], Decimal):
        values[1] = int(values[1])
    return Partial.from_list(values)


def partials_by_key(table: pa.Table, keys: Sequence[str]) -> dict[tuple[Any, ...], Partial]:
    """A ``tile_partials`` table as ``{(key values..., tile): Partial}``."""
    rows = table.select([*keys, TILE, *STATE_COLUMNS]).to_pylist()
    out: dict[tuple[Any, ...], Partial] = {}
    for row in rows:
        k = tuple(row[c] for c in keys) + (row[TILE],)
        out[k] = row_partial(row)
    return out


def dedup_events(events: pa.Table, event_id: str, ts: str, created: str | None,
                 columns: Sequence[str]) -> pa.Table:
    """``events`` with one row per ``event_id`` (docs/aggregations.md, "Event ids"): rows that
    share an event id are one event, and the one kept is the first written: the least created
    timestamp (null is the oldest), then the least event timestamp, then the least values of
    ``columns`` in that order (null the smallest): what the online path keeps, the first
    delivery of an id. Rows with a null event id are each their own event. Row order is
    unspecified."""
    if event_id not in events.column_names:
        raise KeyError(event_id)
    nulls = events.filter(pc.is_null(events.column(event_id)))
    rest = events.filter(pc.is_valid(events.column(event_id)))
    order = [(event_id, "ascending")]
    helper: dict[str, pa.Array] = {}
    if created:
        helper["__c"] = pc.fill_null(_micros(rest.column(created)), _OLDEST)
        order.append(("__c", "ascending"))
    helper["__t"] = _micros(rest.column(ts))
    order.append(("__t", "ascending"))
    for i, c in enumerate(columns):
        col = rest.column(c)
        helper[f"__n{i}"] = pc.cast(pc.is_valid(col), pa.int8())
        order.append((f"__n{i}", "ascending"))
        order.append((c, "ascending"))
    work = rest
    for name, arr in helper.items():
        work = work.append_column(name, arr)
    idx = pc.sort_indices(work, sort_keys=order)
    work = work.take(idx)
    ids = work.column(event_id)
    if len(work) == 0:
        return nulls
    prev = pc.not_equal(ids.slice(1), ids.slice(0, len(work) - 1))   # the first of each id
    keep = pa.concat_arrays([pa.array([True])] + [c for c in pa.chunked_array(prev).chunks])
    kept = work.filter(keep).drop_columns(list(helper))
    return pa.concat_tables([kept, nulls.cast(kept.schema)]) if len(nulls) else kept


def floor_tiles(ts_us: Iterable[int], tile_us: int) -> list[int]:
    """``floor_tile`` of many times (a convenience for tests and small batches)."""
    return [floor_tile(t, tile_us) for t in ts_us]


# --- equality across paths -----------------------------------------------------------------------

REL_TOL = 1e-9


def same_value(a: Any, b: Any) -> bool:
    """Whether two values of one aggregated feature agree (docs/aggregations.md, "Floats"):
    nulls equal nulls; floats within ``REL_TOL`` of the larger magnitude (at least 1), since
    paths add floats in different orders, but an infinity only itself (and NaN only NaN);
    everything else exactly."""
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, float) or isinstance(b, float):
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        if math.isinf(a) or math.isinf(b):   # inf - inf is NaN; the tolerance of inf is inf
            return a == b
        return abs(a - b) <= REL_TOL * max(1.0, abs(a), abs(b))
    return bool(a == b)
