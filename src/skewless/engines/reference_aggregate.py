"""The reference engine's windowed aggregations: the rule of docs/aggregations.md as the
obvious scan, written to be read, not fast, and independent of the partial-aggregate library
(``skewless.aggregate``) the other paths use: it is what they are checked against.

For each label at ``t`` and each aggregation: keep the entity's events with
``window_start <= ts < t`` (``window_start`` from the plan: the window's tail rounded down to
the tile), skip null values, and compute the function over what is left in plain Python
(``statistics`` for the standard deviations, ``math.fsum`` for float sums).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

import pyarrow as pa

from skewless.plan.aggregate import AggregateRequest

Event = tuple[int, "int | None", Any]   # (event time us, created time us or None, value)

_OLDEST = -(2**63)


def aggregate(events: Sequence[Event], function: str) -> Any:
    """``function`` over ``events`` (already limited to the window): nulls skipped; an empty
    window gives 0 for count and None otherwise; stddev_samp needs two values."""
    present = [e for e in events if e[2] is not None]
    if function == "count":
        return len(present)
    if not present:
        return None
    xs = [v for _, _, v in present]
    finite = all(not isinstance(x, float) or math.isfinite(x) for x in xs)
    if function in ("sum", "mean"):
        if all(isinstance(x, int) for x in xs):
            total = float(sum(xs))
        else:   # fsum is exact, but refuses inf + -inf (NaN, as any float sum gives)
            total = math.fsum(xs) if finite else sum(float(x) for x in xs)
        return total if function == "sum" else total / len(xs)
    if function == "min":
        return min(xs, key=_ordered)
    if function == "max":
        return max(xs, key=_ordered)
    if function == "last":
        return max(present, key=lambda e: (e[0], _OLDEST if e[1] is None else e[1], _ordered(e[2])))[2]
    if function not in ("stddev_pop", "stddev_samp"):
        raise ValueError(f"unknown aggregation function {function!r}")
    if function == "stddev_samp" and len(xs) < 2:
        return None
    if not finite:   # a NaN or an infinity in the window: NaN (docs/aggregations.md, "Floats")
        return math.nan
    if function == "stddev_pop":
        return float(statistics.pstdev(xs))
    return float(statistics.stdev(xs))


def _ordered(value: Any) -> tuple[int, Any]:
    """A value's place in the order of min, max and last's ties: its own, NaN above every
    number (as DuckDB and PostgreSQL order)."""
    return (1, 0.0) if value != value else (0, value)


def dedup(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> list[dict[str, Any]]:
    """One row per event id (docs/aggregations.md, "Event ids"): among rows with the same
    ``"id"``, the first written wins: the least created time (None oldest), then event time,
    then values of ``columns`` in order (None smallest). Rows whose id is None are kept, each
    alone."""
    best: dict[Any, dict[str, Any]] = {}
    out = []
    for row in rows:
        if row["id"] is None:
            out.append(row)
            continue
        kept = best.get(row["id"])
        if kept is None or _rank(row, columns) < _rank(kept, columns):
            best[row["id"]] = row
    return out + list(best.values())


def _rank(row: dict[str, Any], columns: Sequence[str]) -> tuple[Any, ...]:
    created = _OLDEST if row["created"] is None else row["created"]
    return (created, row["ts"], *((v is not None, _ordered(v)) if v is not None else (False, (0, 0))
                                  for v in (row["values"][c] for c in columns)))


def aggregated_columns(request: AggregateRequest, entity: pa.Table, label_times: Sequence[Any],
                       as_of: datetime | None) -> dict[str, list[Any]]:
    """The feature values of ``request`` for each entity row: for each label, the entity's
    events are scanned, the window's rows kept (``plan/aggregate.py``), and each function
    computed by ``aggregate``. ``label_times``: aware UTC datetimes or None."""
    from skewless.kernels.source import UTC_MICROS, read_conformed

    columns: dict[str, pa.DataType | None] = {request.timestamp_column: UTC_MICROS}
    if request.created_column:
        columns[request.created_column] = UTC_MICROS
    if request.event_id_column:
        columns.setdefault(request.event_id_column, None)
    for k in request.source_keys:
        columns.setdefault(k, None)
    for name, dtype in request.value_columns:
        columns[name] = dtype.to_arrow()
    table = read_conformed(request.source, columns, request.view)
    event = [_us(v) for v in table.column(request.timestamp_column).to_pylist()]
    created = ([_us(v) for v in table.column(request.created_column).to_pylist()]
               if request.created_column else [None] * table.num_rows)
    ids = (table.column(request.event_id_column).to_pylist() if request.event_id_column
           else [None] * table.num_rows)
    keys = list(zip(*(table.column(k).to_pylist() for k in request.source_keys)))
    values = {name: table.column(name).to_pylist() for name, _ in request.value_columns}
    as_of_us = _us(as_of) if as_of is not None else None
    rows = []
    for i in range(table.num_rows):
        if event[i] is None:
            continue
        known = created[i] if request.created_column else event[i]
        if as_of_us is not None and (known is None or known > as_of_us):
            continue
        rows.append({"id": ids[i], "key": keys[i], "ts": event[i], "created": created[i],
                     "values": {name: vals[i] for name, vals in values.items()}})
    if request.event_id_column:
        rows = dedup(rows, request.dedup_columns)
    by_key: dict[Any, list[dict[str, Any]]] = {}
    for row in rows:
        by_key.setdefault(row["key"], []).append(row)
    label_keys = list(zip(*(entity.column(k).to_pylist() for k in request.join_keys)))
    out: dict[str, list[Any]] = {c.output: [] for c in request.columns}
    for key, t in zip(label_keys, label_times):
        t_us = _us(t) if t is not None else None
        mine = [] if t_us is None or any(k is None for k in key) else by_key.get(key, [])
        for c in request.columns:
            if t_us is None:
                window: list[Event] = []
            else:
                start = c.window_start(t_us)
                # the window's events already usable at t (ts + availability_delay <= t)
                window = [(r["ts"], r["created"], r["values"][c.source_column]) for r in mine
                          if start <= r["ts"] < t_us and r["ts"] + request.delay_us <= t_us]
            value = aggregate(window, c.function)
            out[c.output].append(c.default if value is None and c.default is not None else value)
    return out


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _us(value: datetime | None) -> int | None:
    """An aware datetime as microseconds since the epoch (naive means UTC)."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return (value - _EPOCH) // timedelta(microseconds=1)
