"""The type of each column of a get-online-features response (``metadata.feature_types``).

Taken from the serving plan through ``FeatureStore.online_column_types`` (the plan the read
itself used: no feature reference is parsed again), once per request shape and registry
version, and cached: the hot path pays one dict lookup. The cache follows the store's one
serving registry cache (``registry_cache_ttl_seconds``): an entry holds for the snapshot
version it was resolved under.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from skewless.errors import SkewlessError

if TYPE_CHECKING:
    from skewless.store import FeatureStore

MAX_ENTRIES = 4096


Types = tuple["str | None", ...]   # per column of the response, join keys first


class ColumnCache:
    """(request target, full names) -> column types, for the serving snapshot's version (and
    the response's number of columns)."""

    def __init__(self, store: FeatureStore) -> None:
        self._store = store
        self._entries: dict[Any, tuple[int, Types | None, int]] = {}

    def get(self, target: list[str] | str, full: bool, keys: dict[str, Any],
            values: dict[str, Any]) -> Types | None:
        cache_key = (target if isinstance(target, str) else tuple(target), full)
        n = len(keys) + len(values)
        try:
            version = self._store.serving_snapshot().version
        except SkewlessError:   # the registry is unreadable and was never read: no metadata
            return None
        hit = self._entries.get(cache_key)
        if hit is not None and hit[0] == version and hit[2] == n:
            return hit[1]
        info = resolve(self._store, target, full, list(keys), list(values))
        if len(self._entries) >= MAX_ENTRIES:
            self._entries.clear()
        self._entries[cache_key] = (version, info, n)  # None too: no plan per request
        return info


def resolve(store: FeatureStore, target: list[str] | str, full: bool, keys: list[str],
            outputs: list[str]) -> Types | None:
    """None when the serving definitions no longer match the response (changed in between)."""
    try:
        types = store.online_column_types(target, full)
    except SkewlessError:   # the registry moved under us: no metadata this time
        return None
    if [c for c in types if c not in keys] != outputs:
        return None
    return tuple(types.get(c) for c in [*keys, *outputs])
