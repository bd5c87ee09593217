"""The aggregation functions: their names, what columns they take, what type they return.

Output types (docs/aggregations.md, "Types"):

============  ===========================  ===========================================
function      column types accepted        feature type
============  ===========================  ===========================================
count         any type but Array, Bytes    Int64 (never null: 0 for an empty window)
sum           Int32, Int64, Float32/64     Float64
mean          Int32, Int64, Float32/64     Float64
stddev_samp   Int32, Int64, Float32/64     Float64 (null below 2 values)
stddev_pop    Int32, Int64, Float32/64     Float64
min, max      numbers, String, timestamps  the column's type
last          any type but Array, Bytes    the column's type
============  ===========================  ===========================================
"""

from __future__ import annotations

from skewless import types as T

FUNCTIONS = ("count", "sum", "mean", "min", "max", "last", "stddev_samp", "stddev_pop")
NUMERIC_FUNCTIONS = frozenset({"sum", "mean", "stddev_samp", "stddev_pop"})
ORDERED_FUNCTIONS = frozenset({"min", "max"})

NUMBERS = (T.Int32, T.Int64, T.Float32, T.Float64)
ORDERED = NUMBERS + (T.String, T.UnixTimestamp)
LAST_TYPES = ORDERED + (T.Bool,)


def accepts(function: str) -> tuple[T.ValueType, ...]:
    """The column types ``function`` takes. Arrays and bytes are never aggregated: a partial
    keeps the latest, least and greatest value of its column, and its stored form is JSON."""
    if function in NUMERIC_FUNCTIONS:
        return NUMBERS
    if function in ORDERED_FUNCTIONS:
        return ORDERED
    return LAST_TYPES


def column_ok(function: str, dtype: T.ValueType) -> bool:
    """Whether ``function`` can aggregate a column declared ``dtype``."""
    return dtype in accepts(function)


def output_type(function: str, column_type: T.ValueType) -> T.ValueType:
    """The feature type of ``function`` over a column of ``column_type``."""
    if function == "count":
        return T.Int64
    if function in NUMERIC_FUNCTIONS:
        return T.Float64
    return column_type
