"""SQLite online store: one file, WAL mode, one table per view, one query per table per read.

The file is the store: its identity lives in it (table ``skewless_meta``), and the store
follows the file at its path. A write checks that the path still names the file the
connections have open (device and inode), a read at most every ``RECHECK_SECONDS``; when the
file was deleted or replaced (a new one rebuilt in its place), the connections are reopened on
the file that is there now, so this process serves what the other processes wrote, and its
writes are theirs to read.

Every SQLite error becomes an ``OnlineStoreError`` (reads then go through the fallback chain,
docs/online.md). An error saying the file is damaged ("database disk image is malformed", "file
is not a database") marks the store unreadable: ``ping`` then fails (readiness says so) until
the file is replaced, e.g. by ``rebuild-online``, which moves a damaged file aside
(``set_aside_if_unreadable``) and rebuilds.

**Checkpoints off the write path.** SQLite copies the WAL back into the file (a checkpoint,
with its fsyncs) inside the commit that crosses 1,000 pages: that one write then took 6-7 ms
instead of 1 (a push every 250 or so, docs/online.md, "Write latency"). Here a thread of the
writing process runs a ``PASSIVE`` checkpoint (it blocks no reader and no writer) at most every
``CHECKPOINT_SECONDS`` after a write, and the connections' own automatic checkpoint waits for
``AUTOCHECKPOINT_PAGES``: a backstop for a WAL the thread does not keep small (a process killed
before it ran; readers holding old snapshots).
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from skewless.backends import Backend, BackendSettings
from skewless.errors import OnlineStoreDamagedError, OnlineStoreError
from skewless.online.base import LEGACY, OnlineCapabilities, RecordUpdate, StoreIdentity
from skewless.online.codec import FINGERPRINT_SIZE, Layouts, Record, pack_vals, unpack_vals
from skewless.registry.sqlite_store import _free_bytes, _read_only_fs, _wal_empty

if TYPE_CHECKING:
    from skewless.config import RepoConfig


# --- the backend: settings, capabilities, factory ----------------------------------------------
class SqliteOnlineConfig(BackendSettings):
    type: Literal["sqlite"] = "sqlite"
    path: str = "data/online.db"

    def problems(self, config: RepoConfig) -> list[tuple[str, str]]:
        p = config.resolve(self.path)
        if p.is_dir():
            return [("path", f"{str(p)!r} is a directory; write the path of the SQLite file "
                     "(e.g. data/online.db)")]
        return []


CAPABILITIES = OnlineCapabilities(atomic_swap=True, persistent=True, shared=True, aggregations=True)


def _make(config: RepoConfig, settings: SqliteOnlineConfig) -> SqliteOnlineStore:
    return SqliteOnlineStore(config.resolve(settings.path))


BACKEND = Backend("online_store", "sqlite", SqliteOnlineConfig, _make, CAPABILITIES,
                  testing="skewless.testing.backends:SQLITE",
                  description="one SQLite file (WAL), embedded: the default")
# -------------------------------------------------------------------------------------------------

_LAYOUTS = '"skewless_layouts"'
_META = '"skewless_meta"'
_CREATE_META = f"CREATE TABLE IF NOT EXISTS {_META} (key TEXT PRIMARY KEY, value TEXT NOT NULL)"
_COUNT_WRITE = (f"INSERT INTO {_META} (key, value) VALUES ('writes', '1') ON CONFLICT(key) DO UPDATE "
                "SET value = CAST(CAST(value AS INTEGER) + 1 AS TEXT)")
CHECKPOINT_SECONDS = 1.0   # the checkpoint thread runs at most this often after writes
CHECKPOINT_IDLE_SECONDS = 30.0   # ... and ends after this long without a write
AUTOCHECKPOINT_PAGES = 10_000   # a commit checkpoints itself only past this WAL size (40 MiB)
RECHECK_SECONDS = 1.0      # a read re-checks that the path names the open file at most this often
QUICK_CHECK_EVERY = 60.0   # ping runs a bounded integrity check at most this often ...
QUICK_CHECK_BUDGET = 0.25  # ... and gives up (inconclusive) after this many seconds
_DAMAGED = ("malformed", "not a database", "corrupt")
_HINT = ("run `skewless rebuild-online`: it moves a damaged file aside and rebuilds the online "
         "store from the offline store")


def _t(table: str) -> str:
    return '"t_' + table.replace('"', '""') + '"'


def _damaged(e: sqlite3.Error) -> bool:
    text = str(e).lower()
    return any(d in text for d in _DAMAGED)


class _Checkpointer:
    """Checkpoints the WAL of ``path`` on a daemon thread of its own, at most every
    ``CHECKPOINT_SECONDS`` after ``wrote()``; the thread ends after ``CHECKPOINT_IDLE_SECONDS``
    without a write, and ``stop()`` ends it at once (the next ``wrote()`` starts another, in a
    forked child too), so a store dropped without ``close()`` leaves no thread behind. A failed
    checkpoint is left to the next one: the WAL still holds every commit, and readers read it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._pid = os.getpid()
        self.runs = 0    # checkpoints run (tests, benchmarks)

    def _forked(self) -> None:
        """In a forked child: the parent's thread is not running here, and its lock may have
        been held at the fork; start over."""
        if self._pid != os.getpid():
            self._lock = threading.Lock()
            self._thread, self._pid = None, os.getpid()

    def wrote(self) -> None:
        self._forked()
        with self._lock:   # against the thread ending idle (it looks at _wake under the lock)
            if self._thread is None:
                self._wake, self._stop = threading.Event(), threading.Event()
                self._thread = threading.Thread(target=self._run, args=(self._wake, self._stop),
                                                daemon=True, name=f"skewless-checkpoint-{self.path.name}")
                self._thread.start()
            self._wake.set()

    def _run(self, wake: threading.Event, stop: threading.Event) -> None:
        while True:
            if not wake.wait(CHECKPOINT_IDLE_SECONDS):
                with self._lock:
                    if not wake.is_set():   # no write since the last run: end here
                        if self._thread is threading.current_thread():
                            self._thread = None   # the next write starts another
                        return
            if stop.is_set():
                return
            wake.clear()
            self.checkpoint()
            if stop.wait(CHECKPOINT_SECONDS):   # at most one checkpoint a period
                return

    def checkpoint(self) -> None:
        """One ``PASSIVE`` checkpoint over a connection of its own (errors ignored)."""
        try:
            # mode=rw: a file deleted or moved aside since is not created again, empty
            con = sqlite3.connect(f"{self.path.absolute().as_uri()}?mode=rw", uri=True, timeout=0,
                                  isolation_level=None, check_same_thread=False)
            try:
                con.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                self.runs += 1
            finally:
                con.close()
        except sqlite3.Error:
            pass

    def stop(self) -> None:
        self._forked()
        with self._lock:
            thread, self._thread = self._thread, None
            self._stop.set()
            self._wake.set()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)


class _Opened(threading.local):
    con: sqlite3.Connection | None = None
    epoch = -1


class SqliteOnlineStore:
    name = "sqlite"
    capabilities = CAPABILITIES

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._local = _Opened()
        self._layouts = Layouts(self._load_layouts, self._save_layouts)
        self._file: tuple[int, int] | None = None   # (device, inode) the connections have open
        self._epoch = 0                             # bumped when the path names another file
        self._checked = 0.0                         # monotonic time of the last check
        self._state = threading.Lock()
        self.damaged: str | None = None             # why the open file is known unreadable
        self._quick_checked = 0.0
        self._immutable = False                     # open read-only, as immutable (no -shm)
        # tables known to exist, with the identity row: (epoch, the file's schema_version, names)
        self._created: tuple[int, int, frozenset[str]] = (-1, -1, frozenset())
        self._checkpointer = _Checkpointer(self.path)

    def _disk_fault(self) -> str | None:
        """Why no ``-shm`` file can be created next to the file ("read-only", "full"), when the
        file alone holds every commit (no ``-wal``, or an empty one), else None. Then no process
        has the file open for writing, and it can be read as immutable (as the registry is)."""
        if not self.path.exists() or not _wal_empty(self.path):
            return None
        if _read_only_fs(self.path):
            return "read-only"
        if _free_bytes(self.path) == 0:
            return "full"
        return None

    # --- the file and its connections --------------------------------------------------------
    def _stat(self) -> tuple[int, int] | None:
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return (st.st_dev, st.st_ino)

    def _follow_file(self, always: bool) -> None:
        """If the path names another file than the open one (deleted, replaced), start a new
        epoch: every thread reopens its connection on its next use."""
        now = time.monotonic()
        if not always and now - self._checked < RECHECK_SECONDS:
            return
        self._checked = now
        current = self._stat()
        if self._immutable and self._disk_fault() is None:
            with self._state:   # the disk can be written again: reopen normally, see new writes
                self._immutable = False
                self._epoch += 1
        if current != self._file:
            with self._state:
                if current != self._file:
                    if self._file is not None:
                        self._epoch += 1
                        self.damaged = None
                        self._quick_checked = 0.0
                        self._layouts.forget_saved()
                    self._file = current

    def _con(self, check: bool = False) -> sqlite3.Connection:
        self._follow_file(check)
        local = self._local
        con = local.con
        if con is not None and local.epoch == self._epoch:
            return con
        if con is not None:
            local.con = None
            con.close()   # SQLite neither checkpoints nor deletes the WAL of a moved file
        epoch = self._epoch
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            con = sqlite3.connect(self.path, timeout=30, isolation_level=None,
                                  check_same_thread=False)
            try:
                con.execute("PRAGMA journal_mode=WAL")
                con.execute("PRAGMA synchronous=NORMAL")
                con.execute(f"PRAGMA wal_autocheckpoint={AUTOCHECKPOINT_PAGES}")
            except sqlite3.OperationalError as e:
                con.close()
                if self._disk_fault() is None or _damaged(e):
                    raise
                con = sqlite3.connect(f"{self.path.resolve().as_uri()}?immutable=1", uri=True,
                                      timeout=30, isolation_level=None, check_same_thread=False)
                self._immutable = True
        except (sqlite3.Error, OSError) as e:
            if isinstance(e, sqlite3.Error) and _damaged(e):
                self.damaged = str(e)
            if self.damaged:
                raise OnlineStoreDamagedError(f"cannot open the SQLite online store {self.path}: {e}",
                                              hint=_HINT) from None
            raise self._disk_error(e, "open") from None
        with self._state:
            if self._file is None:
                self._file = self._stat()
        local.con, local.epoch = con, epoch
        return con

    def _error(self, e: sqlite3.Error, what: str) -> OnlineStoreError:
        """A SQLite error as an OnlineStoreError naming the file; a damaged file is marked."""
        if _damaged(e):
            self.damaged = str(e)
            return OnlineStoreDamagedError(f"the SQLite online store {self.path} is damaged ({what}: {e})",
                                    hint=_HINT)
        return self._disk_error(e, what)

    def _disk_error(self, e: BaseException, what: str) -> OnlineStoreError:
        """An error naming the real cause where it is the disk (read-only, full)."""
        if _read_only_fs(self.path):
            return OnlineStoreError(f"SQLite online store {self.path} ({what}): its filesystem is "
                                    f"read-only ({e})", hint="materialize, push and rebuild-online "
                                    "write the online store: run them where it is writable; "
                                    "serving only reads it")
        if _free_bytes(self.path) == 0:
            return OnlineStoreError(f"SQLite online store {self.path} ({what}): the disk holding it "
                                    f"is full ({e})",
                                    hint=f"free space on the filesystem of {self.path.parent}")
        if what == "open":
            return OnlineStoreError(f"cannot open the SQLite online store {self.path}: {e}",
                                    hint="check online_store.path in feature_store.yaml")
        return OnlineStoreError(f"SQLite online store {self.path} ({what}): {e}")

    @contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as e:
            raise self._error(e, what) from None

    def _save_layouts(self, layouts: dict[bytes, tuple[str, ...]]) -> None:
        con = self._con()
        with self._errors("saving layouts"):
            con.execute(f"CREATE TABLE IF NOT EXISTS {_LAYOUTS} (fp BLOB PRIMARY KEY, names TEXT NOT NULL)")
            con.executemany(f"INSERT OR IGNORE INTO {_LAYOUTS} (fp, names) VALUES (?, ?)",
                            [(fp, "\x1f".join(names)) for fp, names in layouts.items()])

    def _load_layouts(self, fps: list[bytes]) -> dict[bytes, tuple[str, ...]]:
        try:
            rows = self._con().execute(f"SELECT fp, names FROM {_LAYOUTS}").fetchall()
        except sqlite3.OperationalError as e:
            if "no such table" in str(e):
                return {}
            raise
        return {fp: tuple(names.split("\x1f")) if names else () for fp, names in rows}

    # --- identity and health -----------------------------------------------------------------
    def identity(self) -> StoreIdentity | None:
        con = self._con(check=True)
        with self._errors("reading its identity"):
            try:
                meta = dict(con.execute(f"SELECT key, value FROM {_META} "
                                        "WHERE key IN ('identity', 'writes')").fetchall())
            except sqlite3.OperationalError as e:
                if "no such table" not in str(e):
                    raise
                meta = {}
            if "identity" in meta:
                return replace(StoreIdentity.decode(meta["identity"]), writes=int(meta.get("writes") or 0))
            return LEGACY if self._has_tables(con) else None

    @staticmethod
    def _has_tables(con: sqlite3.Connection) -> bool:
        return con.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name LIKE 't\\_%' "
                           "ESCAPE '\\' LIMIT 1").fetchone() is not None

    def ping(self) -> None:
        self._follow_file(always=True)   # a damaged file replaced since is forgotten
        if self.damaged:
            raise OnlineStoreDamagedError(f"the SQLite online store {self.path} is damaged: {self.damaged}",
                                   hint=_HINT)
        con = self._con(check=True)
        with self._errors("answering"):
            con.execute("SELECT count(*) FROM sqlite_master").fetchone()
        if time.monotonic() - self._quick_checked > QUICK_CHECK_EVERY:
            problem = self._quick_check(con, QUICK_CHECK_BUDGET)
            self._quick_checked = time.monotonic()
            if problem:
                self.damaged = problem
                raise OnlineStoreDamagedError(f"the SQLite online store {self.path} is damaged: {problem}",
                                       hint=_HINT)

    @staticmethod
    def _quick_check(con: sqlite3.Connection, budget: float | None) -> str | None:
        """``PRAGMA quick_check``: what it finds wrong, None when it finds nothing (or ran out of
        ``budget`` seconds: inconclusive)."""
        deadline = None if budget is None else time.monotonic() + budget
        if deadline is not None:
            con.set_progress_handler(lambda: int(time.monotonic() > deadline), 10_000)
        try:
            rows = con.execute("PRAGMA quick_check(5)").fetchall()
        except sqlite3.OperationalError as e:
            if "interrupt" in str(e).lower():
                return None
            return str(e)
        except sqlite3.DatabaseError as e:
            return str(e)
        finally:
            if deadline is not None:
                con.set_progress_handler(None, 0)
        found = [" ".join(str(r[0]).split()) for r in rows]   # a row may span lines
        return None if found == ["ok"] else "; ".join(found)

    def set_aside_if_unreadable(self) -> str | None:
        """A full ``PRAGMA quick_check``; if the file is damaged (or not a database), rename it
        (and its -wal and -shm files) to ``{name}.damaged-{UTC time}`` and start a blank file."""
        problem = self.damaged
        if problem is None:
            try:
                con = self._con(check=True)
                problem = self._quick_check(con, None)
            except OnlineStoreError as e:
                if self.damaged is None:
                    raise
                problem = e.message
        if problem is None:
            return None
        self.close()
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        aside = self.path.with_name(f"{self.path.name}.damaged-{stamp}")
        try:
            for suffix in ("", "-wal", "-shm"):
                src = Path(f"{self.path}{suffix}")
                if src.exists():
                    os.replace(src, f"{aside}{suffix}")
        except OSError as e:
            raise OnlineStoreDamagedError(f"the SQLite online store {self.path} is damaged ({problem}) and "
                                   f"could not be moved aside: {e}",
                                   hint=f"move {self.path} away by hand, then run the command again") from None
        self._follow_file(always=True)
        return (f"the SQLite online store {self.path} was damaged ({problem}); it was moved to "
                f"{aside} and a new, empty store was started")

    # --- protocol ----------------------------------------------------------------------------
    def create(self, tables: Sequence[str]) -> None:
        con = self._con(check=True)
        with self._errors("creating tables"):
            # every CREATE or DROP, by any connection, bumps the file's schema_version: while it
            # is the one seen after this store last created ``tables``, they are there (push
            # calls create before every write; this skips a write transaction)
            epoch, known = self._epoch, self._created
            version = int(con.execute("PRAGMA schema_version").fetchall()[0][0])
            if known[0] == epoch and known[1] == version and known[2].issuperset(tables):
                return
            con.execute("BEGIN IMMEDIATE")
            try:
                con.execute(_CREATE_META)
                if con.execute(f"SELECT 1 FROM {_META} WHERE key = 'identity'").fetchone() is None:
                    claim = StoreIdentity.new(adopted=self._has_tables(con))
                    con.execute(f"INSERT INTO {_META} (key, value) VALUES ('identity', ?)", (claim.encode(),))
                for t in tables:
                    con.execute(f"CREATE TABLE IF NOT EXISTS {_t(t)} (k BLOB PRIMARY KEY, ts INTEGER NOT NULL, "
                                "cts INTEGER NOT NULL, v BLOB NOT NULL) WITHOUT ROWID")
                version = int(con.execute("PRAGMA schema_version").fetchall()[0][0])
                con.execute("COMMIT")
                before = known[2] if known[:2] == (epoch, version) else frozenset()
                self._created = (epoch, version, before | frozenset(tables))
            except BaseException:
                if con.in_transaction:
                    con.execute("ROLLBACK")
                raise

    def drop(self, tables: Sequence[str]) -> None:
        con = self._con(check=True)
        with self._errors("dropping tables"):
            for t in tables:
                con.execute(f"DROP TABLE IF EXISTS {_t(t)}")

    def write_batch(self, rows: Mapping[str, Sequence[tuple[bytes, Record]]]) -> int:
        con = self._con(check=True)
        n = 0
        with self._errors("writing"):
            # layouts first, in their own statement: a reader that sees a record can resolve it
            fps = self._layouts.encode(r.names for items in rows.values() for _, r in items)
            con.execute("BEGIN IMMEDIATE")
            try:
                for table, items in rows.items():
                    con.executemany(
                        f"INSERT INTO {_t(table)} (k, ts, cts, v) VALUES (?, ?, ?, ?) ON CONFLICT(k) DO UPDATE "
                        "SET ts = excluded.ts, cts = excluded.cts, v = excluded.v "
                        "WHERE (excluded.ts, excluded.cts) >= (ts, cts)",
                        # in key order: B-tree inserts in order touch each page once
                        sorted([(k, r.event_ts, r.created_ts, fps[r.names] + pack_vals(r.vals))
                                for k, r in items]))
                    n += len(items)
                if n:   # the write count, in the same transaction as the records it counts
                    try:
                        con.execute(_COUNT_WRITE)
                    except sqlite3.OperationalError as e:
                        if "no such table" not in str(e):
                            raise
                        con.execute(_CREATE_META)
                        con.execute(_COUNT_WRITE)
                con.execute("COMMIT")
            except BaseException:
                if con.in_transaction:
                    con.execute("ROLLBACK")
                raise
        self._checkpointer.wrote()
        return n

    def update_batch(self, table: str, keys: Sequence[bytes], update: RecordUpdate) -> int:
        """One ``BEGIN IMMEDIATE`` transaction: the stored records are read, updated and written
        back while every other writer (of any process) waits; readers (WAL) see the old
        records until the commit."""
        con = self._con(check=True)
        n = 0
        with self._errors("updating"):
            con.execute("BEGIN IMMEDIATE")
            try:
                con.execute(f"CREATE TABLE IF NOT EXISTS {_t(table)} (k BLOB PRIMARY KEY, ts INTEGER "
                            "NOT NULL, cts INTEGER NOT NULL, v BLOB NOT NULL) WITHOUT ROWID")
                names_of, fp_size = self._layouts.names, FINGERPRINT_SIZE
                out: list[tuple[bytes, Record]] = []
                uniq = list(dict.fromkeys(keys))
                for i in range(0, len(uniq), 500):
                    part = uniq[i:i + 500]
                    stored = {k: Record(ts, cts, names_of(v[:fp_size]), unpack_vals(v[fp_size:]))
                              for k, ts, cts, v in con.execute(
                                  f"SELECT k, ts, cts, v FROM {_t(table)} WHERE k IN "
                                  f"({','.join('?' * len(part))})", part)}
                    for k in part:
                        rec = update(k, stored.get(k))
                        if rec is not None:
                            out.append((k, rec))
                if out:
                    # layouts in the same transaction: a reader that sees a record can resolve it
                    fps = self._layouts.encode(r.names for _, r in out)
                    con.executemany(
                        f"INSERT INTO {_t(table)} (k, ts, cts, v) VALUES (?, ?, ?, ?) ON CONFLICT(k) "
                        "DO UPDATE SET ts = excluded.ts, cts = excluded.cts, v = excluded.v",
                        sorted((k, r.event_ts, r.created_ts, fps[r.names] + pack_vals(r.vals))
                               for k, r in out))
                    n = len(out)
                    con.execute(_CREATE_META)
                    con.execute(_COUNT_WRITE)
                con.execute("COMMIT")
            except BaseException:
                if con.in_transaction:
                    con.execute("ROLLBACK")
                self._layouts.forget_saved()   # layouts saved in the rolled-back transaction
                raise
        if n:
            self._checkpointer.wrote()
        return n

    def read_batch(self, keys: Mapping[str, Sequence[bytes]]) -> dict[str, list[Record | None]]:
        con = self._con()
        out: dict[str, list[Record | None]] = {}
        for table, ks in keys.items():
            if not ks:
                out[table] = []
                continue
            try:
                if len(ks) == 1:
                    rows = con.execute(f"SELECT k, ts, cts, v FROM {_t(table)} WHERE k = ?", (ks[0],)).fetchall()
                else:
                    uniq = list(dict.fromkeys(ks))
                    rows = []
                    for i in range(0, len(uniq), 500):
                        part = uniq[i:i + 500]
                        rows += con.execute(f"SELECT k, ts, cts, v FROM {_t(table)} WHERE k IN "
                                            f"({','.join('?' * len(part))})", part).fetchall()
            except sqlite3.Error as e:
                if isinstance(e, sqlite3.OperationalError) and "no such table" in str(e):
                    out[table] = [None] * len(ks)
                    continue
                raise self._error(e, "reading") from None
            names_of, fp_size = self._layouts.names, FINGERPRINT_SIZE
            try:
                found = {k: Record(ts, cts, names_of(v[:fp_size]), unpack_vals(v[fp_size:]))
                         for k, ts, cts, v in rows}
            except OnlineStoreError:
                raise
            except sqlite3.Error as e:
                raise self._error(e, "reading record layouts") from None
            except Exception as e:  # noqa: BLE001 - bytes that do not decode: a damaged page
                self.damaged = f"a record of table {table} does not decode ({type(e).__name__}: {e})"
                raise OnlineStoreDamagedError(f"the SQLite online store {self.path} is damaged: {self.damaged}",
                                       hint=_HINT) from None
            out[table] = [found.get(k) for k in ks]
        return out

    def count(self, table: str) -> int:
        con = self._con(check=True)
        with self._errors("counting"):
            try:
                return int(con.execute(f"SELECT count(*) FROM {_t(table)}").fetchone()[0])
            except sqlite3.OperationalError as e:
                if "no such table" in str(e):
                    return 0
                raise

    def scan_keys(self, table: str, limit: int) -> list[bytes]:
        con = self._con(check=True)
        with self._errors("sampling keys"):
            try:
                return [r[0] for r in con.execute(
                    f"SELECT k FROM {_t(table)} ORDER BY random() LIMIT ?", (limit,))]
            except sqlite3.OperationalError as e:
                if "no such table" in str(e):
                    return []
                raise

    def swap(self, table: str, staging: str) -> None:
        con = self._con(check=True)
        with self._errors("swapping tables"):
            con.execute("BEGIN IMMEDIATE")
            try:
                con.execute(f"DROP TABLE IF EXISTS {_t(table)}")
                con.execute(f"ALTER TABLE {_t(staging)} RENAME TO {_t(table)}")
                con.execute("COMMIT")
            except BaseException:
                if con.in_transaction:
                    con.execute("ROLLBACK")
                raise

    def close(self) -> None:
        self._checkpointer.stop()
        con = self._local.con
        if con is not None:
            con.close()
            self._local.con = None
