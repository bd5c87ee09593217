"""One type rule on every path (docs/types.md): plan/apply, training retrieval, materialization,
rebuild-online and push judge a source column by the same conformance table, read every file of
a folder, refuse with the view, the file, the column and a bad row, and write nothing when they
refuse. Online frames take their dtypes from the declared schema, as training frames do.

Each test runs on both engines (DuckDB; the reference engine, the oracle) and on the real SQLite
and Redis online stores (Redis: a unique project, purged afterwards)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from skewless import Entity, FeatureStore, FeatureView, Field, FileSource, PushSource
from skewless.errors import InvalidRequestError, PlanError, SourceError
from skewless.testing.online import store_contents
from skewless.types import Array, Bool, Float32, Float64, Int32, Int64, String

UTC = timezone.utc
NOW = datetime(2024, 2, 1, tzinfo=UTC)
user = Entity("user", join_keys=["user_id"])
ONLINE = {"sqlite": {"type": "sqlite", "path": "data/online.db"},
          "redis": {"type": "redis", "connection_string": "127.0.0.1:6379"}}


def view(schema: list[Field] | None = None, path: str = "data/stats", **kw: Any) -> FeatureView:
    return FeatureView("stats", entities=[user], ttl=None, source=FileSource(path, "ts"),
                       schema=schema or [Field("amount", Float64), Field("n", Int64)], **kw)


def write(path: Path, **columns: Any) -> Path:
    """A Parquet file with user_id, ts and the given columns (lists or Arrow arrays)."""
    n = len(next(v for k, v in columns.items() if k != "ts"))
    base: dict[str, Any] = {
        "user_id": [f"u{i}" for i in range(n)],
        "ts": pa.array([datetime(2024, 1, 10 + i % 10, tzinfo=UTC) for i in range(n)],
                       pa.timestamp("us", "UTC")),
    }
    base.update(columns)
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(base), path)
    return path


@pytest.fixture(params=[(e, o) for e in ("duckdb", "reference") for o in ONLINE],
                ids=lambda p: f"{p[0]}-{p[1]}")
def setup(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Path, dict[str, Any]]]:
    engine, online = request.param
    if online == "redis":
        from skewless.testing.redis_server import require_shared_redis
        require_shared_redis()
    project = f"types_{uuid.uuid4().hex[:10]}"
    config = {"project": project, "registry": "data/registry.db",
              "offline_store": {"type": engine}, "online_store": dict(ONLINE[online])}
    (tmp_path / "data").mkdir()
    yield tmp_path, config
    if online == "redis":
        from skewless.testing.redis_server import purge_project
        purge_project(project)


def make_store(setup: tuple[Path, dict[str, Any]]) -> FeatureStore:
    repo, config = setup
    return FeatureStore(repo, config=config, clock=lambda: NOW)


def labels(n: int = 3) -> pd.DataFrame:
    return pd.DataFrame({"user_id": [f"u{i}" for i in range(n)],
                         "event_timestamp": [pd.Timestamp("2024-01-31", tz="UTC")] * n})


def refused_everywhere(fs: FeatureStore, *fragments: str) -> None:
    """Training, materialization and rebuild-online refuse, each naming ``fragments``; nothing
    is written online and no watermark moves."""
    before, marks = store_contents(fs), fs.registry.list_state(fs.project, "materialization")
    for run in (lambda: fs.get_historical_features(labels(), ["stats:amount", "stats:n"]).to_df(),
                lambda: fs.materialize(None, NOW),
                lambda: fs.materialize_incremental(NOW),
                lambda: fs.rebuild_online()):
        with pytest.raises(SourceError) as e:
            run()
        for text in fragments:
            assert text in str(e.value)
    assert store_contents(fs) == before
    assert fs.registry.list_state(fs.project, "materialization") == marks


# --- the reported cases ---------------------------------------------------------------------------

def test_strings_and_fractions_written_after_apply_are_refused_by_every_path(setup) -> None:
    """Reported: after apply, '0.505' strings in a Float64 column and 14.7 in an Int64 column
    materialized silently (online served 0.505 and 15) while training refused the file."""
    repo = setup[0]
    write(repo / "data/stats/day1.parquet", amount=[1.5, 2.5, 3.5], n=[1, 2, 3])
    fs = make_store(setup)
    fs.apply([user, view()])
    fs.materialize(None, datetime(2024, 1, 10, tzinfo=UTC))   # u0 online
    bad = write(repo / "data/stats/day1.parquet", amount=["0.505", "1", "2"], n=[1.0, 14.7, 3.0])
    refused_everywhere(fs, "'stats'", str(bad), "column 'amount'", "string")
    write(repo / "data/stats/day1.parquet", amount=[0.505, 1.0, 2.0], n=[1.0, 14.7, 3.0])
    refused_everywhere(fs, "'stats'", str(bad), "column 'n'", "14.7 in row 1")
    assert fs.get_online_features(["stats:amount"], [{"user_id": "u0"}]).to_dict()["amount"] == [1.5]


def test_a_later_file_of_strings_is_found_by_apply_and_every_run(setup) -> None:
    """Reported: a folder's schema was read from its first file only; a later daily file of
    numbers as strings was parsed silently ('0.505') or failed inside DuckDB ('abc')."""
    repo = setup[0]
    write(repo / "data/stats/2024-01-01.parquet", amount=[1.5, 2.5], n=[1, 2])
    fs = make_store(setup)
    fs.apply([user, view()])
    for text in (["0.505", "0.7"], ["abc", "0.7"]):
        later = write(repo / "data/stats/2024-01-02.parquet", amount=text, n=[3, 4])
        with pytest.raises(PlanError) as e:
            fs.plan([user, view()])
        assert str(later) in str(e.value) and "column 'amount' has type string" in str(e.value)
        assert "2024-01-01.parquet" not in str(e.value)
        refused_everywhere(fs, "'stats'", str(later), "column 'amount'")


@pytest.mark.parametrize("first", ["a", "z"])
def test_an_all_none_file_fits_whatever_its_name(setup, first: str) -> None:
    """Reported: a first file whose column is all None (Arrow null type) made apply refuse a
    folder that materialization accepted; swapping the names made apply accept."""
    repo = setup[0]
    older = pa.array([datetime(2024, 1, 1, tzinfo=UTC)] * 2, pa.timestamp("us", "UTC"))
    write(repo / f"data/stats/{first}.parquet", ts=older, amount=pa.nulls(2), n=pa.nulls(2))
    other = "z" if first == "a" else "a"
    write(repo / f"data/stats/{other}.parquet", amount=[0.5, 1.5, 2.5], n=[5, 6, 7])
    fs = make_store(setup)
    fs.apply([user, view()])
    fs.materialize(None, NOW)
    offline = fs.get_historical_features(labels(), ["stats:amount", "stats:n"]).to_df()
    online = fs.get_online_features(["stats:amount", "stats:n"],
                                    [{"user_id": f"u{i}"} for i in range(3)]).to_df()
    assert offline["amount"].tolist() == online["amount"].tolist() == [0.5, 1.5, 2.5]
    assert offline["n"].tolist() == online["n"].tolist() == [5, 6, 7]


def test_float32_over_float64_and_int32_over_int64_are_accepted_and_agree(setup) -> None:
    """Reported: Float32 declared over a pandas float64 column (Feast's habit) and Int32 over
    int64 were refused. Accepted now; the value is rounded to float32 on both paths."""
    repo = setup[0]
    pd.DataFrame({"user_id": ["u0", "u1", "u2"],
                  "ts": pd.to_datetime(["2024-01-10", "2024-01-11", "2024-01-12"], utc=True),
                  "amount": [0.1, 1e10 / 3, None], "n": [1, -(2**31), 2**31 - 1]}
                 ).to_parquet(repo / "data/stats.parquet")
    fs = make_store(setup)
    fs.apply([user, view([Field("amount", Float32), Field("n", Int32)], path="data/stats.parquet")])
    fs.materialize(None, NOW)
    offline = fs.get_historical_features(labels(), ["stats:amount", "stats:n"]).to_df()
    online = fs.get_online_features(["stats:amount", "stats:n"],
                                    [{"user_id": f"u{i}"} for i in range(3)])
    want = pa.array([0.1, 1e10 / 3, None], pa.float32()).to_pylist()
    assert online.to_dict()["amount"] == want
    assert [None if pd.isna(v) else float(v) for v in offline["amount"]] == want
    assert online.to_dict()["n"] == offline["n"].tolist() == [1, -(2**31), 2**31 - 1]
    assert str(offline["amount"].dtype) == str(online.to_df()["amount"].dtype) == "float32"
    assert str(offline["n"].dtype) == str(online.to_df()["n"].dtype) == "Int32"


def test_int32_overflow_in_a_later_file_names_file_column_and_row(setup) -> None:
    repo = setup[0]
    write(repo / "data/stats/a.parquet", amount=[1.0, 2.0], n=[1, 2])
    fs = make_store(setup)
    v = view([Field("amount", Float64), Field("n", Int32)])
    fs.apply([user, v])
    later = write(repo / "data/stats/b.parquet", amount=[1.0, 2.0, 3.0], n=[7, 8, 2**31])
    with pytest.raises(PlanError, match=r"b\.parquet\): column 'n' holds 2147483648 in row 2"):
        fs.plan([user, v])
    refused_everywhere(fs, "'stats'", str(later), "column 'n'", "2147483648 in row 2")


def test_online_frames_have_the_declared_dtypes_whatever_is_missing(setup) -> None:
    """Reported: an Int64 feature came back int64, float64 (one entity missing) or object (all
    missing) online, while training always gives nullable Int64."""
    repo = setup[0]
    write(repo / "data/stats/a.parquet", amount=[1.5, 2.5], n=[1, 2],
          flag=[True, False], name=["x", "y"], f32=pa.array([0.5, 1.5], pa.float32()))
    fs = make_store(setup)
    fs.apply([user, view([Field("amount", Float64), Field("n", Int64), Field("flag", Bool),
                          Field("name", String), Field("f32", Float32)])])
    fs.materialize(None, NOW)
    refs = [f"stats:{f}" for f in ("amount", "n", "flag", "name", "f32")]
    training = fs.get_historical_features(labels(2), refs).to_df()
    want = {c: str(training[c].dtype) for c in ("amount", "n", "flag", "name", "f32")}
    assert {c: want[c] for c in ("amount", "n", "flag", "f32")} == {
        "amount": "float64", "n": "Int64", "flag": "boolean", "f32": "float32"}
    for users in (["u0", "u1"], ["u0", "nobody"], ["nobody", "nobody2"]):
        df = fs.get_online_features(refs, [{"user_id": u} for u in users]).to_df()
        assert {c: str(df[c].dtype) for c in want} == want, users
    df = fs.get_online_features(refs, [{"user_id": "u0"}, {"user_id": "nobody"}]).to_df()
    assert df["n"].tolist()[0] == 1 and df["n"].isna().tolist() == [False, True]
    stamped = fs.get_online_features(refs, [{"user_id": "nobody"}]).to_df(include_event_timestamps=True)
    assert str(stamped["n__event_timestamp"].dtype).startswith("datetime64")


# --- the neighbours ---------------------------------------------------------------------------------

def test_integral_floats_over_an_integer_field_are_accepted(setup) -> None:
    """pandas turns an int column with a gap into float64: whole numbers are accepted."""
    repo = setup[0]
    pd.DataFrame({"user_id": ["u0", "u1", "u2"],
                  "ts": pd.to_datetime(["2024-01-10"] * 3, utc=True),
                  "amount": [1.0, 2.0, 3.0], "n": [1, None, 3]}).to_parquet(repo / "data/stats.parquet")
    fs = make_store(setup)
    fs.apply([user, view(path="data/stats.parquet")])
    fs.materialize(None, NOW)
    offline = fs.get_historical_features(labels(), ["stats:n"]).to_df()
    online = fs.get_online_features(["stats:n"], [{"user_id": f"u{i}"} for i in range(3)]).to_df()
    assert offline["n"].tolist()[0::2] == online["n"].tolist()[0::2] == [1, 3]
    assert online["n"].isna().tolist() == offline["n"].isna().tolist() == [False, True, False]


def test_timestamps_as_strings_in_a_later_file_are_refused(setup) -> None:
    repo = setup[0]
    write(repo / "data/stats/a.parquet", amount=[1.0], n=[1])
    fs = make_store(setup)
    fs.apply([user, view()])
    later = repo / "data/stats/b.parquet"
    pq.write_table(pa.table({"user_id": ["u1"], "ts": ["2024-01-11T00:00:00"], "amount": [1.0],
                             "n": [1]}), later)
    with pytest.raises(PlanError) as e:
        fs.plan([user, view()])
    assert str(later) in str(e.value) and "timestamp_field column 'ts' has type string" in str(e.value)
    refused_everywhere(fs, "'stats'", str(later), "'ts'", "strings never become timestamps")


@pytest.mark.parametrize(("declared", "column", "says"), [
    (Bool, pa.array([0, 1], pa.int64()), "int64 never converts to Bool"),
    (Int64, pa.array([True, False]), "bool never converts to Int64"),
    (String, pa.array([1, 2], pa.int64()), "int64 never converts to String"),
    (Float64, pa.array(["1.5", "2"]), "string never converts to Float64"),
    (Array(Int64), pa.array([["1"], ["2"]]), "list elements: string never converts to Int64"),
], ids=["int-as-bool", "bool-as-int", "int-as-string", "string-as-float", "list-of-strings"])
def test_refused_pairs(setup, declared, column, says) -> None:
    repo = setup[0]
    write(repo / "data/stats/a.parquet", x=column)
    fs = make_store(setup)
    with pytest.raises(PlanError, match=r"column 'x' has type .*" + says):
        fs.apply([user, view([Field("x", declared)])])


def test_list_elements_follow_the_table(setup) -> None:
    repo = setup[0]
    write(repo / "data/stats/a.parquet", emb=pa.array([[0.1, None], None, [1e10 / 3]]),
          counts=pa.array([[1.0, 2.0], [], None]))
    fs = make_store(setup)
    v = view([Field("emb", Array(Float32)), Field("counts", Array(Int64))])
    fs.apply([user, v])
    fs.materialize(None, NOW)
    online = fs.get_online_features(["stats:emb", "stats:counts"],
                                    [{"user_id": f"u{i}"} for i in range(3)]).to_dict()
    offline = fs.get_historical_features(labels(), ["stats:emb", "stats:counts"]).to_arrow()
    assert online["emb"] == offline.column("emb").to_pylist() == [
        pa.array([0.1, None], pa.float32()).to_pylist(), None,
        pa.array([1e10 / 3], pa.float32()).to_pylist()]
    assert online["counts"] == offline.column("counts").to_pylist() == [[1, 2], [], None]
    bad = write(repo / "data/stats/b.parquet", emb=pa.array([[0.5]]), counts=pa.array([[1.0, 2.5]]))
    with pytest.raises(PlanError, match=r"b\.parquet\): column 'counts' holds \[1\.0, 2\.5\] in row 0"):
        fs.plan([user, v])
    with pytest.raises(SourceError, match=str(bad)):
        fs.materialize(None, NOW)


def test_dictionary_encoded_strings_mixed_with_plain_ones(setup) -> None:
    repo = setup[0]
    write(repo / "data/stats/a.parquet", name=pa.array(["x", "y"]).dictionary_encode())
    write(repo / "data/stats/b.parquet", user_id=["u2", "u3", "u4"],
          name=pa.array(["p", "q", "r"], pa.large_string()))
    fs = make_store(setup)
    fs.apply([user, view([Field("name", String)])])
    fs.materialize(None, NOW)
    online = fs.get_online_features(["stats:name"], [{"user_id": f"u{i}"} for i in range(5)])
    offline = fs.get_historical_features(labels(5), ["stats:name"]).to_df()
    assert online.to_dict()["name"] == offline["name"].tolist() == ["x", "y", "p", "q", "r"]


def test_an_all_null_later_file_and_a_feature_added_later(setup) -> None:
    """An all-None later file fits; a file written before a feature was added lacks its column
    and reads as null there."""
    repo = setup[0]
    write(repo / "data/stats/a.parquet", amount=[1.0, 2.0], n=[1, 2])
    later = pa.array([datetime(2024, 1, 20 + i, tzinfo=UTC) for i in range(3)], pa.timestamp("us", "UTC"))
    write(repo / "data/stats/b.parquet", ts=later, amount=pa.nulls(3), n=pa.nulls(3), extra=[7, 8, 9])
    fs = make_store(setup)
    fs.apply([user, view([Field("amount", Float64), Field("n", Int64), Field("extra", Int32)])])
    fs.materialize(None, NOW)
    offline = fs.get_historical_features(labels(), ["stats:amount", "stats:extra"]).to_arrow()
    online = fs.get_online_features(["stats:amount", "stats:extra"],
                                    [{"user_id": f"u{i}"} for i in range(3)]).to_dict()
    assert online["amount"] == offline.column("amount").to_pylist()
    assert online["extra"] == offline.column("extra").to_pylist()


def test_rebuild_online_refuses_a_drifted_file_and_keeps_the_live_table(setup) -> None:
    repo = setup[0]
    write(repo / "data/stats/a.parquet", amount=[1.0, 2.0], n=[1, 2])
    fs = make_store(setup)
    fs.apply([user, view()])
    fs.rebuild_online()
    before = store_contents(fs)
    marks = fs.registry.list_state(fs.project, "materialization")
    later = write(repo / "data/stats/b.parquet", amount=[1.0, 2.0, 3.0], n=[1.0, 2.0, 3.25])
    with pytest.raises(SourceError) as e:
        fs.rebuild_online()
    assert "left untouched" in str(e.value) and str(later) in str(e.value)
    assert "column 'n' holds 3.25 in row 2" in str(e.value)
    assert store_contents(fs) == before
    assert fs.registry.list_state(fs.project, "materialization") == marks


def test_missing_key_and_timestamp_columns_say_what_exists(setup) -> None:
    repo = setup[0]
    pq.write_table(pa.table({"userid": ["u1"], "event_ts": pa.array([NOW], pa.timestamp("us", "UTC")),
                             "amount": [1.0], "n": [1]}), repo / "data/stats.parquet")
    fs = make_store(setup)
    with pytest.raises(PlanError) as e:
        fs.apply([user, view(path="data/stats.parquet")])
    text = str(e.value)
    assert "join key column 'user_id' is missing (did you mean 'userid'?)" in text
    assert "timestamp_field column 'ts' is missing" in text
    assert "the source has ['amount', 'event_ts', 'n', 'userid']" in text


def test_entity_df_missing_columns_say_did_you_mean(setup) -> None:
    repo = setup[0]
    write(repo / "data/stats/a.parquet", amount=[1.0], n=[1])
    fs = make_store(setup)
    fs.apply([user, view()])
    with pytest.raises(InvalidRequestError, match=r"no timestamp column 'event_timestamp' "
                       r"\(did you mean 'event_timestamps'\?\)"):
        fs.get_historical_features(labels().rename(columns={"event_timestamp": "event_timestamps"}),
                                   ["stats:amount"])
    with pytest.raises(InvalidRequestError, match=r"\['user_id'\] needed by feature view 'stats' "
                       r"\('user_id': did you mean 'user_ids'\?\)"):
        fs.get_historical_features(labels().rename(columns={"user_id": "user_ids"}), ["stats:amount"])


# --- push: the same table ----------------------------------------------------------------------------

def push_store(setup: tuple[Path, dict[str, Any]], template: dict[str, Any]) -> FeatureStore:
    repo = setup[0]
    write(repo / "data/pushed/seed.parquet", **template)
    fs = make_store(setup)
    batch = FileSource("data/pushed", "ts")
    fs.apply([user, FeatureView("stats", entities=[user], ttl=None,
                                source=PushSource("stats_push", batch_source=batch),
                                schema=[Field("amount", Float32), Field("n", Int32)])])
    return fs


def push_batch(**columns: Any) -> dict[str, Any]:
    n = len(next(iter(columns.values())))
    return {"user_id": [f"u{i}" for i in range(n)], "ts": ["2024-01-20T00:00:00Z"] * n, **columns}


@pytest.mark.parametrize(("columns", "says"), [
    ({"amount": ["0.505", "1"], "n": [1, 2]}, r"column 'amount': has type string, expected Float32"),
    ({"amount": [1.0, 2.0], "n": [1.0, 14.7]}, r"column 'n': value 14\.7 does not fit Int32.*row 1"),
    ({"amount": [1.0, 2.0], "n": [1, 2**31]}, r"column 'n': value 2147483648 does not fit Int32.*row 1"),
    ({"amount": [1.0, 1e39], "n": [1, 2]}, r"column 'amount': value 1e\+39 does not fit.*row 1"),
], ids=["strings", "fraction", "overflow", "beyond-float32"])
def test_push_refuses_what_the_files_would_be_refused_for(setup, columns, says) -> None:
    fs = push_store(setup, {"amount": [0.5], "n": pa.array([1], pa.int64())})
    listing = sorted((setup[0] / "data/pushed").iterdir())
    with pytest.raises(InvalidRequestError, match=says):
        fs.push("stats_push", push_batch(**columns))
    assert sorted((setup[0] / "data/pushed").iterdir()) == listing


def test_push_float64_into_float32_agrees_with_training(setup) -> None:
    """The seed file holds float64 and int64 (pandas' types) for Float32 / Int32 fields: pushed
    values are rounded as the files' are, and online equals offline."""
    fs = push_store(setup, {"amount": [0.5], "n": pa.array([1], pa.int64())})
    fs.push("stats_push", push_batch(amount=[0.1, 1e10 / 3], n=[3, -4]))
    offline = fs.get_historical_features(labels(2), ["stats:amount", "stats:n"]).to_df()
    online = fs.get_online_features(["stats:amount", "stats:n"],
                                    [{"user_id": "u0"}, {"user_id": "u1"}])
    assert online.to_dict()["amount"] == offline["amount"].astype(float).tolist() == \
        pa.array([0.1, 1e10 / 3], pa.float32()).to_pylist()
    assert online.to_dict()["n"] == offline["n"].tolist() == [3, -4]
    assert online.to_df()[["amount", "n"]].dtypes.equals(offline[["amount", "n"]].dtypes)


def test_push_into_a_batch_source_whose_seed_column_is_all_none(setup) -> None:
    fs = push_store(setup, {"amount": pa.nulls(1), "n": pa.nulls(1)})
    fs.push("stats_push", push_batch(amount=[1.5], n=[2]))
    online = fs.get_online_features(["stats:amount", "stats:n"], [{"user_id": "u0"}]).to_dict()
    offline = fs.get_historical_features(labels(1), ["stats:amount", "stats:n"]).to_df()
    assert online["amount"] == offline["amount"].tolist() == [1.5]
    assert online["n"] == offline["n"].tolist() == [2]


def test_one_drifted_view_stops_the_run_before_any_view_is_written(setup) -> None:
    """Validate everything before changing anything: a run over two views whose second source
    drifted writes neither (no record, no watermark)."""
    repo = setup[0]
    write(repo / "data/stats/a.parquet", amount=[1.0, 2.0], n=[1, 2])
    write(repo / "data/other/a.parquet", score=[0.5, 0.7])
    fs = make_store(setup)
    other = FeatureView("other", entities=[user], ttl=None, source=FileSource("data/other", "ts"),
                        schema=[Field("score", Float64)])
    fs.apply([user, view(), other])
    bad = write(repo / "data/other/b.parquet", score=["0.5", "x"])
    for run in (lambda: fs.materialize(None, NOW), lambda: fs.materialize_incremental(NOW),
                lambda: fs.rebuild_online()):
        with pytest.raises(SourceError, match=str(bad)):
            run()
        assert fs.registry.list_state(fs.project, "materialization") == {}
        got = fs.get_online_features(["stats:amount"], [{"user_id": "u0"}])
        assert got.statuses["amount"] == ["NOT_FOUND"]


def test_a_problem_repeated_in_many_files_is_said_once(setup) -> None:
    repo = setup[0]
    for day in range(1, 8):
        write(repo / f"data/stats/2024-01-0{day}.parquet", amount=["1.5"], n=[1])
    fs = make_store(setup)
    with pytest.raises(PlanError) as e:
        fs.apply([user, view()])
    assert len(e.value.problems) == 1
    assert "2024-01-01.parquet): column 'amount' has type string" in e.value.problems[0]
    assert "the same problem in 6 other file(s): 2024-01-02.parquet, 2024-01-03.parquet, " \
        "2024-01-04.parquet, ..." in e.value.problems[0]


def test_a_folder_mixing_int_and_float_files_keeps_big_integers_exact_or_refuses(setup) -> None:
    """A multi-file engine reads a column held as int64 in one file and float64 in another as
    float64: 2**60 + 1 would come back as 2**60 there, exact elsewhere. Refused, naming the
    file; small integers (the usual case) are fine and equal on every path."""
    repo = setup[0]
    write(repo / "data/stats/a.parquet", amount=[1.0, 2.0], n=[1, 2**40])
    write(repo / "data/stats/b.parquet", user_id=["u2"], amount=[3.0], n=[3.0])
    fs = make_store(setup)
    fs.apply([user, view()])
    fs.materialize(None, NOW)
    online = fs.get_online_features(["stats:n"], [{"user_id": f"u{i}"} for i in range(3)]).to_dict()
    assert online["n"] == fs.get_historical_features(labels(), ["stats:n"]).to_df()["n"].tolist() \
        == [1, 2**40, 3]
    big = write(repo / "data/stats/a.parquet", amount=[1.0, 2.0], n=[1, 2**60 + 1])
    refused_everywhere(fs, str(big), "column 'n' holds 1152921504606846977 in row 1, beyond +-2**53")


@pytest.mark.parametrize("hidden", [".day2.parquet", "_day2.parquet", "_temporary/0/part-0.parquet",
                                    ".spark-staging/part-0.parquet"])
def test_hidden_files_of_a_folder_are_ignored_by_every_path(setup, hidden: str) -> None:
    """Files and folders whose name starts with '.' or '_' (Spark's _temporary, a writer's
    in-progress file) are not data. The checks skipped them but DuckDB read them: strings in
    such a file were served as numbers (PRESENT) and won training, unchecked. Now no path
    reads them, so every engine and the online store give the visible files' values."""
    repo = setup[0]
    write(repo / "data/stats/day1.parquet", amount=[1.5, 2.5], n=[1, 2])
    fs = make_store(setup)
    fs.apply([user, view()])
    hide = repo / "data/stats" / hidden
    write(hide, amount=["0.505", "7"], n=[14.7, 3.2],
          ts=pa.array([datetime(2024, 1, 20, tzinfo=UTC)] * 2, pa.timestamp("us", "UTC")))
    fs.plan([user, view()])
    train = fs.get_historical_features(labels(2), ["stats:amount", "stats:n"]).to_df()
    assert train["amount"].tolist() == [1.5, 2.5] and train["n"].tolist() == [1, 2]
    for run in (lambda: fs.materialize(None, NOW), lambda: fs.rebuild_online()):
        run()
        online = fs.get_online_features(["stats:amount", "stats:n"],
                                        [{"user_id": "u0"}, {"user_id": "u1"}]).to_dict()
        assert online["amount"] == [1.5, 2.5] and online["n"] == [1, 2]


@pytest.mark.parametrize("keys", [["u0", "u01"], [0.0, 1.5], [0.0, 1.0]], ids=["string", "float", "whole-float"])
def test_a_later_file_with_join_keys_of_another_type_is_refused(setup, keys: list[Any]) -> None:
    """A join key not declared in the schema (Feast's habit; the README's own example) was
    checked in no file: a later daily file holding user_id as strings (or floats) where the
    first holds integers made DuckDB read the folder's keys as text: training matched '01' to
    1, while materialization stored text keys and served NOT_FOUND for every entity, the
    untouched ones included. Now every path refuses the file, naming view, file and column."""
    repo = setup[0]
    write(repo / "data/stats/day1.parquet", user_id=[0, 1], amount=[1.5, 2.5], n=[1, 2])
    fs = make_store(setup)
    fs.apply([user, view()])
    bad = write(repo / "data/stats/day2.parquet", user_id=keys, amount=[10.0, 20.0], n=[3, 4])
    with pytest.raises(PlanError) as e:
        fs.plan([user, view()])
    assert str(bad) in str(e.value) and "join key column 'user_id'" in str(e.value)
    before, marks = store_contents(fs), fs.registry.list_state(fs.project, "materialization")
    ints = pd.DataFrame({"user_id": [0, 1], "event_timestamp": [pd.Timestamp("2024-01-31", tz="UTC")] * 2})
    for run in (lambda: fs.get_historical_features(ints, ["stats:amount"]).to_df(),
                lambda: fs.materialize(None, NOW), lambda: fs.materialize_incremental(NOW),
                lambda: fs.rebuild_online()):
        with pytest.raises(SourceError) as e:
            run()
        assert str(bad) in str(e.value) and "join key column 'user_id'" in str(e.value)
    assert store_contents(fs) == before
    assert fs.registry.list_state(fs.project, "materialization") == marks
