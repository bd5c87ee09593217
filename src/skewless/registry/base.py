"""The registry store protocol: what every registry backend (file, SQL) provides.

Definitions are versioned as a whole: ``commit`` succeeds only if the stored version still equals
``expected_version`` (optimistic concurrency), so two concurrent applies never lose an update.
Materialization state lives apart from definitions: writing it never bumps the version and
never conflicts with an apply. A commit may also set or delete state entries in the same
transaction (``state``): apply clears the state of the online tables it retires together with
the definitions that retire them (docs/online.md, "Online state follows the registry").
Leases (``skewless.registry.lease``) make an operation exclusive: each of their calls is atomic.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from skewless.registry.diff import Change
from skewless.registry.lease import Lease
from skewless.registry.snapshot import Snapshot


@dataclass(frozen=True)
class HistoryEntry:
    version: int
    applied_at: datetime
    user: str
    changes: list[dict[str, Any]]


class RegistryStore(Protocol):
    def load(self, project: str, unchanged: Snapshot | None = None) -> Snapshot:
        """The latest snapshot (version 0 and empty if nothing was ever applied). With
        ``unchanged`` (a snapshot this store returned before): that very object when the
        registry still holds its version, without decoding the definitions again (a version
        names one content: every commit bumps it); a store may always read in full."""

    def commit(self, snapshot: Snapshot, expected_version: int, changes: list[Change], user: str,
               state: Mapping[tuple[str, str], dict[str, Any] | None] | None = None) -> int:
        """Replace the project's definitions (and view generations) by ``snapshot`` and apply
        ``state`` ((namespace, key) -> value, or None to delete) atomically; return the new
        version. Raise ``RegistryConflictError`` if the stored version is not
        ``expected_version`` (then nothing is written)."""

    def history(self, project: str, limit: int = 50) -> list[HistoryEntry]:
        """Applies, newest first."""

    def get_state(self, project: str, namespace: str, key: str) -> dict[str, Any] | None:
        """Operational state (e.g. materialization watermarks), apart from definitions."""

    def set_state(self, project: str, namespace: str, key: str, value: dict[str, Any]) -> None: ...

    def delete_state(self, project: str, namespace: str, key: str) -> None:
        """Remove a state entry (missing entries are ignored)."""

    def list_state(self, project: str, namespace: str) -> dict[str, dict[str, Any]]: ...

    def acquire_lease(self, lease: Lease) -> Lease | None:
        """Grant ``lease`` (its project and name, until ``lease.expires``) atomically, unless
        another holder's lease on the name has not expired: then raise ``LeaseHeldError``
        (``lease.held_error``) naming that holder, and change nothing. Returns the expired
        lease it replaced (its holder died or stalled: the caller cleans up after it), else None."""

    def renew_lease(self, lease: Lease, expires: float) -> Lease:
        """Move ``lease``'s expiry to ``expires`` (Unix seconds) and return it; raise
        ``LeaseLostError`` if its holder no longer holds it (another one took it over)."""

    def release_lease(self, lease: Lease) -> None:
        """Give ``lease`` up, if its holder still holds it (else do nothing)."""

    def list_leases(self, project: str) -> list[Lease]:
        """The project's leases, expired ones included (they lapse when next acquired)."""
