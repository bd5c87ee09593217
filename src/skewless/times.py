"""Time values as users write them: one parser for the SDK, the CLI and the feature server.

Every time argument (``materialize(start_date, end_date)``, ``materialize_incremental(end_date)``,
``get_historical_features(as_of=...)``, the CLI's ``materialize 2025-01-01 now``) accepts a
``datetime``, a ``pandas.Timestamp``, a ``numpy.datetime64``, a ``datetime.date`` (midnight
UTC) or an ISO-8601 string (``"2025-01-01"``, ``"2025-01-01T06:00:00Z"``,
``"2025-01-01 06:00:00+02:00"``). Naive values mean UTC (docs/point-in-time.md). A bad value is
an ``InvalidRequestError`` naming the argument.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, time, timezone
from typing import Any, Union

from skewless.errors import InvalidRequestError

#: What a time argument may be (``pandas.Timestamp`` is a ``datetime``).
TimeLike = Union[datetime, date, str]

_EXAMPLES = "e.g. '2025-01-01', '2025-01-01T06:00:00Z', a datetime or a date (naive means UTC)"


def parse_iso_utc(text: str) -> datetime:
    """One ISO-8601 timestamp as an aware UTC datetime: naive means UTC, a trailing ``Z`` is
    UTC (on every supported Python); ValueError on anything else."""
    text = text.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    ts = datetime.fromisoformat(text)
    return ts.replace(tzinfo=timezone.utc) if ts.tzinfo is None else ts.astimezone(timezone.utc)


def to_utc(value: Any, argument: str = "timestamp",
           now: Callable[[], datetime] | None = None) -> datetime:
    """``value`` (see the module docstring) as an aware UTC ``datetime``.

    ``argument`` names the value in the error (``"end_date"``, ``"--as-of"``). With ``now``,
    the string ``"now"`` is accepted too and means ``now()``.
    """
    if isinstance(value, datetime):
        if value != value:  # pandas.NaT is a datetime that equals nothing
            raise InvalidRequestError(f"{argument} is NaT (not a time)", hint=_EXAMPLES)
        if hasattr(value, "to_pydatetime"):  # pandas.Timestamp: plain datetime from here on
            value = value.to_pydatetime()
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None \
            else value.astimezone(timezone.utc)
    if isinstance(value, date):
        return datetime.combine(value, time(0), tzinfo=timezone.utc)
    if isinstance(value, str):
        if now is not None and value.strip().lower() == "now":
            return to_utc(now(), argument)
        try:
            return parse_iso_utc(value)
        except ValueError:
            raise InvalidRequestError(
                f"{argument} {value!r} is not an ISO date or datetime",
                hint=_EXAMPLES + (", or 'now'" if now is not None else "")) from None
    if type(value).__name__ == "datetime64":  # numpy, without importing it
        import pandas as pd

        return to_utc(pd.Timestamp(value), argument)
    raise InvalidRequestError(
        f"{argument} must be a datetime, a date or an ISO string, got {type(value).__name__} "
        f"{value!r}", hint=_EXAMPLES)
