"""Leases in the SQLite registry (docs/online.md, "Leases"): granted atomically to one holder,
renewed only by it, taken over only once expired; and a rebuild whose lease was taken over
stops before its swap.

Real registry files and real threads, each with its own connection; expiries are set in the
past or far in the future, so no test depends on how fast the machine is.
"""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest

from skewless import FeatureStore
from skewless.errors import LeaseHeldError, LeaseLostError
from skewless.online.codec import Record, encode_key
from skewless.registry import SqliteRegistryStore
from skewless.registry.lease import Lease, held

from .conftest import spend_view, user


def lease(name: str = "rebuild-online:v", seconds: float = 600, project: str = "p") -> Lease:
    return Lease.new(project, name, "rebuild-online of feature view 'v'", seconds)


def test_only_one_of_many_concurrent_holders_gets_the_lease(tmp_path: Path) -> None:
    path = tmp_path / "registry.db"
    SqliteRegistryStore(path).set_state("p", "x", "y", {})   # the file exists before the race
    n = 8
    barrier = threading.Barrier(n)
    won: list[Lease] = []
    refused: list[LeaseHeldError] = []

    def contender() -> None:
        mine = lease()
        registry = SqliteRegistryStore(path)
        barrier.wait(60)
        try:
            registry.acquire_lease(mine)
            won.append(mine)
        except LeaseHeldError as e:
            refused.append(e)

    threads = [threading.Thread(target=contender) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert len(won) == 1 and len(refused) == n - 1
    assert all(e.holder.token == won[0].token for e in refused)
    assert [lz.token for lz in SqliteRegistryStore(path).list_leases("p")] == [won[0].token]


def test_a_lease_is_renewed_and_released_only_by_its_holder(tmp_path: Path) -> None:
    registry = SqliteRegistryStore(tmp_path / "registry.db")
    mine, other = lease(), lease()
    assert registry.acquire_lease(mine) is None
    with pytest.raises(LeaseHeldError, match=f"pid {mine.pid} on host '{mine.host}'"):
        registry.acquire_lease(other)
    registry.release_lease(other)                     # not its holder: nothing happens
    assert [lz.token for lz in registry.list_leases("p")] == [mine.token]
    with pytest.raises(LeaseLostError):
        registry.renew_lease(other, time.time() + 600)
    renewed = registry.renew_lease(mine, mine.expires + 60)
    assert registry.list_leases("p") == [renewed] and renewed.expires == mine.expires + 60
    assert registry.acquire_lease(lease(project="q")) is None   # other projects are apart
    assert registry.acquire_lease(lease(name="rebuild-online:w")) is None   # other views too
    registry.release_lease(mine)
    assert registry.acquire_lease(other) is None


def test_an_expired_lease_is_taken_over_and_its_holder_named(tmp_path: Path) -> None:
    registry = SqliteRegistryStore(tmp_path / "registry.db")
    dead = replace(lease(), expires=time.time() - 1)    # its holder stopped renewing
    registry.acquire_lease(dead)
    successor = lease()
    assert registry.acquire_lease(successor) == dead     # the caller cleans up after it
    with pytest.raises(LeaseLostError, match="taken over"):
        registry.renew_lease(dead, time.time() + 600)
    registry.release_lease(dead)                          # too late: the successor keeps it
    assert [lz.token for lz in registry.list_leases("p")] == [successor.token]


def test_held_releases_the_lease_when_the_block_fails(tmp_path: Path) -> None:
    registry = SqliteRegistryStore(tmp_path / "registry.db")
    with pytest.raises(RuntimeError):
        with held(registry, "p", "rebuild-online:v", "rebuild-online of feature view 'v'"):
            raise RuntimeError("boom")
    assert registry.list_leases("p") == []


def test_a_rebuild_whose_lease_was_taken_over_does_not_swap(repo: Path) -> None:
    fs = FeatureStore(repo, config={"project": "fraud", "registry": "data/registry.db"})
    fs.apply([user, spend_view()])
    fs.materialize_incremental()
    table = fs.snapshot().online_table("user_spend")
    ghost = encode_key(["ghost"])   # a record no source row has: a swap would remove it
    fs.online_store.write_batch({table: [(ghost, Record.of(1, 1, {"amount": 1.0, "n_txn": 1}))]})
    before = fs.online_store.count(table)
    usurper = lease(project="fraud", name="rebuild-online:user_spend")

    def take_over(view: str, n: int) -> None:
        (current,) = fs.registry.list_leases("fraud")
        fs.registry.release_lease(current)      # as if it had expired
        fs.registry.acquire_lease(usurper)

    with pytest.raises(LeaseLostError, match="taken over"):
        fs.rebuild_online(["user_spend"], on_rows=take_over)
    assert fs.online_store.count(table) == before
    assert fs.online_store.read_batch({table: [ghost]})[table][0] is not None
    assert [lz.token for lz in fs.registry.list_leases("fraud")] == [usurper.token]
