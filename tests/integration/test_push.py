"""FeatureStore.push: offline first, then online (only if newer); a bad batch is rejected whole
with nothing written; pushed rows are read online (read-after-write) and offline, survive
``rebuild-online`` and keep online == offline at the push time. Real stores, no mocks: SQLite,
and the real Redis at 127.0.0.1:6379 under a project of its own (skipped without one unless
CI_REQUIRE_REDIS=1)."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from skewless import FeatureStore, FeatureView, Field, FileSource, PushSource
from skewless.errors import (DefinitionError, InvalidRequestError, OnlineStoreError, PlanError,
                             UnknownObjectError)
from skewless.testing.online import store_contents
from skewless.types import Float64, Int64, String
from skewless.testing.clock import Clock
from skewless.testing.redis_server import purge_project, require_shared_redis

from .conftest import user

UTC = timezone.utc
NOW = datetime(2024, 3, 1, tzinfo=UTC)
LIVE = "data/live"
SPEND = ["live_spend:amount", "live_spend:n_txn"]
REDIS = "127.0.0.1:6379"


def live_source(**kw: Any) -> PushSource:
    batch = dict(path=LIVE, timestamp_field="ts", created_timestamp_column="created")
    batch.update(kw)
    return PushSource("spend_push", FileSource(**batch))  # type: ignore[arg-type]


def live_view(**kw: Any) -> FeatureView:
    args: dict[str, Any] = dict(name="live_spend", entities=[user],
                                schema=[Field("amount", Float64, default=-1.0), Field("n_txn", Int64)],
                                source=live_source(), ttl=None)
    args.update(kw)
    return FeatureView(**args)


def count_view() -> FeatureView:
    """A second view fed by the same push source, with a TTL."""
    return FeatureView(name="live_count", entities=[user], schema=[Field("n_txn", Int64)],
                       source=live_source(), ttl=timedelta(days=30))


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


@pytest.fixture
def live_repo(repo: Path) -> Path:
    """The conftest repo plus a directory batch source holding the spend history."""
    (repo / LIVE).mkdir()
    shutil.copy(repo / "data/spend.parquet", repo / LIVE / "part-0.parquet")
    return repo


def make_store(repo: Path, clock: Clock, online: str = "sqlite", project: str = "fraud",
               engine: str = "duckdb") -> FeatureStore:
    online_cfg = ({"type": "sqlite", "path": "data/online.db"} if online == "sqlite" else
                  {"type": "redis", "connection_string": online})
    return FeatureStore(repo, config={"project": project, "registry": "data/registry.db",
                                      "offline_store": {"type": engine},
                                      "online_store": online_cfg}, clock=clock)


@pytest.fixture(params=["sqlite", "redis"])
def fs(request: pytest.FixtureRequest, live_repo: Path, clock: Clock) -> Iterator[FeatureStore]:
    """Two views fed by one push source, materialized at NOW, on SQLite and on Redis."""
    if request.param == "redis":
        require_shared_redis(REDIS)
    online = "sqlite" if request.param == "sqlite" else REDIS
    project = "fraud" if request.param == "sqlite" else f"push_{uuid.uuid4().hex[:12]}"
    store = make_store(live_repo, clock, online, project)
    store.apply([user, live_view(), count_view()])
    store.materialize_incremental(NOW)
    yield store
    store.online_store.close()
    if request.param == "redis":
        left = purge_project(project, REDIS)
        assert not left, f"keys left behind: {left[:5]}"


@pytest.fixture
def sq(live_repo: Path, clock: Clock) -> FeatureStore:
    store = make_store(live_repo, clock)
    store.apply([user, live_view(), count_view()])
    store.materialize_incremental(NOW)
    return store


def batch(**cols: list[Any]) -> pd.DataFrame:
    base: dict[str, list[Any]] = {"user_id": ["u1", "u7"],
                                  "ts": [pd.Timestamp("2024-02-20"), pd.Timestamp("2024-02-21")],
                                  "amount": [150.0, 7.0], "n_txn": [4, 1]}
    base.update(cols)
    return pd.DataFrame(base)


def online(store: FeatureStore, users: list[str], features: list[str] = SPEND) -> dict[str, list[Any]]:
    return store.get_online_features(features, [{"user_id": u} for u in users]).to_dict()


def files(repo: Path) -> list[str]:
    return sorted(os.listdir(repo / LIVE))


# --- read after write ---------------------------------------------------------------------------

def test_push_then_read_online(fs: FeatureStore) -> None:
    assert online(fs, ["u1", "u7"])["amount"] == [140.0, None]
    report = fs.push("spend_push", batch())
    assert report.rows == report.offline_rows == 2
    assert report.online_records == {"live_spend": 2, "live_count": 2}
    got = fs.get_online_features(SPEND + ["live_count:n_txn"], [{"user_id": "u1"}, {"user_id": "u7"}],
                                 full_feature_names=True)
    assert got.to_dict()["live_spend__amount"] == [150.0, 7.0]
    assert got.to_dict()["live_spend__n_txn"] == [4, 1]
    assert got.to_dict()["live_count__n_txn"] == [4, 1]
    assert got.statuses["live_spend__amount"] == ["PRESENT", "PRESENT"]
    assert got.event_timestamps["live_spend__amount"] == [datetime(2024, 2, 20, tzinfo=UTC),
                                                          datetime(2024, 2, 21, tzinfo=UTC)]


def test_latest_row_per_entity_and_only_if_newer(fs: FeatureStore) -> None:
    # u1 twice in one batch: the later event wins; u2's pushed row is older than its stored
    # Jan 14 row: the online value stays, but the row still lands offline.
    fs.push("spend_push", batch(user_id=["u1", "u1", "u2"], amount=[151.0, 150.0, 1.0], n_txn=[5, 4, 1],
                                ts=[pd.Timestamp("2024-02-21"), pd.Timestamp("2024-02-20"),
                                    pd.Timestamp("2024-01-01")]))
    assert online(fs, ["u1", "u2"])["amount"] == [151.0, 89.0]
    hist = fs.get_historical_features(pd.DataFrame({"user_id": ["u2"], "event_timestamp": [
        pd.Timestamp("2024-01-05", tz="UTC")]}), ["live_spend:amount"]).to_df()
    assert hist["amount"].tolist() == [1.0]


# --- offline ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("engine", ["duckdb", "reference"])
def test_push_then_historical(live_repo: Path, clock: Clock, engine: str) -> None:
    store = make_store(live_repo, clock, engine=engine)
    store.apply([user, live_view()])
    store.push("spend_push", batch(), to="offline")
    labels = pd.DataFrame({"user_id": ["u1", "u1", "u7", "u7"],
                           "event_timestamp": pd.to_datetime(["2024-02-10", "2024-02-25", "2024-02-20",
                                                              "2024-02-22"], utc=True)})
    got = store.get_historical_features(labels, SPEND).to_df()
    assert got["amount"].tolist()[:2] == [140.0, 150.0]
    assert pd.isna(got["amount"].tolist()[2]) and got["amount"].tolist()[3] == 7.0


def test_offline_file_is_atomic_and_matches_existing_files(sq: FeatureStore, live_repo: Path) -> None:
    report = sq.push("spend_push", pa.table({"user_id": ["u1"], "ts": [datetime(2024, 2, 20)],
                                             "amount": [150], "n_txn": [4]}))
    name = Path(report.offline_file or "").name
    # named by the batch id, here derived from the rows (docs/online.md#push: idempotent)
    assert report.batch_id and len(report.batch_id) == 32 and not report.duplicate
    assert name == f"push-{report.batch_id}.parquet"
    assert files(live_repo) == sorted(["part-0.parquet", name])  # no temp file left behind
    existing = pq.read_schema(live_repo / LIVE / "part-0.parquet").remove_metadata()
    pushed = pq.read_table(report.offline_file)
    assert pushed.schema.remove_metadata() == existing
    row = pushed.to_pylist()[0]
    assert row["amount"] == 150.0 and row["n_txn"] == 4
    # no created timestamp given: the push time, so incremental runs see the row as new
    assert row["created"] == datetime(2024, 3, 1)


def test_created_timestamp_given_is_kept(sq: FeatureStore) -> None:
    report = sq.push("spend_push", batch(created=[pd.Timestamp("2024-02-22")] * 2), to="offline")
    assert pq.read_table(report.offline_file).column("created").to_pylist() == [datetime(2024, 2, 22)] * 2


def test_dict_of_columns_with_iso_timestamps(sq: FeatureStore) -> None:
    sq.push("spend_push", {"user_id": ["u1"], "ts": ["2024-02-20T10:00:00+01:00"], "amount": [150.5],
                           "n_txn": [4]})
    got = sq.get_online_features(["live_spend:amount"], [{"user_id": "u1"}])
    assert got.to_dict()["amount"] == [150.5]
    assert got.event_timestamps["amount"] == [datetime(2024, 2, 20, 9, tzinfo=UTC)]


def test_offline_push_reaches_online_through_materialize_incremental(sq: FeatureStore, clock: Clock) -> None:
    before = store_contents(sq)
    sq.push("spend_push", batch(ts=[pd.Timestamp("2024-02-10"), pd.Timestamp("2024-02-11")]), to="offline")
    assert store_contents(sq) == before  # to="offline" writes nothing online
    # Feb 10 is before the watermark (NOW): only the created time (filled with the push time)
    # makes the incremental run pick the rows up.
    clock.now = NOW + timedelta(hours=1)
    sq.materialize_incremental()
    assert online(sq, ["u1", "u7"])["amount"] == [150.0, 7.0]


def test_online_only_push_is_not_rebuildable(sq: FeatureStore, live_repo: Path) -> None:
    report = sq.push("spend_push", batch(), to="online")
    assert report.offline_file is None and report.offline_rows == 0
    assert files(live_repo) == ["part-0.parquet"]
    assert online(sq, ["u1", "u7"])["amount"] == [150.0, 7.0]
    sq.rebuild_online()  # documented: rows pushed online only are not in the offline history
    assert online(sq, ["u1", "u7"])["amount"] == [140.0, None]


# --- online == offline -------------------------------------------------------------------------------

def _offline_at(store: FeatureStore, users: list[str], t: datetime) -> dict[str, list[Any]]:
    labels = pd.DataFrame({"user_id": users, "event_timestamp": [t] * len(users)})
    table = store.get_historical_features(labels, SPEND + ["live_count:n_txn"],
                                          full_feature_names=True).to_arrow()
    return {c: table.column(c).to_pylist() for c in table.column_names if "__" in c}


def _online_at(store: FeatureStore, users: list[str]) -> dict[str, list[Any]]:
    got = store.get_online_features(SPEND + ["live_count:n_txn"], [{"user_id": u} for u in users],
                                    full_feature_names=True).to_dict()
    return {k: v for k, v in got.items() if "__" in k}


def test_invariant_at_push_time(fs: FeatureStore, clock: Clock) -> None:
    users = ["u1", "u2", "u3", "u7", "u9"]
    assert _online_at(fs, users) == _offline_at(fs, users, NOW)
    fs.push("spend_push", batch(user_id=["u1", "u2", "u7"], amount=[150.0, 1.0, None], n_txn=[4, 2, 1],
                                ts=[pd.Timestamp("2024-02-20"), pd.Timestamp("2024-01-02"),
                                    pd.Timestamp("2024-03-01")]))  # u7 exactly at the push time
    got, want = _online_at(fs, users), _offline_at(fs, users, NOW)
    assert got == want
    # u2's pushed Jan 2 row is older than its Jan 14 row: offline and online both keep 89.0;
    # u7's row says amount is null (PRESENT, but null), u9 has nothing (on_missing="null").
    assert got["live_spend__amount"] == [150.0, 89.0, 2100.0, None, None]
    assert got["live_count__n_txn"] == [4, None, 7, 1, None]  # u2: Jan 14 is past the 30-day ttl


def test_rebuild_online_reproduces_pushed_values(fs: FeatureStore, clock: Clock) -> None:
    fs.push("spend_push", batch())
    clock.now = NOW + timedelta(minutes=5)
    fs.push("spend_push", batch(user_id=["u3"], ts=[pd.Timestamp("2024-03-01 00:01")], amount=[3.0],
                                n_txn=[3]))
    before = store_contents(fs)
    reports = fs.rebuild_online()
    assert all(r.ok for r in reports), reports
    assert store_contents(fs) == before


# --- bad batches: rejected whole, nothing written ----------------------------------------------------

BAD = {
    "missing column": (batch().drop(columns=["n_txn"]), r"missing column\(s\) \['n_txn'\]"),
    "wrong type": (batch(amount=["a lot", 7.0]), r"column 'amount': str values where Float64 is expected: row 0"),
    "whole column of the wrong type": (batch(user_id=[1, 2]),
                                       r"column 'user_id': has type int64, expected String.*rows \[0, 1\]"),
    "fractional int": (batch(n_txn=[1.0, 1.5]), r"column 'n_txn': value 1\.5 does not fit Int64 \(float64 over Int64: every value must be a "
                       r"whole number.*row 1"),
    "null key": (batch(user_id=["u1", None]), r"column 'user_id': null join key in row 1"),
    "null timestamp": (batch(ts=[pd.Timestamp("2024-02-01"), None]),
                       r"column 'ts': null event timestamp in row 1"),
    "future timestamp": (batch(ts=[pd.Timestamp("2024-02-01"), pd.Timestamp("2024-03-02")]),
                         r"column 'ts': event time after the push time .* row 1"),
    "unknown column": (batch(amout=[1.0, 2.0]), r"unknown column\(s\) \['amout'\]"),
    "not a frame": ([{"user_id": "u1"}], r"must be a pandas DataFrame, a pyarrow Table or a dict"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_batch_rejected_whole(fs: FeatureStore, live_repo: Path, case: str) -> None:
    data, message = BAD[case]
    before, listing = store_contents(fs), files(live_repo)
    with pytest.raises(InvalidRequestError, match=message) as e:
        fs.push("spend_push", data)
    assert e.value.http_status == 400
    assert "nothing was written" in str(e.value) or case == "not a frame"
    assert files(live_repo) == listing
    assert store_contents(fs) == before


def test_every_problem_named_at_once_with_rows(sq: FeatureStore) -> None:
    rows = 25
    bad = pd.DataFrame({"user_id": ["u1"] * rows, "ts": [pd.Timestamp("2024-02-01")] * rows,
                        "amount": ["x"] * rows, "n_txn": [1] * rows, "extra": [0] * rows})
    with pytest.raises(InvalidRequestError) as e:
        sq.push("spend_push", bad)
    text = str(e.value)
    assert "rows [0, 1, 2, 3, 4, 5, 6, 7, 8, 9] and 15 more" in text
    assert "unknown column(s) ['extra']" in text and "expected columns" in text


def test_unknown_source_and_bad_to(sq: FeatureStore, live_repo: Path) -> None:
    with pytest.raises(UnknownObjectError, match="did you mean 'spend_push'") as e:
        sq.push("spend_psh", batch())
    assert e.value.http_status == 404
    with pytest.raises(InvalidRequestError, match="valid values: online, offline, online_and_offline"):
        sq.push("spend_push", batch(), to="both")
    assert files(live_repo) == ["part-0.parquet"]


def test_online_failure_after_offline_write_says_rows_are_safe(live_repo: Path, clock: Clock) -> None:
    pytest.importorskip("redis")
    store = make_store(live_repo, clock, online="127.0.0.1:1", project="pushfail")
    store.apply([user, live_view()])
    with pytest.raises(OnlineStoreError) as e:
        store.push("spend_push", batch())
    assert "safe offline" in str(e.value) and "rebuild-online" in (e.value.hint or "")
    assert len(files(live_repo)) == 2  # offline first: the rows landed
    offline = store.get_historical_features(pd.DataFrame({"user_id": ["u7"], "event_timestamp": [NOW]}),
                                            ["live_spend:amount"]).to_df()
    assert offline["amount"].tolist() == [7.0]
    # to="offline" never touches the online store; the same batch again is a retry: its rows
    # are offline already, so they are not written twice
    again = store.push("spend_push", batch(), to="offline")
    assert again.duplicate and again.offline_rows == 0 and len(files(live_repo)) == 2
    other = batch().assign(amount=[8.0, 9.0])
    assert store.push("spend_push", other, to="offline").offline_rows == 2


# --- definitions, apply, plan ---------------------------------------------------------------------

def test_field_mapping_is_applied_in_reverse(live_repo: Path, clock: Clock) -> None:
    d = live_repo / "data/mapped"
    d.mkdir()
    pd.read_parquet(live_repo / LIVE / "part-0.parquet").rename(columns={"amount": "amt"}).to_parquet(
        d / "part-0.parquet")
    view = live_view(source=PushSource("mapped_push", FileSource(
        "data/mapped/*.parquet", "ts", created_timestamp_column="created", field_mapping={"amt": "amount"})))
    store = make_store(live_repo, clock)
    store.apply([user, view])
    with pytest.raises(InvalidRequestError, match="rename 'amt' to 'amount'"):
        store.push("mapped_push", batch().rename(columns={"amount": "amt"}))
    report = store.push("mapped_push", batch())
    assert "amt" in pq.read_schema(report.offline_file).names
    assert online(store, ["u1"])["amount"] == [150.0]


def test_apply_and_plan_with_a_push_source(live_repo: Path, clock: Clock) -> None:
    store = make_store(live_repo, clock)
    plain = live_view(source=FileSource(LIVE, "ts", created_timestamp_column="created"))
    store.apply([user, plain])
    plan = store.plan([live_view()])
    assert "push source: none -> 'spend_push'" in plan.render() and not plan.breaking
    store.apply([live_view()])
    assert store.get_feature_view("live_spend") == live_view()
    assert store.get_feature_view("live_spend").push_source == live_source()
    # two views disagreeing on one push source's definition
    other = FeatureView(name="other", entities=[user], schema=[Field("n_txn", Int64)],
                        source=PushSource("spend_push", FileSource(LIVE, "ts")))
    with pytest.raises(PlanError, match="push source 'spend_push' is defined differently"):
        store.plan([other])


def test_hive_partitioned_batch_source_is_refused_at_apply(live_repo: Path, clock: Clock) -> None:
    from .conftest import pair
    from skewless.types import String
    view = FeatureView(name="pair_push", entities=[pair], schema=[Field("last_country", String)],
                       source=PushSource("pair_push", FileSource("data/pair", "ts")))
    with pytest.raises(PlanError, match=r"hive-partitioned \(day=2024-01-01, day=2024-01-05\)"):
        make_store(live_repo, clock).apply([pair, view])


def test_single_file_batch_source_is_a_definition_error() -> None:
    with pytest.raises(DefinitionError, match="single file") as e:
        PushSource("p", FileSource("data/spend.parquet", "ts"))
    assert "FileSource('data/spend'" in (e.value.hint or "")


def test_describe_shows_the_push_source(sq: FeatureStore, live_repo: Path) -> None:
    from typer.testing import CliRunner

    from skewless.cli import app
    result = CliRunner().invoke(app, ["--repo", str(live_repo), "describe", "live_spend"],
                                env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "spend_push (push writes into data/live)" in result.output
    assert "data/live" in result.output


def test_push_is_read_back_at_once_with_the_hot_key_cache_on(live_repo: Path, clock: Clock) -> None:
    store = FeatureStore(live_repo, clock=clock, config={
        "project": "fraud", "registry": "data/registry.db",
        "online_store": {"type": "sqlite", "path": "data/online.db"},
        "cache": {"ttl_seconds": 3600, "max_entries": 100}})
    store.apply([user, live_view()])
    store.materialize_incremental(NOW)
    assert store.get_online_features(SPEND, [{"user_id": "u1"}]).to_dict()["amount"] == [140.0]
    assert store.get_online_features(SPEND, [{"user_id": "u1"}]).to_dict()["amount"] == [140.0]
    assert store.cache.hits == 1
    store.push("spend_push", {"user_id": ["u1"], "ts": [NOW - timedelta(hours=1)],
                              "amount": [7.5], "n_txn": [4]})
    assert store.get_online_features(SPEND, [{"user_id": "u1"}]).to_dict()["amount"] == [7.5]


@pytest.mark.parametrize("online_store", ["sqlite", "redis"])
def test_a_push_is_checked_against_the_registry_as_it_is_now(live_repo: Path, clock: Clock,
                                                             online_store: str) -> None:
    """A process whose serving cache still holds the old definition (a long
    registry_cache_ttl_seconds, or a server) must not write a file the new definition refuses:
    that would break training, materialization and rebuild of the view for good."""
    if online_store == "redis":
        require_shared_redis(REDIS)
    project = f"push_{uuid.uuid4().hex[:12]}"
    online_cfg = ({"type": "sqlite", "path": "data/online.db"} if online_store == "sqlite" else
                  {"type": "redis", "connection_string": REDIS})

    def store() -> FeatureStore:
        return FeatureStore(live_repo, config={
            "project": project, "registry": "data/registry.db", "online_store": online_cfg,
            "registry_cache_ttl_seconds": 3600}, clock=clock)

    old = store()
    old.apply([user, live_view()])
    old.materialize_incremental(NOW)
    assert online(old, ["u1"])["amount"][0] is not None
    # Another process retypes 'amount' (Float64 -> String) over a rewritten source, forced.
    part = live_repo / LIVE / "part-0.parquet"
    table = pq.read_table(part)
    i = table.schema.get_field_index("amount")
    pq.write_table(table.set_column(i, "amount", pc_to_text(table.column("amount"))), part)
    new = store()
    new.apply([user, live_view(schema=[Field("amount", String), Field("n_txn", Int64)])], force=True)
    listing = files(live_repo)
    try:
        with pytest.raises(InvalidRequestError, match="amount"):
            old.push("spend_push", batch())          # floats for a String field: refused
        assert files(live_repo) == listing            # nothing written offline
        entities = pd.DataFrame({"user_id": ["u1"], "event_timestamp": [NOW]})
        assert new.get_historical_features(entities, ["live_spend:amount"]).to_df()["amount"].notna().all()
        # a batch for the new definition goes through the old process at once
        old.push("spend_push", batch(amount=["a", "b"]))
        assert online(old, ["u1", "u7"])["amount"] == ["a", "b"]
    finally:
        old.online_store.close()
        new.online_store.close()
        if online_store == "redis":
            assert not purge_project(project, REDIS)


def pc_to_text(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """A float column as its text (``120.0`` -> ``"x120.0"``): the rewritten source of a retype."""
    return pa.chunked_array([pa.array([None if v is None else f"x{v}" for v in column.to_pylist()],
                                      pa.string())])


def test_a_delayed_push_decides_usability_once_its_file_has_landed(live_repo: Path) -> None:
    """A row landing between the push's validation and its offline write being done is written
    online by the push: a materialization listing the files before that instant ran up to an
    earlier end, so no row can fall between the two (docs/online.md, "Availability delay")."""
    landed = NOW + timedelta(seconds=2)

    def clock() -> datetime:   # the clock moves once the pushed file is in the directory
        return landed if any((live_repo / LIVE).glob("push-*.parquet")) else NOW
    fs = FeatureStore(live_repo, config={"project": "fraud", "registry": "data/registry.db",
                                         "online_store": {"type": "sqlite"}}, clock=clock)
    view = live_view(source=live_source(availability_delay=timedelta(hours=1)))
    fs.apply([user, view])
    rows = pd.DataFrame({"user_id": ["u7", "u8"],
                         "ts": [NOW - timedelta(hours=1) + timedelta(seconds=1),    # lands in between
                                NOW - timedelta(hours=1) + timedelta(seconds=3)],   # lands later
                         "amount": [7.0, 8.0], "n_txn": [7, 8]})
    report = fs.push("spend_push", rows)
    assert (report.pending_rows, report.online_records) == (1, {"live_spend": 1})
    got = fs.get_online_features(["live_spend:amount"], [{"user_id": "u7"}, {"user_id": "u8"}])
    assert got.to_dict()["amount"] == [7.0, None]
    offline = fs.get_historical_features(
        pd.DataFrame({"user_id": ["u7", "u8"], "event_timestamp": [landed, landed]}),
        ["live_spend:amount"]).to_df()
    assert [None if pd.isna(v) else v for v in offline.amount] == [7.0, None]


# --- the batch folder's layout, kept between pushes ------------------------------------------------

def test_a_partition_folder_made_after_a_push_is_refused_at_the_next(sq: FeatureStore, live_repo: Path) -> None:
    """push keeps the folder's layout between calls; a subfolder made since is seen."""
    from skewless.errors import SourceError
    sq.push("spend_push", batch())
    (live_repo / LIVE / "day=2024-01-01").mkdir()
    before = files(live_repo)
    with pytest.raises(SourceError, match=r"hive-partitioned \(day=2024-01-01\)"):
        sq.push("spend_push", batch(amount=[1.0, 2.0]))
    assert files(live_repo) == before


def test_a_rewritten_template_file_fixes_the_next_pushed_file(sq: FeatureStore, live_repo: Path) -> None:
    """The pushed files take the types of the folder's existing file; a rewrite of that file
    (another inode) is read again, not the layout of the first push."""
    first = sq.push("spend_push", batch())
    assert pq.read_schema(first.offline_file).field("n_txn").type == pa.int64()
    part = live_repo / LIVE / "part-0.parquet"
    table = pq.read_table(part)
    table = table.set_column(table.schema.get_field_index("n_txn"), "n_txn",
                             table.column("n_txn").cast(pa.int32()))
    pq.write_table(table, live_repo / LIVE / ".part-0.tmp")
    os.replace(live_repo / LIVE / ".part-0.tmp", part)
    second = sq.push("spend_push", batch(amount=[1.0, 2.0]))
    assert pq.read_schema(second.offline_file).field("n_txn").type == pa.int32()


def test_a_table_dropped_by_another_process_is_created_again_by_the_next_push(
        sq: FeatureStore, live_repo: Path, clock: Clock) -> None:
    """The online store skips its table creation while the file's schema is unchanged; a drop
    by another connection (another process) changes it, so the next push creates the table."""
    sq.push("spend_push", batch())
    other = make_store(live_repo, clock)
    table = other.snapshot().online_table("live_spend")
    other.context.raw_online_store.drop([table])
    sq.push("spend_push", batch(amount=[3.0, 4.0]))
    assert online(sq, ["u1", "u7"])["amount"] == [3.0, 4.0]
