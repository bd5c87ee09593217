"""A clock tests set by hand: pass it as ``FeatureStore(..., clock=clock)`` and move ``now``
instead of sleeping."""

from __future__ import annotations

from datetime import datetime


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now
