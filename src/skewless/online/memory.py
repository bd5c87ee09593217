"""In-process online store: a dict per table. For notebooks and tests of pure logic."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Literal

from skewless.backends import Backend, BackendSettings, never
from skewless.online.base import LEGACY, OnlineCapabilities, RecordUpdate, StoreIdentity
from skewless.online.codec import Record

if TYPE_CHECKING:
    from skewless.config import RepoConfig


# --- the backend: settings, capabilities, factory ----------------------------------------------
class MemoryOnlineConfig(BackendSettings):
    type: Literal["memory"]


_ONE_PROCESS = "a memory store lives in one FeatureStore object of one process"
CAPABILITIES = OnlineCapabilities(
    atomic_swap=True,
    aggregations=True,
    persistent=never(_ONE_PROCESS + ": it is gone with it",
                     "use online_store: {type: sqlite} (a file) or redis"),
    shared=never(_ONE_PROCESS + ": no other process or FeatureStore sees its data, identity or "
                 "leases", "use online_store: {type: sqlite} or redis to share one store"),
)


def _make(config: RepoConfig, settings: MemoryOnlineConfig) -> MemoryOnlineStore:
    return MemoryOnlineStore()


BACKEND = Backend("online_store", "memory", MemoryOnlineConfig, _make, CAPABILITIES,
                  testing="skewless.testing.backends:MEMORY",
                  description="a dict per table, in-process: notebooks and tests")
# -------------------------------------------------------------------------------------------------


class MemoryOnlineStore:
    name = "memory"
    capabilities = CAPABILITIES

    def __init__(self) -> None:
        self._tables: dict[str, dict[bytes, Record]] = {}
        self._lock = threading.Lock()
        self._identity: StoreIdentity | None = None
        self._writes = 0

    def ping(self) -> None:
        return None

    def identity(self) -> StoreIdentity | None:
        if self._identity is None:
            return LEGACY if self._tables else None
        return replace(self._identity, writes=self._writes)

    def set_aside_if_unreadable(self) -> str | None:
        return None

    def create(self, tables: Sequence[str]) -> None:
        with self._lock:
            if self._identity is None:
                self._identity = StoreIdentity.new(adopted=bool(self._tables))
            for t in tables:
                self._tables.setdefault(t, {})

    def drop(self, tables: Sequence[str]) -> None:
        with self._lock:
            for t in tables:
                self._tables.pop(t, None)

    def write_batch(self, rows: Mapping[str, Sequence[tuple[bytes, Record]]]) -> int:
        n = 0
        with self._lock:
            for table, items in rows.items():
                data = self._tables.setdefault(table, {})
                for key, rec in items:
                    if rec.newer_than(data.get(key)):
                        data[key] = rec
                    n += 1
            if n:
                self._writes += 1
        return n

    def update_batch(self, table: str, keys: Sequence[bytes], update: RecordUpdate) -> int:
        n = 0
        with self._lock:   # every writer holds it: the read and the write are one step
            data = self._tables.setdefault(table, {})
            for key in keys:
                rec = update(key, data.get(key))
                if rec is not None:
                    data[key] = rec
                    n += 1
            if n:
                self._writes += 1
        return n

    def read_batch(self, keys: Mapping[str, Sequence[bytes]]) -> dict[str, list[Record | None]]:
        out: dict[str, list[Record | None]] = {}
        for table, ks in keys.items():
            data = self._tables.get(table, {})
            out[table] = [data.get(k) for k in ks]
        return out

    def count(self, table: str) -> int:
        return len(self._tables.get(table, {}))

    def scan_keys(self, table: str, limit: int) -> list[bytes]:
        return list(self._tables.get(table, {}))[:limit]

    def swap(self, table: str, staging: str) -> None:
        with self._lock:
            self._tables[table] = self._tables.pop(staging, {})

    def close(self) -> None:
        pass
