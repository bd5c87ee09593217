"""Serving survives disk faults of the registry (docs/server.md#get-ready-and-get-health).

The registry file sits on a small tmpfs mount the test makes and removes (we fill it up, remount
it read-only, write garbage pages into the file); the online store (the shared Redis under a
project of its own, or SQLite off the mount) stays healthy. Serving reads the registry without
writing anything, keeps its last good snapshot when the file cannot be read, and every registry
error names the file and the real cause. No mocks."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from skewless import FeatureStore
from skewless.errors import RegistryError
from skewless.testing.clock import Clock
from skewless.testing.redis_server import SHARED_REDIS, purge_project, require_shared_redis

from .conftest import spend_view, user

NOW = datetime(2024, 3, 1, tzinfo=timezone.utc)
EXPECTED = {"user_id": ["u1", "u2", "u9"], "amount": [140.0, 89.0, None]}


@contextmanager
def tmpfs(path: Path, size: str = "4m") -> Iterator[Path]:
    """A tmpfs of ``size`` mounted at ``path`` for the block; always unmounted afterwards."""
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {done.stderr.strip()}")
    try:
        yield path
    finally:
        if subprocess.run(["umount", str(path)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(path)], capture_output=True)


def fill(mount: Path) -> None:
    """Fill the filesystem at ``mount`` until it refuses another byte."""
    fd = os.open(mount / "filler", os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        for chunk in (1 << 16, 1 << 12, 1):
            try:
                while True:
                    os.write(fd, b"\0" * chunk)
            except OSError:
                pass
    finally:
        os.close(fd)
    assert os.statvfs(mount).f_bavail == 0


def remount_ro(mount: Path) -> None:
    subprocess.run(["mount", "-o", "remount,ro", str(mount)], check=True)


def garble(path: Path, keep_header: bool = True) -> None:
    """Overwrite the file's pages with garbage: all but the first (its header and schema) with
    ``keep_header``, else the whole file."""
    size = path.stat().st_size
    start = 4096 if keep_header else 0
    with open(path, "r+b") as f:
        f.seek(start)
        f.write(bytes((i * 37 + 11) % 251 for i in range(size - start)))


def make_store(repo: Path, online: dict[str, Any], project: str, registry: Path,
               ttl: float = 10.0) -> FeatureStore:
    return FeatureStore(repo, config={"project": project, "registry": str(registry),
                                      "registry_cache_ttl_seconds": ttl, "online_store": online},
                        clock=Clock(NOW))


def serve(fs: FeatureStore) -> dict[str, list[Any]]:
    return fs.get_online_features(["user_spend:amount"],
                                  [{"user_id": u} for u in ("u1", "u2", "u9")]).to_dict()


@pytest.fixture(params=["redis", "sqlite"])
def online(request: pytest.FixtureRequest, repo: Path) -> Iterator[tuple[dict[str, Any], str]]:
    """A healthy online store off the mount: the shared Redis under a project of its own, or a
    SQLite file in the repo."""
    if request.param == "redis":
        require_shared_redis(SHARED_REDIS)
        project = f"regfault_{uuid.uuid4().hex[:10]}"
        yield {"type": "redis", "connection_string": SHARED_REDIS}, project
        purge_project(project, SHARED_REDIS)
    else:
        yield {"type": "sqlite", "path": str(repo / "data/online.db")}, "fraud"


@pytest.fixture
def mount(tmp_path: Path) -> Iterator[Path]:
    with tmpfs(tmp_path / "mnt") as m:
        yield m


def materialized(repo: Path, online: tuple[dict[str, Any], str], registry: Path,
                 wal: bool = False) -> None:
    fs = make_store(repo, online[0], online[1], registry)
    fs.apply([user, spend_view()])
    fs.materialize_incremental(NOW)
    fs.online_store.close()
    if wal:   # a registry written by an older skewless, which left the file in WAL mode
        with sqlite3.connect(registry) as con:
            assert con.execute("PRAGMA journal_mode=WAL").fetchone()[0] == "wal"
        con.close()


@pytest.mark.parametrize("wal", [False, True], ids=["rollback-journal", "wal-file"])
def test_serving_on_a_full_disk(repo: Path, online: Any, mount: Path, wal: bool) -> None:
    """The registry's disk is full: a new process serves (no -wal/-shm is created), and a write
    names the full disk."""
    registry = mount / "registry.db"
    materialized(repo, online, registry, wal)
    fill(mount)
    before = sorted(os.listdir(mount))
    fs = make_store(repo, online[0], online[1], registry, ttl=0)
    for _ in range(3):
        assert serve(fs) == EXPECTED
    assert fs.registry_health().error is None
    if not wal:   # a read writes nothing at all
        assert sorted(os.listdir(mount)) == before
    with pytest.raises(RegistryError) as e:
        fs.apply([user, spend_view(description="changed")])
    assert "full" in e.value.message and str(registry) in e.value.message
    assert "free space" in (e.value.hint or "")
    fs.online_store.close()


@pytest.mark.parametrize("wal", [False, True], ids=["rollback-journal", "wal-file"])
def test_serving_on_a_read_only_filesystem(repo: Path, online: Any, mount: Path, wal: bool) -> None:
    registry = mount / "registry.db"
    materialized(repo, online, registry, wal)
    remount_ro(mount)
    fs = make_store(repo, online[0], online[1], registry, ttl=0)
    for _ in range(3):
        assert serve(fs) == EXPECTED
    assert [v.name for v in fs.list_feature_views()] == ["user_spend"]
    with pytest.raises(RegistryError) as e:
        fs.apply([user, spend_view(description="changed")])
    assert "read-only" in e.value.message and str(registry) in e.value.message
    fs.online_store.close()


def test_unreadable_registry_keeps_the_last_good_snapshot(repo: Path, online: Any, mount: Path) -> None:
    """Garbage pages in the registry under a serving store: it goes on serving the definitions
    it read last and says so; a push (which must check the registry as it is) is refused with
    a clear error."""
    registry = mount / "registry.db"
    materialized(repo, online, registry)
    fs = make_store(repo, online[0], online[1], registry, ttl=0)
    assert serve(fs) == EXPECTED
    good = fs.registry_health()
    assert good.error is None and good.read_at is not None and not good.stale
    garble(registry)
    for _ in range(3):
        assert serve(fs) == EXPECTED
    health = fs.registry_health()
    assert health.stale and health.read_at == good.read_at and health.version == good.version
    assert health.error is not None and "corrupt" in health.error.message
    fresh = make_store(repo, online[0], online[1], registry)
    with pytest.raises(RegistryError) as e:   # no snapshot yet: nothing to fall back on
        serve(fresh)
    assert "corrupt" in e.value.message
    fs.online_store.close()
    fresh.online_store.close()


@pytest.mark.parametrize("keep_header", [True, False], ids=["garbage-pages", "garbage-file"])
def test_garbage_registry_is_a_clear_error(repo: Path, keep_header: bool) -> None:
    """SDK and CLI: a RegistryError naming the file and what to do, never a raw
    sqlite3.DatabaseError (nor a traceback)."""
    registry = repo / "data/registry.db"
    fs = make_store(repo, {"type": "sqlite", "path": "data/online.db"}, "fraud", registry)
    fs.apply([user, spend_view()])
    fs.materialize_incremental(NOW)
    garble(registry, keep_header)
    calls = [lambda: fs.list_feature_views(), lambda: fs.history(), lambda: fs.online_status(),
             lambda: fs.apply([user, spend_view()]), lambda: fs.materialize_incremental(NOW)]
    for call in calls:
        with pytest.raises(RegistryError) as e:
            call()
        assert str(registry) in e.value.message
        assert e.value.hint
        if keep_header:
            assert "corrupt" in e.value.message and "move the file aside" in e.value.hint
    (repo / "feature_store.yaml").write_text("project: fraud\nregistry: data/registry.db\n")
    for args in (["ls"], ["online-status"], ["history"]):
        done = subprocess.run([sys.executable, "-m", "skewless.cli", "--repo", str(repo), *args],
                              capture_output=True, text=True)
        out = done.stdout + done.stderr
        assert done.returncode == 1, out
        assert "Traceback" not in out and "DatabaseError" not in out, out
        assert "registry" in out and "hint:" in out, out


def test_registry_without_read_permission_says_so(repo: Path) -> None:
    """Run as an unprivileged user (root reads any file): the hint names the permission."""
    import shutil
    import tempfile

    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv to run a process as another user")
    base = Path(tempfile.mkdtemp(prefix="skewless-perm-"))
    try:
        base.chmod(0o755)
        (base / "data").mkdir(mode=0o755)
        registry = base / "data/registry.db"
        fs = make_store(base, {"type": "memory"}, "fraud", registry)
        fs.apply([user])
        registry.chmod(0o600)
        (base / "feature_store.yaml").write_text("project: fraud\nregistry: data/registry.db\n")
        (base / "feature_store.yaml").chmod(0o644)
        code = ("from skewless import FeatureStore\nfrom skewless.errors import RegistryError\n"
                f"try:\n    FeatureStore({str(base)!r}).list_entities()\n"
                "except RegistryError as e:\n    print(e.message)\n    print(e.hint)\n")
        done = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                               sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        assert "permission denied" in done.stdout and str(registry) in done.stdout, done.stdout
        assert "chmod" in done.stdout, done.stdout
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_a_deleted_registry_keeps_the_last_good_snapshot(repo: Path, online: Any, mount: Path) -> None:
    """The registry file is deleted (or moved) under a serving store: a missing file reads as
    an empty registry, version 0, which no apply can produce once a version was read. Serving
    keeps its last good definitions and says why, instead of answering every request 'unknown
    feature view ... none are defined yet' (a 400 no client retries) and /ready 'run skewless
    apply'."""
    from skewless.server.app import readiness

    registry = mount / "registry.db"
    materialized(repo, online, registry)
    fs = make_store(repo, online[0], online[1], registry, ttl=0)
    assert serve(fs) == EXPECTED
    was_ready, _ = readiness(fs)
    assert was_ready
    registry.rename(mount / "moved.db")
    for _ in range(3):
        assert serve(fs) == EXPECTED
    health = fs.registry_health()
    assert health.stale and health.version is not None and health.version > 0
    assert health.error is not None and str(registry) in health.error.message
    ok, body = readiness(fs, was_ready=True)
    assert ok and body["registry"] == "stale" and "deleted" in body["message"], body
    (mount / "moved.db").rename(registry)
    deadline = time.monotonic() + 30   # a failed read is retried at least a second later
    while fs.registry_health().stale and time.monotonic() < deadline:
        assert serve(fs) == EXPECTED
        time.sleep(0.2)
    assert not fs.registry_health().stale
    fs.online_store.close()
