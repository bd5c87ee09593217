"""Exclusive runs (docs/online.md, "Leases"), on every online store.

- A second ``rebuild-online`` of a view being rebuilt is refused with a LeaseHeldError naming
  the holder and its expiry; the first run completes, whole.
- A holder that is alive renews its lease; one that is SIGKILLed blocks the next run only
  until its lease expires, and the next run drops the dead run's staging table.
- A ``materialize`` and a ``push`` racing a rebuild (their online writes land in the live table
  between the rebuild's read and its swap) are not lost online: the rebuild catches up.

Real stores and real concurrency: threads and a subprocess, synchronised on events and on the
subprocess's output, never on sleeps; the one wait is for a lease to expire.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from skewless import Entity, FeatureStore, FeatureView, Field, FileSource, PushSource
from skewless.errors import LeaseHeldError, MaterializationError
from skewless.online import staging_table
from skewless.testing.clock import Clock
from skewless.testing.processes import reaped
from skewless.types import Int64

from .test_online_invariant import ONLINE_STORES, Run, _available

UTC = timezone.utc
T = datetime(2025, 1, 10, tzinfo=UTC)
TS = pa.timestamp("us", "UTC")
N = 2000
BATCH = 200
user = Entity("user", join_keys=["user_id"])
SRC = PushSource("events_push", batch_source=FileSource("data/events", "ts", created_timestamp_column="created"))
VIEW = FeatureView("v", entities=[user], schema=[Field("x", Int64)], source=SRC)


@pytest.fixture(params=sorted(ONLINE_STORES))
def run(request: pytest.FixtureRequest) -> Iterator[Run]:
    _available(request.param)
    r = Run(request.param, "duckdb")
    yield r
    r.close()


def shared_only(run: Run) -> None:
    """These tests run a second FeatureStore (a thread or a process) on the same store."""
    run.require("shared")


def write_events(repo: Path, name: str, users: list[int], ts: datetime, created: datetime,
                 xs: list[int]) -> None:
    (repo / "data" / "events").mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({"user_id": pa.array(users, pa.int64()), "ts": pa.array([ts] * len(users), TS),
                             "created": pa.array([created] * len(users), TS),
                             "x": pa.array(xs, pa.int64())}), repo / "data" / "events" / name)


def config(run: Run) -> dict[str, Any]:
    return run.config()   # the same store for every process of the test (paths: in the repo)


def setup(run: Run, repo: Path, clock: Clock) -> FeatureStore:
    write_events(repo, "base.parquet", list(range(N)), T - timedelta(days=1), T - timedelta(days=1),
                 list(range(N)))
    fs = FeatureStore(repo, config=config(run), clock=clock)
    fs.apply([user, VIEW])
    fs.materialize_incremental()
    return fs


def serve(fs: FeatureStore, users: list[int]) -> list[Any]:
    return fs.get_online_features(["v:x"], [{"user_id": u} for u in users]).to_dict()["x"]


def offline(fs: FeatureStore, users: list[int], at: datetime) -> list[Any]:
    df = pa.table({"user_id": pa.array(users, pa.int64()), "event_timestamp": pa.array([at] * len(users), TS)})
    return fs.get_historical_features(df, ["v:x"]).to_arrow().column("x").to_pylist()


def during_first_batch(work: Any) -> Any:
    """An ``on_rows`` callback that runs ``work`` in another thread once, after the rebuild wrote
    its first batch to its staging table (after its read began, before its swap)."""
    done = threading.Event()
    errors: list[BaseException] = []

    def target() -> None:
        try:
            work()
        except BaseException as e:  # noqa: BLE001 - re-raised by the callback
            errors.append(e)

    def on_rows(view: str, n: int) -> None:
        if done.is_set():
            return
        done.set()
        thread = threading.Thread(target=target)
        thread.start()
        thread.join(300)
        assert not thread.is_alive(), "the concurrent run did not finish"
        if errors:
            raise errors[0]
    return on_rows


# --- two rebuilds ---------------------------------------------------------------------------
def test_a_second_rebuild_is_refused_naming_the_holder(run: Run, tmp_path: Path) -> None:
    fs = setup(run, tmp_path, Clock(T))
    refused: list[LeaseHeldError] = []

    def second_rebuild() -> None:
        other = FeatureStore(tmp_path, config=config(run), clock=lambda: T)
        with pytest.raises(LeaseHeldError) as info:
            other.rebuild_online(["v"], batch_rows=BATCH)
        refused.append(info.value)

    (report,) = fs.rebuild_online(["v"], on_rows=during_first_batch(second_rebuild), batch_rows=BATCH)
    assert report.ok and report.entities == report.stored == N
    (err,) = refused
    assert "rebuild-online of feature view 'v' is already running" in err.message
    assert f"pid {os.getpid()} on host '{socket.gethostname()}'" in err.message
    assert "its lease expires at" in err.message and "nothing was changed" in err.message
    assert err.hint and "lapses at" in err.hint and err.http_status == 409 and err.retryable
    assert err.holder.pid == os.getpid()
    assert fs.registry.list_leases(fs.project) == []        # released at the end
    assert serve(fs, [0, N - 1]) == [0, N - 1]
    (again,) = fs.rebuild_online(["v"])                      # and free for the next run
    assert again.ok


# --- a killed holder ------------------------------------------------------------------------
HOLDER = textwrap.dedent("""
    import json, sys
    from datetime import datetime
    from skewless import FeatureStore
    from skewless.services import rebuild
    repo, cfg, now, lease = sys.argv[1], json.loads(sys.argv[2]), datetime.fromisoformat(sys.argv[3]), float(sys.argv[4])
    fs = FeatureStore(repo, config=cfg, clock=lambda: now)

    def on_rows(view, n):
        print(view, n, flush=True)
        sys.stdin.readline()   # blocks: the parent kills us here

    rebuild.rebuild_online(fs.context, fs.snapshot(), views=["v"], now=now, on_rows=on_rows,
                           batch_rows=%d, lease_seconds=lease)
""" % BATCH)


def test_a_live_holder_renews_and_a_killed_one_blocks_only_until_its_lease_expires(
        run: Run, tmp_path: Path) -> None:
    shared_only(run)
    lease_seconds = 10.0   # renewed every 3.3 s: a holder starved longer than 6 s would lose it
    fs = setup(run, tmp_path, Clock(T))
    with reaped(subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path), json.dumps(config(run)),
                                  T.isoformat(), str(lease_seconds)], stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)) as proc:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.split() == ["v", str(BATCH)], proc.stderr.read() if proc.stderr else ""
        (first,) = fs.registry.list_leases(fs.project)
        assert first.pid == proc.pid and first.name == "rebuild-online:v"
        staging = staging_table(fs.project, "v", first.token)
        assert fs.online_store.count(staging) == BATCH

        # alive and blocked for longer than its lease lasts: it renewed it, and still holds it
        deadline = time.time() + 120
        while time.time() < first.expires + 1:
            assert time.time() < deadline
            time.sleep(0.2)
        (renewed,) = fs.registry.list_leases(fs.project)
        assert renewed.token == first.token and renewed.expires > first.expires
        with pytest.raises(LeaseHeldError, match=f"pid {proc.pid} "):
            fs.rebuild_online(["v"])

        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=60) == -signal.SIGKILL

    (dead,) = fs.registry.list_leases(fs.project)
    deadline = time.time() + 120
    while time.time() <= dead.expires:   # the dead holder's lease lapses on its own
        assert time.time() < deadline
        time.sleep(0.2)
    (report,) = fs.rebuild_online(["v"])
    assert report.ok and report.stored == N
    assert fs.online_store.count(staging) == 0   # the dead run's staging table was dropped
    assert fs.registry.list_leases(fs.project) == []


# --- materialize and push racing a rebuild --------------------------------------------------
def test_materialize_racing_a_rebuild_is_not_lost(run: Run, tmp_path: Path) -> None:
    shared_only(run)
    clock = Clock(T)
    fs = setup(run, tmp_path, clock)
    later = T + timedelta(hours=1)
    changed = list(range(10))

    def materialize_meanwhile() -> None:
        clock.now = later
        # new values after the rebuild's `now`, and a late row (event before it, created after)
        write_events(tmp_path, "new.parquet", changed, T + timedelta(minutes=30), T + timedelta(minutes=30),
                     [1000 + u for u in changed])
        write_events(tmp_path, "late.parquet", [10], T - timedelta(hours=1), T + timedelta(minutes=40), [5000])
        other = FeatureStore(tmp_path, config=config(run), clock=lambda: later)
        other.materialize_incremental()
        assert serve(other, changed + [10]) == [1000 + u for u in changed] + [5000]   # in the live table

    (report,) = fs.rebuild_online(["v"], on_rows=during_first_batch(materialize_meanwhile), batch_rows=BATCH)
    assert report.ok, report
    users = changed + [10, 11, N - 1]
    assert serve(fs, users) == [1000 + u for u in changed] + [5000, 11, N - 1] == offline(fs, users, later)
    (status,) = fs.online_status()
    assert status.watermark == later


def test_a_push_during_a_rebuild_is_online_after_it(run: Run, tmp_path: Path) -> None:
    shared_only(run)
    clock = Clock(T)
    fs = setup(run, tmp_path, clock)
    later = T + timedelta(hours=1)

    def push_meanwhile() -> None:
        clock.now = later
        other = FeatureStore(tmp_path, config=config(run), clock=lambda: later)
        other.push("events_push", {"user_id": [0, 1, 2], "ts": [T + timedelta(minutes=30)] * 3,
                                   "x": [2000, 2001, 2002]})
        other.push("events_push", {"user_id": [3], "ts": [T - timedelta(hours=2)], "x": [7000]})  # late
        assert serve(other, [0, 1, 2, 3]) == [2000, 2001, 2002, 7000]   # in the live table

    (report,) = fs.rebuild_online(["v"], on_rows=during_first_batch(push_meanwhile), batch_rows=BATCH)
    assert report.ok, report
    users = [0, 1, 2, 3, 4]
    assert serve(fs, users) == [2000, 2001, 2002, 7000, 4] == offline(fs, users, later)


def test_a_file_landing_after_the_catch_up_read_is_not_a_verification_failure(
        run: Run, tmp_path: Path) -> None:
    """Batch files land whenever their producer writes them, lease or not. One that lands after
    the catch-up has read the source (but before the verification's offline join) is not a
    difference the rebuild made: the rebuild catches up again and verifies again, and the
    rebuilt table serves the new file like the offline join."""
    clock = Clock(T)
    fs = setup(run, tmp_path, clock)
    later = T + timedelta(hours=1)
    users = list(range(N))
    seen = [0]

    def on_rows(view: str, n: int) -> None:
        seen[0] += n
        if seen[0] >= N and clock.now == T:     # the build is done: the clock moves on
            clock.now = later
            write_events(tmp_path, "a.parquet", [0], T + timedelta(minutes=10), T + timedelta(minutes=10), [7])
        elif seen[0] > N and not (tmp_path / "data" / "events" / "b.parquet").exists():
            # the catch-up is reading a.parquet: b.parquet lands after its read began
            write_events(tmp_path, "b.parquet", users, T + timedelta(minutes=20),
                         T + timedelta(minutes=20), [9000 + u for u in users])

    (report,) = fs.rebuild_online(["v"], on_rows=on_rows, batch_rows=BATCH)
    assert (tmp_path / "data" / "events" / "b.parquet").exists()
    assert report.ok, report.mismatches[:3]
    assert report.caught_up >= N + 1           # a.parquet, then b.parquet in a second round
    assert serve(fs, users[:50]) == offline(fs, users[:50], later) == [9000 + u for u in users[:50]]


# --- apply racing a rebuild -----------------------------------------------------------------
@pytest.mark.parametrize("operation", ["rebuild", "incremental", "window"])
def test_a_view_deleted_during_a_run_leaves_no_table_or_state_behind(
        run: Run, tmp_path: Path, operation: str) -> None:
    """The apply drops the view's table while a rebuild builds or a materialization writes; the
    swap, or the run's next batches, would re-create the table, and its coverage would be
    recorded under a retired key, for no one to read or drop: the run removes both and says
    why (docs/online.md, "rebuild-online")."""
    shared_only(run)
    fs = setup(run, tmp_path, Clock(T))
    table = fs.snapshot().online_table("v")

    def delete_meanwhile() -> None:
        other = FeatureStore(tmp_path, config=config(run), clock=lambda: T)
        other.apply([], objects_to_delete=[other.get_feature_view("v")])
        assert other.online_store.count(table) == 0

    on_rows = during_first_batch(delete_meanwhile)
    with pytest.raises(MaterializationError, match="the view was deleted by an apply") as info:
        if operation == "rebuild":
            fs.rebuild_online(["v"], on_rows=on_rows, batch_rows=BATCH)
        elif operation == "incremental":
            fs.materialize_incremental(on_rows=on_rows, batch_rows=BATCH)
        else:
            fs.materialize(T - timedelta(days=30), T, on_rows=on_rows, batch_rows=BATCH)
    again = "rebuild-online" if operation == "rebuild" else "materialize-incremental"
    assert again in (info.value.hint or "")
    assert fs.online_store.count(table) == 0
    assert fs.registry.list_state(fs.project, "materialization") == {}
    assert fs.registry.list_leases(fs.project) == []


def test_a_materialize_saving_its_coverage_between_the_swap_and_the_catch_up_is_not_lost(
        run: Run, tmp_path: Path) -> None:
    """The narrowest interleaving: a materialization writes to the live table before the swap
    and records its coverage after the rebuild recorded its own, just before the catch-up
    starts. The catch-up must still write back what the swap replaced, not trust that
    coverage (the records it speaks of were in the table the swap retired)."""
    shared_only(run)
    clock = Clock(T)
    fs = setup(run, tmp_path, clock)
    later = T + timedelta(hours=1)
    changed = list(range(10))
    other = FeatureStore(tmp_path, config=config(run), clock=lambda: later)
    wrote, rebuild_saved, m_saved = threading.Event(), threading.Event(), threading.Event()
    errors: list[BaseException] = []
    m_set_state, r_set_state = other.registry.set_state, fs.registry.set_state

    def m_save(*args: Any) -> None:          # the materialization, once its rows are written
        wrote.set()
        assert rebuild_saved.wait(300)
        m_set_state(*args)
        m_saved.set()

    def r_save(*args: Any) -> None:          # the rebuild, right after its swap
        r_set_state(*args)
        if not rebuild_saved.is_set():
            rebuild_saved.set()
            assert m_saved.wait(300)

    def materialize() -> None:
        try:
            other.materialize_incremental()
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)
            wrote.set()

    thread = threading.Thread(target=materialize)

    def on_rows(view: str, n: int) -> None:
        if thread.is_alive() or wrote.is_set():
            return
        clock.now = later
        # created before every other row: only its event time (after the rebuild's `now`) brings it
        write_events(tmp_path, "new.parquet", changed, T + timedelta(minutes=30), T - timedelta(days=2),
                     [1000 + u for u in changed])
        thread.start()
        assert wrote.wait(300)
        assert serve(other, changed) == [1000 + u for u in changed]   # in the live table

    other.registry.set_state = m_save  # type: ignore[method-assign]
    fs.registry.set_state = r_save  # type: ignore[method-assign]
    try:
        (report,) = fs.rebuild_online(["v"], on_rows=on_rows, batch_rows=BATCH)
    finally:
        rebuild_saved.set()
        m_saved.set()
        thread.join(300)
    assert errors == [] and report.ok, (errors, report)
    assert serve(fs, changed) == [1000 + u for u in changed] == offline(fs, changed, later)
