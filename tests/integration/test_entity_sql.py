"""entity_df given as SQL: exactly one read-only query, checked by DuckDB's parser before
anything runs (docs/point-in-time.md#input); anything else is refused and nothing is written."""

from __future__ import annotations

import pytest

from skewless import FeatureStore
from skewless.errors import InvalidRequestError

from .conftest import spend_view, user

FEATURES = ["user_spend:amount"]
GOOD = "SELECT 'u1' AS user_id, TIMESTAMP '2024-02-06' AS event_timestamp"


@pytest.fixture
def fs(repo):
    store = FeatureStore(repo)
    store.apply([user, spend_view()])
    return store


@pytest.mark.parametrize("sql", [
    GOOD,
    GOOD + ";",
    f"WITH e AS ({GOOD}) SELECT * FROM e",
    "SELECT * FROM (VALUES ('u1', TIMESTAMP '2024-02-06')) t(user_id, event_timestamp)",
    f"FROM ({GOOD})",
    GOOD + " -- a trailing comment",
])
def test_one_read_only_query_is_accepted(fs, sql):
    out = fs.get_historical_features(sql, FEATURES).to_df()
    assert out["amount"].tolist() == [140.0]


@pytest.mark.parametrize("attack, kind", [
    ("{good}; COPY (SELECT 42 AS x) TO '{out}' (FORMAT parquet)", "2 statements"),
    ("{good}) ; COPY (SELECT 42 AS x) TO '{out}' (FORMAT parquet); SELECT (1", "failed"),
    ("COPY (SELECT 42 AS x) TO '{out}' (FORMAT parquet)", "COPY"),
    ("ATTACH '{out}' AS other", "is an ATTACH statement"),
    ("INSTALL httpfs", "is an INSTALL/LOAD statement"),
    ("LOAD httpfs", "is an INSTALL/LOAD statement"),
    ("PRAGMA version", "PRAGMA"),
    ("SET threads = 1", "SET"),
    ("CREATE TABLE t AS {good}", "CREATE"),
    ("CALL pragma_version()", "CALL"),
    ("EXPLAIN {good}", "is an EXPLAIN statement"),
    ("PIVOT ({good}) ON user_id", "is a multi-statement"),
    ("{good}; {good}", "2 statements"),
])
def test_anything_else_is_refused_before_running(fs, tmp_path, attack, kind):
    out = tmp_path / "written.parquet"
    sql = attack.format(good=GOOD, out=out)
    with pytest.raises(InvalidRequestError, match=kind) as e:
        fs.get_historical_features(sql, FEATURES).to_df()
    assert "nothing was run" in str(e.value) or "query failed" in str(e.value)
    assert not out.exists()
    assert not list(tmp_path.glob("*written*"))


def test_values_alone_is_a_query():
    from skewless.engines.duckdb import read_only_query
    assert read_only_query("VALUES (1, 2);").strip() == "VALUES (1, 2)"
