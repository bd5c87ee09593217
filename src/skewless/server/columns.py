"""The type of each column of a get-online-features response (``metadata.feature_types``).

Resolved from the registry with the same functions the SDK plans with (``parse_refs``,
``output_names``), once per request shape, and cached: the hot path pays one dict lookup.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from skewless.plan.refs import output_names, parse_refs
from skewless.registry import Snapshot

MAX_ENTRIES = 4096


Types = tuple["str | None", ...]   # per column of the response, join keys first


class ColumnCache:
    """(request target, full names) -> column types, refreshed every ``ttl`` seconds (and when
    the response has another number of columns) so a registry change is picked up as the store
    picks it up."""

    def __init__(self, snapshot: Callable[[], Snapshot], ttl: float) -> None:
        self._snapshot = snapshot
        self._ttl = max(ttl, 1.0)
        self._entries: dict[Any, tuple[float, Types | None, int]] = {}

    def get(self, target: list[str] | str, full: bool, keys: dict[str, Any],
            values: dict[str, Any]) -> Types | None:
        cache_key = (target if isinstance(target, str) else tuple(target), full)
        now = time.monotonic()
        n = len(keys) + len(values)
        hit = self._entries.get(cache_key)
        if hit is not None and now - hit[0] < self._ttl and hit[2] == n:
            return hit[1]
        info = resolve(self._snapshot(), target, full, list(keys), list(values))
        if len(self._entries) >= MAX_ENTRIES:
            self._entries.clear()
        self._entries[cache_key] = (now, info, n)  # None too: no registry read per request
        return info


def resolve(snapshot: Snapshot, target: list[str] | str, full: bool, keys: list[str],
            outputs: list[str]) -> Types | None:
    """None when the registry no longer matches the response (changed in between)."""
    try:
        groups = parse_refs(snapshot, target)
        names = output_names(groups, full)
    except Exception:  # noqa: BLE001 - the registry moved under us: no metadata this time
        return None
    types: dict[str, str | None] = {}
    columns: list[str] = []
    for (view, feats), outs in zip(groups, names):
        schema = {f.name: f.dtype for f in view.schema}
        for k in snapshot.join_keys(view):
            if types.get(k) is None:
                types[k] = str(schema[k]) if k in schema else None
        for f, out in zip(feats, outs):
            types[out] = str(schema[f]) if f in schema else None
        columns.extend(outs)
    if columns != outputs:
        return None
    return tuple(types.get(c) for c in [*keys, *outputs])
