"""The online store protocol: a batched key-value store (Chronon's four operations).

Tables hold one record per entity key. ``write_batch`` keeps a record unless the stored one is
newer by (event time, created time), so writes are idempotent and order-independent (an equal
pair is the same fact and is rewritten, which fills in fields added to the view since).
``read_batch`` answers the keys of many tables in one call (one round trip on Redis, one query
per table on SQLite). ``swap`` replaces a table by a staging table atomically for readers
(``rebuild-online`` builds a fresh table while serving continues).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from skewless.online.codec import Record


@dataclass(frozen=True)
class OnlineCapabilities:
    atomic_swap: bool = True        # rebuild-online can swap tables without a gap
    persistent: bool = True         # survives the process (memory: no)
    shared: bool = True             # several processes see the same data


class OnlineStore(Protocol):
    name: str
    capabilities: OnlineCapabilities

    def create(self, tables: Sequence[str]) -> None:
        """Create tables that do not exist yet (idempotent)."""

    def drop(self, tables: Sequence[str]) -> None:
        """Drop tables and their records (missing tables are ignored)."""

    def write_batch(self, rows: Mapping[str, Sequence[tuple[bytes, Record]]]) -> int:
        """Write records of many tables; keep each only if newer than the stored one.
        Returns the number of records offered."""

    def read_batch(self, keys: Mapping[str, Sequence[bytes]]) -> dict[str, list[Record | None]]:
        """For each table, the records of ``keys`` in order (None where absent)."""

    def ping(self) -> None:
        """Check the store answers (readiness probes); raises OnlineStoreError if it does not."""

    def count(self, table: str) -> int:
        """Number of records in ``table`` (0 if it does not exist)."""

    def scan_keys(self, table: str, limit: int) -> list[bytes]:
        """Up to ``limit`` keys of ``table`` (for sampling checks)."""

    def swap(self, table: str, staging: str) -> None:
        """Make ``staging``'s content the content of ``table`` atomically; drop the old one."""

    def close(self) -> None: ...
