"""The SQLite online store checkpoints its WAL on a thread of its own, never inside a write.

SQLite's default checkpoints the WAL inside the commit that crosses 1,000 pages: that write
(a push, one materialization batch) paid for the copy and its fsyncs, 6-7 ms instead of 1
(docs/online.md, "Write latency"). These tests check what must hold, on the real file: the
writes leave the WAL to the thread, the thread does checkpoint it, no checkpoint creates a file
that was removed, and closing the store ends the thread.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from skewless.online import sqlite as sqlite_mod
from skewless.online.codec import Record
from skewless.online.sqlite import SqliteOnlineStore

PAGE = 4096


def _records(n: int, start: int = 0, size: int = 2000) -> dict[str, list[tuple[bytes, Record]]]:
    return {"t": [(f"k{start + i:08d}".encode(), Record(1_000_000 + i, 0, ("v",), (b"x" * size,)))
                  for i in range(n)]}


def _wal_frames(path: Path) -> int:
    """Frames in the WAL file (its header is 32 bytes, each frame a 24-byte header + a page)."""
    wal = Path(str(path) + "-wal")
    size = wal.stat().st_size if wal.exists() else 0
    return max(0, size - 32) // (24 + PAGE)


def _file_pages(path: Path) -> int:
    """Pages in the database file itself: only a checkpoint writes it (commits go to the WAL)."""
    return path.stat().st_size // PAGE


def _wait(cond, seconds: float = 30.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return cond()


def test_writes_past_a_thousand_pages_do_not_checkpoint_inline(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    # the thread is kept from running: what is left is what the commits themselves did
    monkeypatch.setattr(sqlite_mod._Checkpointer, "wrote", lambda self: None)
    store = SqliteOnlineStore(tmp_path / "online.db")
    store.create(["t"])
    for b in range(8):   # 8 commits of ~250 pages each: 2,000 pages in all
        store.write_batch(_records(500, start=b * 500))
    con = store._con()
    assert con.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == sqlite_mod.AUTOCHECKPOINT_PAGES
    # SQLite's default (1,000) would have copied the WAL back and started it over inside a commit
    assert _wal_frames(tmp_path / "online.db") >= 1500
    assert _file_pages(tmp_path / "online.db") < 100
    assert store._checkpointer._thread is None   # this store started no thread
    store.close()


def test_the_thread_checkpoints_what_was_written(tmp_path: Path) -> None:
    path = tmp_path / "online.db"
    store = SqliteOnlineStore(path)
    store.create(["t"])
    reader = SqliteOnlineStore(path)
    for b in range(4):   # ~1,000 pages
        store.write_batch(_records(500, start=b * 500))
    # the thread copies them into the file (at most one run a period: the later writes wait
    # for the next run, which their own write asked for)
    assert _wait(lambda: _file_pages(path) >= 900)
    assert store._checkpointer.runs >= 1
    # every record reads back, from the file and the WAL alike
    store.write_batch(_records(10, start=10_000))
    got = reader.read_batch({"t": [f"k{i:08d}".encode() for i in (0, 1999, 10_009)]})["t"]
    assert [r.event_ts for r in got] == [1_000_000, 1_000_000 + 499, 1_000_009]
    # an update of records goes through the same thread
    before = store._checkpointer.runs
    store.update_batch("t", [b"k00000000"], lambda k, r: Record(r.event_ts + 1, 0, r.names, r.vals))
    assert _wait(lambda: store._checkpointer.runs > before)
    reader.close()
    store.close()


def test_a_checkpoint_never_creates_a_removed_file(tmp_path: Path) -> None:
    path = tmp_path / "online.db"
    store = SqliteOnlineStore(path)
    store.create(["t"])
    store.write_batch(_records(3))
    store.close()
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    sqlite_mod._Checkpointer(path).checkpoint()   # what a late run of the thread does
    assert not path.exists()


def test_close_ends_the_thread_and_a_later_write_starts_another(tmp_path: Path) -> None:
    store = SqliteOnlineStore(tmp_path / "online.db")
    store.create(["t"])
    store.write_batch(_records(3))
    first = store._checkpointer._thread
    assert first is not None and first.is_alive()
    store.close()
    first.join(timeout=10)
    assert not first.is_alive()
    store.write_batch(_records(3, start=3))
    second = store._checkpointer._thread
    assert second is not None and second is not first and second.is_alive()
    store.close()


def _checkpoint_threads(name: str) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == f"skewless-checkpoint-{name}"]


def test_a_store_dropped_without_close_leaves_no_thread(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    # FeatureStore.close() does not close its online store, and a process that opens a
    # FeatureStore per job drops them: a thread per dropped store, each parked forever, is a
    # leak. The thread ends once no write came for CHECKPOINT_IDLE_SECONDS.
    monkeypatch.setattr(sqlite_mod, "CHECKPOINT_IDLE_SECONDS", 0.2, raising=False)
    path = tmp_path / "dropped.db"
    for i in range(20):
        store = SqliteOnlineStore(path)
        store.create(["t"])
        store.write_batch(_records(2, start=i * 2))
        del store
    assert _wait(lambda: not _checkpoint_threads(path.name)), \
        f"{len(_checkpoint_threads(path.name))} checkpoint threads left by 20 dropped stores"
    # every write is read by a new store
    reader = SqliteOnlineStore(path)
    assert all(r is not None for r in reader.read_batch({"t": [f"k{i:08d}".encode() for i in range(40)]})["t"])
    reader.close()


def test_a_store_idle_then_written_again_checkpoints_again(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sqlite_mod, "CHECKPOINT_IDLE_SECONDS", 0.2, raising=False)
    path = tmp_path / "idle.db"
    store = SqliteOnlineStore(path)
    store.create(["t"])
    store.write_batch(_records(2))
    assert _wait(lambda: not _checkpoint_threads(path.name))   # idle: the thread ended
    before = store._checkpointer.runs
    store.write_batch(_records(600, start=10))                  # a write starts another
    assert _wait(lambda: store._checkpointer.runs > before)
    assert _wait(lambda: _file_pages(path) >= 200)              # and it copies the WAL back
    store.close()
    assert not _checkpoint_threads(path.name)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork")
def test_a_child_forked_while_the_lock_was_held_still_checkpoints(tmp_path: Path) -> None:
    # a thread of the parent inside wrote() at the moment another forks (a pre-fork server):
    # the child inherits the lock held, by a thread it does not have
    path = tmp_path / "forked.db"
    store = SqliteOnlineStore(path)
    store.create(["t"])
    store.write_batch(_records(2))
    cp = store._checkpointer
    with cp._lock:
        pid = os.fork()
        if pid == 0:   # the child: its own thread, its own checkpoint
            code = 1
            try:
                before = cp.runs
                cp.wrote()
                code = 0 if _wait(lambda: cp.runs > before) else 2
            finally:
                os._exit(code)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        time.sleep(0.05)
    else:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        pytest.fail("the forked child hung on the lock its parent held at the fork")
    assert os.waitstatus_to_exitcode(status) == 0
    store.close()
