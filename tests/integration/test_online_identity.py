"""Store-level faults behind the online store's identity (docs/online-stores.md).

- Redis restarted empty, tables re-created in another order: generation numbers and the
  version counter come back as the same numbers in other places; a reader that cached the
  table map before the restart must read the right tables (it checks ``sk:@id`` with the
  version in the same MGET). A writer that cached layouts saves them again.
- SQLite: a reader follows its file when it is deleted and rebuilt by another writer; a file
  whose header is garbage gives OnlineStoreError on every read (never a raw sqlite3 error),
  and ``set_aside_if_unreadable`` moves it aside.
"""

from __future__ import annotations

import os
import sqlite3
import time
from contextlib import ExitStack
from pathlib import Path

import pytest
import redis

from skewless.errors import OnlineStoreDamagedError, OnlineStoreError
from skewless.online import sqlite as sqlite_mod
from skewless.online.codec import Record
from skewless.online.sqlite import SqliteOnlineStore


def rec(v: int, ts: int = 1) -> Record:
    return Record(ts, ts, ("x",), (v,))


def filled_store_file(path: Path, keys: list[bytes]) -> int:
    """A SQLite online store file holding ``keys`` in table ``t``, its WAL checkpointed into
    the file (so damage written into the file is what readers see); returns its size (bytes)."""
    store = SqliteOnlineStore(path)
    store.create(["t"])
    store.write_batch({"t": [(k, rec(i)) for i, k in enumerate(keys)]})
    store.close()
    con = sqlite3.connect(path)
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    return path.stat().st_size


def test_a_redis_reader_never_reuses_its_table_map_across_a_restart() -> None:
    from skewless.testing.redis_server import redis_server, require_redis_server_binary
    require_redis_server_binary()
    from skewless.online.redis import RedisOnlineStore
    with redis_server() as server:
        writer, reader = RedisOnlineStore(server.address), RedisOnlineStore(server.address)
        try:
            for t, v in (("p__a", 1), ("p__b", 2)):   # one create each: version 1, then 2
                writer.create([t])
                writer.write_batch({t: [(b"k", rec(v))]})
            first = reader.read_batch({"p__a": [b"k"], "p__b": [b"k"]})
            assert [r[0].vals for r in first.values()] == [(1,), (2,)]   # type: ignore[union-attr]

            server.kill()
            server.start()
            for t, v in (("p__b", 20), ("p__a", 10)):  # the other order: b takes generation 1
                writer.create([t])
                writer.write_batch({t: [(b"k", rec(v))]})
            again = reader.read_batch({"p__a": [b"k"], "p__b": [b"k"]})
            assert [r[0].vals if r[0] else None for r in again.values()] == [(10,), (20,)]
            after = reader.identity()
            assert after is not None and after.id and not after.adopted   # claimed by a blank Redis

            # the writer saved its layouts again: a fresh reader decodes the records
            fresh = RedisOnlineStore(server.address)
            assert fresh.read_batch({"p__a": [b"k"]})["p__a"][0] == rec(10)
            fresh.close()

            writer.write_batch({"p__b": [(b"w", Record(1, 1, ("x", "y"), (0, 0)))]})  # saved now

            # restarted empty again and refilled by another writer in the same order, so the
            # generation names still fit the first writer's cached map: its next record, of a
            # layout it saved before the restart, must still be readable by others
            server.kill()
            server.start()
            refill = RedisOnlineStore(server.address)
            for t, v in (("p__b", 200), ("p__a", 100)):
                refill.create([t])
                refill.write_batch({t: [(b"k", rec(v))]})
            refill.close()
            wide = Record(5, 5, ("x", "y"), (1, 2))
            writer.write_batch({"p__a": [(b"w", wide)]})   # layout ("x", "y"), known before
            fresh = RedisOnlineStore(server.address)
            assert fresh.read_batch({"p__a": [b"w", b"k"]})["p__a"] == [wide, rec(100)]
            fresh.close()
        finally:
            writer.close()
            reader.close()


def test_a_sqlite_reader_follows_its_file_when_it_is_rebuilt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sqlite_mod, "RECHECK_SECONDS", 0.0, raising=False)
    path = tmp_path / "online.db"
    writer, reader = SqliteOnlineStore(path), SqliteOnlineStore(path)
    writer.create(["t"])
    writer.write_batch({"t": [(b"k", rec(1))]})
    assert reader.read_batch({"t": [b"k"]})["t"] == [rec(1)]
    writer.close()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    other = SqliteOnlineStore(path)   # another process rebuilds the file
    other.create(["t"])
    other.write_batch({"t": [(b"k", rec(2, ts=0))]})   # older than the deleted file's record
    assert reader.read_batch({"t": [b"k"]})["t"] == [rec(2, ts=0)]
    assert reader.identity() == other.identity()
    reader.write_batch({"t": [(b"j", rec(3))]})        # the reader's writes land in the new file
    assert other.read_batch({"t": [b"j"]})["t"] == [rec(3)]
    other.close()
    reader.close()


def test_a_sqlite_file_that_is_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "online.db"
    store = SqliteOnlineStore(path)
    store.create(["t"])
    store.write_batch({"t": [(b"k", rec(1))]})
    store.close()
    os.remove(f"{path}-wal") if Path(f"{path}-wal").exists() else None
    with open(path, "r+b") as f:
        f.write(os.urandom(4096))   # page 1, the header included
    store = SqliteOnlineStore(path)
    with pytest.raises(OnlineStoreError) as err:
        store.read_batch({"t": [b"k"]})
    assert isinstance(err.value, OnlineStoreDamagedError) and "rebuild-online" in (err.value.hint or "")
    with pytest.raises(OnlineStoreDamagedError):
        store.ping()
    said = store.set_aside_if_unreadable()
    assert said and "moved to" in said
    moved = [p for p in tmp_path.iterdir() if p.name.startswith("online.db.damaged-")]
    assert moved and moved[0].name in said
    store.ping()
    assert store.identity() is None and store.read_batch({"t": [b"k"]})["t"] == [None]
    assert store.set_aside_if_unreadable() is None   # a readable store stays where it is
    store.close()


def test_ping_finds_damaged_pages_within_its_budget(tmp_path: Path) -> None:
    path = tmp_path / "online.db"
    size = filled_store_file(path, [i.to_bytes(4, "big") for i in range(5000)])
    with open(path, "r+b") as f:
        f.seek(size // 2 // 4096 * 4096)
        f.write(b"\xff" * 4096)
    store = SqliteOnlineStore(path)
    t0 = time.monotonic()
    with pytest.raises(OnlineStoreDamagedError):
        store.ping()
    assert time.monotonic() - t0 < 5
    store.close()


def test_a_redis_record_that_does_not_decode_is_a_store_error() -> None:
    """Bytes under a record key that skewless did not write: an OnlineStoreError (the fallback
    chain), not a raw decoding error (a 500)."""
    from skewless.testing.redis_server import redis_server, require_redis_server_binary
    require_redis_server_binary()
    import redis as redis_py

    from skewless.online.redis import RedisOnlineStore
    with redis_server() as server:
        store = RedisOnlineStore(server.address)
        try:
            store.create(["p__a"])
            store.write_batch({"p__a": [(b"k", rec(1)), (b"j", rec(2))]})
            raw = redis_py.Redis(port=server.port)
            key = next(k for k in raw.scan_iter(match=b"sk:p__a:g*:k"))
            good = raw.get(key)
            for garbage in (b"\x00" * 3, good[:24] + b"\xc1"):   # too short; values not msgpack
                raw.set(key, garbage)
                with pytest.raises(OnlineStoreError, match="does not decode"):
                    store.read_batch({"p__a": [b"j", b"k"]})
            raw.close()
        finally:
            store.close()


@pytest.mark.parametrize("store", ["sqlite", "redis"])
def test_a_store_restored_from_an_older_copy_of_itself_is_not_trusted(tmp_path: Path, store: str) -> None:
    """The online store is copied after January was materialized (a file backup; a Redis RDB
    snapshot), February is materialized, then the copy is put back (a restore, Redis reloading
    an older snapshot after a crash, a lagging replica promoted). The store has the id the
    registry recorded but fewer writes than its coverage was recorded at: not ready
    (``online_store_behind``), and the next incremental run re-reads what it lost."""
    import shutil
    from datetime import datetime, timezone

    from skewless import FeatureStore
    from skewless.server.app import readiness
    from skewless.testing.redis_server import redis_server, require_redis_server_binary

    from .conftest import spend_view, user, write_data

    write_data(tmp_path)
    online = tmp_path / "data/online.db"
    jan = datetime(2024, 1, 31, tzinfo=timezone.utc)
    feb = datetime(2024, 2, 10, tzinfo=timezone.utc)
    with ExitStack() as stack:
        yaml = "project: fraud\nregistry: data/registry.db\n"
        if store == "redis":
            require_redis_server_binary()
            server = stack.enter_context(redis_server(data_dir=str(tmp_path)))
            yaml += f"online_store:\n  type: redis\n  connection_string: {server.address}\n"
        (tmp_path / "feature_store.yaml").write_text(yaml)
        fs = FeatureStore(tmp_path, clock=lambda: feb)
        fs.apply([user, spend_view()])
        fs.materialize_incremental(jan)
        if store == "redis":
            redis.Redis.from_url(f"redis://{server.address}").save()   # dump.rdb: January
        else:
            fs.online_store.close()
            shutil.copy(online, tmp_path / "backup.db")
        fs.materialize_incremental(feb)
        assert fs.get_online_features(["user_spend:amount"], [{"user_id": "u1"}]).to_dict()["amount"] == [140.0]
        fs.online_store.close()
        if store == "redis":
            server.kill()
            server.start()                                   # reloads January's snapshot
        else:
            shutil.copy(tmp_path / "backup.db", online)      # restored: January's state, same id

        fs = FeatureStore(tmp_path, clock=lambda: feb)
        assert fs.online_store.identity().id == fs.registry.list_state(  # type: ignore[union-attr]
            "fraud", "materialization")["user_spend"]["store"]
        ok, body = readiness(fs)
        assert not ok and body["code"] == "online_store_behind", body
        assert "older copy" in body["message"] and "materialize-incremental" in body["hint"]
        if store == "sqlite":   # the CLI's warning names this case too, not only "restarted empty"
            from typer.testing import CliRunner

            from skewless.cli import app
            fs.online_store.close()
            out = CliRunner().invoke(app, ["--repo", str(tmp_path), "online-status"])
            assert "older copy of itself" in " ".join(out.output.split()), out.output
        (report,) = fs.materialize_incremental(feb)       # notices the store lost February
        assert report.backfill
        got = fs.get_online_features(["user_spend:amount"], [{"user_id": "u1"}, {"user_id": "u3"}])
        assert got.to_dict()["amount"] == [140.0, 2100.0]
        assert readiness(fs)[0]
        fs.online_store.close()




def test_damaged_pages_are_reported_on_one_line_when_moved_aside(tmp_path: Path) -> None:
    """quick_check reports damaged pages over several lines ('*** in database main ***' then
    one line per page): the note `rebuild-online` prints says it on one line."""
    path = tmp_path / "online.db"
    size = filled_store_file(path, [f"k{i}".encode() for i in range(5000)])
    with open(path, "r+b") as f:
        for off in range(8192, size, 8192):   # page contents past the header and schema
            f.seek(off + 100)
            f.write(b"\xde\xad" * 200)
    store = SqliteOnlineStore(path)
    said = store.set_aside_if_unreadable()
    assert said and "moved to" in said and "\n" not in said, said
    store.close()
