"""The embedded registry: one SQLite file, transactional, with optimistic versioning."""

from __future__ import annotations

import errno
import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping
from contextlib import closing
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from skewless.backends import Backend, RegistryTarget
from skewless.errors import LeaseLostError, RegistryConflictError, RegistryError
from skewless.registry.base import HistoryEntry
from skewless.registry.diff import Change
from skewless.registry.lease import Lease, held_error, renewed
from skewless.registry.snapshot import KINDS, Snapshot

if TYPE_CHECKING:
    from skewless.config import RepoConfig


# --- the backend: settings, factory ------------------------------------------------------------
def _make(config: RepoConfig, settings: RegistryTarget) -> SqliteRegistryStore:
    """A plain path (relative to the repo), or ``sqlite:///absolute/path``."""
    target = settings.target
    return SqliteRegistryStore(config.resolve(target.split("://", 1)[1] if "://" in target else target))


BACKEND = Backend("registry_store", "sqlite", RegistryTarget, _make,
                  description="one SQLite file (a plain path): the default")
# -------------------------------------------------------------------------------------------------

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


_R = TypeVar("_R")
SQLITE_HEADER = b"SQLite format 3\x00"
RECOVER_HINT = ("move the file aside, then `skewless apply` your definitions again and run "
                "`skewless rebuild-online` (materialization state is lost with the file), or "
                "restore it from a backup (docs/repository.md#the-registry-file)")


def _run(uri: str, fn: Callable[[sqlite3.Connection], _R], empty: _R) -> _R:
    with closing(sqlite3.connect(uri, uri=True, timeout=30, isolation_level=None)) as con:
        try:
            return fn(con)
        except sqlite3.OperationalError as e:
            if "no such table" in str(e):   # a file created, but never written, by skewless
                return empty
            raise


def _read_only_fs(path: Path) -> bool:
    try:
        return bool(os.statvfs(path.parent).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def _wal_empty(path: Path) -> bool:
    """Whether the file alone holds every commit: no ``-wal`` file, or an empty one."""
    try:
        return os.stat(f"{path}-wal").st_size == 0
    except FileNotFoundError:
        return True
    except OSError:
        return False


def _free_bytes(path: Path) -> int | None:
    try:
        st = os.statvfs(path.parent)
    except OSError:
        return None
    return st.f_bavail * st.f_frsize


def diagnose(path: Path, e: BaseException, doing: str) -> tuple[str, str]:
    """(message, hint) for a failure to ``doing`` ("open", "read", "write") the registry file
    ``path``, naming the real cause: SQLite's own words ("unable to open database file", "disk
    I/O error") rarely do, so the file and its filesystem are looked at: a file that is not a
    SQLite file (e.g. Feast's registry.db) or is corrupt, a read-only filesystem, a full disk,
    missing permission."""
    text = str(e)
    head = b""
    try:
        with open(path, "rb") as f:
            head = f.read(len(SQLITE_HEADER))
    except OSError:
        pass
    if ("not a database" in text or "malformed" in text) and head and head != SQLITE_HEADER:
        return (f"registry {path} is not a skewless registry (a SQLite file): its header is not "
                "SQLite's; a Feast repo's registry.db is a protobuf file skewless does not read, "
                "and a skewless registry whose first page was overwritten reads the same",
                "coming from Feast: point 'registry' in feature_store.yaml at a new file (e.g. "
                "data/skewless_registry.db) and apply your definitions again "
                "(docs/configuration.md, \"Coming from Feast\"); a skewless registry that was "
                "damaged: " + RECOVER_HINT)
    if "not a database" in text or "malformed" in text:
        return f"registry {path} is corrupt (SQLite: {text}); nothing was changed", RECOVER_HINT
    writing = doing != "read"
    if _read_only_fs(path) or "readonly" in text or "read-only" in text:
        if writing:
            return (f"cannot {doing} registry {path}: its filesystem is read-only (SQLite: {text})",
                    "apply, materialize and push write the registry: run them where it is "
                    "writable; serving only reads it and works on a read-only filesystem")
        return (f"cannot read registry {path} on a read-only filesystem (SQLite: {text})", RECOVER_HINT)
    free = _free_bytes(path)
    if (isinstance(e, OSError) and e.errno == errno.ENOSPC) or "full" in text or free == 0:
        return (f"cannot {doing} registry {path}: the disk holding it is full "
                f"({free if free is not None else '?'} bytes free; SQLite: {text})",
                f"free space on the filesystem of {path.parent}; a server keeps serving its last "
                "definitions meanwhile (docs/server.md#get-ready-and-get-health)")
    need = os.R_OK | (os.W_OK if writing else 0)
    if (isinstance(e, OSError) and e.errno in (errno.EACCES, errno.EPERM)) or not os.access(path, need) \
            or (writing and not os.access(path.parent, os.W_OK | os.X_OK)):
        return (f"cannot {doing} registry {path}: permission denied (SQLite: {text})",
                f"let the user running skewless (uid {os.getuid()}) read the file"
                + (" and write it and its directory" if writing else "") + " (chmod/chown)")
    return (f"cannot {doing} registry {path}: {text}",
            "check the 'registry' path in feature_store.yaml and the disk that holds it")


class SqliteRegistryStore:
    """Registry in a local SQLite file. The file is created on the first write only, so a
    failed or refused apply leaves no trace."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._probes = threading.local()   # per thread: a kept read-only connection (``_version``)

    def _connect(self, create: bool) -> sqlite3.Connection | None:
        """A connection for writing (None when the file does not exist and ``create`` is
        False). The registry uses SQLite's rollback journal, not WAL: a reader then needs no
        ``-wal``/``-shm`` files and writes nothing, so reads work on a full or read-only disk
        (``_reading``); a file left in WAL mode by an older version is switched back here."""
        if not self.path.exists() and not create:
            return None
        try:
            if create:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            con = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        except (sqlite3.Error, OSError) as e:
            raise self._error(e, "open") from None
        try:
            try:
                con.execute("PRAGMA journal_mode=DELETE")
            except sqlite3.OperationalError:
                pass   # a WAL file another connection has open: a later write switches it
            con.executescript(_SCHEMA)
            return con
        except sqlite3.Error as e:
            con.close()
            raise self._error(e, "open") from None

    def _reading(self, fn: Callable[[sqlite3.Connection], _R], empty: _R) -> _R:
        """``fn`` over a read-only connection, which writes nothing: no schema, no journal mode
        change, no ``-wal``/``-shm`` files. ``empty`` when there is no registry (or no table)
        yet. A file still in WAL mode (written by an older version) needs a ``-shm`` file to
        be read: where it cannot be created (a read-only filesystem; a full disk and no
        ``-wal`` file, so the file alone holds every commit) the file is read as immutable.
        Every SQLite failure is a RegistryError naming the file and the cause (``diagnose``)."""
        if not self.path.exists():
            return empty
        uri = self.path.resolve().as_uri()
        try:
            try:
                return _run(f"{uri}?mode=ro", fn, empty)
            except sqlite3.OperationalError as e:
                if ("unable to open" in str(e) or "disk I/O" in str(e)) and (
                        _read_only_fs(self.path) or (_free_bytes(self.path) == 0
                                                     and _wal_empty(self.path))):
                    return _run(f"{uri}?immutable=1", fn, empty)
                raise
        except sqlite3.Error as e:
            raise self._error(e, "read") from None

    def _error(self, e: BaseException, doing: str) -> RegistryError:
        message, hint = diagnose(self.path, e, doing)
        return RegistryError(message, hint=hint)

    def _identity(self) -> tuple[int, int] | None:
        """The registry file's (device, inode): a file moved in over it is another registry,
        whatever its version."""
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return (st.st_dev, st.st_ino)

    def _version(self, project: str, identity: tuple[int, int]) -> int | None:
        """The project's stored version, read over this thread's kept read-only connection to
        the file of ``identity`` (opened again when the file is another one); None when it
        cannot be read that way (the caller then reads in full, with every diagnosis). The
        statement runs to completion: no lock is held between calls."""
        probe = self._probes
        con = getattr(probe, "con", None)
        if con is not None and (probe.identity != identity or probe.pid != os.getpid()):
            if probe.pid == os.getpid():
                con.close()
            con = probe.con = None    # a connection inherited over fork is left alone
        try:
            if con is None:
                con = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True,
                                      timeout=30, isolation_level=None, check_same_thread=False)
                if self._identity() != identity:   # moved while opening
                    con.close()
                    return None
                # no page kept between reads: every probe reads the file's pages, so damage
                # done in place (same change counter) shows as it did on a fresh connection
                con.execute("PRAGMA cache_size=0")
                probe.con, probe.identity, probe.pid = con, identity, os.getpid()
            rows = con.execute("SELECT version FROM versions WHERE project=?", (project,)).fetchall()
        except sqlite3.Error:
            if con is not None:
                con.close()
            probe.con = None
            return None
        return int(rows[0][0]) if rows else 0

    def load(self, project: str, unchanged: Snapshot | None = None) -> Snapshot:
        """See ``RegistryStore.load``. ``unchanged`` is handed back when this file (by its
        identity) still holds its version: one ``SELECT`` over a kept connection instead of
        decoding every definition."""
        before = self._identity()
        if (unchanged is not None and before is not None and unchanged.version
                and unchanged.project == project and unchanged.read_from == (str(self.path), before)
                and self._version(project, before) == unchanged.version
                and self._identity() == before):
            return unchanged

        def read(con: sqlite3.Connection) -> Snapshot:
            snap = Snapshot(project)
            con.execute("BEGIN")  # one consistent read
            row = con.execute("SELECT version FROM versions WHERE project=?", (project,)).fetchone()
            snap.version = row[0] if row else 0
            for kind, name, spec in con.execute(
                "SELECT kind, name, spec FROM objects WHERE project=? ORDER BY kind, name", (project,)
            ):
                if kind in KINDS:
                    snap.table(kind)[name] = Snapshot.decode(kind, spec)
            try:
                snap.generations = dict(con.execute(
                    "SELECT view, generation FROM generations WHERE project=?", (project,)).fetchall())
            except sqlite3.OperationalError as e:
                if "no such table" not in str(e):   # else: a registry older than generations
                    raise
            con.execute("COMMIT")
            if before is not None and self._identity() == before:
                snap.read_from = (str(self.path), before)
            return snap
        return self._reading(read, Snapshot(project))

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
                    try:
                        con.execute("ROLLBACK")
                    except sqlite3.Error:
                        pass   # closing the connection rolls back too
                err = self._error(e, "write")
                raise RegistryError(f"{err.message}; nothing was written", hint=err.hint) from None

    def history(self, project: str, limit: int = 50) -> list[HistoryEntry]:
        rows: list[Any] = self._reading(lambda con: con.execute(
            "SELECT version, applied_at, user, changes FROM history WHERE project=? "
            "ORDER BY version DESC LIMIT ?", (project, limit)).fetchall(), [])
        return [HistoryEntry(v, datetime.fromisoformat(at), u, json.loads(c)) for v, at, u, c in rows]

    def get_state(self, project: str, namespace: str, key: str) -> dict[str, Any] | None:
        row = self._reading(lambda con: con.execute(
            "SELECT value FROM state WHERE project=? AND namespace=? AND key=?",
            (project, namespace, key)).fetchone(), None)
        return json.loads(row[0]) if row else None

    def set_state(self, project: str, namespace: str, key: str, value: dict[str, Any]) -> None:
        con = self._connect(create=True)
        assert con is not None
        with closing(con):
            try:
                con.execute(_SET_STATE, (project, namespace, key, json.dumps(value),
                                         datetime.now(timezone.utc).isoformat()))
            except sqlite3.Error as e:
                raise self._error(e, "write") from None

    def delete_state(self, project: str, namespace: str, key: str) -> None:
        con = self._connect(create=False)
        if con is None:
            return
        with closing(con):
            try:
                con.execute("DELETE FROM state WHERE project=? AND namespace=? AND key=?",
                            (project, namespace, key))
            except sqlite3.Error as e:
                raise self._error(e, "write") from None

    def list_state(self, project: str, namespace: str) -> dict[str, dict[str, Any]]:
        rows: list[Any] = self._reading(lambda con: con.execute(
            "SELECT key, value FROM state WHERE project=? AND namespace=?",
            (project, namespace)).fetchall(), [])
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
