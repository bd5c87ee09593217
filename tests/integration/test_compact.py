"""Compaction of a push source's small files (docs/streams.md, "Compaction"): the rows a reader
sees never change (none twice, none missed), while readers run, across a crash at each step
(real SIGKILLs of a compacting subprocess), and a retried push of a compacted batch is still
recognised. Real files, real DuckDB."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
from datetime import timedelta
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow.parquet as pq
import pytest

from skewless import FeatureStore
from skewless.errors import InvalidRequestError, LeaseHeldError
from skewless.kernels.compaction import read_manifest
from skewless.kernels.source import dataset, resolve_source
from skewless.testing.clock import Clock
from skewless.testing.processes import reaped

from .conftest import user
from .test_push import LIVE, NOW, count_view, live_repo, live_view, make_store  # noqa: F401 - fixture

BASE_ROWS = 6   # the copied spend history (conftest)


def push_n(store: FeatureStore, n: int, start: int = 0) -> int:
    rows = 0
    for i in range(start, start + n):
        df = pd.DataFrame({"user_id": [f"u{i}", f"w{i}"],
                           "ts": [pd.Timestamp("2024-02-20") + pd.Timedelta(minutes=i)] * 2,
                           "amount": [float(i), float(-i)], "n_txn": [i, i]})
        store.push("spend_push", df, batch_id=f"b{i:04d}")
        rows += 2
    return rows


def read_rows(repo: Path) -> int:
    """The rows a reader sees now: the folder's files as resolve_source lists them, read by
    DuckDB (what the engines read) and by Arrow (what the reference engine reads)."""
    resolved = resolve_source(live_view().batch_source, repo)
    files = list(resolved.files)
    with duckdb.connect() as con:
        n = con.execute(f"SELECT count(*) FROM read_parquet({files!r})").fetchone()[0]
    assert dataset(resolved).count_rows() == n
    return int(n)


def visible(repo: Path) -> list[str]:
    return sorted(os.path.basename(f) for f in resolve_source(live_view().batch_source, repo).files)


@pytest.fixture
def sq(live_repo: Path) -> FeatureStore:
    store = make_store(live_repo, Clock(NOW))
    store.apply([user, live_view(), count_view()])
    return store


def training(store: FeatureStore) -> pd.DataFrame:
    users = ["u1", "u2", "u3"] + [f"u{i}" for i in range(12)] + [f"w{i}" for i in range(12)]
    entity_df = pd.DataFrame({"user_id": users, "event_timestamp": [NOW] * len(users)})
    return store.get_historical_features(entity_df, ["live_spend:amount", "live_spend:n_txn"]).to_df()


def test_compaction_merges_pushed_files_and_keeps_every_row(sq: FeatureStore, live_repo: Path) -> None:
    pushed = push_n(sq, 12)
    before = training(sq)
    assert read_rows(live_repo) == BASE_ROWS + pushed
    r = sq.compact("spend_push")
    assert sum(r.merged.values()) == 12 and len(r.merged) == 1 and r.rows == pushed
    assert r.files_before == 13 and r.files_after == 2
    # switched: readers read the merged file (and the user's own file), never both copies
    assert visible(live_repo) == sorted(["part-0.parquet", *r.merged])
    assert read_rows(live_repo) == BASE_ROWS + pushed
    pd.testing.assert_frame_equal(training(sq), before)
    # the replaced files are still there for readers that listed the folder before the switch
    assert len(list((live_repo / LIVE).glob("push-*.parquet"))) == 12 and r.pending_delete == 12
    # idempotent: nothing new to merge, nothing deleted before the grace period
    again = sq.compact("spend_push")
    assert again.merged == {} and again.deleted == [] and again.pending_delete == 12
    # after the grace period a run deletes them
    sq.clock = Clock(NOW + timedelta(minutes=11))
    later = sq.compact("spend_push")
    assert len(later.deleted) == 12 and not list((live_repo / LIVE).glob("push-*.parquet"))
    assert read_rows(live_repo) == BASE_ROWS + pushed
    pd.testing.assert_frame_equal(training(sq), before)
    # online == offline still: materialize from the compacted folder
    sq.materialize_incremental(NOW)
    got = sq.get_online_features(["live_spend:amount"], [{"user_id": "w5"}]).to_dict()
    assert got["amount"] == [-5.0]


def test_a_merged_file_merged_again_never_exposes_rows_twice(sq: FeatureStore, live_repo: Path) -> None:
    total = BASE_ROWS + push_n(sq, 3)
    first = sq.compact("spend_push", grace_seconds=0)
    assert len(first.deleted) == 3
    total += push_n(sq, 3, start=3)
    second = sq.compact("spend_push", grace_seconds=0)
    # the first merged file and the 3 new pushes merge into one
    assert sum(second.merged.values()) == 4 and read_rows(live_repo) == total
    assert visible(live_repo) == sorted(["part-0.parquet", *second.merged])
    assert not list((live_repo / LIVE).glob("push-*.parquet"))


def test_a_retried_push_of_a_compacted_batch_lands_once(sq: FeatureStore, live_repo: Path) -> None:
    total = BASE_ROWS + push_n(sq, 4)
    sq.compact("spend_push", grace_seconds=0)
    assert not (live_repo / LIVE / "push-b0002.parquet").exists()
    df = pd.DataFrame({"user_id": ["u2", "w2"], "ts": [pd.Timestamp("2024-02-20 00:02")] * 2,
                       "amount": [2.0, -2.0], "n_txn": [2, 2]})
    report = sq.push("spend_push", df, batch_id="b0002")
    assert report.duplicate and read_rows(live_repo) == total
    with pytest.raises(InvalidRequestError, match="b0002.*already pushed with other rows"):
        sq.push("spend_push", df.assign(amount=[9.0, 9.0]), batch_id="b0002")
    assert read_rows(live_repo) == total


def test_readers_running_during_compaction_never_see_a_row_twice_or_miss_one(
        sq: FeatureStore, live_repo: Path) -> None:
    """A reader thread lists and reads the folder in a loop while the main thread pushes and
    compacts: every count it sees is one of the totals the folder went through."""
    totals = {BASE_ROWS}
    total = BASE_ROWS
    seen: list[int] = []
    errors: list[BaseException] = []
    stop = threading.Event()

    def reader() -> None:
        try:
            while not stop.is_set():
                seen.append(read_rows(live_repo))
        except BaseException as e:   # reported by the main thread
            errors.append(e)

    trained: dict[str, float] = {}

    def trainer() -> None:
        """get_historical_features through the engine, meanwhile: a pushed user's value, once
        visible, never changes or disappears."""
        store = make_store(live_repo, Clock(NOW))
        users = [f"w{i}" for i in range(24)]
        entity_df = pd.DataFrame({"user_id": users, "event_timestamp": [NOW] * len(users)})
        try:
            while not stop.is_set():
                got = store.get_historical_features(entity_df, ["live_spend:amount"]).to_df()
                for u, v in zip(got["user_id"], got["amount"]):
                    if u in trained:
                        assert v == trained[u], (u, v, trained[u])
                    elif v == v and v != -1.0:   # not null, not the default
                        trained[u] = v
        except BaseException as e:
            errors.append(e)

    t = threading.Thread(target=reader)
    t2 = threading.Thread(target=trainer)
    t.start()
    t2.start()
    try:
        for round_ in range(8):
            for i in range(3):   # each push adds 2 rows: a reader may see any of these totals
                total += push_n(sq, 1, start=3 * round_ + i)
                totals.add(total)
            sq.compact("spend_push")           # default grace: nothing deleted under a reader
            assert read_rows(live_repo) == total
    finally:
        stop.set()
        t.join(60)
        t2.join(60)
    assert not errors, errors[0]
    assert trained, "the training reader never ran"
    assert all(trained[f"w{i}"] == -float(i) for i in range(24) if f"w{i}" in trained)
    assert seen and set(seen) <= totals, sorted(set(seen) - totals)
    assert seen == sorted(seen)        # never back: a row, once visible, stays visible
    # past the grace period, with no reader left, the replaced files go
    sq.clock = Clock(NOW + timedelta(hours=1))
    sq.compact("spend_push")
    assert read_rows(live_repo) == total
    assert not list((live_repo / LIVE).glob("push-*.parquet"))


CHILD = textwrap.dedent("""
    import os, signal, sys
    import pathlib
    from skewless import FeatureStore
    from skewless.services import compact as c
    where = sys.argv[2]
    def die(*a, **k):
        os.kill(os.getpid(), signal.SIGKILL)
    if where == "after-temp":             # the merged temp file written, nothing else
        c.marker = die
    elif where == "before-switch":        # markers and manifest entry written
        real = os.replace
        def replace(src, dst):
            if str(dst).endswith(".parquet"):
                die()
            return real(src, dst)
        c.os.replace = replace
    elif where == "mid-delete":           # switched; one replaced file deleted
        real_unlink = pathlib.Path.unlink
        count = [0]
        def unlink(self, missing_ok=False):
            if self.name.startswith("push-"):
                count[0] += 1
                if count[0] == 2:
                    die()
            return real_unlink(self, missing_ok=missing_ok)
        pathlib.Path.unlink = unlink
    from datetime import datetime, timezone
    now = datetime(2024, 3, 1, tzinfo=timezone.utc)   # the test's clock (NOW)
    FeatureStore(sys.argv[1], clock=lambda: now).compact("spend_push", grace_seconds=0)
    print("survived", flush=True)
""")


@pytest.mark.parametrize("where", ["after-temp", "before-switch", "mid-delete"])
def test_a_compaction_killed_at_any_step_loses_nothing_and_finishes_on_rerun(
        sq: FeatureStore, live_repo: Path, where: str) -> None:
    total = BASE_ROWS + push_n(sq, 5)
    with reaped(subprocess.Popen([sys.executable, "-c", CHILD, str(live_repo), where],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)) as proc:
        out, err = proc.communicate(timeout=120)
    assert proc.returncode == -9, (out, err)
    assert read_rows(live_repo) == total            # readers: every row once, right after the kill
    r = sq.compact("spend_push", grace_seconds=0)   # the rerun settles and finishes
    assert read_rows(live_repo) == total
    assert visible(live_repo)[0].startswith("compact-") and len(visible(live_repo)) == 2
    assert not [n for n in os.listdir(live_repo / LIVE) if n.endswith(".tmp") or n.startswith("push-")]
    if where == "mid-delete":
        assert r.merged == {} and len(r.deleted) == 4   # killed before its 2nd deletion
    else:
        assert sum(r.merged.values()) == 5
    again = sq.compact("spend_push", grace_seconds=0)
    assert again.merged == {} and again.deleted == [] and read_rows(live_repo) == total
    assert read_manifest(live_repo / LIVE) == {}       # grace 0: the entry goes on the next run


def test_one_compaction_per_folder_at_a_time(sq: FeatureStore, live_repo: Path) -> None:
    import fcntl
    push_n(sq, 2)
    meta = live_repo / LIVE / "_skewless"
    meta.mkdir(exist_ok=True)
    with open(meta / "compact.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        with pytest.raises(LeaseHeldError, match="another compaction"):
            sq.compact("spend_push")
    assert pq.read_table(live_repo / LIVE / "push-b0000.parquet").num_rows == 2


def test_a_repo_path_with_dot_dot_reads_the_same_rows(sq: FeatureStore, live_repo: Path) -> None:
    total = BASE_ROWS + push_n(sq, 3)
    sq.compact("spend_push")          # switched, replaced files kept (grace)
    odd = live_repo / "data" / ".."
    resolved = resolve_source(live_view().batch_source, odd)
    with duckdb.connect() as con:
        n = con.execute(f"SELECT count(*) FROM read_parquet({list(resolved.files)!r})").fetchone()[0]
    assert n == total


def test_a_glob_batch_source_is_refused_with_nothing_written(live_repo: Path) -> None:
    from skewless.errors import SourceError

    from .test_push import live_source
    store = make_store(live_repo, Clock(NOW))
    store.apply([user, live_view(source=live_source(path=f"{LIVE}/*.parquet"))])
    store.push("spend_push", pd.DataFrame({"user_id": ["a"], "ts": [pd.Timestamp("2024-02-20")],
                                           "amount": [1.0], "n_txn": [1]}))
    before = sorted(os.listdir(live_repo / LIVE))
    with pytest.raises(SourceError, match="glob.*compaction needs a directory batch source"):
        store.compact("spend_push")
    assert sorted(os.listdir(live_repo / LIVE)) == before
