"""Online stores behind one protocol; ``make_online_store`` picks one from the config."""

from __future__ import annotations

from skewless.config import MemoryOnlineConfig, RedisOnlineConfig, RepoConfig, SqliteOnlineConfig
from skewless.online.base import OnlineCapabilities, OnlineStore
from skewless.online.codec import Record


def table_name(project: str, view: str) -> str:
    """Online table of a view: namespaced by project so projects can share one store."""
    return f"{project}__{view}"


def make_online_store(config: RepoConfig) -> OnlineStore:
    opts = config.online_store
    if isinstance(opts, SqliteOnlineConfig):
        from skewless.online.sqlite import SqliteOnlineStore
        return SqliteOnlineStore(config.resolve(opts.path))
    if isinstance(opts, MemoryOnlineConfig):
        from skewless.online.memory import MemoryOnlineStore
        return MemoryOnlineStore()
    if isinstance(opts, RedisOnlineConfig):
        from skewless.online.redis import RedisOnlineStore
        return RedisOnlineStore(opts.connection_string, opts.connect_timeout_seconds,
                                opts.timeout_seconds, opts.max_connections,
                                opts.retry_after_seconds)
    raise AssertionError(f"unhandled online store {opts!r}")


__all__ = ["OnlineCapabilities", "OnlineStore", "Record", "make_online_store", "table_name"]
