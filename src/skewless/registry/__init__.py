"""The registry: versioned definitions (snapshot, diff) behind a small store protocol."""

from __future__ import annotations

from typing import cast

from skewless.backends import RegistryTarget, registry_backend
from skewless.config import RepoConfig
from skewless.registry.base import HistoryEntry, RegistryStore
from skewless.registry.diff import Change, diff
from skewless.registry.health import RegistryHealth
from skewless.registry.snapshot import Snapshot, kind_of
from skewless.registry.sqlite_store import SqliteRegistryStore


def open_registry(config: RepoConfig) -> RegistryStore:
    """The registry store named by ``config.registry``: a plain path is the SQLite file store;
    a URL (``scheme://...``) opens the registry store installed for its scheme (entry point
    group ``skewless.registry_stores``). ``ConfigError`` for a scheme with no store installed:
    ``postgresql://`` says the PostgreSQL store is not implemented yet, another scheme lists
    the known ones (docs/backends.md)."""
    backend = registry_backend(config.registry)
    return cast(RegistryStore, backend.make(config, RegistryTarget(target=config.registry)))


__all__ = ["Change", "HistoryEntry", "RegistryHealth", "RegistryStore", "Snapshot", "SqliteRegistryStore",
           "diff", "kind_of", "open_registry"]
