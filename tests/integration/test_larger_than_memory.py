"""Retrievals bigger than the engine's memory limit complete by spilling to disk; when even that
is impossible, the error says which knob to turn and nothing is written."""

from __future__ import annotations

import duckdb
import pyarrow.parquet as pq
import pytest

from skewless import Entity, FeatureStore, FeatureView, Field, FileSource
from skewless.errors import EngineResourceError
from skewless.types import Float64

ROWS = 2_000_000  # ~100 MB of feature data, against a 64 MB limit


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("big")
    (d / "data").mkdir()
    con = duckdb.connect()
    con.execute("SET TimeZone='UTC'")
    con.execute(f"""COPY (SELECT (i % 200000)::BIGINT AS user_id,
                   TIMESTAMPTZ '2024-01-01' + to_seconds(hash(i) % 8000000) AS ts,
                   random() a, random() b, random() c, random() d FROM range({ROWS}) t(i))
                   TO '{d}/data/f.parquet'""")
    con.execute(f"""COPY (SELECT (hash(i) % 220000)::BIGINT AS user_id,
                   TIMESTAMPTZ '2024-01-01' + to_seconds(hash(i * 7) % 8000000) AS event_timestamp
                   FROM range({ROWS // 2}) t(i)) TO '{d}/labels.parquet'""")
    return d


def _store(d, limit):
    (d / "feature_store.yaml").write_text(
        f"project: big\noffline_store: {{type: duckdb, memory_limit: {limit}, temp_directory: spill, threads: 2}}\n")
    fs = FeatureStore(d)
    u = Entity("user_id")
    fs.apply([u, FeatureView("f", [u], [Field(c, Float64) for c in "abcd"], FileSource("data/f.parquet", "ts"))])
    return fs


def test_completes_beyond_the_memory_limit(data_dir):
    fs = _store(data_dir, "64MB")
    sql = f"SELECT * FROM read_parquet('{data_dir}/labels.parquet')"
    out = fs.get_historical_features(sql, [f"f:{c}" for c in "abcd"]).to_parquet(data_dir / "out.parquet")
    meta = pq.read_metadata(out)
    assert meta.num_rows == ROWS // 2
    assert pq.read_table(out, columns=["a"]).column("a").null_count < ROWS // 2


def test_out_of_memory_is_a_clear_error(data_dir):
    fs = _store(data_dir, "16MB")
    sql = f"SELECT * FROM read_parquet('{data_dir}/labels.parquet')"
    with pytest.raises(EngineResourceError, match="memory_limit=16MB") as e:
        fs.get_historical_features(sql, [f"f:{c}" for c in "abcd"]).to_parquet(data_dir / "oom.parquet")
    assert "temp_directory" in (e.value.hint or "")
    assert not (data_dir / "oom.parquet").exists()
