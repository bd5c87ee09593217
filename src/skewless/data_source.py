"""Feast's ``feast.data_source`` names, for code written against Feast: ``PushMode`` and the
sources (docs/configuration.md, "Coming from Feast")."""

from __future__ import annotations

from enum import Enum

from skewless.define import FileSource, PushSource, RequestSource


class PushMode(str, Enum):
    """Where ``push(..., to=...)`` writes: Feast's enum, equal to skewless' strings
    (``PushMode.ONLINE_AND_OFFLINE == "online_and_offline"``)."""

    ONLINE = "online"
    OFFLINE = "offline"
    ONLINE_AND_OFFLINE = "online_and_offline"

    def __str__(self) -> str:
        return self.value


__all__ = ["FileSource", "PushMode", "PushSource", "RequestSource"]
