"""The seed's incident (examples/skew_incident): a day of fraud-scoring traffic served with
feature logging on, then ``skewless audit`` and ``skewless monitor`` through the CLI.

The skewed repo (training: a daily 90-day table; serving: a weekly online-only push) must be
caught: the audit flags ``merchant_category_risk_score`` and only it, worst for the spiking
category's merchants. The declared-once repo (the same feature as one ``Aggregation``) must
show no mismatch at all."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "skew_incident"
RISK = "merchant_category_risk:merchant_category_risk_score"
OTHERS = {"customer_stats:customer_avg_amount", "merchant_stats:merchant_txn_count"}


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """``python run.py WORKDIR`` as a user runs it; its summary, with the printed output."""
    workdir = tmp_path_factory.mktemp("skew_incident")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SKEWLESS_")}
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    done = subprocess.run([sys.executable, str(EXAMPLE / "run.py"), str(workdir)], env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    (workdir / "run.log").write_text(done.stdout + done.stderr)
    summary: dict[str, Any] = json.loads((workdir / "summary.json").read_text())
    summary["stdout"] = done.stdout
    return summary


def _features(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f["feature"]: f for f in report["features"]}


def test_the_skewed_repo_is_caught_on_that_feature_only(run: dict[str, Any]) -> None:
    skewed = run["skewed"]
    audit = skewed["audit"]["report"]
    assert skewed["audit"]["exit"] == 1, run["stdout"]                 # a threshold crossed
    assert audit["failed"] is True
    assert skewed["dropped"] == 0
    assert audit["rows"] >= 0.9 * skewed["requests"] > 100             # the day, replayed
    features = _features(audit)
    assert set(features) == OTHERS | {RISK}
    assert [f for f, v in features.items() if v["status"] == "ALERT"] == [RISK]
    risk = features[RISK]
    # the weekly table is days behind the daily one: (nearly) every served value differs
    assert risk["mismatch_rate"] > 0.5 and risk["compared"] == audit["rows"]
    assert risk["missing_online_rate"] == 0 and risk["missing_offline_rate"] == 0
    assert risk["mean_abs_diff"] > 0.001
    worst = risk["worst"]
    assert worst and {"merchant_id", "merchant_category"} <= set(worst[0]["entity"])
    assert worst[0]["entity"]["merchant_category"] == "electronics"     # the spike's category
    assert worst[0]["offline"] > worst[0]["online"] + 0.005             # served stale, too low
    for name in OTHERS:
        assert features[name]["mismatch_rate"] == 0, features[name]
        assert features[name]["compared"] == audit["rows"]
    assert "merchant_category_risk_score" in run["stdout"].split("===== declared_once")[0]


def test_the_declared_once_repo_shows_no_mismatch(run: dict[str, Any]) -> None:
    once = run["declared_once"]
    audit = once["audit"]["report"]
    assert once["audit"]["exit"] == 0, run["stdout"]
    assert audit["failed"] is False and audit["rows"] >= 0.9 * once["requests"] > 100
    features = _features(audit)
    assert set(features) == OTHERS | {RISK}
    for name, f in features.items():
        assert f["status"] == "OK" and f["compared"] == audit["rows"], f
        assert f["mismatch_rate"] == 0 and f["missing_online_rate"] == 0, f
        assert f["missing_offline_rate"] == 0 and f["worst"] == [], f


def _not_ok(run: dict[str, Any], variant: str) -> list[dict[str, Any]]:
    monitor = run[variant]["monitor"]
    assert monitor["report"] is not None, run["stdout"]
    checks = monitor["report"]["checks"]
    assert checks and {c["status"] for c in checks} <= {"OK", "WARN", "ALERT"}
    return [c for c in checks if c["status"] != "OK"]


def test_the_monitor_points_at_the_skewed_view_only(run: dict[str, Any]) -> None:
    """The risk view is the only one not OK: its online table was never materialized (the
    weekly job writes it behind the offline store's back); the daily batches are fresh,
    complete and stable (the data is the same for every run of a day: no chance WARN)."""
    flagged = _not_ok(run, "skewed")
    assert {c["view"] for c in flagged} == {"merchant_category_risk"}, flagged
    materialization = [c for c in flagged if c["check"] == "materialization"]
    assert materialization and "never materialized" in materialization[0]["detail"], flagged
    assert run["skewed"]["monitor"]["exit"] == (1 if any(c["status"] == "ALERT" for c in flagged) else 0)


def test_the_monitor_finds_nothing_wrong_with_the_plain_views(run: dict[str, Any]) -> None:
    flagged = _not_ok(run, "declared_once")
    assert [c for c in flagged if c["view"] != "merchant_category_risk"] == [], flagged


def test_the_declared_once_repo_passes_the_monitor(run: dict[str, Any]) -> None:
    assert _not_ok(run, "declared_once") == []
    assert run["declared_once"]["monitor"]["exit"] == 0


def test_the_data_is_deterministic_for_a_seed_and_a_now(tmp_path: Path) -> None:
    sys.path.insert(0, str(EXAMPLE))
    try:
        from generate import SPIKE_CATEGORY, generate
    finally:
        sys.path.remove(str(EXAMPLE))
    now = datetime(2026, 3, 1, 12, 30, tzinfo=timezone.utc)
    a, b = generate(tmp_path / "a", now), generate(tmp_path / "b", now)
    assert a == b and 10_000 < a.rows["transactions.parquet"] < 100_000
    for name in a.rows:
        assert pd.read_parquet(tmp_path / "a" / name).equals(pd.read_parquet(tmp_path / "b" / name)), name
    tx = pd.read_parquet(tmp_path / "a" / "transactions.parquet")
    assert tx["event_timestamp"].is_unique and tx["event_timestamp"].max() < pd.Timestamp(now)
    recent = tx[tx["event_timestamp"] >= pd.Timestamp(now) - pd.Timedelta(days=14)]
    rates = recent.groupby("merchant_category")["is_fraud"].mean()
    assert rates.idxmax() == SPIKE_CATEGORY and rates.max() > 3 * rates.drop(SPIKE_CATEGORY).max()
