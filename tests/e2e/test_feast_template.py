"""Feast's ``feast init`` template (examples/feast_template: driver hourly stats with a created
timestamp, an on-demand view over a RequestSource, feature services, a PushSource and a fresh
view over it) and its workflow script run on skewless with only the import lines changed; the
values served online equal the offline join at the same moment, before and after a push."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from skewless import FeatureStore

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "feast_template"
ROWS = [{"driver_id": 1001, "val_to_add": 1000, "val_to_add_2": 2000},
        {"driver_id": 1002, "val_to_add": 1001, "val_to_add_2": 2002},
        {"driver_id": 1005, "val_to_add": -3, "val_to_add_2": 0},
        {"driver_id": 9999, "val_to_add": 7, "val_to_add_2": 8}]   # an unknown driver


def test_the_example_imports_only_skewless() -> None:
    """What a Feast user changes: ``from feast...`` -> ``from skewless...``; the rest is the template."""
    for name in ("example_repo.py", "test_workflow.py"):
        text = (EXAMPLE / name).read_text()
        assert "feast" not in "\n".join(line for line in text.splitlines()
                                         if line.startswith(("from ", "import ")))
    assert "from skewless.data_source import PushMode" in (EXAMPLE / "test_workflow.py").read_text()


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The template copied, its data generated, and its workflow run as a user runs it."""
    path = tmp_path_factory.mktemp("feast") / "feature_repo"
    shutil.copytree(EXAMPLE, path, ignore=shutil.ignore_patterns("data", "__pycache__"))
    env = {**os.environ, "TZ": "UTC",
           "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")}
    env = {k: v for k, v in env.items() if not k.startswith("SKEWLESS_")}
    subprocess.run([sys.executable, "_generate_data.py", "."], cwd=path, env=env, check=True)
    run = subprocess.run([sys.executable, "test_workflow.py"], cwd=path, env=env, capture_output=True,
                         text=True, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    (path / "workflow.log").write_text(run.stdout)
    return path


def test_the_workflow_runs_every_step(repo: Path) -> None:
    out = (repo / "workflow.log").read_text()
    for step in ("Run skewless apply", "Historical features for training", "Load features into online store",
                 "Online features again with updated values from a stream push"):
        assert step in out
    # the pushed row (conv_rate 1.0 for driver 1001) is served, and the on-demand view reads it
    assert "conv_rate_plus_val1  :  [1001.0," in out.split("updated values from a stream push")[1]


def _compare(store: FeatureStore, features: Any, at: datetime) -> dict[str, list[Any]]:
    """Online at ``at`` == the offline join at ``at`` for ROWS (request values in both)."""
    online = store.get_online_features(features, ROWS, full_feature_names=True).to_dict()
    entity_df = pd.DataFrame(ROWS).assign(event_timestamp=at)
    offline = store.get_historical_features(entity_df, features, full_feature_names=True).to_arrow()
    names = [n for n in online if n != "driver_id"]
    assert names == [n for n in offline.column_names if n not in entity_df.columns]
    for name in names:
        assert online[name] == offline.column(name).to_pylist(), name
    return online


def test_online_equals_offline_at_the_same_moment_after_the_push(repo: Path) -> None:
    now = datetime.now(timezone.utc)
    store = FeatureStore(repo, clock=lambda: now)
    # the fresh view and its on-demand view: the push is online and offline at once
    v3 = _compare(store, store.get_feature_service("driver_activity_v3"), now)
    assert v3["driver_hourly_stats_fresh__conv_rate"][0] == 1.0
    assert v3["transformed_conv_rate_fresh__conv_rate_plus_val1"][0] == 1001.0
    assert v3["transformed_conv_rate_fresh__conv_rate_plus_val1"][3] is None   # unknown driver
    # the batch view reads the pushed row offline at once, online after the next materialization
    store.materialize_incremental(end_date=now)
    for service in ("driver_activity_v1", "driver_activity_v2"):
        _compare(store, store.get_feature_service(service), now)
    got = _compare(store, ["driver_hourly_stats:conv_rate", "transformed_conv_rate:conv_rate_plus_val2"], now)
    assert got["transformed_conv_rate__conv_rate_plus_val2"][:2] == [2001.0, pytest.approx(
        got["driver_hourly_stats__conv_rate"][1] + 2002)]


def test_training_rows_use_the_request_columns(repo: Path) -> None:
    store = FeatureStore(repo)
    stats = pd.read_parquet(repo / "data" / "driver_stats" / "driver_stats.parquet")
    at = pd.Timestamp(stats.event_timestamp.max()) - pd.Timedelta(hours=5, minutes=30)
    entity_df = pd.DataFrame({"driver_id": [1001, 1003], "event_timestamp": [at, at],
                              "val_to_add": [1, 2], "val_to_add_2": [10, 20]})
    out = store.get_historical_features(entity_df, ["driver_hourly_stats:conv_rate",
                                                    "transformed_conv_rate:conv_rate_plus_val1"]).to_df()
    for i, driver in enumerate([1001, 1003]):
        rows = stats[(stats.driver_id == driver) & (stats.event_timestamp <= at)]
        conv = float(rows.sort_values("event_timestamp").conv_rate.iloc[-1])
        assert out.conv_rate.iloc[i] == pytest.approx(conv)
        assert out.conv_rate_plus_val1.iloc[i] == pytest.approx(conv + [1, 2][i])
