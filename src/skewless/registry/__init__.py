"""The registry: versioned definitions (snapshot, diff) behind a small store protocol."""

from __future__ import annotations

from skewless.config import RepoConfig
from skewless.errors import ConfigError
from skewless.registry.base import HistoryEntry, RegistryStore
from skewless.registry.diff import Change, diff
from skewless.registry.snapshot import Snapshot, kind_of
from skewless.registry.sqlite_store import SqliteRegistryStore


def open_registry(config: RepoConfig) -> RegistryStore:
    """The registry store named by ``config.registry`` (a local file path for now)."""
    target = config.registry
    if "://" in target:
        scheme = target.split("://", 1)[0]
        raise ConfigError(f"registry scheme '{scheme}://' is not supported yet",
                          hint="use a local file path such as data/registry.db")
    return SqliteRegistryStore(config.resolve(target))


__all__ = ["Change", "HistoryEntry", "RegistryStore", "Snapshot", "SqliteRegistryStore",
           "diff", "kind_of", "open_registry"]
