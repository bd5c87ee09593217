"""Online state follows the registry (docs/online.md), on every online store.

- Deleting a view drops its online table and its materialization state; the other views keep
  theirs.
- A re-created or force-changed view starts clean: it never serves a record written under the
  old definition, whether read through this process, a process holding an older registry
  snapshot, a push or ``rebuild-online``.
- A watermark means coverage: "materialized up to t" means every source row up to t is online;
  ``materialize_incremental`` fills the holes explicit windows left, and ``online_status`` says
  what is covered.

Each test runs on every installed store (``ONLINE_STORES``: memory, SQLite, Redis, plugins) with
the DuckDB engine; real stores, one fresh project per test.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from skewless import Entity, FeatureStore, FeatureView, Field, FileSource, PushSource
from skewless.define.source import Source
from skewless.online import table_name
from skewless.services.materialize import watermarks
from skewless.types import Int64, String, ValueType

from .test_online_invariant import ONLINE_STORES, Run, _available

UTC = timezone.utc
T = datetime(2025, 1, 10, tzinfo=UTC)
TS = pa.timestamp("us", "UTC")
user = Entity("user", join_keys=["user_id"])


@pytest.fixture(params=sorted(ONLINE_STORES))
def run(request: pytest.FixtureRequest) -> Iterator[Run]:
    _available(request.param)
    r = Run(request.param, "duckdb")
    yield r
    r.close()


def day(d: str) -> datetime:
    return datetime.fromisoformat(d).replace(tzinfo=UTC)


def write(repo: Path, name: str, users: list[int], ts: list[datetime], **features: Any) -> None:
    (repo / "data").mkdir(parents=True, exist_ok=True)
    cols: dict[str, Any] = {"user_id": pa.array(users, pa.int64()), "ts": pa.array(ts, TS)}
    cols.update(features)
    pq.write_table(pa.table(cols), repo / "data" / name)


def view(name: str = "v", fields: list[tuple[str, ValueType]] | None = None,
         source: Source | None = None, entity: Entity = user, **kw: Any) -> FeatureView:
    return FeatureView(name, entities=[entity],
                       schema=[Field(n, t) for n, t in (fields or [("x", Int64)])],
                       source=source or FileSource(f"data/{name}.parquet", "ts"), **kw)


def open_fs(run: Run, repo: Path, clock: Callable[[], datetime] = lambda: T, **extra: Any) -> FeatureStore:
    return FeatureStore(repo, config={**run.config(), **extra}, clock=clock)


def serve(fs: FeatureStore, refs: list[str], users: list[int], key: str = "user_id"
          ) -> tuple[list[Any], list[str]]:
    got = fs.get_online_features(refs, [{key: u} for u in users])
    name = refs[0].split(":")[1]
    return got.to_dict()[name], got.statuses[name]


def offline(fs: FeatureStore, ref: str, users: list[int], at: datetime = T, key: str = "user_id") -> list[Any]:
    df = pa.table({key: pa.array(users, pa.int64()), "event_timestamp": pa.array([at] * len(users), TS)})
    return fs.get_historical_features(df, [ref]).to_arrow().column(ref.split(":")[1]).to_pylist()


def count(fs: FeatureStore, view_name: str) -> int:
    return fs.online_store.count(fs.snapshot().online_table(view_name))


def served_300(run: Run, repo: Path) -> FeatureStore:
    """View v (x: Int64) over a source where user 1 has x=300, materialized up to T."""
    write(repo, "v.parquet", [1], [T - timedelta(hours=1)], x=pa.array([300], pa.int64()))
    fs = open_fs(run, repo)
    fs.apply([user, view()])
    fs.materialize_incremental()
    assert serve(fs, ["v:x"], [1]) == ([300], ["PRESENT"])
    return fs


def delete(fs: FeatureStore, how: str, name: str = "v", keep: Sequence[Any] = ()) -> None:
    if how == "objects_to_delete":
        result = fs.apply([], objects_to_delete=[fs.get_feature_view(name)])
    else:   # the registry holds exactly what is applied, as `skewless apply` does
        result = fs.apply([user, *keep], partial=False)
    assert [c.op for c in result.changes if c.name == name] == ["delete"]


# --- delete, then re-create ------------------------------------------------------------------

@pytest.mark.parametrize("how", ["objects_to_delete", "partial_false"])
def test_recreated_view_never_serves_the_old_definitions_records(run: Run, tmp_path: Path, how: str) -> None:
    """The issue's case: delete a materialized view, re-create it with x retyped Int64 ->
    String over a rewritten source, materialize_incremental: online serves "x300" as training
    does, never the old integer 300; the re-created view did not keep the old watermark."""
    fs = served_300(run, tmp_path)
    old_table = table_name(fs.project, "v")   # a view's first table: named after it
    delete(fs, how)
    assert fs.online_store.count(old_table) == 0
    assert "v" not in watermarks(fs.registry, fs.project, fs.online_store.identity())
    assert fs.online_status() == []

    write(tmp_path, "v.parquet", [1], [T - timedelta(hours=1)], x=["x300"])
    fs.apply([user, view(fields=[("x", String)])])
    assert fs.snapshot().online_table("v") != old_table
    (status,) = fs.online_status()
    assert not status.materialized and status.watermark is None and status.entities == 0
    assert serve(fs, ["v:x"], [1]) == ([None], ["NOT_FOUND"])   # clean until materialized

    (report,) = fs.materialize_incremental()
    assert report.start is None and report.rows == 1             # from the beginning again
    assert serve(fs, ["v:x"], [1]) == (["x300"], ["PRESENT"]) == (offline(fs, "v:x", [1]), ["PRESENT"])


def test_recreated_view_with_the_same_types_over_another_source_starts_clean(run: Run, tmp_path: Path) -> None:
    fs = served_300(run, tmp_path)
    delete(fs, "objects_to_delete")
    write(tmp_path, "w.parquet", [2], [T - timedelta(days=3)], x=pa.array([5], pa.int64()))
    fs.apply([user, view(source=FileSource("data/w.parquet", "ts"))])
    fs.materialize_incremental()
    assert serve(fs, ["v:x"], [1, 2]) == ([None, 5], ["NOT_FOUND", "PRESENT"])
    assert offline(fs, "v:x", [1, 2]) == [None, 5]


def test_deleting_one_view_leaves_the_other_untouched(run: Run, tmp_path: Path) -> None:
    write(tmp_path, "v.parquet", [1], [T - timedelta(hours=1)], x=pa.array([300], pa.int64()))
    write(tmp_path, "w.parquet", [1, 2], [T - timedelta(hours=2)] * 2, y=pa.array([7, 8], pa.int64()))
    fs = open_fs(run, tmp_path)
    other = view("w", fields=[("y", Int64)])
    fs.apply([user, view(), other])
    fs.materialize_incremental()
    before = {s.view: s for s in fs.online_status()}
    old_v = table_name(fs.project, "v")
    delete(fs, "partial_false", keep=[other])
    assert fs.online_store.count(old_v) == 0
    (after,) = fs.online_status()
    assert after == before["w"] and after.entities == 2 and after.watermark == T
    assert serve(fs, ["w:y"], [1, 2]) == ([7, 8], ["PRESENT", "PRESENT"])
    assert set(watermarks(fs.registry, fs.project, fs.online_store.identity())) == {"w"}


def test_a_process_with_a_cached_registry_snapshot_never_serves_old_records(run: Run, tmp_path: Path) -> None:
    """Another process (a server, an SDK) still holds the registry snapshot from before the
    delete + re-create: it reads its old table, which is gone, so it serves nothing old; once
    it reloads the registry it serves the new definition."""
    fs = served_300(run, tmp_path)
    stale = open_fs(run, tmp_path, registry_cache_ttl_seconds=3600)
    if not run.has("shared"):   # one process's memory: the second store object reads the same one
        stale._online = fs.online_store
    assert serve(stale, ["v:x"], [1]) == ([300], ["PRESENT"])   # its snapshot is now cached

    delete(fs, "objects_to_delete")
    write(tmp_path, "v.parquet", [1], [T - timedelta(hours=1)], x=["x300"])
    fs.apply([user, view(fields=[("x", String)])])
    fs.materialize_incremental()
    assert serve(stale, ["v:x"], [1]) == ([None], ["NOT_FOUND"])
    stale._serving = None   # what the cache TTL running out does
    assert serve(stale, ["v:x"], [1]) == (["x300"], ["PRESENT"])


def test_push_into_a_recreated_view_starts_clean(run: Run, tmp_path: Path) -> None:
    (tmp_path / "data" / "events").mkdir(parents=True)
    base = tmp_path / "data" / "events" / "base.parquet"
    pq.write_table(pa.table({"user_id": pa.array([3], pa.int64()), "ts": pa.array([T - timedelta(days=1)], TS),
                             "x": pa.array([1], pa.int64())}), base)
    src = PushSource("events_push", batch_source=FileSource("data/events", "ts"))
    fs = open_fs(run, tmp_path)
    fs.apply([user, view(source=src)])
    fs.materialize_incremental()
    fs.push("events_push", {"user_id": [1], "ts": [T - timedelta(hours=1)], "x": [300]})
    assert serve(fs, ["v:x"], [1]) == ([300], ["PRESENT"])

    delete(fs, "objects_to_delete")
    for f in (tmp_path / "data" / "events").glob("push-*.parquet"):   # the source is rewritten
        f.unlink()
    pq.write_table(pa.table({"user_id": pa.array([1, 3], pa.int64()),
                             "ts": pa.array([T - timedelta(hours=2)] * 2, TS), "x": pa.array([7, 1], pa.int64())}), base)
    fs.apply([user, view(source=src)])
    fs.push("events_push", {"user_id": [2], "ts": [T - timedelta(hours=1)], "x": [5]})
    assert serve(fs, ["v:x"], [1, 2, 3]) == ([None, 5, None], ["NOT_FOUND", "PRESENT", "NOT_FOUND"])
    fs.materialize_incremental()
    assert serve(fs, ["v:x"], [1, 2, 3])[0] == [7, 5, 1] == offline(fs, "v:x", [1, 2, 3])


def test_rebuild_online_of_a_recreated_view_writes_its_new_table(run: Run, tmp_path: Path) -> None:
    fs = served_300(run, tmp_path)
    old_table = table_name(fs.project, "v")
    delete(fs, "objects_to_delete")
    write(tmp_path, "v.parquet", [1], [T - timedelta(hours=1)], x=["x300"])
    fs.apply([user, view(fields=[("x", String)])])
    (report,) = fs.rebuild_online()
    assert report.ok and report.stored == 1
    assert fs.online_store.count(old_table) == 0
    assert serve(fs, ["v:x"], [1]) == (["x300"], ["PRESENT"])
    (status,) = fs.online_status()
    assert status.watermark == T and status.covered == ((None, T),)


# --- forced changes ------------------------------------------------------------------------------

def test_forced_field_removal_and_readd_starts_clean(run: Run, tmp_path: Path) -> None:
    write(tmp_path, "v.parquet", [1], [T - timedelta(hours=1)], x=pa.array([300], pa.int64()),
          y=pa.array([1], pa.int64()))
    fs = open_fs(run, tmp_path)
    fs.apply([user, view(fields=[("x", Int64), ("y", Int64)])])
    fs.materialize_incremental()
    plan = fs.plan([view(fields=[("y", Int64)])])
    fs.apply([view(fields=[("y", Int64)])], force=True)
    assert serve(fs, ["v:y"], [1]) == ([None], ["NOT_FOUND"])
    assert not fs.online_status()[0].materialized
    (change,) = plan.changes
    assert change.breaking and change.destructive and "online table starts empty" in plan.render()

    write(tmp_path, "v.parquet", [1], [T - timedelta(hours=1)], x=["x300"], y=pa.array([1], pa.int64()))
    fs.apply([view(fields=[("y", Int64), ("x", String)])])   # adding a field is not breaking
    assert serve(fs, ["v:x"], [1]) == ([None], ["NOT_FOUND"])
    fs.materialize_incremental()
    assert serve(fs, ["v:x"], [1]) == (["x300"], ["PRESENT"]) == (offline(fs, "v:x", [1]), ["PRESENT"])


def test_forced_rename_of_a_feature_is_filled_by_the_next_incremental_run(run: Run, tmp_path: Path) -> None:
    write(tmp_path, "v.parquet", [1], [T - timedelta(hours=1)], x=pa.array([300], pa.int64()),
          z=pa.array([9], pa.int64()))
    fs = open_fs(run, tmp_path)
    fs.apply([user, view()])
    fs.materialize_incremental()
    result = fs.apply([view(fields=[("z", Int64)])], force=True)
    assert result.changes[0].breaking == ["field 'x' renamed to 'z'"]
    fs.materialize_incremental()
    assert serve(fs, ["v:z"], [1]) == ([9], ["PRESENT"])


def test_forced_join_key_change_never_serves_records_of_the_old_key(run: Run, tmp_path: Path) -> None:
    """user_id 1 had x=300; after the entity's join key becomes customer_id, customer 1 is
    another entity (x=7): the old record, keyed by the same value 1, must not answer for it."""
    write(tmp_path, "v.parquet", [1, 2], [T - timedelta(hours=1)] * 2, x=pa.array([300, 7], pa.int64()),
          customer_id=pa.array([5, 1], pa.int64()))
    fs = open_fs(run, tmp_path)
    fs.apply([user, view()])
    fs.materialize_incremental()
    customer = Entity("user", join_keys=["customer_id"])
    plan = fs.plan([customer, view(entity=customer)])
    fs.apply([customer, view(entity=customer)], force=True)
    assert serve(fs, ["v:x"], [1], key="customer_id") == ([None], ["NOT_FOUND"])
    fs.materialize_incremental()
    assert serve(fs, ["v:x"], [1, 5], key="customer_id")[0] == [7, 300] == \
        offline(fs, "v:x", [1, 5], key="customer_id")
    assert {c.name: bool(c.destructive) for c in plan.changes} == {"user": False, "v": True}


def test_added_field_is_filled_by_the_next_incremental_run(run: Run, tmp_path: Path) -> None:
    """Adding a field keeps the table (served values stay) but not the coverage: the next
    incremental run reads the source again and fills the field in."""
    write(tmp_path, "v.parquet", [1], [T - timedelta(hours=1)], x=pa.array([300], pa.int64()),
          y=pa.array([4], pa.int64()))
    fs = open_fs(run, tmp_path)
    fs.apply([user, view()])
    fs.materialize_incremental()
    fs.apply([view(fields=[("x", Int64), ("y", Int64)])])
    assert serve(fs, ["v:x"], [1]) == ([300], ["PRESENT"])   # no gap
    assert serve(fs, ["v:y"], [1]) == ([None], ["NOT_FOUND"])
    fs.materialize_incremental()
    assert serve(fs, ["v:y"], [1]) == ([4], ["PRESENT"])
    assert fs.snapshot().online_table("v") == table_name(fs.project, "v")   # the same table


# --- a failed drop ---------------------------------------------------------------------------------

def test_a_drop_that_fails_keeps_the_registry_consistent_and_is_retried(run: Run, tmp_path: Path) -> None:
    """The registry commits first; the drop of a store that does not answer is reported, the
    table stays listed, nothing old is served, and the next apply drops it."""
    if run.testing.unreachable is None:
        pytest.skip(f"online store '{run.store}' always answers (its testing declares no unreachable settings)")
    fs = served_300(run, tmp_path)
    old_table = table_name(fs.project, "v")
    down = {"type": run.store, **run.testing.unreachable(tmp_path)}
    broken = FeatureStore(tmp_path, config={**run.config(), "online_store": down}, clock=lambda: T)
    result = broken.apply([], objects_to_delete=[view()])
    assert result.version == 2 and "v" not in fs.snapshot().feature_views
    assert "v" not in watermarks(fs.registry, fs.project, fs.online_store.identity())
    assert fs.online_store.count(old_table) == 1   # left, listed, never read again

    again = fs.apply([user])   # nothing to change: the retired table is dropped all the same
    assert fs.online_store.count(old_table) == 0
    assert again.dropped_tables == [old_table] and again.cleanup_errors == []
    assert len(result.cleanup_errors) == 1 and old_table in result.cleanup_errors[0]


# --- a watermark means coverage ---------------------------------------------------------------

def test_incremental_fills_what_an_explicit_window_left_out(run: Run, tmp_path: Path) -> None:
    """The issue's case: `materialize 2025-01-01 2025-01-02` on a view without ttl, then
    `materialize-incremental`: the entity whose only row is from 2024-06-01 is served."""
    write(tmp_path, "v.parquet", [1, 2], [day("2024-06-01"), day("2025-01-01T12:00")],
          x=pa.array([1, 2], pa.int64()))
    fs = open_fs(run, tmp_path)
    fs.apply([user, view(ttl=None)])
    fs.materialize(day("2025-01-01"), day("2025-01-02"))
    (status,) = fs.online_status()
    assert status.materialized and status.watermark is None and status.holes
    assert status.covered == ((day("2025-01-01"), day("2025-01-02")),)
    assert serve(fs, ["v:x"], [1, 2]) == ([None, 2], ["NOT_FOUND", "PRESENT"])

    fs.materialize_incremental()
    assert serve(fs, ["v:x"], [1, 2]) == ([1, 2], ["PRESENT", "PRESENT"])
    assert offline(fs, "v:x", [1, 2]) == [1, 2]
    (status,) = fs.online_status()
    assert status.watermark == T and status.covered == ((None, T),) and not status.holes


def test_the_hole_between_two_explicit_windows_is_filled(run: Run, tmp_path: Path) -> None:
    write(tmp_path, "v.parquet", [1, 2, 3], [day("2025-01-01T06:00"), day("2025-01-03T06:00"),
                                             day("2025-01-05T06:00")], x=pa.array([1, 2, 3], pa.int64()))
    fs = open_fs(run, tmp_path)
    fs.apply([user, view()])
    fs.materialize(None, day("2025-01-02"))
    fs.materialize(day("2025-01-04"), day("2025-01-06"))
    (status,) = fs.online_status()
    assert status.watermark == day("2025-01-02")       # not 01-06: 01-03 is not covered
    assert status.covered == ((None, day("2025-01-02")), (day("2025-01-04"), day("2025-01-06")))
    assert serve(fs, ["v:x"], [1, 2, 3])[1] == ["PRESENT", "NOT_FOUND", "PRESENT"]

    (report,) = fs.materialize_incremental(day("2025-01-05"))   # end inside the later window
    assert report.rows == 1
    assert serve(fs, ["v:x"], [1, 2, 3]) == ([1, 2, 3], ["PRESENT"] * 3)
    (status,) = fs.online_status()
    assert status.covered == ((None, day("2025-01-06")),) and status.watermark == day("2025-01-06")


def test_an_explicit_window_after_the_watermark_does_not_move_it(run: Run, tmp_path: Path) -> None:
    """materialize-incremental up to Jan 2, then a window starting after it (Jan 4..5): the
    watermark stays Jan 2, and the next incremental run covers Jan 3."""
    write(tmp_path, "v.parquet", [1, 2], [day("2025-01-01"), day("2025-01-03")], x=pa.array([1, 2], pa.int64()))
    fs = open_fs(run, tmp_path)
    fs.apply([user, view()])
    fs.materialize_incremental(day("2025-01-02"))
    fs.materialize(day("2025-01-04"), day("2025-01-05"))
    assert fs.online_status()[0].watermark == day("2025-01-02")
    assert watermarks(fs.registry, fs.project, fs.online_store.identity())["v"]["end"] == day("2025-01-02").isoformat()
    fs.materialize_incremental()
    assert serve(fs, ["v:x"], [1, 2]) == ([1, 2], ["PRESENT", "PRESENT"])


def test_late_rows_of_an_explicit_window_are_picked_up(run: Run, tmp_path: Path) -> None:
    """A window's rows written after the run (a newer created time) are late rows: the next
    incremental run reads them, even though the window ends after the watermark it had."""
    src = FileSource("data/v.parquet", "ts", created_timestamp_column="created")
    write(tmp_path, "v.parquet", [1], [day("2025-01-03")], x=pa.array([1], pa.int64()),
          created=pa.array([day("2025-01-03")], TS))
    fs = open_fs(run, tmp_path)
    fs.apply([user, view(source=src)])
    fs.materialize_incremental(day("2025-01-02"))
    fs.materialize(day("2025-01-03"), day("2025-01-04"))
    write(tmp_path, "v.parquet", [1, 1, 2], [day("2025-01-03"), day("2025-01-03T12:00"), day("2025-01-01")],
          x=pa.array([1, 11, 2], pa.int64()),
          created=pa.array([day("2025-01-03"), day("2025-01-06"), day("2025-01-06")], TS))
    fs.materialize_incremental()
    assert serve(fs, ["v:x"], [1, 2])[0] == [11, 2] == offline(fs, "v:x", [1, 2])
