"""Feast's ``FileSource`` spellings (docs/configuration.md, "Coming from Feast"): accepted where
they mean the same thing, else refused saying what to write."""

from __future__ import annotations

import pytest

from skewless import FileSource
from skewless.data_format import ParquetFormat
from skewless.errors import DefinitionError


@pytest.mark.parametrize("fmt", ["parquet", "Parquet", ParquetFormat()], ids=["str", "case", "object"])
def test_parquet_file_format_is_accepted(fmt: object) -> None:
    src = FileSource(name="driver_hourly_stats_source", path="data/driver_stats.parquet",
                     timestamp_field="event_timestamp", created_timestamp_column="created",
                     file_format=fmt)
    assert src == FileSource(name="driver_hourly_stats_source", path="data/driver_stats.parquet",
                             timestamp_field="event_timestamp", created_timestamp_column="created")
    assert "file_format" not in src.to_spec()  # Parquet is the only format: nothing to store


@pytest.mark.parametrize("fmt", ["csv", "delta", "avro"])
def test_other_formats_are_refused_saying_what_to_write(fmt: str) -> None:
    with pytest.raises(DefinitionError) as e:
        FileSource(path=f"data/x.{fmt}", timestamp_field="ts", file_format=fmt)
    assert f"file_format '{fmt}' is not supported" in e.value.message
    assert "data/x." in e.value.message and 'file_format="parquet"' in (e.value.hint or "")


def test_a_foreign_format_object_is_refused_by_its_class_name() -> None:
    class DeltaFormat:
        pass

    with pytest.raises(DefinitionError, match="skewless reads Parquet only"):
        FileSource(path="data/x", timestamp_field="ts", file_format=DeltaFormat())


def test_event_timestamp_column_is_feasts_older_timestamp_field() -> None:
    old = FileSource(path="data/x.parquet", event_timestamp_column="ts")
    assert old == FileSource(path="data/x.parquet", timestamp_field="ts")
    with pytest.raises(DefinitionError, match="disagree"):
        FileSource(path="data/x.parquet", timestamp_field="a", event_timestamp_column="b")


def test_empty_created_timestamp_column_means_none() -> None:
    assert FileSource(path="data/x.parquet", timestamp_field="ts",
                      created_timestamp_column="").created_timestamp_column is None


@pytest.mark.parametrize("kw, what", [
    ({"tags": {"team": "x"}}, "sources take no tags"),
    ({"owner": "me@x"}, "sources take no owner"),
    ({"s3_endpoint_override": "http://minio:9000"}, "s3_endpoint_override is not supported"),
])
def test_feast_only_source_arguments_are_refused(kw: dict[str, object], what: str) -> None:
    with pytest.raises(DefinitionError) as e:
        FileSource(path="data/x.parquet", timestamp_field="ts", **kw)  # type: ignore[arg-type]
    assert what in e.value.message and e.value.hint


def test_missing_timestamp_field_is_a_definition_error() -> None:
    with pytest.raises(DefinitionError, match="timestamp_field"):
        FileSource(path="data/x.parquet")
