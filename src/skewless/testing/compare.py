"""Comparing result tables, with a diff that names the row, the column and both values."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import pyarrow as pa

__all__ = ["TableMismatch", "assert_tables_equal"]


class TableMismatch(AssertionError):
    """Two result tables differ; ``cells`` lists ``(row, column, expected, actual)``."""

    def __init__(self, message: str, cells: Sequence[tuple[int, str, Any, Any]] = ()) -> None:
        super().__init__(message)
        self.cells = list(cells)


def same_cell(a: Any, b: Any) -> bool:
    """Equality where NaN equals NaN (also inside lists) and types must agree."""
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same_cell(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


def assert_tables_equal(expected: pa.Table, actual: pa.Table, expected_name: str = "expected",
                        actual_name: str = "actual", context: Sequence[str] = (),
                        max_cells: int = 12, close: Sequence[str] = ()) -> None:
    """Raise TableMismatch naming every difference: columns (names, order, types), row count,
    then each differing cell with its row number and the ``context`` columns of that row.
    Columns in ``close`` hold floats that paths may add in different orders (aggregated sums,
    means, standard deviations): equal within ``skewless.aggregate.same_value``'s tolerance
    (docs/aggregations.md, "Floats")."""
    from skewless.aggregate import same_value

    e_names, a_names = expected.column_names, actual.column_names
    if e_names != a_names:
        missing = [c for c in e_names if c not in a_names]
        extra = [c for c in a_names if c not in e_names]
        raise TableMismatch(
            f"{actual_name} columns differ from {expected_name}: missing {missing}, extra {extra}; "
            f"{expected_name} order {e_names}, {actual_name} order {a_names}")
    types = [f"'{c}': {expected_name} {expected.schema.field(c).type}, {actual_name} "
             f"{actual.schema.field(c).type}" for c in e_names
             if expected.schema.field(c).type != actual.schema.field(c).type]
    if types:
        raise TableMismatch(f"{actual_name} column types differ from {expected_name}: " + "; ".join(types))
    if expected.num_rows != actual.num_rows:
        raise TableMismatch(f"{actual_name} has {actual.num_rows} rows, {expected_name} has "
                            f"{expected.num_rows}")
    cells = []
    for c in e_names:
        same = same_value if c in close else same_cell
        for i, (x, y) in enumerate(zip(expected.column(c).to_pylist(), actual.column(c).to_pylist())):
            if not same(x, y):
                cells.append((i, c, x, y))
    if not cells:
        return
    ctx = {c: expected.column(c).to_pylist() for c in context if c in e_names}
    lines = [f"{actual_name} differs from {expected_name} in {len(cells)} cell(s) "
             f"({expected.num_rows} rows x {len(e_names)} columns):"]
    for i, c, x, y in cells[:max_cells]:
        where = ", ".join(f"{k}={v[i]!r}" for k, v in ctx.items())
        lines.append(f"  row {i} [{where}] column '{c}': {expected_name}={x!r}, {actual_name}={y!r}")
    if len(cells) > max_cells:
        lines.append(f"  ... and {len(cells) - max_cells} more")
    raise TableMismatch("\n".join(lines), cells)
