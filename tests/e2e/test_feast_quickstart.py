"""Feast's quickstart (examples/feast_quickstart.py, Feast code) runs on skewless with only its
import lines changed, and gives what Feast promises: point-in-time correct training rows, and
online values equal to the offline join at the same moment."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest


EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "feast_quickstart.py"
FEATURES = ["conv_rate", "acc_rate", "avg_daily_trips"]


def as_skewless(text: str) -> str:
    """Exactly the substitution a Feast user makes: the two import lines, nothing else."""
    return (text.replace("from feast import", "from skewless import")
                .replace("from feast.types import", "from skewless.types import"))


def run_example(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str) -> dict[str, Any]:
    script = tmp_path / "quickstart.py"
    script.write_text(text)
    repo = tmp_path / "feature_repo"
    monkeypatch.setattr(sys, "argv", [str(script), str(repo)])
    return runpy.run_path(str(script), run_name="__main__")


def test_the_example_is_feast_code_with_two_import_lines() -> None:
    text = EXAMPLE.read_text()
    feast_lines = [line for line in text.splitlines() if "feast" in line and "import" in line
                   and not line.startswith(("    ", "#"))]
    assert feast_lines == ["from feast import Entity, FeatureService, FeatureStore, FeatureView, Field, FileSource",
                           "from feast.types import Float32, Int64"]
    assert "skewless" not in as_skewless(text).replace("from skewless", "").split('"""', 2)[2]
    assert "on_demand_feature_view" not in text.split('"""', 2)[2]  # issue 13: left out, said so


def expected(stats: pd.DataFrame, driver: int, at: pd.Timestamp, ttl: pd.Timedelta) -> pd.Series | None:
    """The brute-force point-in-time answer: the latest row of ``driver`` in ``[at - ttl, at]``."""
    rows = stats[(stats.driver_id == driver) & (stats.event_timestamp <= at)
                 & (stats.event_timestamp >= at - ttl)]
    return None if rows.empty else rows.sort_values("event_timestamp").iloc[-1]


def check(g: dict[str, Any]) -> None:
    stats: pd.DataFrame = g["driver_stats"]
    ttl = pd.Timedelta(days=1)

    training: pd.DataFrame = g["training_df"]
    assert list(training.driver_id) == [1001, 1002, 1003]  # every label row, in input order
    assert list(training.label_driver_reported_satisfaction) == [1, 5, 3]
    for _, row in training.iterrows():
        want = expected(stats, row.driver_id, row.event_timestamp, ttl)
        assert want is not None
        for f in FEATURES:
            # Float32: both paths give the value rounded to float32
            assert np.isclose(row[f], np.float32(want[f]), rtol=1e-6), (row.driver_id, f)

    scoring: pd.DataFrame = g["scoring_df"]
    online: dict[str, list[Any]] = g["online_features"]
    assert online["driver_id"] == [1001, 1002]
    for i, driver in enumerate([1001, 1002]):
        latest = stats[stats.driver_id == driver].sort_values("event_timestamp").iloc[-1]
        for f in FEATURES:
            assert np.isclose(online[f][i], np.float32(latest[f]), rtol=1e-6), (driver, f)
            # the invariant: online now == the offline join now (batch scoring rows)
            assert np.isclose(online[f][i], scoring.loc[scoring.driver_id == driver, f].iloc[0],
                              rtol=1e-6), (driver, f)

    service: dict[str, list[Any]] = g["service_features"]
    assert sorted(service) == ["conv_rate", "driver_id"]
    assert service["conv_rate"] == online["conv_rate"]


def test_feast_quickstart_runs_with_feasts_own_data_types(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """The quickstart with its feature columns written as float32, as Feast's own test-data
    generator writes them (the one extra substitution, on the data, not on the Feast code)."""
    text = as_skewless(EXAMPLE.read_text())
    data_line = "rng.random(len(driver_stats))\n"
    assert text.count(data_line) == 2
    check(run_example(tmp_path, monkeypatch, text.replace(data_line, 'rng.random(len(driver_stats)).astype("float32")\n')))


def test_feast_quickstart_runs_with_only_the_import_lines_changed(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    check(run_example(tmp_path, monkeypatch, as_skewless(EXAMPLE.read_text())))
