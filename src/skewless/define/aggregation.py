"""Aggregation: one windowed aggregate of a source column, served as a feature
(docs/aggregations.md)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from skewless.aggregate.functions import FUNCTIONS
from skewless.aggregate.windows import format_duration
from skewless.define._common import FrozenMixin, check_duration, check_name, seconds_duration
from skewless.define._fields import Spec
from skewless.errors import DefinitionError, closest


def _seconds(td: timedelta) -> int | float:
    s = td.total_seconds()
    return int(s) if s == int(s) else s


def _from_seconds(s: float) -> timedelta:
    return timedelta(seconds=s)


def duration(label: str, what: str, value: Any) -> timedelta:
    """A window or tile as a positive timedelta of whole seconds (a number is seconds)."""
    value = seconds_duration(f"{label}: {what}", value)
    if not isinstance(value, timedelta):
        raise DefinitionError(f"{label}: {what} must be a timedelta, got {value!r}",
                              hint=f"e.g. {what}=timedelta(hours=1)")
    if value <= timedelta(0) or value.microseconds:
        raise DefinitionError(f"{label}: {what} {value} must be a positive whole number of seconds",
                              hint=f"e.g. {what}=timedelta(minutes=30)")
    return check_duration(f"{label}: {what}", value)


# Other engines' names of the functions, for the "did you mean" of an unknown one.
_SYNONYMS = {"avg": "mean", "average": "mean", "std": "stddev_samp", "stdev": "stddev_samp",
             "stddev": "stddev_samp", "var": "stddev_samp", "total": "sum", "cnt": "count",
             "latest": "last", "last_value": "last", "minimum": "min", "maximum": "max"}


class Aggregation(FrozenMixin):
    """``function`` of the source column ``column`` over the events of the last ``time_window``.

    The value at time t covers the events with ``floor_tile(t - time_window) <= ts < t``: the
    window's tail is rounded down to the view's tile, and an event at exactly t is not counted
    (docs/aggregations.md). ``function`` is one of count, sum, mean, min, max, last,
    stddev_samp, stddev_pop; nulls in the column are skipped. The feature is called ``name``, or
    ``{column}_{function}_{window}`` with the window written 30m, 1h, 7d, 90d
    (``feature_name``). Column and type checks happen in the FeatureView that lists it, which
    knows the schema: a DefinitionError names the view and the aggregation.
    """

    column: str
    function: str
    time_window: timedelta
    name: str | None

    KIND = "aggregation"
    FIELDS = (
        Spec("column"),
        Spec("function"),
        Spec("time_window", key="time_window_seconds", dump=_seconds, load=_from_seconds,
             label="time_window", shown=_from_seconds),
        Spec("name"),
    )

    def __init__(self, column: str, function: str, time_window: timedelta,
                 name: str | None = None) -> None:
        label = f"Aggregation({column!r}, {function!r})"
        check_name("Aggregation", column, "column")
        if function not in FUNCTIONS:
            near = _SYNONYMS.get(str(function).lower())
            raise DefinitionError(
                f"{label}: unknown function {function!r}; "
                + (f"did you mean {near!r}?" if near else closest(str(function), FUNCTIONS)),
                hint=f"use one of {', '.join(FUNCTIONS)}")
        window = duration(label, "time_window", time_window)
        if name is not None:
            check_name("Aggregation", name)
        self._set("column", column)
        self._set("function", function)
        self._set("time_window", window)
        self._set("name", name)

    @property
    def feature_name(self) -> str:
        """The feature's name: ``name``, or ``{column}_{function}_{window}`` (``amount_sum_7d``)."""
        return self.name or f"{self.column}_{self.function}_{format_duration(self.time_window)}"

    def __repr__(self) -> str:
        extra = f", name={self.name!r}" if self.name else ""
        return (f"Aggregation({self.column!r}, {self.function!r}, "
                f"{format_duration(self.time_window)}{extra})")
