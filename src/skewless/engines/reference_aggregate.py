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
from typing import Any

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
    if function == "sum":
        return float(sum(xs)) if all(isinstance(x, int) for x in xs) else math.fsum(xs)
    if function == "mean":
        total = float(sum(xs)) if all(isinstance(x, int) for x in xs) else math.fsum(xs)
        return total / len(xs)
    if function == "min":
        return min(xs)
    if function == "max":
        return max(xs)
    if function == "last":
        return max(present, key=lambda e: (e[0], _OLDEST if e[1] is None else e[1], e[2]))[2]
    if function == "stddev_pop":
        return float(statistics.pstdev(xs))
    if function == "stddev_samp":
        return float(statistics.stdev(xs)) if len(xs) > 1 else None
    raise ValueError(f"unknown aggregation function {function!r}")


def dedup(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> list[dict[str, Any]]:
    """One row per event id (docs/aggregations.md, "Event ids"): among rows with the same
    ``"id"``, the greatest created time (None oldest), then event time, then values of
    ``columns`` in order (None smallest) wins. Rows whose id is None are kept, each alone."""
    best: dict[Any, dict[str, Any]] = {}
    out = []
    for row in rows:
        if row["id"] is None:
            out.append(row)
            continue
        kept = best.get(row["id"])
        if kept is None or _rank(row, columns) > _rank(kept, columns):
            best[row["id"]] = row
    return out + list(best.values())


def _rank(row: dict[str, Any], columns: Sequence[str]) -> tuple[Any, ...]:
    created = _OLDEST if row["created"] is None else row["created"]
    return (created, row["ts"], *((v is not None, v) if v is not None else (False, 0)
                                  for v in (row["values"][c] for c in columns)))
