"""End to end through the CLI: online state follows the registry (docs/online.md).

The issue's cases as a user types them: ``skewless materialize 2025-01-01 2025-01-02`` then
``materialize-incremental`` serves an entity whose only row is older than the window, and
``online-status`` tells what is covered; ``plan`` marks deleting a view destructive and
``apply`` drops its online table.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from skewless.online import table_name
from skewless.store import FeatureStore

from .test_cli_online import flat, run

FEATURES = '''
from skewless import Entity, FeatureView, Field, FileSource
from skewless.types import Int64

user = Entity("user", join_keys=["user_id"])
spend = FeatureView("spend", entities=[user], schema=[Field("x", Int64)],
                    source=FileSource("data/spend.parquet", "ts"), ttl=None)
'''
OTHER = '''
other = FeatureView("other", entities=[user], schema=[Field("y", Int64)],
                    source=FileSource("data/spend.parquet", "ts"), ttl=None)
'''


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    (tmp_path / "data").mkdir()
    (tmp_path / "feature_store.yaml").write_text(
        "project: cov\nregistry: data/registry.db\n"
        "online_store:\n  type: sqlite\n  path: data/online.db\n")
    (tmp_path / "features.py").write_text(FEATURES + OTHER)
    utc = timezone.utc
    pq.write_table(pa.table({
        "user_id": pa.array([1, 2], pa.int64()),
        "ts": pa.array([datetime(2024, 6, 1, tzinfo=utc), datetime(2025, 1, 1, 12, tzinfo=utc)],
                       pa.timestamp("us", "UTC")),
        "x": pa.array([10, 20], pa.int64()), "y": pa.array([1, 2], pa.int64()),
    }), tmp_path / "data" / "spend.parquet")
    result = run(tmp_path, "apply")
    assert result.exit_code == 0, result.output
    return tmp_path


def served(repo: Path, ref: str = "spend:x") -> tuple[list[object], list[str]]:
    got = FeatureStore(repo).get_online_features([ref], [{"user_id": 1}, {"user_id": 2}])
    name = ref.split(":")[1]
    return got.to_dict()[name], got.statuses[name]


def test_incremental_after_an_explicit_window_fills_the_hole(repo: Path) -> None:
    assert run(repo, "materialize", "2025-01-01", "2025-01-02").exit_code == 0
    status = flat(run(repo, "online-status").output)
    assert "2025-01-01 00:00:00..2025-01-02 00:00:00" in status, status
    assert "materialize-incremental` fills the holes" in status
    assert served(repo) == ([None, 20], ["NOT_FOUND", "PRESENT"])

    result = run(repo, "materialize-incremental")
    assert result.exit_code == 0, result.output
    assert served(repo) == ([10, 20], ["PRESENT", "PRESENT"])
    status = flat(run(repo, "online-status").output)
    assert "2025-01-01 00:00:00..2025-01-02" not in status and "fills the holes" not in status
    today = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    assert f"spend 2 {today}" in status.replace("│", " ").replace("  ", " "), status


def test_plan_marks_deleting_a_view_destructive_and_apply_drops_its_table(repo: Path) -> None:
    assert run(repo, "materialize-incremental").exit_code == 0
    fs = FeatureStore(repo)
    assert fs.online_store.count(table_name("cov", "other")) == 2
    (repo / "features.py").write_text(FEATURES)

    plan = flat(run(repo, "plan").output)
    assert "- feature view other DESTRUCTIVE" in plan, plan
    assert "drops its online table and materialization state" in plan
    assert "apply will drop the online state of 1 feature view" in plan
    assert fs.online_store.count(table_name("cov", "other")) == 2   # plan writes nothing

    result = run(repo, "apply")
    assert result.exit_code == 0, result.output
    assert fs.online_store.count(table_name("cov", "other")) == 0
    assert served(repo) == ([10, 20], ["PRESENT", "PRESENT"])        # the other view is untouched
    assert "- feature view other DESTRUCTIVE" in flat(run(repo, "history").output)
