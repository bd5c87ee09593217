"""``RegistryStore.load(project, unchanged=...)``: the snapshot handed back only while the
registry file still holds its version (push re-reads the registry on every call)."""

from __future__ import annotations

import os
from pathlib import Path

from skewless import Entity
from skewless.registry.snapshot import Snapshot
from skewless.registry.sqlite_store import SqliteRegistryStore


def _commit(store: SqliteRegistryStore, entity: str, expected: int) -> int:
    snap = Snapshot("p")
    snap.entities[entity] = Entity(entity, join_keys=[f"{entity}_id"])
    return store.commit(snap, expected, [], "test")


def test_unchanged_snapshot_is_handed_back_until_a_commit(tmp_path: Path) -> None:
    store = SqliteRegistryStore(tmp_path / "registry.db")
    _commit(store, "user", 0)
    first = store.load("p")
    assert store.load("p", unchanged=first) is first
    # another writer (another process: another store object on the same file) commits
    _commit(SqliteRegistryStore(tmp_path / "registry.db"), "driver", 1)
    second = store.load("p", unchanged=first)
    assert second is not first and second.version == 2 and list(second.entities) == ["driver"]
    assert store.load("p", unchanged=second) is second


def test_a_file_moved_in_with_the_same_version_is_read_in_full(tmp_path: Path) -> None:
    store = SqliteRegistryStore(tmp_path / "registry.db")
    _commit(store, "user", 0)
    held = store.load("p")
    other = SqliteRegistryStore(tmp_path / "other.db")
    _commit(other, "driver", 0)          # version 1 as well, other definitions
    os.replace(tmp_path / "other.db", tmp_path / "registry.db")
    got = store.load("p", unchanged=held)
    assert got is not held and got.version == 1 and list(got.entities) == ["driver"]


def test_copies_and_other_projects_are_never_handed_back(tmp_path: Path) -> None:
    store = SqliteRegistryStore(tmp_path / "registry.db")
    _commit(store, "user", 0)
    held = store.load("p")
    copy = held.copy()
    assert store.load("p", unchanged=copy) is not copy
    assert store.load("q", unchanged=held).version == 0


def test_damage_in_place_is_seen_by_the_next_load(tmp_path: Path) -> None:
    """The version is probed over a kept connection that keeps no page: pages garbled in
    place (the header, and so the change counter, intact) fail the next load as before."""
    import pytest

    from skewless.errors import RegistryError
    store = SqliteRegistryStore(tmp_path / "registry.db")
    for v in range(30):   # a few pages
        _commit(store, f"e{v}", v)
    held = store.load("p")
    assert store.load("p", unchanged=held) is held
    path = tmp_path / "registry.db"
    size = path.stat().st_size
    with open(path, "r+b") as f:
        f.seek(4096)
        f.write(bytes((i * 37 + 11) % 251 for i in range(size - 4096)))
    with pytest.raises(RegistryError, match="corrupt"):
        store.load("p", unchanged=held)


def test_each_thread_probes_over_its_own_connection(tmp_path: Path) -> None:
    import threading
    store = SqliteRegistryStore(tmp_path / "registry.db")
    _commit(store, "user", 0)
    held = store.load("p")
    got: list[bool] = []
    threads = [threading.Thread(target=lambda: got.append(store.load("p", unchanged=held) is held))
               for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert got == [True] * 4
    _commit(store, "driver", 1)   # a kept reader holds no lock between loads: the commit goes through
    assert store.load("p", unchanged=held).version == 2
