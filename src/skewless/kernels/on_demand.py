"""The one runner of on-demand feature views, called by the offline path (after the
point-in-time join, in batches) and the online path (after the read): the same inputs, typed
the same way, give the same outputs (docs/on-demand.md).

Inputs reach the function as Arrow arrays of their declared types on both paths: a base
feature as the join or the read gives it, a request field converted to its declared type by
the one conformance table (``kernels/batch.conform``, docs/types.md). ``mode="python"`` gets
``{name: list}`` (``to_pylist``), ``mode="pandas"`` a DataFrame with the training frames' dtypes
(``pandas_types_mapper``). Each declared output is converted to its type by the same table;
a missing output, another number of rows, a value that does not fit, or an exception raised by
the function is a TransformError naming the view and the column.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeAlias

import pandas as pd
import pyarrow as pa

from skewless import types as T
from skewless.engines.base import pandas_types_mapper
from skewless.errors import InvalidRequestError, SkewlessError, TransformError, closest
from skewless.kernels.batch import BadColumn, IncompatibleType, conform, show_rows, type_name
from skewless.plan.on_demand import OnDemandRequest, Transform

BATCH_ROWS = 65_536   # offline rows per call of a function: bounds its memory, not its semantics


Column: TypeAlias = "pa.Array | list[Any]"   # a typed Arrow array, or the Python values of its ``to_pylist``


def _pylist(values: Column) -> list[Any]:
    return list(values) if isinstance(values, list) else values.to_pylist()  # type: ignore[no-any-return]


def _own(values: Column, dtype: T.ValueType) -> list[Any]:
    """The values a python-mode function gets, its own to change: offline, ``to_pylist`` builds
    new lists; online, the served lists (values of Array features) are the ones the response
    returns, so they are copied, or a function changing its input in place would change the
    value served beside its output."""
    if isinstance(values, list) and isinstance(dtype, T.Array):
        return [None if v is None else list(v) for v in values]
    return _pylist(values)


def _arrow(values: Column, dtype: T.ValueType) -> pa.Array:
    return values if isinstance(values, pa.Array) else pa.array(values, type=dtype.to_arrow())


RequestKey: TypeAlias = "tuple[str, str]"   # (request field, declared type name)


def request_key(name: str, dtype: T.ValueType) -> RequestKey:
    """The key of a request field's values converted to ``dtype``: two request sources may
    declare one field with two types, and each view reading it gets its own type."""
    return (name, dtype.name)


def run_transform(t: Transform, inputs: Mapping[str, Column], request: Mapping[RequestKey, Column],
                  rows: int) -> dict[str, Column]:
    """``t``'s outputs (working column -> values of the declared type) for ``rows`` rows, from
    its base inputs (working column -> values) and the request fields (``request_key`` ->
    values). A
    column is an Arrow array of the declared type, or a list of exactly the Python values its
    ``to_pylist`` gives (the online read serves those: docs/online.md), so both paths hand the
    function the same values."""
    try:
        fn = t.function.function()
    except SkewlessError as e:   # the stored text does not load here (a module not installed)
        raise TransformError(f"on-demand feature view '{t.view}': {e.message}", hint=e.hint) from e
    if t.mode == "python":
        data: Any = {name: _own(inputs[col], dtype) for name, col, dtype in t.inputs}
        data.update({name: _own(request[request_key(name, dtype)], dtype) for name, dtype in t.request})
    else:
        arrays = {name: _arrow(inputs[col], dtype) for name, col, dtype in t.inputs}
        arrays.update({name: _arrow(request[request_key(name, dtype)], dtype) for name, dtype in t.request})
        data = (pa.table(arrays).to_pandas(types_mapper=pandas_types_mapper) if arrays
                else pd.DataFrame(index=range(rows)))
    try:
        out = fn(data)
    except Exception as e:  # noqa: BLE001 - the user's function may raise anything
        raise TransformError(
            f"on-demand feature view '{t.view}': its function '{t.function.name}' raised "
            f"{type(e).__name__}: {e}",
            hint="fix the function (the traceback is chained below); test it with "
            f"{t.view}(inputs) on a few rows") from e
    return _outputs(t, out, rows)


_PLAIN: dict[str, type] = {"Float64": float, "Int64": int, "String": str, "Bool": bool}
_INT64 = (-2 ** 63, 2 ** 63)


def fit(values: Any, dtype: T.ValueType) -> Column:
    """``values`` as a column of ``dtype`` by the one conformance table (``kernels/batch.conform``);
    a list whose values all are exactly the declared type's Python type (float for Float64, int
    within 64 bits for Int64, str, bool) or None is returned as it is: the values conform would
    give. Raises BadColumn / IncompatibleType as conform does."""
    plain = _PLAIN.get(dtype.name)
    if plain is not None and type(values) is list:
        if all(v is None or type(v) is plain for v in values) and (
                plain is not int or all(v is None or _INT64[0] <= v < _INT64[1] for v in values)) and (
                plain is not float or all(v == v for v in values)):   # NaN: conform makes it null
            return values
    return conform(values, dtype.to_arrow())


def _in_input_order(out: pd.DataFrame, rows: int) -> pd.DataFrame:
    """A pandas-mode result in the input's row order. The input frame's index is ``0..rows-1``
    on both paths; a result whose index holds exactly those labels in another order (the
    function sorted its input) is put back in that order, as pandas would align it. Any other
    index (reset, new labels, several levels) is taken by position."""
    index = out.index
    if len(index) != rows or index.equals(pd.RangeIndex(rows)):
        return out
    if (not isinstance(index, pd.MultiIndex) and pd.api.types.is_integer_dtype(index.dtype)
            and index.is_unique and index.isin(range(rows)).all()):
        return out.reindex(pd.RangeIndex(rows))
    return out


def _outputs(t: Transform, out: Any, rows: int) -> dict[str, Column]:
    label = f"on-demand feature view '{t.view}'"
    if t.mode == "pandas":
        if not isinstance(out, pd.DataFrame):
            raise TransformError(f"{label}: its function returned {type(out).__name__}; in mode "
                                 "'pandas' it must return a pandas DataFrame",
                                 hint="return a DataFrame with one column per output field, or "
                                 "declare mode='python' for a dict of lists")
        columns: Any = _in_input_order(out, rows)
        got = [str(c) for c in out.columns]
        n = len(out)
    else:
        if not isinstance(out, Mapping):
            raise TransformError(f"{label}: its function returned {type(out).__name__}; in mode "
                                 "'python' it must return a dict of lists",
                                 hint="return {'output_field': [value per row], ...}")
        columns, got = out, [str(c) for c in out]
        n = -1
    result: dict[str, Column] = {}
    for feature, col, dtype in t.outputs:
        if feature not in columns:
            raise TransformError(f"{label}: its function returned no column '{feature}' "
                                 f"(it returned {got}); {closest(feature, got)}",
                                 hint="return every field of the view's schema")
        values = columns[feature]
        size = n if n >= 0 else (len(values) if hasattr(values, "__len__") and
                                 not isinstance(values, (str, bytes)) else -1)
        if size < 0:
            raise TransformError(f"{label}: column '{feature}' is a {type(values).__name__}, not a "
                                 "list of values", hint="return a list with one value per input row")
        if size != rows:
            raise TransformError(f"{label}: its function returned {size} row(s) for column "
                                 f"'{feature}' but got {rows}",
                                 hint="return one value per input row, in the input order")
        target = dtype.to_arrow()
        if rows == 0:   # no value to convert (pandas types an empty column float64)
            result[col] = pa.array([], type=target)
            continue
        try:
            result[col] = fit(values, dtype)
        except (BadColumn, IncompatibleType) as e:
            where = f" at {show_rows(e.rows)}" if isinstance(e, BadColumn) and e.rows else ""
            raise TransformError(
                f"{label}: column '{feature}' {e}{where}; it is declared {type_name(target)}",
                hint="return values of the declared type, or declare the type the function "
                "returns (docs/types.md)") from None
    return result


def run_all(request: OnDemandRequest, base: Mapping[str, Column],
            request_columns: Mapping[RequestKey, Column], rows: int) -> dict[str, Column]:
    """Every transform of ``request`` over one batch: the transforms' outputs, by working column."""
    columns: dict[str, Column] = {}
    for t in request.transforms:
        columns.update(run_transform(t, base, request_columns, rows))
    return columns


def request_arrays(request: OnDemandRequest, column: Callable[[str], Any | None], where: str,
                   fix: str) -> dict[RequestKey, Column]:
    """The request fields as arrays of the types the views reading them declare (by
    ``request_key``: once per field and type); ``column(name)`` gives the values given for a
    field (None: not given). InvalidRequestError names the field, the view reading it and the
    rows that do not convert."""
    given: dict[str, Any] = {}
    for name, (_, first) in request.request_fields.items():
        values = column(name)
        if values is None:
            raise InvalidRequestError(
                f"{where} has no request field '{name}' needed by on-demand feature view '{first}'",
                hint=fix.format(name=name))
        given[name] = values
    out: dict[RequestKey, Column] = {}
    for t in request.transforms:
        for name, dtype in t.request:
            key = request_key(name, dtype)
            if key not in out:
                out[key] = _request_values(given[name], name, dtype, t.view, where)
    return out


def _request_values(values: Any, name: str, dtype: T.ValueType, view: str, where: str) -> Column:
    try:
        return fit(values, dtype)
    except (BadColumn, IncompatibleType) as e:
        rows = f" at {show_rows(e.rows)}" if isinstance(e, BadColumn) and e.rows else ""
        raise InvalidRequestError(
            f"{where}: request field '{name}' (read by on-demand feature view '{view}', "
            f"declared {dtype.name}) {e}{rows}",
            hint=f"send '{name}' as {dtype.name} values") from None


def offline(request: OnDemandRequest, features: pa.Table, entity: pa.Table | None) -> pa.Table:
    """The result columns, in request order and named as asked, of the base join's feature
    table ``features`` (working columns; with the entity columns when ``entity`` is None, as
    for a SQL entity_df) and the entity table, in batches of ``BATCH_ROWS``."""
    source = entity if entity is not None else features
    req = request_arrays(
        request, lambda name: source.column(name) if name in source.column_names else None,
        "entity_df", "add a '{name}' column to entity_df (request values are read from it "
        "offline, one per row)")
    rows = features.num_rows
    parts: list[pa.Table] = []
    for start in range(0, max(rows, 1), BATCH_ROWS):
        size = min(BATCH_ROWS, rows - start)
        base = {name: features.column(name).slice(start, size).combine_chunks()
                for name in features.column_names}
        batch_req = {name: a[start:start + size] for name, a in req.items()}
        cols = run_all(request, base, batch_req, size)
        parts.append(pa.table({out: base[col] if col in base else _arrow(cols[col], request.dtypes[out])
                               for col, out in request.columns}))
    if len(parts) == 1:
        return parts[0]
    return pa.concat_tables(parts)


def online(request: OnDemandRequest, values: Mapping[str, list[Any]],
           entity_rows: Sequence[Mapping[str, Any]]) -> dict[str, list[Any]]:
    """The result columns (name -> values, request order) of one online answer: ``values``
    are the base read's columns (working names), the Python values the read serves (those of
    the offline join's ``to_pylist``: the online invariant), and the request fields come from
    ``entity_rows``."""
    rows = len(entity_rows)

    def column(name: str) -> list[Any] | None:
        if rows and not all(name in row for row in entity_rows):
            return None
        return [row[name] for row in entity_rows]

    req = request_arrays(request, column, "the request",
                         "send '{name}' with every entity row (it is a request field, read "
                         "with the join keys)")
    cols = run_all(request, values, req, rows)   # type: ignore[arg-type]
    out: dict[str, list[Any]] = {}
    for col, name in request.columns:
        out[name] = values[col] if col in values else _pylist(cols[col])   # type: ignore[assignment]
    return out
