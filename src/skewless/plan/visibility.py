"""When a row counts at time ``t``: the one visibility rule of every path.

A source row (offline) or a stored record (online) with event time ``ts`` and created time
``created`` is *visible* at time ``t`` (a label's time offline, the request time online) when

- it had landed by ``t``: ``ts + availability_delay <= t``, the source's declared delay
  (``FileSource(availability_delay=...)``, 0 when none; docs/point-in-time.md, "Availability
  delay"). Offline the engines compare with ``newest_us``; online, every write path stores only
  rows already usable at its time (``available_until``: materialization up to ``end``, a push
  at its push time), so a stored record is usable at any later request time and the online
  store never holds a row the offline join would not see yet;
- it is not too old: ``t - ttl <= ts`` (no lower bound when the view has no ttl);
- with ``as_of``, it was known by then: ``created <= as_of``, or ``ts <= as_of`` when the source
  has no created timestamp (``known_column``).

Among the visible rows the latest ``(ts, created)`` wins; that is the join's job, not this
module's. The rule has two forms, both read from here: the Python bounds of ``Visibility``
(the online path: a stored record older than ``oldest_us`` is ``OUTSIDE_TTL``) and the terms
an engine's SQL compares with (``skewless.engines.sql`` renders them in each dialect). The
reference engine keeps its own brute-force reading of the rule: it is the oracle the others are
checked against (docs/point-in-time.md#the-rule).

Times are integers in microseconds since the Unix epoch (UTC), the unit every engine and store
compares in.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from skewless.define import FeatureView


def duration_micros(td: timedelta | None) -> int | None:
    """A duration in microseconds (None stays None: no bound)."""
    if td is None:
        return None
    return (td.days * 86_400 + td.seconds) * 1_000_000 + td.microseconds


@dataclass(frozen=True)
class Visibility:
    """The visibility bounds of one view's rows relative to a time ``t`` (microseconds).

    ``ttl_us``: how old a row may be (None: no lower bound). ``delay_us``: the availability
    delay, how long after its event time a row lands (0: usable at once)."""

    ttl_us: int | None = None
    delay_us: int = 0

    @classmethod
    def of(cls, ttl: timedelta | None, availability_delay: timedelta | None = None) -> Visibility:
        return cls(duration_micros(ttl), duration_micros(availability_delay) or 0)

    def oldest_us(self, t_us: int) -> int | None:
        """The oldest event time visible at ``t_us`` (inclusive); None: no lower bound."""
        return None if self.ttl_us is None else t_us - self.ttl_us

    def newest_us(self, t_us: int) -> int:
        """The newest event time visible at ``t_us`` (inclusive): landed by then."""
        return t_us - self.delay_us

    def available_until(self, t: datetime) -> datetime:
        """``newest_us`` on datetimes: the newest event time whose rows have landed by ``t``
        (a materialization up to ``t`` reads event times up to this; a push at ``t`` writes
        online the rows up to this). Clamped to the earliest datetime (a window starting at
        year 1)."""
        try:
            return t - timedelta(microseconds=self.delay_us)
        except OverflowError:
            return datetime.min.replace(tzinfo=t.tzinfo)

    def available_at(self, event: datetime) -> datetime:
        """When a row of event time ``event`` becomes usable: ``event + availability_delay``."""
        return event + timedelta(microseconds=self.delay_us)

    def visible(self, event_us: int, t_us: int) -> bool:
        """The whole rule for one row (the ``as_of`` cut aside): what the bounds above say."""
        oldest = self.oldest_us(t_us)
        return (oldest is None or oldest <= event_us) and event_us <= self.newest_us(t_us)


def view_visibility(view: FeatureView) -> Visibility:
    """The bounds of ``view``'s rows: its ttl, and its source's availability delay (a push
    source's: its batch source's). What every path (offline plan, online plan, materialization,
    push, aggregations) reads."""
    return Visibility.of(view.ttl, view.batch_source.availability_delay)


def known_column(timestamp_column: str, created_column: str | None) -> str:
    """The source column the ``as_of`` cut compares (``<= as_of``): the created timestamp, or
    the event timestamp when the source has none."""
    return created_column or timestamp_column
