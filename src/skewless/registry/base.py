"""The registry store protocol: what every registry backend (file, SQL) provides.

Definitions are versioned as a whole: ``commit`` succeeds only if the stored version still equals
``expected_version`` (optimistic concurrency), so two concurrent applies never lose an update.
Materialization state lives apart from definitions: writing it never bumps the version and
never conflicts with an apply.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from skewless.registry.diff import Change
from skewless.registry.snapshot import Snapshot


@dataclass(frozen=True)
class HistoryEntry:
    version: int
    applied_at: datetime
    user: str
    changes: list[dict[str, Any]]


class RegistryStore(Protocol):
    def load(self, project: str) -> Snapshot:
        """The latest snapshot (version 0 and empty if nothing was ever applied)."""

    def commit(self, snapshot: Snapshot, expected_version: int, changes: list[Change], user: str) -> int:
        """Replace the project's definitions by ``snapshot`` atomically; return the new version.
        Raise ``RegistryConflictError`` if the stored version is not ``expected_version``."""

    def history(self, project: str, limit: int = 50) -> list[HistoryEntry]:
        """Applies, newest first."""

    def get_state(self, project: str, namespace: str, key: str) -> dict[str, Any] | None:
        """Operational state (e.g. materialization watermarks), apart from definitions."""

    def set_state(self, project: str, namespace: str, key: str, value: dict[str, Any]) -> None: ...

    def list_state(self, project: str, namespace: str) -> dict[str, dict[str, Any]]: ...
