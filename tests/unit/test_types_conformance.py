"""The conformance table (skewless.types, docs/types.md): its verdicts pinned, the docs' table
generated from it, and a property: for generated Arrow columns, plan's verdict (every file's
check), push's verdict (kernels.batch), the reference engine's reader and DuckDB's CAST agree."""

from __future__ import annotations

import math
import re
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from skewless import Entity, FeatureView, Field, FileSource
from skewless import types as T
from skewless.engines.duckdb import sql_type
from skewless.errors import SourceError
from skewless.kernels.batch import BadColumn, IncompatibleType, conform
from skewless.kernels.source import check_view_source, read_conformed, resolve_source

DOCS = Path(__file__).parents[2] / "docs" / "types.md"
DECLARED = [T.Int32, T.Int64, T.Float32, T.Float64, T.String, T.Bool, T.Bytes, T.UnixTimestamp,
            T.Array(T.Int64), T.Array(T.Float32)]
SOURCES = [pa.null(), pa.int8(), pa.int32(), pa.int64(), pa.uint32(), pa.uint64(), pa.float32(),
           pa.float64(), pa.bool_(), pa.string(), pa.large_string(),
           pa.dictionary(pa.int32(), pa.string()), pa.binary(), pa.timestamp("ns"),
           pa.timestamp("us", "UTC"), pa.date32(), pa.list_(pa.int64()), pa.list_(pa.float64()),
           pa.list_(pa.string())]
MARK = {T.ACCEPT: "yes", T.CHECK: "if values fit", T.REFUSE: "no"}


def _label(t: pa.DataType) -> str:
    if pa.types.is_dictionary(t):
        return f"dictionary<{_label(t.value_type)}>"
    if pa.types.is_list(t):
        return f"list<{_label(t.value_type)}>"
    return T.arrow_name(t)


def render_table() -> str:
    """The Markdown table of docs/types.md: declared type x source Arrow type -> verdict."""
    head = "| source column \\ declared | " + " | ".join(t.name for t in DECLARED) + " |"
    rows = [head, "|" + "---|" * (len(DECLARED) + 1)]
    for s in SOURCES:
        cells = [MARK[T.conformance(s, t).verdict] for t in DECLARED]
        rows.append(f"| `{_label(s)}` | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def test_docs_show_the_table_the_code_applies() -> None:
    """docs/types.md carries the table generated from ``conformance``: a rule change that is not
    documented fails here (regenerate with ``python -c 'from tests.unit.test_types_conformance
    import render_table; print(render_table())'``)."""
    assert render_table() in DOCS.read_text()


@pytest.mark.parametrize(("source", "declared", "verdict"), [
    (pa.int32(), T.Int64, T.ACCEPT), (pa.int64(), T.Int32, T.CHECK), (pa.uint64(), T.Int64, T.CHECK),
    (pa.float32(), T.Float64, T.ACCEPT), (pa.float64(), T.Float32, T.CHECK),
    (pa.float64(), T.Int64, T.CHECK), (pa.int32(), T.Float64, T.ACCEPT), (pa.int64(), T.Float64, T.CHECK),
    (pa.null(), T.Bool, T.ACCEPT), (pa.null(), T.Array(T.Int32), T.ACCEPT),
    (pa.string(), T.Float64, T.REFUSE), (pa.string(), T.UnixTimestamp, T.REFUSE),
    (pa.int64(), T.String, T.REFUSE), (pa.bool_(), T.Int64, T.REFUSE), (pa.int64(), T.Bool, T.REFUSE),
    (pa.dictionary(pa.int8(), pa.string()), T.String, T.ACCEPT), (pa.large_string(), T.String, T.ACCEPT),
    (pa.date32(), T.UnixTimestamp, T.ACCEPT), (pa.timestamp("ns", "Asia/Kolkata"), T.UnixTimestamp, T.ACCEPT),
    (pa.list_(pa.float64()), T.Array(T.Float32), T.CHECK), (pa.large_list(pa.int32()), T.Array(T.Int64), T.ACCEPT),
    (pa.list_(pa.string()), T.Array(T.Int64), T.REFUSE), (pa.string(), T.Bytes, T.REFUSE),
])
def test_verdicts(source: pa.DataType, declared: T.ValueType, verdict: str) -> None:
    assert T.conformance(source, declared).verdict == verdict


def test_misfits_name_the_rows() -> None:
    def rows(values: list[Any], t: pa.DataType, declared: T.ValueType) -> list[int]:
        bad = T.misfits(pa.array(values, t), declared)
        return [] if bad is None else [i for i, b in enumerate(bad.to_pylist()) if b]

    assert rows([1, 2**31, None, -(2**31) - 1, -(2**31)], pa.int64(), T.Int32) == [1, 3]
    assert rows([1.0, 14.7, None, float("nan"), 2.0**63, -(2.0**63)], pa.float64(), T.Int64) == [1, 3, 4]
    assert rows([0.1, 1e39, None, float("inf"), -1e39], pa.float64(), T.Float32) == [1, 4]
    assert rows([1, 2**53 + 1, 2**60, None], pa.int64(), T.Float64) == [1]
    assert rows([[1.0, 2.5], None, [], [3.0]], pa.list_(pa.float64()), T.Array(T.Int64)) == [0]
    # unsigned columns whose range passes the target's on one side only (found by the property
    # below: comparing with a bound outside the column's own type made Arrow cast the column)
    assert rows([0, 2**63, None, 2**64 - 1], pa.uint64(), T.Int64) == [1, 3]
    assert rows([0, 2**31, 7], pa.uint32(), T.Int32) == [1]
    assert rows([-5, 200, None], pa.int16(), T.Int32) == []
    assert rows([1, 2**53 + 1, 2**64 - 1, 2**63], pa.uint64(), T.Float64) == [1, 2]


# --- the property: plan, push, the reference reader and DuckDB agree ----------------------------

def _values(t: pa.DataType) -> st.SearchStrategy[Any]:
    if pa.types.is_dictionary(t):
        return _values(t.value_type)
    if pa.types.is_integer(t):
        lo, hi = T._int_range(t)
        edges = [v for v in (0, 1, -1, 2**31 - 1, 2**31, -(2**31) - 1, 2**53 + 1, 2**63 - 1) if lo <= v <= hi]
        return st.sampled_from(edges) | st.integers(lo, hi)
    if pa.types.is_floating(t):
        return st.sampled_from([0.0, 1.0, -3.0, 14.7, 0.1, 1e39, 2.0**63, 3.4028235e38]) | \
            st.floats(width=t.bit_width, allow_nan=False)
    if pa.types.is_boolean(t):
        return st.booleans()
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return st.sampled_from(["0.505", "abc", "1", "2024-01-01T00:00:00"])
    if pa.types.is_binary(t):
        return st.binary(max_size=4)
    if pa.types.is_timestamp(t):
        return st.datetimes(datetime(1990, 1, 1), datetime(2030, 1, 1)).map(
            lambda d: d.replace(tzinfo=timezone.utc) if t.tz else d)
    if pa.types.is_date(t):
        return st.dates(date(1990, 1, 1), date(2030, 1, 1))
    if pa.types.is_list(t):
        return st.lists(st.none() | _values(t.value_type), max_size=3)
    return st.none()


PROPERTY_SOURCES = [s for s in SOURCES if s != pa.timestamp("ns")] + [pa.timestamp("us")]


@st.composite
def columns(draw: Any) -> tuple[pa.Array, T.ValueType]:
    source = draw(st.sampled_from(PROPERTY_SOURCES))
    declared = draw(st.sampled_from(DECLARED))
    values = draw(st.lists(st.none() | _values(source), min_size=1, max_size=6))
    if pa.types.is_dictionary(source):
        return pa.array(values, pa.string()).dictionary_encode(), declared
    return pa.array(values, source), declared


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=columns())
def test_plan_push_reference_and_duckdb_agree(case: tuple[pa.Array, T.ValueType], tmp_path: Path) -> None:
    array, declared = case
    n = len(array)
    f = tmp_path / "src.parquet"
    pq.write_table(pa.table({"id": pa.array(range(n), pa.int64()),
                             "ts": pa.array([datetime(2024, 1, 1)] * n, pa.timestamp("us")),
                             "x": array}), f)
    user = Entity("user", join_keys=["id"])
    view = FeatureView("v", entities=[user], schema=[Field("x", declared)], ttl=None,
                       source=FileSource(str(f), "ts"))
    resolved = resolve_source(view.batch_source, tmp_path)

    plan_ok = not check_view_source(view, ("id",), resolved)
    try:
        pushed = conform(array, declared.to_arrow())
        push_ok = True
    except (BadColumn, IncompatibleType):
        push_ok = False
    try:
        read = read_conformed(resolved, {"x": declared.to_arrow()}, "v").column("x")
        reference_ok = True
    except SourceError:
        reference_ok = False

    source = array.type.value_type if pa.types.is_dictionary(array.type) else array.type
    if (T._family(source), declared) == ("string", T.UnixTimestamp):
        assert not plan_ok and not reference_ok   # push alone parses ISO strings (JSON has no time type)
        return
    assert plan_ok == push_ok == reference_ok, (array, declared)
    if not plan_ok:
        return
    # Accepted: every path holds the same values, and DuckDB's CAST (training, materialization)
    # gives them too (e.g. float64 rounded to float32 alike).
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        got = con.sql(f"SELECT CAST(x AS {sql_type(declared)}) AS x FROM read_parquet('{f}') "
                      "ORDER BY id").to_arrow_table().column("x").cast(declared.to_arrow())
    finally:
        con.close()
    want = pushed.to_pylist()
    assert _same(read.to_pylist(), want)
    assert _same(got.to_pylist(), want), (array, declared, got)


def test_the_rule_text_cites_docs() -> None:
    assert re.search(r"docs/types\.md", T.__doc__ or "")


def test_footer_statistics_spare_reading_a_float64_column_declared_float32(tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """float64 over Float32 (the common case) is range-checked from the footer's min/max: the
    column is not read; a float over an integer field is (whole numbers need the values)."""
    from skewless.kernels import source as S

    pq.write_table(pa.table({"x": [0.1, None, 1e30], "n": [1, 2**40, 3], "f": [1.0, 2.0, 3.0]}),
                   tmp_path / "s.parquet")
    sf = S.source_files(resolve_source(FileSource("s.parquet", "ts"), tmp_path), "v")[0]
    read: list[str] = []
    real = S._read_column
    monkeypatch.setattr(S, "_read_column", lambda f, c: read.append(c) or real(f, c))
    assert S.column_misfit(sf, "x", T.Float32) is None
    assert S.column_misfit(sf, "n", T.Int32) == S.Misfit(row=1, value=2**40, count=1)
    assert S.column_misfit(sf, "f", T.Int64) is None
    assert read == ["n", "f"]


def test_statistics_never_prove_big_integers_exact_in_a_float(tmp_path: Path) -> None:
    """min and max exactly representable (2**60, 2**60 + 256) do not make 2**60 + 1 so: the
    column is read and the value named."""
    from skewless.kernels import source as S

    pq.write_table(pa.table({"n": [2**60, 2**60 + 1, 2**60 + 256]}), tmp_path / "s.parquet")
    sf = S.source_files(resolve_source(FileSource("s.parquet", "ts"), tmp_path), "v")[0]
    assert S.column_misfit(sf, "n", T.Float64) == S.Misfit(row=1, value=2**60 + 1, count=1)
