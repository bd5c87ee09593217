"""Offline engines behind one protocol; ``make_engine`` builds the one the config names, through
the registry of backends (``skewless.backends``; docs/backends.md)."""

from __future__ import annotations

from typing import cast

from skewless import backends
from skewless.config import RepoConfig
from skewless.engines.base import Capabilities, EntityInput, OfflineEngine, RetrievalJob


def make_engine(config: RepoConfig) -> OfflineEngine:
    """The engine of ``offline_store.type`` (entry point group ``skewless.offline_engines``),
    built by its backend's factory from its validated settings."""
    opts = config.offline_store
    return cast(OfflineEngine, backends.lookup("offline_engine", opts.type).make(config, opts))


__all__ = ["Capabilities", "EntityInput", "OfflineEngine", "RetrievalJob", "make_engine"]
