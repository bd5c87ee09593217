"""SQLite online store: one file, WAL mode, one table per view, one query per table per read."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

from skewless.errors import OnlineStoreError
from skewless.online.base import OnlineCapabilities
from skewless.online.codec import FINGERPRINT_SIZE, Layouts, Record, pack_vals, unpack_vals

_LAYOUTS = '"skewless_layouts"'


def _t(table: str) -> str:
    return '"t_' + table.replace('"', '""') + '"'


class SqliteOnlineStore:
    name = "sqlite"
    capabilities = OnlineCapabilities(atomic_swap=True, persistent=True, shared=True)

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._local = threading.local()
        self._layouts = Layouts(self._load_layouts, self._save_layouts)

    def _con(self) -> sqlite3.Connection:
        con = getattr(self._local, "con", None)
        if con is None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                con = sqlite3.connect(self.path, timeout=30, isolation_level=None,
                                      check_same_thread=False)
                con.execute("PRAGMA journal_mode=WAL")
                con.execute("PRAGMA synchronous=NORMAL")
            except sqlite3.Error as e:
                raise OnlineStoreError(f"cannot open the SQLite online store {self.path}: {e}",
                                       hint="check online_store.path in feature_store.yaml") from None
            self._local.con = con
        return con

    def _save_layouts(self, layouts: dict[bytes, tuple[str, ...]]) -> None:
        con = self._con()
        con.execute(f"CREATE TABLE IF NOT EXISTS {_LAYOUTS} (fp BLOB PRIMARY KEY, names TEXT NOT NULL)")
        con.executemany(f"INSERT OR IGNORE INTO {_LAYOUTS} (fp, names) VALUES (?, ?)",
                        [(fp, "\x1f".join(names)) for fp, names in layouts.items()])

    def _load_layouts(self, fps: list[bytes]) -> dict[bytes, tuple[str, ...]]:
        try:
            rows = self._con().execute(f"SELECT fp, names FROM {_LAYOUTS}").fetchall()
        except sqlite3.OperationalError:
            return {}
        return {fp: tuple(names.split("\x1f")) if names else () for fp, names in rows}

    def ping(self) -> None:
        try:
            self._con().execute("SELECT 1").fetchone()
        except sqlite3.Error as e:
            raise OnlineStoreError(f"the SQLite online store {self.path} does not answer: {e}") from None

    def create(self, tables: Sequence[str]) -> None:
        con = self._con()
        for t in tables:
            con.execute(f"CREATE TABLE IF NOT EXISTS {_t(t)} (k BLOB PRIMARY KEY, ts INTEGER NOT NULL, "
                        "cts INTEGER NOT NULL, v BLOB NOT NULL) WITHOUT ROWID")

    def drop(self, tables: Sequence[str]) -> None:
        con = self._con()
        for t in tables:
            con.execute(f"DROP TABLE IF EXISTS {_t(t)}")

    def write_batch(self, rows: Mapping[str, Sequence[tuple[bytes, Record]]]) -> int:
        con = self._con()
        n = 0
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
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
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
            except sqlite3.OperationalError as e:
                if "no such table" in str(e):
                    out[table] = [None] * len(ks)
                    continue
                raise OnlineStoreError(f"SQLite online store {self.path}: {e}") from None
            names_of, fp_size = self._layouts.names, FINGERPRINT_SIZE
            found = {k: Record(ts, cts, names_of(v[:fp_size]), unpack_vals(v[fp_size:]))
                     for k, ts, cts, v in rows}
            out[table] = [found.get(k) for k in ks]
        return out

    def count(self, table: str) -> int:
        try:
            return int(self._con().execute(f"SELECT count(*) FROM {_t(table)}").fetchone()[0])
        except sqlite3.OperationalError:
            return 0

    def scan_keys(self, table: str, limit: int) -> list[bytes]:
        try:
            return [r[0] for r in self._con().execute(
                f"SELECT k FROM {_t(table)} ORDER BY random() LIMIT ?", (limit,))]
        except sqlite3.OperationalError:
            return []

    def swap(self, table: str, staging: str) -> None:
        con = self._con()
        con.execute("BEGIN IMMEDIATE")
        try:
            con.execute(f"DROP TABLE IF EXISTS {_t(table)}")
            con.execute(f"ALTER TABLE {_t(staging)} RENAME TO {_t(table)}")
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise

    def close(self) -> None:
        con = getattr(self._local, "con", None)
        if con is not None:
            con.close()
            self._local.con = None
