"""PushSource as a definition (where pushes can land, spec round trip, the batch source as the
offline history) and the batch conversion rules push validates with."""

from datetime import datetime, timezone

import pandas as pd
import pyarrow as pa
import pytest

from skewless import Entity, FeatureView, Field, FileSource, PushSource
from skewless.define import offline_source
from skewless.errors import DefinitionError, InvalidRequestError
from skewless.kernels.batch import BadColumn, columns_of, conform, show_rows
from skewless.registry import Snapshot
from skewless.types import Float64

user = Entity("user", join_keys=["user_id"])


def _push(path: str = "data/events", **kw) -> PushSource:
    return PushSource("events_push", FileSource(path, "ts", **kw))


def _view(source) -> FeatureView:
    return FeatureView("spend", [user], [Field("amount", Float64)], source)


@pytest.mark.parametrize("path, directory", [
    ("data/events", "data/events"),
    ("data/events/", "data/events"),
    ("data/events/*.parquet", "data/events"),
    ("data/events/**/*.parquet", "data/events"),
    ("/abs/events/*.parquet", "/abs/events"),
    ("*.parquet", "."),
])
def test_push_directory(path: str, directory: str) -> None:
    assert _push(path).push_dir == directory


@pytest.mark.parametrize("path, message", [
    ("data/events.parquet", "is a single file"),
    ("s3://bucket/events/", "is a URL"),
    ("data/events/part-*.parquet", "would not match them"),
    ("data/*/events.parquet", "does not tell where pushed files go"),
    ("data/events/**", "does not tell where pushed files go"),
])
def test_batch_sources_pushes_cannot_land_in(path: str, message: str) -> None:
    with pytest.raises(DefinitionError, match=message) as e:
        _push(path)
    assert e.value.hint


def test_single_file_error_says_how_to_fix() -> None:
    with pytest.raises(DefinitionError) as e:
        _push("data/events.parquet")
    assert "FileSource('data/events', timestamp_field='ts')" in (e.value.hint or "")


def test_push_source_checks_its_arguments() -> None:
    with pytest.raises(DefinitionError, match="batch_source must be a FileSource"):
        PushSource("p", "data/events")  # type: ignore[arg-type]
    with pytest.raises(DefinitionError, match="invalid"):
        PushSource("bad name", FileSource("data/events", "ts"))
    with pytest.raises(DefinitionError, match="FileSource or a PushSource"):
        _view("data/events")


def test_spec_round_trip_and_value_semantics() -> None:
    push = _push(created_timestamp_column="created", field_mapping={"amt": "amount"})
    assert push.to_spec()["type"] == "push"
    assert PushSource.from_spec(push.to_spec()) == push
    assert hash(PushSource.from_spec(push.to_spec())) == hash(push)
    view = _view(push)
    again = Snapshot.decode("feature_view", Snapshot.encode(view))
    assert again == view and again.push_source == push
    assert again.batch_source == push.batch_source
    assert _view(_push("data/other")) != view


def test_batch_source_is_the_offline_history() -> None:
    plain = FileSource("data/events", "ts")
    assert _view(plain).batch_source is plain and _view(plain).push_source is None
    push = _push()
    assert _view(push).batch_source is push.batch_source
    assert offline_source(push) is push.batch_source and offline_source(plain) is plain
    # the batch source's timestamp column is reserved, as for a FileSource
    with pytest.raises(DefinitionError, match="timestamp column"):
        FeatureView("spend", [user], [Field("amount", Float64), Field("ts", Float64)], push)


# --- batch conversion --------------------------------------------------------------------------

def _bad(column, target) -> BadColumn:
    with pytest.raises(BadColumn) as e:
        conform(column, target)
    return e.value


def test_conversions_that_keep_meaning() -> None:
    assert conform([1, 2], pa.float64()).to_pylist() == [1.0, 2.0]
    assert conform(pd.Series([1.0, None]), pa.int64()).to_pylist() == [1, None]  # pandas' int-with-NaN
    assert conform([None, None], pa.string()).to_pylist() == [None, None]
    assert conform(["2024-01-01T01:00:00+01:00", "2024-01-01"], pa.timestamp("us", tz="UTC")).to_pylist() == [
        datetime(2024, 1, 1, tzinfo=timezone.utc), datetime(2024, 1, 1, tzinfo=timezone.utc)]
    assert conform(pd.Series(["a", "b"], dtype="category"), pa.string()).to_pylist() == ["a", "b"]
    assert conform(pa.chunked_array([[1], [2]]), pa.int32()).to_pylist() == [1, 2]


def test_conversions_that_would_hide_a_bug_are_refused() -> None:
    assert _bad(["1", "2"], pa.int64()).rows == (0, 1)     # pyarrow would parse them
    assert _bad([1, None, 3], pa.string()).rows == (0, 2)  # pyarrow would print them
    assert _bad([1.0, 1.5], pa.int64()).rows == (1,)
    assert _bad([1, 2**40], pa.int32()).rows == (1,)
    assert _bad([1.0, 1e300], pa.float32()).rows == (1,)
    assert _bad(["2024-01-01", "soon"], pa.timestamp("ns")).rows == (1,)
    assert _bad(pd.Series(["a", 1.5, "b"]), pa.string()).rows == (1,)
    assert _bad([1, 2], pa.timestamp("us")).rows == (0, 1)  # epoch numbers: units are ambiguous


def test_columns_of_each_input_kind() -> None:
    assert columns_of(pd.DataFrame({"a": [1, 2]}))[1] == 2
    assert columns_of(pa.table({"a": [1, 2, 3]}))[1] == 3
    assert columns_of({"a": [1], "b": ["x"]})[1] == 1
    with pytest.raises(InvalidRequestError, match="different lengths"):
        columns_of({"a": [1], "b": [1, 2]})
    with pytest.raises(InvalidRequestError, match="must be a list of values"):
        columns_of({"a": "u1"})


def test_show_rows() -> None:
    assert show_rows([3]) == "row 3"
    assert show_rows(list(range(12))) == "rows [0, 1, 2, 3, 4, 5, 6, 7, 8, 9] and 2 more"
