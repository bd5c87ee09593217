"""The runtime context: what every use case runs with, built once by ``FeatureStore``.

``FeatureStore`` builds one ``RuntimeContext`` from ``feature_store.yaml`` and hands it to the
services (``skewless.services``) instead of long positional argument lists: the config, the
project, the repo path, the registry, the offline engine and the online store (both opened on
first use), the clock, the principal the calls run as, the lifecycle hooks
(``skewless.hooks``, ``docs/hooks.md``), a logger and the created-timestamp tolerance. A service takes
the context first and keyword-only arguments for the rest, so a new concern (a principal,
hooks, a logger) is a field here, not a new parameter threaded through every call.

The context holds no definitions: each call reads the snapshot it needs (the registry as it is
now, or the serving cache's) and passes it along, so one call sees one registry version.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from skewless.config import RepoConfig
from skewless.engines import OfflineEngine, make_engine
from skewless.online import OnlineStore, make_online_store
from skewless.online.cached import CachedStore
from skewless.registry import RegistryStore

if TYPE_CHECKING:
    from skewless.hooks import Hook


def utc_now() -> datetime:
    """The default clock: the current time in UTC."""
    return datetime.now(timezone.utc)


@dataclass(eq=False)
class RuntimeContext:
    """What a use case runs with (module docstring).

    ``engine`` and ``online_store`` are opened on first use (a command that only reads the
    registry never connects to Redis). ``hooks`` is a tuple, replaced when a hook is added,
    so the hot path tests it with one truthiness check. ``principal`` is who the calls run as:
    None until access control exists (docs/hooks.md). ``log`` is the logger use cases write
    to (``skewless``)."""

    config: RepoConfig
    registry: RegistryStore
    clock: Callable[[], datetime] = utc_now
    hooks: tuple[Hook, ...] = ()
    principal: Any = None
    log: logging.Logger = field(default_factory=lambda: logging.getLogger("skewless"))
    _engine: OfflineEngine | None = field(default=None, repr=False)
    _online: OnlineStore | None = field(default=None, repr=False)
    _cached: CachedStore = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._cached = CachedStore(self._open_online, self.config.cache.ttl_seconds,
                                   self.config.cache.max_entries)

    @property
    def project(self) -> str:
        return self.config.project

    @property
    def repo_path(self) -> Path:
        """The feature repo: relative source paths resolve against it."""
        return self.config.repo_path

    @property
    def engine(self) -> OfflineEngine:
        """The offline engine of ``offline_store`` (opened on first use)."""
        if self._engine is None:
            self._engine = make_engine(self.config)
        return self._engine

    @property
    def online_store(self) -> CachedStore:
        """The online store of ``online_store`` (opened on first use) behind the in-process
        hot-key and fallback cache (``cache`` in feature_store.yaml): every use case reads
        and writes through it, so a write, a swap or a drop keeps the cache true without
        anyone driving it by hand (``skewless.online.cached``)."""
        return self._cached

    @property
    def raw_online_store(self) -> OnlineStore:
        """The online store itself, without the cache: for reads that must see what the
        store holds (``rebuild-online``'s verification)."""
        return self._open_online()

    def _open_online(self) -> OnlineStore:
        if self._online is None:
            self._online = make_online_store(self.config)
        return self._online

    def use_online_store(self, store: OnlineStore | None) -> None:
        """Serve from ``store`` (None: open the configured one on next use); the cache
        forgets everything it held for the previous one."""
        self._online = store
        self._cached.reopen()

    @property
    def created_tolerance(self) -> timedelta:
        """How far a created timestamp may be ahead of the clock
        (``created_timestamp_tolerance_seconds``, docs/online.md#created-times-ahead-of-the-clock)."""
        return timedelta(seconds=self.config.created_timestamp_tolerance_seconds)

    @property
    def timestamp_column(self) -> str:
        """The entity rows' timestamp column (``entity_timestamp_column``)."""
        return self.config.entity_timestamp_column

    def now(self) -> datetime:
        """The clock's time (aware, UTC)."""
        return self.clock()


__all__ = ["RuntimeContext", "utc_now"]
