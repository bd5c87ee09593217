"""Point-in-time conformance: every engine returns the reference engine's table
(docs/point-in-time.md#engines).

Scenarios are generated (skewless.testing.pit): duplicate event times resolved by created time,
null created times, full duplicates, null values, TTL edges to the microsecond, labels before an
entity's first row, unknown entities and null keys, naive and zoned timestamps, int, string and
composite keys, several views in one call, defaults, full feature names, ``as_of``, hive
directories and multi-file globs, and every feature type. Engines come from conftest.ENGINES.

PIT_EXAMPLES sets the number of examples of the engine property (300; the other properties run
half as many), e.g. ``PIT_EXAMPLES=5000 pytest tests/conformance -k engine_matches`` for a hunt.
"""

from __future__ import annotations

import os
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, event, given, settings

from skewless import Entity, FeatureStore, FeatureView, Field, FileSource
from skewless.testing import (
    Scenario,
    TableMismatch,
    assert_engines_agree,
    assert_tables_equal,
    large_scenario,
    retrieve,
    scenarios,
    setup_repo,
)
from skewless.testing.aggregations import (AggScenario, aggregation_scenarios, assert_aggregations_agree,
                                           retrieve_aggregations, setup_aggregation_repo)
from skewless.types import Array, Float64, Int64, String

EXAMPLES = int(os.environ.get("PIT_EXAMPLES", "300"))
PROPERTY = settings(max_examples=EXAMPLES, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
HALF = settings(PROPERTY, max_examples=max(EXAMPLES // 2, 1))
UTC = timezone.utc


def _context(s: Scenario) -> list[str]:
    return [*s.entity_keys, s.timestamp_column]


@PROPERTY
@given(scenario=scenarios())
def test_engine_matches_reference(engine: dict[str, Any], workdir: Path, scenario: Scenario) -> None:
    with tempfile.TemporaryDirectory(dir=workdir) as repo:
        want = assert_engines_agree(scenario, repo, engine)
    assert want.num_rows == len(scenario.labels)
    for trait in sorted(scenario.expected().traits):
        event(trait)


@HALF
@given(scenario=scenarios())
def test_reference_matches_the_rules(workdir: Path, scenario: Scenario) -> None:
    """The oracle itself, against the rules restated over the in-memory rows (no Parquet): every
    input row in input order with its original columns, then the features."""
    expected = scenario.expected()
    with tempfile.TemporaryDirectory(dir=workdir) as repo:
        setup_repo(scenario, repo)
        got = retrieve(scenario, repo, {"type": "reference"})
    assert_tables_equal(expected.table, got, "rules", "reference", context=_context(scenario))


@pytest.mark.parametrize("seed", [0, 1])
def test_large_scenario_matches_reference(engine: dict[str, Any], tmp_path: Path, seed: int) -> None:
    """Thousands of entity rows in several chunks against several files: order and parallelism."""
    scenario = large_scenario(seed, rows=2000, labels=6000)
    want = assert_engines_agree(scenario, tmp_path, engine)
    expected = scenario.expected()
    assert {"created_tiebreak", "ttl_edge_inclusive", "ttl_expired_by_1us"} <= expected.traits
    assert_tables_equal(expected.table, want, "rules", "reference", context=_context(scenario))


def _instants(column: pa.ChunkedArray) -> list[Any]:
    t = column.type
    if pa.types.is_timestamp(t):
        column = column.cast(pa.timestamp("us", "UTC" if t.tz else None))
    return column.to_pylist()


@HALF
@given(scenario=scenarios())
def test_sql_entity_df_matches_reference(engine: dict[str, Any], sql_over_parquet: str | None,
                                         workdir: Path, scenario: Scenario) -> None:
    """entity_df as a SQL query: the same features, and the query's rows in its order. (Entity
    column types are the engine's own there, so their values are compared, not their types.)"""
    if sql_over_parquet is None:
        pytest.skip(f"{engine['type']} does not take entity_df as SQL")
    with tempfile.TemporaryDirectory(dir=workdir) as repo:
        setup_repo(scenario, repo)
        want = retrieve(scenario, repo, {"type": "reference"})
        labels = Path(repo) / "labels.parquet"
        pq.write_table(scenario.entity_table(), labels)
        request = scenario.request()
        request["entity_df"] = sql_over_parquet.format(path=labels)
        store = FeatureStore(repo, config=scenario.config(engine))
        got = store.get_historical_features(**request).to_arrow()
    assert got.column_names == want.column_names
    entity_columns = scenario.column_order
    features = [c for c in want.column_names if c not in entity_columns]
    assert_tables_equal(want.select(features), got.select(features), "reference", engine["type"])
    for c in entity_columns:
        assert _instants(got.column(c)) == _instants(want.column(c)), f"entity_df column {c!r}"


REQUIRED_TRAITS = {
    # how labels resolve
    "matched", "created_tiebreak", "null_created_is_oldest", "full_duplicate", "null_value",
    "label_at_event_ts", "future_by_1us_ignored", "ttl_edge_inclusive", "ttl_expired_by_1us",
    "label_before_first_row", "unknown_entity", "null_label_key", "null_label_ts",
    "as_of_dropped_row", "default_served",
    "availability_delay", "label_at_landing_time", "not_landed_by_1us_ignored",
    # data and request
    "null_created_ts", "null_event_ts", "field_defaults", "field_mapping", "full_feature_names",
    "composite_key", "several_views", "views_with_different_entities", "key:int", "key:str",
    "as_of_with_created", "as_of_without_created", "as_of:naive", "as_of:aware",
    "layout:file", "layout:glob", "layout:dir", "layout:hive/bucket", "layout:hive/key",
    "parquet:arrow", "parquet:int96", "parquet:plain",
    "form:pandas", "form:arrow", "form:arrow_chunked", "passthrough:float16",
    "passthrough:struct", "passthrough:decimal",
    "entity_ts:naive", "entity_ts:utc", "entity_ts:zoned", "entity_ts:date",
    "source_ts:naive", "source_ts:utc", "source_ts:zoned", "source_ts:date",
    *(f"dtype:{t}" for t in ("Int32", "Int64", "Float32", "Float64", "String", "Bool",
                             "Array(Float64)")),
}


def test_generator_covers_the_contract() -> None:
    """The generated scenarios reach every rule and input kind the contract names; a strategy
    change that stops reaching one fails here rather than silently weakening the suite."""
    seen: dict[str, int] = {}

    @settings(max_examples=300, deadline=None, database=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(scenario=scenarios())
    def collect(scenario: Scenario) -> None:
        for trait in scenario.expected().traits:
            seen[trait] = seen.get(trait, 0) + 1

    collect()
    missing = sorted(REQUIRED_TRAITS - set(seen))
    assert not missing, f"no generated scenario covers {missing}; seen: {sorted(seen.items())}"


# --- the diff message ----------------------------------------------------------------------------

def test_mismatch_names_row_column_and_values() -> None:
    want = pa.table({"user_id": [1, 2, 3], "f": [1.0, float("nan"), None]})
    assert_tables_equal(want, want)  # NaN equals NaN
    got = pa.table({"user_id": [1, 2, 3], "f": [1.0, float("nan"), 7.5]})
    with pytest.raises(TableMismatch) as err:
        assert_tables_equal(want, got, "reference", "duckdb", context=["user_id"])
    assert "row 2 [user_id=3] column 'f': reference=None, duckdb=7.5" in str(err.value)
    assert err.value.cells == [(2, "f", None, 7.5)]
    with pytest.raises(TableMismatch, match="column types differ.*'f': reference double, duckdb float"):
        assert_tables_equal(want, got.cast(pa.schema([("user_id", pa.int64()), ("f", pa.float32())])),
                            "reference", "duckdb")
    with pytest.raises(TableMismatch, match=r"missing \['f'\]"):
        assert_tables_equal(want, got.select(["user_id"]))


# --- regressions found by the property ------------------------------------------------------------

def _one_view_repo(repo: Path, engine: dict[str, Any], table: pa.Table, created: str | None,
                   ttl: timedelta | None = None, schema: list[Field] | None = None,
                   on_missing: str = "null") -> FeatureStore:
    (repo / "data").mkdir(parents=True, exist_ok=True)
    pq.write_table(table, repo / "data" / "src.parquet")
    store = FeatureStore(repo, config={"project": "pit", "offline_store": engine})
    user = Entity("user", join_keys=["user_id"])
    store.apply([user, FeatureView(
        "fv", entities=[user], schema=schema or [Field("x", Float64)], ttl=ttl,
        on_missing=on_missing,
        source=FileSource("data/src.parquet", timestamp_field="ts", created_timestamp_column=created))])
    return store


def _at(hour: int, micro: int = 0) -> datetime:
    return datetime(2024, 3, 9, hour, 0, 0, micro, tzinfo=UTC)


@pytest.mark.parametrize("with_created", [True, False])
def test_label_without_time_matches_nothing(engine: dict[str, Any], tmp_path: Path,
                                            with_created: bool) -> None:
    # DuckDB used to serve the entity's latest row -- a future value -- to a label with a null
    # time when the source had a created column (its ASOF probe was a struct, never NULL).
    source = pa.table({"user_id": [1, 1], "ts": pa.array([_at(1), _at(5)], pa.timestamp("us", "UTC")),
                       "created": pa.array([_at(1), _at(5)], pa.timestamp("us", "UTC")),
                       "x": [1.0, 5.0]})
    store = _one_view_repo(tmp_path, engine, source, "created" if with_created else None)
    labels = pa.table({"user_id": [1, 1], "event_timestamp": pa.array([None, _at(2)],
                                                                      pa.timestamp("us", "UTC"))})
    out = store.get_historical_features(labels, features=["fv:x"]).to_arrow()
    assert out.column("x").to_pylist() == [None, 1.0]


def test_rules_on_one_entity(engine: dict[str, Any], tmp_path: Path) -> None:
    """The edges spelled out once, by hand: created-time tie-break, null created time as the
    oldest, ttl inclusive to the microsecond, label at the event time, defaults, as_of."""
    ts = pa.timestamp("us", "UTC")
    source = pa.table({
        "user_id": [1, 1, 1, 2, 2],
        "ts": pa.array([_at(1), _at(1), _at(3), _at(4), _at(4)], ts),
        "created": pa.array([_at(6), _at(2), None, None, _at(4)], ts),
        "x": [10.0, 20.0, None, 40.0, 50.0],
        "tags": [["a"], None, ["c"], [], ["e"]],
    })
    schema = [Field("x", Float64, default=-1.0), Field("tags", Array(String), default=["?"]),
              Field("n", Int64, default=7)]
    source = source.append_column("n", pa.array([1, 2, 3, 4, 5], pa.int64()))
    store = _one_view_repo(tmp_path, engine, source, "created", ttl=timedelta(hours=2),
                           schema=schema, on_missing="default")
    labels = pa.table({
        "user_id": pa.array([1, 1, 1, 1, 2, 3, 1], pa.int64()),
        "event_timestamp": pa.array([
            _at(1),                 # two rows at 01:00: the one created later (06:00) wins
            _at(0, 999_999),        # before the first row: defaults
            _at(3),                 # 03:00 row: null created time, still the only one at 03:00
            _at(5, 1),              # 03:00 + 2h + 1us: outside the ttl -> defaults
            _at(4),                 # two rows at 04:00: created 04:00 beats a null created time
            _at(4),                 # unknown entity: defaults
            _at(3) + timedelta(hours=2),  # exactly ts + ttl: still valid
        ], ts),
    })
    out = store.get_historical_features(labels, features=["fv:x", "fv:tags", "fv:n"]).to_arrow()
    assert out.column("x").to_pylist() == [10.0, -1.0, None, -1.0, 50.0, -1.0, None]
    assert out.column("tags").to_pylist() == [["a"], ["?"], ["c"], ["?"], ["e"], ["?"], ["c"]]
    assert out.column("n").to_pylist() == [1, 7, 3, 7, 5, 7, 3]

    # as_of 03:00: the 01:00 row created at 06:00 is unknown yet, so the one created at 02:00
    # serves 01:00; rows with a null created time are not counted as known.
    out = store.get_historical_features(labels, features=["fv:x"], as_of=_at(3)).to_arrow()
    assert out.column("x").to_pylist() == [20.0, -1.0, 20.0, -1.0, -1.0, -1.0, -1.0]


def test_pass_through_columns_of_any_type(engine: dict[str, Any], tmp_path: Path) -> None:
    # DuckDB used to load the whole entity_df, so a pass-through column of a type it cannot scan
    # (float16) failed the query; pass-through columns are the caller's, untouched.
    source = pa.table({"user_id": [1], "ts": pa.array([_at(1)], pa.timestamp("us", "UTC")),
                       "x": [1.0]})
    store = _one_view_repo(tmp_path, engine, source, None)
    labels = pa.table({"user_id": [1, 2], "event_timestamp": pa.array([_at(2)] * 2, pa.timestamp("us")),
                       "weight": pa.array([0.5, 1.5], pa.float16())})
    out = store.get_historical_features(labels, features=["fv:x"]).to_arrow()
    assert out.column_names == ["user_id", "event_timestamp", "weight", "x"]
    assert out.column("weight").type == pa.float16()
    assert out.column("x").to_pylist() == [1.0, None]


# --- windowed aggregations (skewless.testing.aggregations, docs/aggregations.md) ---------------

@HALF
@given(scenario=aggregation_scenarios())
def test_engine_aggregations_match_reference(engine: dict[str, Any], workdir: Path,
                                             scenario: AggScenario) -> None:
    """Generated event streams (tile and window edges, bursts, late events, redeliveries,
    nulls, empty windows): every engine's aggregated features equal the reference engine's."""
    with tempfile.TemporaryDirectory(dir=workdir) as repo:
        want = assert_aggregations_agree(scenario, repo, engine)
    assert want.num_rows == len(scenario.labels)


@HALF
@given(scenario=aggregation_scenarios())
def test_reference_aggregations_match_the_rule(workdir: Path, scenario: AggScenario) -> None:
    """The oracle itself, against the rule restated over the in-memory events (no Parquet)."""
    with tempfile.TemporaryDirectory(dir=workdir) as repo:
        setup_aggregation_repo(scenario, repo)
        got = retrieve_aggregations(scenario, repo, {"type": "reference"})
    expected = scenario.expected_columns()
    table = pa.table({name: got.column(name) for name in expected})
    want = pa.table({name: pa.array(values, table.schema.field(name).type)
                     for name, values in expected.items()})
    assert_tables_equal(want, table, "rule", "reference", close=scenario.close_columns())
    assert got.column_names[:3] == ["user_id", "region", "event_timestamp"]


def test_stddev_of_huge_finite_values(engine: dict[str, Any], tmp_path: Path) -> None:
    """Finite values whose sum overflows (docs/aggregations.md, "Floats": only a NaN or an
    infinity in the window makes stddev NaN): the DuckDB engine's overall mean was sum / count,
    inf, so stddev came out inf where DuckDB's own stddev_pop, the reference engine and the
    online path give 0.0; a window holding an infinity stays NaN."""
    import math

    from skewless import Aggregation
    (tmp_path / "data").mkdir(parents=True)
    ts = pa.timestamp("us", "UTC")
    pq.write_table(pa.table({"user_id": [1, 1, 1, 2, 2, 3, 3],
                             "ts": pa.array([_at(1), _at(1), _at(2), _at(1), _at(2), _at(1), _at(2)], ts),
                             "x": [1e308, 1e308, 1e308, 1.5e308, 1.5e308, 1e308, math.inf]}),
                   tmp_path / "data" / "src.parquet")
    store = FeatureStore(tmp_path, config={"project": "pit", "offline_store": engine})
    user = Entity("user", join_keys=["user_id"])
    store.apply([user, FeatureView(
        "fv", entities=[user], schema=[Field("x", Float64)],
        source=FileSource("data/src.parquet", timestamp_field="ts"),
        aggregations=[Aggregation("x", f, timedelta(hours=6)) for f in ("stddev_pop", "stddev_samp")],
        aggregation_tile=timedelta(hours=1))])
    labels = pa.table({"user_id": [1, 2, 3], "event_timestamp": pa.array([_at(3)] * 3, ts)})
    out = store.get_historical_features(labels, features=["fv:x_stddev_pop_6h", "fv:x_stddev_samp_6h"]).to_arrow()
    for name in ("x_stddev_pop_6h", "x_stddev_samp_6h"):
        got = out.column(name).to_pylist()
        assert got[:2] == [0.0, 0.0] and math.isnan(got[2]), (name, got)
