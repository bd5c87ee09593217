"""The embedded registry: one SQLite file, transactional, with optimistic versioning."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Mapping
from contextlib import closing
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from skewless.errors import LeaseLostError, RegistryConflictError, RegistryError
from skewless.registry.base import HistoryEntry
from skewless.registry.diff import Change
from skewless.registry.lease import Lease, held_error, renewed
from skewless.registry.snapshot import KINDS, Snapshot

_SCHEMA = """
CREATE TABLE IF NOT EXISTS versions (project TEXT PRIMARY KEY, version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS objects (
    project TEXT NOT NULL, kind TEXT NOT NULL, name TEXT NOT NULL, spec TEXT NOT NULL,
    PRIMARY KEY (project, kind, name));
CREATE TABLE IF NOT EXISTS history (
    project TEXT NOT NULL, version INTEGER NOT NULL, applied_at TEXT NOT NULL, user TEXT NOT NULL,
    changes TEXT NOT NULL, PRIMARY KEY (project, version));
CREATE TABLE IF NOT EXISTS generations (
    project TEXT NOT NULL, view TEXT NOT NULL, generation INTEGER NOT NULL,
    PRIMARY KEY (project, view));
CREATE TABLE IF NOT EXISTS state (
    project TEXT NOT NULL, namespace TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
    updated_at TEXT NOT NULL, PRIMARY KEY (project, namespace, key));
CREATE TABLE IF NOT EXISTS leases (
    project TEXT NOT NULL, name TEXT NOT NULL, token TEXT NOT NULL, expires REAL NOT NULL,
    holder TEXT NOT NULL, PRIMARY KEY (project, name));
"""

_SET_STATE = ("INSERT INTO state (project, namespace, key, value, updated_at) VALUES (?,?,?,?,?) "
              "ON CONFLICT(project, namespace, key) DO UPDATE SET value=excluded.value, "
              "updated_at=excluded.updated_at")


class SqliteRegistryStore:
    """Registry in a local SQLite file. The file is created on the first write only, so a
    failed or refused apply leaves no trace."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def _connect(self, create: bool) -> sqlite3.Connection | None:
        if not self.path.exists() and not create:
            return None
        try:
            if create:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            con = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            con.execute("PRAGMA journal_mode=WAL")
            con.executescript(_SCHEMA)
            return con
        except sqlite3.Error as e:
            if "not a database" in str(e):  # e.g. Feast's registry.db, a protobuf file
                raise RegistryError(
                    f"registry {self.path} is not a skewless registry (a SQLite file); a Feast "
                    "repo's registry.db is a protobuf file skewless does not read",
                    hint="point 'registry' in feature_store.yaml at a new file (e.g. "
                    "data/skewless_registry.db) and apply your definitions again "
                    "(docs/configuration.md, \"Coming from Feast\")") from None
            raise RegistryError(f"cannot open registry {self.path}: {e}",
                                hint="check the 'registry' path in feature_store.yaml") from None

    def load(self, project: str) -> Snapshot:
        snap = Snapshot(project)
        con = self._connect(create=False)
        if con is None:
            return snap
        with closing(con):
            con.execute("BEGIN")  # one consistent read
            row = con.execute("SELECT version FROM versions WHERE project=?", (project,)).fetchone()
            snap.version = row[0] if row else 0
            for kind, name, spec in con.execute(
                "SELECT kind, name, spec FROM objects WHERE project=? ORDER BY kind, name", (project,)
            ):
                if kind in KINDS:
                    snap.table(kind)[name] = Snapshot.decode(kind, spec)
            snap.generations = dict(con.execute(
                "SELECT view, generation FROM generations WHERE project=?", (project,)).fetchall())
            con.execute("COMMIT")
        return snap

    def commit(self, snapshot: Snapshot, expected_version: int, changes: list[Change], user: str,
               state: Mapping[tuple[str, str], dict[str, Any] | None] | None = None) -> int:
        con = self._connect(create=True)
        assert con is not None
        with closing(con):
            try:
                con.execute("BEGIN IMMEDIATE")
                row = con.execute("SELECT version FROM versions WHERE project=?",
                                  (snapshot.project,)).fetchone()
                current = row[0] if row else 0
                if current != expected_version:
                    con.execute("ROLLBACK")
                    raise RegistryConflictError(
                        f"registry of project '{snapshot.project}' changed while you were applying "
                        f"(expected version {expected_version}, found {current}); nothing was written",
                        hint="another apply committed first: run `skewless plan` to see the new state, "
                        "then apply again",
                    )
                new_version = current + 1
                con.execute("DELETE FROM objects WHERE project=?", (snapshot.project,))
                con.executemany(
                    "INSERT INTO objects (project, kind, name, spec) VALUES (?, ?, ?, ?)",
                    [(snapshot.project, kind, name, Snapshot.encode(obj))
                     for kind, name, obj in snapshot.objects()],
                )
                con.execute("DELETE FROM generations WHERE project=?", (snapshot.project,))
                con.executemany(
                    "INSERT INTO generations (project, view, generation) VALUES (?, ?, ?)",
                    [(snapshot.project, v, g) for v, g in sorted(snapshot.generations.items())])
                now = datetime.now(timezone.utc).isoformat()
                for (namespace, key), value in (state or {}).items():
                    if value is None:
                        con.execute("DELETE FROM state WHERE project=? AND namespace=? AND key=?",
                                    (snapshot.project, namespace, key))
                    else:
                        con.execute(_SET_STATE, (snapshot.project, namespace, key, json.dumps(value), now))
                con.execute(
                    "INSERT INTO history (project, version, applied_at, user, changes) VALUES (?,?,?,?,?)",
                    (snapshot.project, new_version, datetime.now(timezone.utc).isoformat(), user,
                     json.dumps([c.to_dict() for c in changes])),
                )
                con.execute("INSERT INTO versions (project, version) VALUES (?, ?) ON CONFLICT(project) "
                            "DO UPDATE SET version=excluded.version", (snapshot.project, new_version))
                con.execute("COMMIT")
                return new_version
            except sqlite3.Error as e:
                if con.in_transaction:
                    con.execute("ROLLBACK")
                raise RegistryError(f"registry {self.path}: write failed ({e}); nothing was written") from None

    def history(self, project: str, limit: int = 50) -> list[HistoryEntry]:
        con = self._connect(create=False)
        if con is None:
            return []
        with closing(con):
            rows = con.execute(
                "SELECT version, applied_at, user, changes FROM history WHERE project=? "
                "ORDER BY version DESC LIMIT ?", (project, limit)).fetchall()
        return [HistoryEntry(v, datetime.fromisoformat(at), u, json.loads(c)) for v, at, u, c in rows]

    def get_state(self, project: str, namespace: str, key: str) -> dict[str, Any] | None:
        con = self._connect(create=False)
        if con is None:
            return None
        with closing(con):
            row = con.execute("SELECT value FROM state WHERE project=? AND namespace=? AND key=?",
                              (project, namespace, key)).fetchone()
        return json.loads(row[0]) if row else None

    def set_state(self, project: str, namespace: str, key: str, value: dict[str, Any]) -> None:
        con = self._connect(create=True)
        assert con is not None
        with closing(con):
            con.execute(_SET_STATE, (project, namespace, key, json.dumps(value),
                                     datetime.now(timezone.utc).isoformat()))

    def delete_state(self, project: str, namespace: str, key: str) -> None:
        con = self._connect(create=False)
        if con is None:
            return
        with closing(con):
            con.execute("DELETE FROM state WHERE project=? AND namespace=? AND key=?",
                        (project, namespace, key))

    def list_state(self, project: str, namespace: str) -> dict[str, dict[str, Any]]:
        con = self._connect(create=False)
        if con is None:
            return {}
        with closing(con):
            rows = con.execute("SELECT key, value FROM state WHERE project=? AND namespace=?",
                               (project, namespace)).fetchall()
        return {k: json.loads(v) for k, v in rows}

    # --- leases (skewless.registry.lease): each call one BEGIN IMMEDIATE transaction ---------
    def _lease_tx(self, work: Any) -> Any:
        con = self._connect(create=True)
        assert con is not None
        with closing(con):
            try:
                con.execute("BEGIN IMMEDIATE")
                out = work(con)
                con.execute("COMMIT")
                return out
            except BaseException as e:
                if con.in_transaction:
                    con.execute("ROLLBACK")
                if isinstance(e, sqlite3.Error):
                    raise RegistryError(f"registry {self.path}: lease update failed ({e}); "
                                        "nothing was written") from None
                raise

    def acquire_lease(self, lease: Lease) -> Lease | None:
        def work(con: sqlite3.Connection) -> Lease | None:
            row = con.execute("SELECT holder FROM leases WHERE project=? AND name=?",
                              (lease.project, lease.name)).fetchone()
            current = Lease.from_json(row[0]) if row else None
            if current is not None and current.token != lease.token and current.expires > time.time():
                raise held_error(current)
            con.execute("INSERT INTO leases (project, name, token, expires, holder) VALUES (?,?,?,?,?) "
                        "ON CONFLICT(project, name) DO UPDATE SET token=excluded.token, "
                        "expires=excluded.expires, holder=excluded.holder",
                        (lease.project, lease.name, lease.token, lease.expires, lease.to_json()))
            return current if current is not None and current.token != lease.token else None
        return self._lease_tx(work)  # type: ignore[no-any-return]

    def renew_lease(self, lease: Lease, expires: float) -> Lease:
        new = renewed(lease, expires)

        def work(con: sqlite3.Connection) -> None:
            cur = con.execute("UPDATE leases SET expires=?, holder=? WHERE project=? AND name=? AND token=?",
                              (expires, new.to_json(), lease.project, lease.name, lease.token))
            if cur.rowcount == 0:
                row = con.execute("SELECT holder FROM leases WHERE project=? AND name=?",
                                  (lease.project, lease.name)).fetchone()
                by = f"; it is now held by {Lease.from_json(row[0]).describe()}" if row else ""
                raise LeaseLostError(
                    f"{lease.operation}: its lease expired and was taken over{by}; this run stops "
                    "without swapping anything in",
                    hint="a run must not stall longer than its lease lasts; run it again once the "
                    "other one is done")
        self._lease_tx(work)
        return new

    def release_lease(self, lease: Lease) -> None:
        self._lease_tx(lambda con: con.execute(
            "DELETE FROM leases WHERE project=? AND name=? AND token=?",
            (lease.project, lease.name, lease.token)))

    def list_leases(self, project: str) -> list[Lease]:
        con = self._connect(create=False)
        if con is None:
            return []
        with closing(con):
            rows = con.execute("SELECT holder FROM leases WHERE project=? ORDER BY name",
                               (project,)).fetchall()
        return [Lease.from_json(r[0]) for r in rows]
