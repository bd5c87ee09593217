"""The online store protocol: a batched key-value store (Chronon's four operations).

Tables hold one record per entity key. ``write_batch`` keeps a record unless the stored one is
newer by (event time, created time), so writes are idempotent and order-independent (an equal
pair is the same fact and is rewritten, which fills in fields added to the view since).
``read_batch`` answers the keys of many tables in one call (one round trip on Redis, one query
per table on SQLite). ``swap`` replaces a table by a staging table atomically for readers
(``rebuild-online`` builds a fresh table while serving continues).

Every store has an **identity** (``StoreIdentity``): a random id written once, by the first
``create`` on a store that has none. A store that lost its data (Redis restarted empty, a
SQLite file deleted) has none, or a new one once written again, so the coverage the registry
recorded for it (``coverage_holds``) no longer counts: serving is not ready, and
``materialize-incremental`` reads every view from the beginning (docs/online.md, "The online
store's identity"). A store also counts its writes (``StoreIdentity.writes``: every
``write_batch`` adds one, durably with its records), and coverage records the count it was
written at: a store put back to an older copy of itself (a file backup restored, Redis reloaded
from an older snapshot, a lagging replica promoted) keeps its id but counts fewer writes, so
that coverage does not count either.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
import json
import uuid
from dataclasses import dataclass
from typing import Protocol

from skewless.backends import UNDECLARED, Capability
from skewless.online.codec import Record


@dataclass(frozen=True)
class OnlineCapabilities:
    """What an online store can do: each is ``True`` or a ``Gap`` (``notyet`` / ``never``, with
    the reason), read by ``skewless.backends.require`` and by the conformance suites, which
    run a test needing a capability only on the stores that have it (docs/backends.md)."""

    # Undeclared is a gap, as for engines (``engines.Capabilities``): a store claims only
    # what it declares (``OnlineCapabilities()`` must not claim to be shared by processes).
    atomic_swap: Capability = UNDECLARED   # rebuild-online can swap tables without a gap
    persistent: Capability = UNDECLARED    # survives the process (memory: no)
    shared: Capability = UNDECLARED        # several processes (or FeatureStore objects) see
                                           # the same data, identity and leases
    aggregations: Capability = UNDECLARED  # ``update_batch``: atomic read-modify-write of
                                           # records, which windowed aggregations keep their
                                           # per-key tiles in (docs/aggregations.md)


#: ``update_batch``'s function: ``(key, stored record or None) -> record to store`` (None: leave
#: the key as it is). Called with the store's current record, possibly more than once per key
#: (optimistic stores call it again after a conflict): it must depend on its arguments only.
RecordUpdate = Callable[[bytes, "Record | None"], "Record | None"]


@dataclass(frozen=True)
class StoreIdentity:
    """Which online store this is. ``id``: a random hex id written once, when the store's first
    table was created (None: the store holds tables written before identities existed, and
    claims one at its next ``create``). ``adopted``: the id was claimed by a store that already
    held such tables (said by ``online-status``; such tables are not read: see
    ``coverage_holds``). ``writes``: how many ``write_batch`` calls the store holds (read with
    the identity, stored apart from it; never part of ``encode``)."""

    id: str | None
    adopted: bool = False
    writes: int = 0

    @classmethod
    def new(cls, adopted: bool) -> StoreIdentity:
        return cls(uuid.uuid4().hex, adopted)

    def encode(self) -> str:
        """The one string a backend stores (and a Redis reader compares byte for byte)."""
        return json.dumps({"id": self.id, "adopted": self.adopted}, sort_keys=True)

    @classmethod
    def decode(cls, raw: str | bytes) -> StoreIdentity:
        try:
            data = json.loads(raw)
            return cls(str(data["id"]), bool(data.get("adopted", False)))
        except (ValueError, KeyError, TypeError):
            return cls(raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw))


# A store holding tables but no identity (written by a skewless from before identities).
LEGACY = StoreIdentity(None, adopted=True)


def coverage_holds(recorded: str | None, identity: StoreIdentity | None, writes: int = 0) -> bool:
    """Whether coverage recorded for the store ``recorded`` when it counted ``writes`` writes
    describes the store whose identity is ``identity`` (None: a blank store, which covers
    nothing): the same id, and at least as many writes (fewer: it was put back to an older
    copy of itself and lost some). Coverage recorded without an id (None: by a skewless from
    before store ids) never counts: that version wrote its tables under the old
    ``{project}__{view}`` names, which are no longer read (docs/online-stores.md, "Upgrading
    from {project}__{view} names")."""
    return (identity is not None and recorded is not None and recorded == identity.id
            and identity.writes >= writes)


class OnlineStore(Protocol):
    @property
    def name(self) -> str:
        """The backend's name (its config ``type``)."""

    @property
    def capabilities(self) -> OnlineCapabilities:
        """What the store can do (``skewless.backends``, docs/backends.md)."""

    def create(self, tables: Sequence[str]) -> None:
        """Create tables that do not exist yet (idempotent). A store without an identity claims
        one first (``StoreIdentity.new``, adopted if it already held tables)."""

    def identity(self) -> StoreIdentity | None:
        """The store's identity, with its write count: None for a blank store (no identity and
        no tables), ``LEGACY`` for tables without one. Never writes. Raises OnlineStoreError if
        the store cannot be read."""

    def drop(self, tables: Sequence[str]) -> None:
        """Drop tables and their records (missing tables are ignored)."""

    def write_batch(self, rows: Mapping[str, Sequence[tuple[bytes, Record]]]) -> int:
        """Write records of many tables; keep each only if newer than the stored one, and add
        one to the store's write count once they are stored (``StoreIdentity.writes``: a copy
        of the store that holds the new count holds these records). Returns the number of
        records offered."""

    def read_batch(self, keys: Mapping[str, Sequence[bytes]]) -> dict[str, list[Record | None]]:
        """For each table, the records of ``keys`` in order (None where absent)."""

    def update_batch(self, table: str, keys: Sequence[bytes], update: RecordUpdate) -> int:
        """Read-modify-write (capability ``aggregations``; callers check it with
        ``skewless.backends.require`` first): for each of ``keys`` (distinct), store
        ``update(key, stored)`` in place of the stored record (None: keep it), whatever its
        event time: no "only if newer" here, ``update`` decides. Atomic against concurrent
        writers (``write_batch``, ``update_batch``, ``swap``, ``drop``) for each key, so no
        update is lost; a reader sees the old or the new record. Adds one to the write count
        when anything was stored, like ``write_batch``. Creates ``table`` if needed. Returns
        the number of records stored."""

    def ping(self) -> None:
        """Check the store answers (readiness probes); raises OnlineStoreError if it does not,
        or if it is known to be unreadable (a SQLite file with corrupt pages)."""

    def set_aside_if_unreadable(self) -> str | None:
        """If the store's data cannot be read (corrupt pages), move it aside and start a blank
        store; return what was done, for the user (None: the store is readable, or the backend
        has nothing to check). Used by ``rebuild-online``."""

    def count(self, table: str) -> int:
        """Number of records in ``table`` (0 if it does not exist)."""

    def scan_keys(self, table: str, limit: int) -> list[bytes]:
        """Up to ``limit`` keys of ``table`` (for sampling checks)."""

    def swap(self, table: str, staging: str) -> None:
        """Make ``staging``'s content the content of ``table`` atomically; drop the old one."""

    def close(self) -> None: ...
