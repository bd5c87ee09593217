"""Caller-given batches (pandas, Arrow, dict of columns) to typed Arrow columns, naming bad rows.

Used by ``push``: a batch is checked column by column against the types it must be stored
with, and every bad value is reported by its row position (0-based) so the caller can fix the
batch and send it again. What converts is decided by the one conformance table of
``skewless.types`` (docs/types.md), the table plan, training retrieval and materialization use:
the same type or a lossless widening; an integer into a narrower integer, a float into an
integer (pandas turns an int column with a missing value into floats), an int64 into a float,
a float64 into a float32 when the values fit; all-null columns into anything. A string never
becomes a number and a number never becomes a string: pyarrow would cast ``"1"`` to ``1`` and
``1`` to ``"1"``, which hides a producer bug.

One conversion is push's own: ISO-8601 strings to timestamps, because JSON has no timestamp
type (naive timestamps are UTC). Files read by plan, training and materialization never get it:
a source column of strings over a timestamp is refused there.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from skewless.errors import InvalidRequestError
from skewless.times import parse_iso_utc as parse_iso_utc  # the one ISO parser (skewless.times)
from skewless import types as T
from skewless.types import _family, from_arrow

MAX_ROWS_SHOWN = 10
UTC_MICROS = pa.timestamp("us", tz="UTC")
_ARROW_ERRORS = (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, TypeError,
                 ValueError, OverflowError)


class IncompatibleType(Exception):
    """A column's type cannot hold the target type's values (no value-level check needed)."""


class BadColumn(Exception):
    """Some values of a column do not convert: ``reason`` and their row positions."""

    def __init__(self, reason: str, rows: tuple[int, ...]) -> None:
        super().__init__(reason)
        self.reason = reason
        self.rows = rows


def columns_of(data: Any, what: str = "df") -> tuple[dict[str, Any], int]:
    """The columns of a pandas DataFrame, an Arrow Table / RecordBatch or a dict of columns
    (lists, numpy arrays, pandas Series, Arrow arrays), and the number of rows."""
    if isinstance(data, pd.DataFrame):
        if not data.columns.is_unique:
            dup = sorted({str(c) for c in data.columns[data.columns.duplicated()]})
            raise InvalidRequestError(f"{what} has duplicate column(s) {dup}")
        return {str(c): data[c] for c in data.columns}, len(data)
    if isinstance(data, pa.RecordBatch):
        data = pa.Table.from_batches([data])
    if isinstance(data, pa.Table):
        if len(set(data.column_names)) != len(data.column_names):
            raise InvalidRequestError(f"{what} has duplicate column names {data.column_names}")
        return {name: data.column(name) for name in data.column_names}, data.num_rows
    if isinstance(data, Mapping):
        cols: dict[str, Any] = {}
        lengths: dict[str, int] = {}
        for name, col in data.items():
            if not isinstance(name, str):
                raise InvalidRequestError(f"{what}: column names must be strings, got {name!r}")
            if isinstance(col, (str, bytes)) or not hasattr(col, "__len__"):
                raise InvalidRequestError(
                    f"{what}: column '{name}' must be a list of values, got {type(col).__name__}",
                    hint="a dict of columns maps each name to a list: {'user_id': ['u1'], ...}")
            cols[name] = col
            lengths[name] = len(col)
        if len(set(lengths.values())) > 1:
            raise InvalidRequestError(f"{what}: columns have different lengths {lengths}")
        return cols, next(iter(lengths.values()), 0)
    raise InvalidRequestError(
        f"{what} must be a pandas DataFrame, a pyarrow Table or a dict of columns, got "
        f"{type(data).__name__}")


def conform(column: Any, target: pa.DataType) -> pa.Array:
    """``column`` as an Arrow array of type ``target``; raises BadColumn naming the rows whose
    values do not convert (see the module docstring for what converts)."""
    try:
        array = _as_arrow(column)
    except _ARROW_ERRORS:
        array = None  # mixed Python types: find the culprits one by one
    if array is not None:
        try:
            return cast(array, target)
        except BadColumn:
            raise
        except IncompatibleType:
            if pa.types.is_dictionary(array.type):
                array = array.dictionary_decode()
            rows = np.flatnonzero(array.is_valid().to_numpy(zero_copy_only=False))
            raise BadColumn(f"has type {array.type}, expected {type_name(target)}",
                            tuple(int(i) for i in rows)) from None
        except _ARROW_ERRORS:
            pass  # some values do not convert: find which
    values = _python_values(column)
    bad: list[int] = []
    parts: list[pa.Array] = []
    reasons: list[str] = []
    for i, v in enumerate(values):
        try:
            parts.append(cast(_as_arrow([v]), target))
        except BadColumn as e:
            bad.append(i)
            reasons.append(e.reason)
        except IncompatibleType:
            bad.append(i)
            reasons.append(f"{type(v).__name__} values where {type_name(target)} is expected")
        except _ARROW_ERRORS as e:
            bad.append(i)
            reasons.append(_first_line(e))
    if bad:
        raise BadColumn(reasons[0] if len(set(reasons)) == 1 else
                        f"values do not convert to {type_name(target)} (first: {reasons[0]})",
                        tuple(bad))
    return pa.concat_arrays(parts) if parts else pa.array([], type=target)


def cast(array: pa.Array, target: pa.DataType) -> pa.Array:
    """``array`` as ``target`` by the conformance table (``skewless.types.conformance``):
    IncompatibleType when the table refuses the pair, BadColumn naming the rows whose values
    do not fit (overflow, fractional floats into ints, float64 beyond the float32 range). ISO
    strings into timestamps are parsed (push's one input conversion); Arrow errors for a string
    that is not a timestamp."""
    if pa.types.is_dictionary(array.type):
        array = array.dictionary_decode()
    source = array.type
    if source == target:
        return array
    if _family(target) == "timestamp" and _family(source) == "string":
        array, source = parse_timestamps(array), UTC_MICROS
    verdict = T.conformance(source, target)
    if not verdict.ok:
        raise IncompatibleType(verdict.rule)
    if verdict.verdict == T.CHECK:
        bad = T.misfits(array, target)
        if bad is not None:
            rows = np.flatnonzero(bad.to_numpy(zero_copy_only=False))
            first = array[int(rows[0])].as_py()
            raise BadColumn(f"value {first!r} does not fit {type_name(target)} ({verdict.rule})",
                            tuple(int(i) for i in rows))
    return T.convert(array, target)


def parse_timestamps(array: pa.Array) -> pa.Array:
    """ISO-8601 strings to UTC timestamps (``parse_iso_utc``); ValueError on a bad one."""
    return pa.array([None if s is None else parse_iso_utc(s) for s in array.to_pylist()],
                    type=UTC_MICROS)


def show_rows(rows: Sequence[int]) -> str:
    """``row 4``, ``rows [0, 3, 7]``, or the first MAX_ROWS_SHOWN and how many more."""
    if len(rows) == 1:
        return f"row {rows[0]}"
    shown = ", ".join(str(r) for r in rows[:MAX_ROWS_SHOWN])
    more = f" and {len(rows) - MAX_ROWS_SHOWN} more" if len(rows) > MAX_ROWS_SHOWN else ""
    return f"rows [{shown}]{more}"


def type_name(t: pa.DataType) -> str:
    """A stored type as users declare it (``Float64``), with the Arrow type when they differ."""
    name = from_arrow(t).name
    return name if from_arrow(t).to_arrow() == t else f"{name} ({t})"


def _as_arrow(column: Any) -> pa.Array:
    if isinstance(column, pa.ChunkedArray):
        return column.combine_chunks() if column.num_chunks else pa.array([], type=column.type)
    if isinstance(column, pa.Array):
        return column
    if isinstance(column, pd.Series):
        return pa.Array.from_pandas(column)
    if isinstance(column, np.ndarray):
        return pa.array(column, from_pandas=True)
    return pa.array(list(column), from_pandas=True)


def _python_values(column: Any) -> list[Any]:
    if isinstance(column, (pa.ChunkedArray, pa.Array)):
        return column.to_pylist()  # type: ignore[no-any-return]
    if isinstance(column, (pd.Series, np.ndarray)):
        return column.tolist()  # type: ignore[no-any-return]
    return list(column)


def _first_line(e: BaseException) -> str:
    return str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__


__all__ = ["BadColumn", "IncompatibleType", "MAX_ROWS_SHOWN", "cast", "columns_of", "conform",
           "parse_timestamps", "show_rows"]
