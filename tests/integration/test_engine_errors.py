"""Every DuckDB error reaches the user translated: the feature view, the file (where it can be
known) and the column, with a hint (docs/point-in-time.md, "When a query fails"). Never "point-
in-time query failed: Binder Error ..." naming nothing. Each case is a real file on disk.

Checks made before a query runs may refuse some of these files first, with their own message;
either way the user reads the view, the file and the column, which is what these tests pin.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from skewless import FeatureStore, FeatureView, Field, FileSource
from skewless.errors import InvalidRequestError, SkewlessError, SourceError
from skewless.types import Float64, Int32, String

from .conftest import pair, spend_view, user

t = pd.Timestamp
END = datetime(2024, 3, 1, tzinfo=timezone.utc)
LABELS = pd.DataFrame({"user_id": ["u1", "u2", "u1"], "merchant_id": ["m1", "m1", "m1"],
                       "event_timestamp": [t("2024-01-15"), t("2024-01-16"), t("2024-02-20")]})


def scores_view(**kw: Any) -> FeatureView:
    """A view over a folder of daily files (data/scores/day=.../part.parquet)."""
    args: dict[str, Any] = dict(
        name="scores", entities=[pair],
        schema=[Field("score", Float64), Field("rank", Int32), Field("country", String)],
        source=FileSource("data/scores", "ts"), ttl=timedelta(days=30))
    args.update(kw)
    return FeatureView(**args)


def day(repo: Path, name: str, **columns: Any) -> Path:
    """One daily file of the scores folder (``columns`` override the good defaults)."""
    data: dict[str, Any] = {"user_id": ["u1", "u2"], "merchant_id": ["m1", "m1"],
                            "ts": [t(name), t(name) + pd.Timedelta(hours=1)],
                            "score": [0.5, 0.25], "rank": pa.array([1, 2], pa.int32()),
                            "country": ["FR", "DE"]}
    data.update(columns)
    path = repo / "data" / "scores" / f"day={name}" / "part-0.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({k: v for k, v in data.items() if v is not None}), path)
    return path


@pytest.fixture
def fs(repo: Path) -> FeatureStore:
    day(repo, "2024-01-01")
    store = FeatureStore(repo)
    store.apply([user, pair, spend_view(), scores_view()])
    return store


def fails(fn: Callable[[], Any], *names: str, exc: type[SkewlessError] = SourceError) -> str:
    """``fn`` raises ``exc`` (from skewless, not DuckDB) whose message names every one of ``names``."""
    with pytest.raises(SkewlessError) as err:
        fn()
    e = err.value
    msg = str(e)
    assert isinstance(e, exc), f"{type(e).__name__}: {msg}"
    assert e.__cause__ is None and (e.__suppress_context__ or e.__context__ is None)  # no library traceback chained
    for name in names:
        assert name in msg, f"{name!r} not in: {msg}"
    assert "Binder Error" not in msg and "point-in-time query failed" not in msg
    assert e.hint
    return msg


RETRIEVALS: dict[str, Callable[[FeatureStore, Path], Any]] = {
    "one_view": lambda fs, tmp: fs.get_historical_features(LABELS, ["scores:score", "scores:rank"]).to_df(),
    "several_views": lambda fs, tmp: fs.get_historical_features(
        LABELS, ["user_spend:amount", "scores:score", "scores:rank"]).to_df(),
    "to_parquet": lambda fs, tmp: fs.get_historical_features(
        LABELS, ["user_spend:amount", "scores:score", "scores:rank"]).to_parquet(tmp / "out.parquet"),
    "to_parquet_one_view": lambda fs, tmp: fs.get_historical_features(
        LABELS, ["scores:score", "scores:rank"]).to_parquet(tmp / "out.parquet"),
    "sql_entity_df": lambda fs, tmp: fs.get_historical_features(
        "SELECT * FROM (VALUES ('u1', 'm1', TIMESTAMP '2024-01-15'), ('u2', 'm1', TIMESTAMP '2024-01-16')) "
        "AS v(user_id, merchant_id, event_timestamp)", ["scores:score", "scores:rank"]).to_df(),
    "materialize": lambda fs, tmp: fs.materialize(datetime(2023, 12, 1, tzinfo=timezone.utc), END, ["scores"]),
    "rebuild_online": lambda fs, tmp: fs.rebuild_online(["scores"]),
}


@pytest.mark.parametrize("path", list(RETRIEVALS))
def test_a_string_that_is_not_a_number_in_a_later_file(fs: FeatureStore, repo: Path, tmp_path: Path,
                                                       path: str) -> None:
    """The issue's case: a later daily file holds a Float64 feature as strings, one of them "abc"."""
    bad = day(repo, "2024-01-10", score=["0.5", "abc"])
    msg = fails(lambda: RETRIEVALS[path](fs, tmp_path), "'scores'", str(bad), "'score'")
    if "row" in msg:   # the translation also finds the value
        assert "'abc'" in msg
    assert not (tmp_path / "out.parquet").exists()


@pytest.mark.parametrize("path", ["one_view", "materialize"])
def test_the_column_duckdb_names_is_blamed_not_another_file_s_gap(fs: FeatureStore, repo: Path,
                                                                 tmp_path: Path, path: str) -> None:
    """One file holds an unrelated column as all-null (Arrow's null type, which fits any
    declared type), another holds "abc" in 'score': the message names the second file and 'score'."""
    gap = day(repo, "2024-01-05", country=pa.nulls(2))
    bad = day(repo, "2024-01-10", score=["abc", "0.1"])
    msg = fails(lambda: RETRIEVALS[path](fs, tmp_path), "'scores'", str(bad), "'score'")
    assert str(gap) not in msg and "'country'" not in msg


@pytest.mark.parametrize("path", list(RETRIEVALS))
def test_a_corrupted_parquet_file_in_a_folder(fs: FeatureStore, repo: Path, tmp_path: Path, path: str) -> None:
    bad = repo / "data" / "scores" / "day=2024-01-10" / "part-0.parquet"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"PAR1" + b"not a parquet file at all" * 4 + b"PAR1")
    fails(lambda: RETRIEVALS[path](fs, tmp_path), "'scores'", str(bad))
    assert not (tmp_path / "out.parquet").exists()


@pytest.mark.parametrize("path", list(RETRIEVALS))
def test_a_timestamp_column_of_strings_in_a_later_file(fs: FeatureStore, repo: Path, tmp_path: Path,
                                                       path: str) -> None:
    bad = day(repo, "2024-01-10", ts=["2024-01-10", "yesterday"])
    fails(lambda: RETRIEVALS[path](fs, tmp_path), "'scores'", str(bad), "'ts'")


@pytest.mark.parametrize("path", list(RETRIEVALS))
def test_an_int32_value_out_of_range_in_a_later_file(fs: FeatureStore, repo: Path, tmp_path: Path,
                                                     path: str) -> None:
    """Same type family, but a value that cannot be cast (an int64 too large for Int32)."""
    bad = day(repo, "2024-01-10", rank=pa.array([1, 3_000_000_000], pa.int64()))
    msg = fails(lambda: RETRIEVALS[path](fs, tmp_path), "'scores'", str(bad), "'rank'")
    assert "3000000000" in msg


@pytest.mark.parametrize("path", ["materialize", "rebuild_online"])
def test_a_column_missing_from_the_only_file(repo: Path, tmp_path: Path, path: str) -> None:
    """A single-file source rewritten without a feature column after apply: DuckDB's Binder
    Error ("Referenced column ... not found") becomes the view, file and column."""
    day(repo, "2024-01-01")
    fs = FeatureStore(repo)
    fs.apply([user, pair, spend_view(), scores_view()])
    src = repo / "data" / "spend.parquet"
    pd.read_parquet(src).drop(columns="n_txn").to_parquet(src)
    op: Callable[[], Any] = ((lambda: fs.materialize(datetime(2023, 12, 1, tzinfo=timezone.utc), END,
                                                     ["user_spend"]))
                             if path == "materialize" else (lambda: fs.rebuild_online(["user_spend"])))
    fails(op, "'user_spend'", str(src), "'n_txn'")


def test_a_struct_column_where_a_number_is_declared(repo: Path) -> None:
    day(repo, "2024-01-01")
    fs = FeatureStore(repo)
    fs.apply([user, pair, spend_view(), scores_view()])
    src = repo / "data" / "spend.parquet"
    table = pq.read_table(src)
    i = table.schema.get_field_index("amount")
    pq.write_table(table.set_column(i, "amount", pa.array([{"a": 1.0}] * table.num_rows)), src)
    fails(lambda: fs.materialize(datetime(2023, 12, 1, tzinfo=timezone.utc), END, ["user_spend"]),
          "'user_spend'", str(src), "'amount'")


def test_a_file_that_vanishes_after_the_job_is_built(repo: Path) -> None:
    """A glob source lists its files when the retrieval is planned; one removed (or replaced by
    something unreadable) before ``to_df`` is named."""
    view = scores_view(source=FileSource("data/scores/*/*.parquet", "ts"))
    day(repo, "2024-01-01")
    second = day(repo, "2024-01-10")
    fs = FeatureStore(repo)
    fs.apply([user, pair, view])
    job = fs.get_historical_features(LABELS, ["scores:score"])
    later = fs.get_historical_features(LABELS, ["scores:score"])
    os.remove(second)
    fails(job.to_df, "'scores'", str(second))
    second.mkdir()   # now a directory where the file was
    fails(later.to_df, "'scores'", str(second))


def test_a_file_replaced_by_garbage_after_the_job_is_built(fs: FeatureStore, repo: Path) -> None:
    job = fs.get_historical_features(LABELS, ["user_spend:amount"])
    src = repo / "data" / "spend.parquet"
    src.write_bytes(b"garbage" * 100)
    fails(job.to_df, "'user_spend'", str(src))


# --- entity_df given as SQL ---------------------------------------------------------------------
@pytest.mark.parametrize("features", [["user_spend:amount"], ["user_spend:amount", "scores:score"]],
                         ids=["one_view", "several_views"])
def test_a_sql_entity_df_that_fails_while_running_is_blamed(fs: FeatureStore, features: list[str]) -> None:
    """The query parses and has the right columns, but a value fails at run time: the entity_df
    is named, not a feature view."""
    sql = ("SELECT 'u1' AS user_id, 'm1' AS merchant_id, TIMESTAMP '2024-01-15' AS event_timestamp, "
           "CAST(x AS INTEGER) AS label FROM (VALUES ('1'), ('x')) AS v(x)")
    msg = fails(lambda: fs.get_historical_features(sql, features).to_df(), "entity_df SQL query failed",
                "'x'", exc=InvalidRequestError)
    assert "user_spend" not in msg


@pytest.mark.parametrize("sql, words", [
    ("SELEC nonsense", ["entity_df SQL query failed", "syntax error"]),
    ("SELECT * FROM no_such_table", ["entity_df SQL query failed", "no_such_table"]),
    ("SELECT * FROM read_parquet('/nonexistent/labels.parquet')", ["entity_df SQL query failed",
                                                                   "/nonexistent/labels.parquet"]),
], ids=["syntax", "unknown_table", "missing_file"])
def test_a_sql_entity_df_that_does_not_run(fs: FeatureStore, sql: str, words: list[str]) -> None:
    fails(lambda: fs.get_historical_features(sql, ["user_spend:amount"]).to_df(), *words,
          exc=InvalidRequestError)


def test_a_good_sql_entity_df_over_a_bad_source_blames_the_source(fs: FeatureStore, repo: Path) -> None:
    bad = day(repo, "2024-01-10", score=["abc", "0.1"])
    sql = ("SELECT * FROM (VALUES ('u1', 'm1', TIMESTAMP '2024-01-15'), ('u2', 'm1', TIMESTAMP '2024-01-16')) "
           "AS v(user_id, merchant_id, event_timestamp)")
    msg = fails(lambda: fs.get_historical_features(sql, ["scores:score"]).to_df(), "'scores'", str(bad),
                "'score'")
    assert "entity_df SQL" not in msg


def test_the_good_files_still_answer(fs: FeatureStore, repo: Path) -> None:
    """No error path taken on good data: the translation costs nothing when nothing fails."""
    day(repo, "2024-01-10")
    got = fs.get_historical_features(LABELS, ["scores:score", "scores:rank", "user_spend:amount"]).to_df()
    assert got["score"].tolist()[:2] == [0.5, 0.25] and got["rank"].tolist()[:2] == [1, 2]


def test_the_diagnosis_blames_only_what_the_conformance_table_refuses() -> None:
    """After a failure, a file is blamed for a column's type only when docs/types.md's table
    refuses it: int64 over Float64 and float64 over Float32 are accepted there, so blaming them
    would point the user at the wrong file."""
    from skewless import types as T
    from skewless.engines.duckdb_errors import _mistyped

    def schemas(t: pa.DataType) -> dict[str, pa.Schema]:
        return {"day1.parquet": pa.schema([("x", t)])}

    assert _mistyped(schemas(pa.int64()), "x", T.Float64) is None
    assert _mistyped(schemas(pa.float64()), "x", T.Float32) is None
    assert _mistyped(schemas(pa.float64()), "x", T.Int64) is None     # values checked elsewhere
    bad = _mistyped(schemas(pa.string()), "x", T.Float64)
    assert bad is not None and "day1.parquet" in bad and "'x'" in bad and "Float64" in bad
    assert _mistyped(schemas(pa.string()), "ts", "timestamp") is None   # absent: not blamed
    assert _mistyped({"d.parquet": pa.schema([("ts", pa.string())])}, "ts", "timestamp") is not None
