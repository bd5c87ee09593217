"""Source paths are literal unless they hold * or ?: a '[' is a character of the file name,
never a character class (docs/types.md, "Paths: literal unless * or ?"). Every reader follows
the one rule: plan/apply's footer checks, both engines, materialization and push."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from skewless import Entity, FeatureStore, FeatureView, Field, FileSource, PushSource
from skewless.define.source import glob_pattern, is_glob, literal_pattern
from skewless.errors import PlanError, SourceError
from skewless.types import Float64

NOW = datetime(2024, 3, 1, tzinfo=timezone.utc)
user = Entity("user", join_keys=["user_id"])


def write(path: Path, amount: float, user_id: str = "u1") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({"user_id": [user_id], "ts": pa.array([NOW - pd.Timedelta(days=1)],
                                                                   pa.timestamp("us", "UTC")),
                             "amount": [amount]}), path)


def store(repo: Path, engine: str) -> FeatureStore:
    return FeatureStore(repo, config={"project": "paths", "registry": "data/registry.db",
                                      "offline_store": {"type": engine}})


def view(path: str, name: str = "spend") -> FeatureView:
    return FeatureView(name=name, entities=[user], schema=[Field("amount", Float64)],
                       source=FileSource(path, timestamp_field="ts"), ttl=None)


def amounts(fs: FeatureStore, name: str = "spend", users: tuple[str, ...] = ("u1",)) -> list[float]:
    df = pd.DataFrame({"user_id": list(users), "event_timestamp": [NOW] * len(users)})
    return fs.get_historical_features(df, [f"{name}:amount"]).to_df()["amount"].tolist()


@pytest.mark.parametrize("engine", ["duckdb", "reference"])
def test_a_bracket_in_a_file_name_is_literal(tmp_path: Path, engine: str) -> None:
    write(tmp_path / "data/x1.parquet", 1.0)       # what a glob reading of x[1] would match
    write(tmp_path / "data/x[1].parquet", 2.0)     # the file the path names
    fs = store(tmp_path, engine)
    fs.apply([user, view("data/x[1].parquet")])
    assert amounts(fs) == [2.0]
    fs.materialize(None, NOW)
    assert fs.get_online_features(["spend:amount"], [{"user_id": "u1"}]).to_dict()["amount"] == [2.0]


@pytest.mark.parametrize("engine", ["duckdb", "reference"])
def test_brackets_in_directories_and_globs_are_literal(tmp_path: Path, engine: str) -> None:
    write(tmp_path / "data/d[1]/part-0.parquet", 3.0)
    write(tmp_path / "data/d1/part-0.parquet", 30.0)
    write(tmp_path / "data/g[ab]/part-0.parquet", 4.0, "u2")
    write(tmp_path / "data/ga/part-0.parquet", 40.0, "u2")
    # a file whose name holds a wildcard, inside a folder: still read as that one file
    write(tmp_path / "data/odd/what?.parquet", 5.0, "u3")
    fs = store(tmp_path, engine)
    fs.apply([user, view("data/d[1]", "by_dir"), view("data/g[ab]/*.parquet", "by_glob"),
              view("data/odd", "odd")])
    assert amounts(fs, "by_dir") == [3.0]
    assert amounts(fs, "by_glob", ("u2",)) == [4.0]
    assert amounts(fs, "odd", ("u3",)) == [5.0]


def test_a_missing_bracketed_file_is_not_found_with_a_hint(tmp_path: Path) -> None:
    write(tmp_path / "data/x1.parquet", 1.0)
    fs = store(tmp_path, "duckdb")
    with pytest.raises((PlanError, SourceError)) as e:
        fs.apply([user, view("data/x[1].parquet")])
    text = str(e.value) + (e.value.hint or "")
    assert "x[1].parquet" in text and "does not exist" in text
    # plan/apply list each problem's message without its hint: the message itself says why
    assert "are literal characters" in e.value.message


def test_star_and_question_mark_globs_keep_working(tmp_path: Path) -> None:
    write(tmp_path / "data/p/part-1.parquet", 1.0, "u1")
    write(tmp_path / "data/p/part-2.parquet", 2.0, "u2")
    fs = store(tmp_path, "duckdb")
    fs.apply([user, view("data/p/part-*.parquet", "star"), view("data/p/part-?.parquet", "qmark")])
    assert amounts(fs, "star", ("u1", "u2")) == [1.0, 2.0]
    assert amounts(fs, "qmark", ("u1", "u2")) == [1.0, 2.0]


def test_a_push_into_a_bracketed_directory(tmp_path: Path) -> None:
    write(tmp_path / "data/ev[1]/seed.parquet", 1.0)
    write(tmp_path / "data/ev1/seed.parquet", 100.0)
    fs = FeatureStore(tmp_path, config={"project": "paths", "registry": "data/registry.db"},
                      clock=lambda: NOW)
    pushed = FeatureView(name="pushed", entities=[user], schema=[Field("amount", Float64)],
                         source=PushSource("events", FileSource("data/ev[1]", timestamp_field="ts")),
                         ttl=None)
    fs.apply([user, pushed])
    fs.push("events", {"user_id": ["u9"], "ts": [NOW], "amount": [9.0]})
    assert len(list((tmp_path / "data/ev[1]").glob("*.parquet"))) == 2
    assert len(list((tmp_path / "data/ev1").glob("*.parquet"))) == 1
    assert amounts(fs, "pushed", ("u1", "u9")) == [1.0, 9.0]


def test_the_rule() -> None:
    assert not is_glob("data/x[1].parquet") and is_glob("data/*.parquet") and is_glob("a/?.parquet")
    assert glob_pattern("d[1]/*.parquet") == "d[[]1]/*.parquet"
    assert literal_pattern("a/what?[1]*.parquet") == "a/what[?][[]1][*].parquet"
    assert literal_pattern("plain/path.parquet") == "plain/path.parquet"
