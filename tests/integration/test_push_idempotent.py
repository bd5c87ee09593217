"""A push is idempotent (docs/online.md#push): its offline file is named by the batch id (the
caller's, or a digest of the rows), so a retry after a timeout, a crash or a SIGKILL lands its
rows offline once and redoes the online write. Faults are real: a pushing subprocess is
SIGKILLed while its online write waits on a lock the test holds on the SQLite online store."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from skewless import FeatureStore
from skewless.errors import InvalidRequestError
from skewless.testing.clock import Clock
from skewless.testing.processes import reaped

from .conftest import user
from .test_push import LIVE, NOW, batch, count_view, live_repo, live_view, make_store  # noqa: F401 - fixture

CHILD = textwrap.dedent("""
    import sys
    import pandas as pd
    from skewless import FeatureStore
    batch_id = sys.argv[2] if len(sys.argv) > 2 and sys.argv[2] else None
    df = pd.DataFrame({"user_id": ["u1", "u7"],
                       "ts": [pd.Timestamp("2024-02-20"), pd.Timestamp("2024-02-21")],
                       "amount": [150.0, 7.0], "n_txn": [4, 1]})
    FeatureStore(sys.argv[1]).push("spend_push", df, batch_id=batch_id)
    print("pushed", flush=True)
""")


@pytest.fixture
def sq(live_repo: Path) -> FeatureStore:
    store = make_store(live_repo, Clock(NOW))
    store.apply([user, live_view(), count_view()])
    store.materialize_incremental(NOW)
    return store


def offline_rows(repo: Path, user_id: str) -> int:
    """Rows of ``user_id`` in every file of the batch source (what training reads)."""
    return sum(pq.read_table(p).to_pandas()["user_id"].eq(user_id).sum()
               for p in (repo / LIVE).glob("*.parquet"))


def pushed_files(repo: Path) -> list[Path]:
    return sorted((repo / LIVE).glob("push-*.parquet"))


def wait_for(cond, proc: subprocess.Popen, what: str, deadline_s: float = 90.0) -> None:
    end = time.monotonic() + deadline_s
    while not cond():
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"the pushing process ended before {what}: rc={proc.returncode}\n{out}\n{err}")
        assert time.monotonic() < end, f"timed out waiting for {what}"
        time.sleep(0.05)


@pytest.mark.parametrize("batch_id", ["", "orders-000123"], ids=["derived", "given"])
def test_a_retry_after_sigkill_lands_its_rows_once(sq: FeatureStore, live_repo: Path, batch_id: str) -> None:
    """The child's offline write lands, then its online write waits for the lock the test
    holds: SIGKILL it there (the caller never got an answer), then retry the same batch."""
    assert offline_rows(live_repo, "u7") == 0
    lock = sqlite3.connect(live_repo / "data/online.db", isolation_level=None)
    lock.execute("BEGIN EXCLUSIVE")
    try:
        with reaped(subprocess.Popen([sys.executable, "-c", CHILD, str(live_repo), batch_id],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)) as proc:
            wait_for(lambda: bool(pushed_files(live_repo)), proc, "its offline file landed")
            time.sleep(0.2)   # well inside the online write's 30 s wait for the lock
            assert proc.poll() is None, "the child must still be waiting on the online store"
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
        assert proc.returncode == -signal.SIGKILL
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    assert offline_rows(live_repo, "u7") == 1
    assert sq.get_online_features(["live_spend:amount"], [{"user_id": "u7"}]).statuses["amount"] == ["NOT_FOUND"]

    report = sq.push("spend_push", batch(), batch_id=batch_id or None)   # the caller retries
    assert report.duplicate and report.offline_rows == 0
    assert len(pushed_files(live_repo)) == 1 and offline_rows(live_repo, "u7") == 1
    assert report.online_records == {"live_spend": 2, "live_count": 2}
    online = sq.get_online_features(["live_spend:amount"], [{"user_id": "u7"}, {"user_id": "u1"}])
    assert online.to_dict()["amount"] == [7.0, 150.0]
    labels = pd.DataFrame({"user_id": ["u7"], "event_timestamp": [pd.Timestamp(NOW)]})
    assert sq.get_historical_features(labels, ["live_spend:amount"]).to_df()["amount"].tolist() == [7.0]
    # the online record is the offline row exactly: its created time is the first try's
    created = pq.read_table(pushed_files(live_repo)[0]).column("created").to_pylist()
    assert len(set(created)) == 1 and created[0] != NOW.replace(tzinfo=None)


def test_same_rows_twice_land_once_new_rows_land(sq: FeatureStore, live_repo: Path) -> None:
    first = sq.push("spend_push", batch())
    again = sq.push("spend_push", batch())
    assert not first.duplicate and again.duplicate and first.batch_id == again.batch_id
    assert again.offline_file == first.offline_file and offline_rows(live_repo, "u7") == 1
    # a pandas frame, an Arrow table and a dict of the same rows are the same batch
    import pyarrow as pa
    assert sq.push("spend_push", pa.Table.from_pandas(batch(), preserve_index=False)).duplicate
    other = sq.push("spend_push", batch(amount=[151.0, 8.0]))
    assert not other.duplicate and offline_rows(live_repo, "u7") == 2
    assert sq.get_online_features(["live_spend:amount"], [{"user_id": "u7"}]).to_dict()["amount"] == [8.0]


def test_a_batch_id_reused_for_other_rows_is_refused(sq: FeatureStore, live_repo: Path) -> None:
    sq.push("spend_push", batch(), batch_id="b-1")
    before = sorted((live_repo / LIVE).iterdir())
    with pytest.raises(InvalidRequestError, match=r"batch_id 'b-1' was already pushed with other rows"):
        sq.push("spend_push", batch(amount=[1.0, 2.0]), batch_id="b-1")
    assert sorted((live_repo / LIVE).iterdir()) == before
    assert sq.get_online_features(["live_spend:amount"], [{"user_id": "u7"}]).to_dict()["amount"] == [7.0]


@pytest.mark.parametrize("bad", ["", "../escape", ".hidden", "a/b", "x" * 129, 42])
def test_a_bad_batch_id_is_refused_before_anything(sq: FeatureStore, live_repo: Path, bad) -> None:
    with pytest.raises(InvalidRequestError, match="batch_id"):
        sq.push("spend_push", batch(), batch_id=bad)
    assert pushed_files(live_repo) == []


def test_concurrent_retries_write_one_file(sq: FeatureStore, live_repo: Path) -> None:
    stores = [make_store(live_repo, Clock(NOW)) for _ in range(4)]
    reports: list = []
    threads = [threading.Thread(target=lambda s=s: reports.append(s.push("spend_push", batch(), to="offline")))
               for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(reports) == 4 and sum(not r.duplicate for r in reports) == 1
    assert len(pushed_files(live_repo)) == 1 and offline_rows(live_repo, "u7") == 1
    assert not [p for p in (live_repo / LIVE).iterdir() if p.name.startswith(".")]   # no temp files
