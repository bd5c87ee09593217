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
from typing import Any

import pandas as pd
import pyarrow as pa

from skewless.engines.base import pandas_types_mapper
from skewless.errors import InvalidRequestError, TransformError
from skewless.kernels.batch import BadColumn, IncompatibleType, conform, show_rows, type_name
from skewless.plan.on_demand import OnDemandRequest, Transform

BATCH_ROWS = 65_536   # offline rows per call of a function: bounds its memory, not its semantics


def run_transform(t: Transform, inputs: Mapping[str, pa.Array], request: Mapping[str, pa.Array],
                  rows: int) -> dict[str, pa.Array]:
    """``t``'s outputs (working column -> array of the declared type) for ``rows`` rows, from
    its base inputs (working column -> array) and the request fields (name -> typed array)."""
    arrays = {name: inputs[col] for name, col in t.inputs}
    arrays.update({name: request[name] for name, _ in t.request})
    fn = t.function.function()
    if t.mode == "python":
        data: Any = {name: a.to_pylist() for name, a in arrays.items()}
    else:
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


def _outputs(t: Transform, out: Any, rows: int) -> dict[str, pa.Array]:
    label = f"on-demand feature view '{t.view}'"
    if t.mode == "pandas":
        if not isinstance(out, pd.DataFrame):
            raise TransformError(f"{label}: its function returned {type(out).__name__}; in mode "
                                 "'pandas' it must return a pandas DataFrame",
                                 hint="return a DataFrame with one column per output field, or "
                                 "declare mode='python' for a dict of lists")
        columns: Any = out
        got = [str(c) for c in out.columns]
        n = len(out)
    else:
        if not isinstance(out, Mapping):
            raise TransformError(f"{label}: its function returned {type(out).__name__}; in mode "
                                 "'python' it must return a dict of lists",
                                 hint="return {'output_field': [value per row], ...}")
        columns, got = out, [str(c) for c in out]
        n = -1
    result: dict[str, pa.Array] = {}
    for feature, col, dtype in t.outputs:
        if feature not in columns:
            from skewless.errors import closest
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
            result[col] = conform(values, target)
        except (BadColumn, IncompatibleType) as e:
            where = f" at {show_rows(e.rows)}" if isinstance(e, BadColumn) and e.rows else ""
            raise TransformError(
                f"{label}: column '{feature}' {e}{where}; it is declared {type_name(target)}",
                hint="return values of the declared type, or declare the type the function "
                "returns (docs/types.md)") from None
    return result


def run_all(request: OnDemandRequest, base: Mapping[str, pa.Array],
            request_columns: Mapping[str, pa.Array], rows: int) -> dict[str, pa.Array]:
    """Every transform of ``request`` over one batch: the base columns and the transforms'
    outputs, by working column."""
    columns = dict(base)
    for t in request.transforms:
        columns.update(run_transform(t, base, request_columns, rows))
    return columns


def request_arrays(request: OnDemandRequest, column: Callable[[str], Any | None], where: str,
                   fix: str) -> dict[str, pa.Array]:
    """The request fields as arrays of their declared types; ``column(name)`` gives the values
    given for a field (None: not given). InvalidRequestError names the field, the view reading
    it and the rows that do not convert."""
    out: dict[str, pa.Array] = {}
    for name, (dtype, view) in request.request_fields.items():
        values = column(name)
        if values is None:
            raise InvalidRequestError(
                f"{where} has no request field '{name}' needed by on-demand feature view '{view}'",
                hint=fix.format(name=name))
        try:
            out[name] = conform(values, dtype.to_arrow())
        except (BadColumn, IncompatibleType) as e:
            rows = f" at {show_rows(e.rows)}" if isinstance(e, BadColumn) and e.rows else ""
            raise InvalidRequestError(
                f"{where}: request field '{name}' (read by on-demand feature view '{view}', "
                f"declared {dtype.name}) {e}{rows}",
                hint=f"send '{name}' as {dtype.name} values") from None
    return out


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
        batch_req = {name: a.slice(start, size) for name, a in req.items()}
        cols = run_all(request, base, batch_req, size)
        parts.append(pa.table({out: cols[col] for col, out in request.columns}))
    if len(parts) == 1:
        return parts[0]
    return pa.concat_tables(parts)


def online(request: OnDemandRequest, values: Mapping[str, Sequence[Any]],
           dtypes: Mapping[str, Any], entity_rows: Sequence[Mapping[str, Any]]
           ) -> dict[str, list[Any]]:
    """The result columns (name -> values, request order) of one online answer: ``values``
    are the base read's columns (working names) with their declared types ``dtypes``, and the
    request fields come from ``entity_rows``."""
    rows = len(entity_rows)

    def column(name: str) -> list[Any] | None:
        if rows and not all(name in row for row in entity_rows):
            return None
        return [row[name] for row in entity_rows]

    req = request_arrays(request, column, "the request",
                         "send '{name}' with every entity row (it is a request field, read "
                         "with the join keys)")
    base = {}
    for name, vals in values.items():
        dtype = dtypes.get(name)
        base[name] = pa.array(vals, type=dtype.to_arrow()) if dtype is not None else pa.array(vals)
    cols = run_all(request, base, req, rows)
    out: dict[str, list[Any]] = {}
    for col, name in request.columns:
        out[name] = list(values[col]) if col in values else cols[col].to_pylist()
    return out
