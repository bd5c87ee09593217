"""The skew audit (docs/audit.md): healthy logs served through the real online path give no
mismatch; a served value that differs from the offline one is caught, named with its entity
and both values; empty logs, an unknown service and a bad --since are clear errors; the CLI
exits 1 over a threshold; the JSON and the Prometheus gauges."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from prometheus_client import CollectorRegistry
from typer.testing import CliRunner

from skewless import FeatureService, FeatureStore
from skewless.cli.main import app
from skewless.errors import InvalidRequestError, UnknownObjectError
from skewless.monitoring import feature_log as FL
from skewless.monitoring.audit import AuditReport, audit_gauges, parse_duration

from .conftest import pair, pair_view, spend_view, user, write_data

ROWS = [{"user_id": u, "merchant_id": m} for u in ("u1", "u2", "u3", "u9") for m in ("m1", "m2")]
TIMES = [datetime(2024, 1, 6, 12, tzinfo=timezone.utc), datetime(2024, 1, 12, tzinfo=timezone.utc), datetime(2024, 1, 21, 6, tzinfo=timezone.utc),
         datetime(2024, 2, 6, tzinfo=timezone.utc), datetime(2024, 2, 9, 12, tzinfo=timezone.utc)]
END = datetime(2024, 2, 10, tzinfo=timezone.utc)


@pytest.fixture
def logged(tmp_path: Path) -> FeatureStore:
    """Requests served through the online path at four times, each after materializing up to
    then, all logged."""
    write_data(tmp_path)
    (tmp_path / "feature_store.yaml").write_text(
        "project: fraud\nregistry: data/registry.db\nlogging:\n  sample_rate: 1.0\n")
    clock = [TIMES[0]]
    fs = FeatureStore(tmp_path, clock=lambda: clock[0])
    fs.apply([user, pair, spend_view(), pair_view(),
              FeatureService("fraud_v1", [spend_view()[["amount", "n_txn"]], pair_view()])])
    for t in TIMES:
        clock[0] = t
        fs.materialize_incremental(t)
        fs.get_online_features(features="fraud_v1", entity_rows=ROWS)
    assert fs.flush_feature_logs()
    clock[0] = END
    yield fs
    fs.close()


def test_healthy_logs_give_no_mismatch(logged: FeatureStore) -> None:
    report = logged.audit("fraud_v1", since="40d")
    assert report.rows == len(ROWS) * len(TIMES)
    assert [f.feature for f in report.features] == ["user_spend:amount", "user_spend:n_txn",
                                                    "pair_stats:last_country"]
    for f in report.features:
        assert f.compared == report.rows
        assert (f.mismatch_rate, f.missing_online_rate, f.missing_offline_rate) == (0, 0, 0), f
        assert f.status == "OK" and f.worst == []
    assert not report.failed
    assert report.feature("user_spend:amount").mean_abs_diff == 0.0
    # some values were served, some not: the comparison covered both
    logs = logged.read_feature_logs("fraud_v1")
    assert set(logs["user_spend__amount__status"].to_pylist()) >= {"PRESENT", "NOT_FOUND"}
    assert set(logs["pair_stats__last_country__status"].to_pylist()) >= {"PRESENT", "OUTSIDE_TTL"}


def _tamper(fs: FeatureStore, change: Any) -> None:
    """Rewrite the logs with ``change(table)`` applied (one file replaces them all)."""
    root = fs.repo_path / "data/feature_logs/feature_service=fraud_v1"
    table = fs.read_feature_logs("fraud_v1")
    for f in root.rglob("*.parquet"):
        f.unlink()
    table = change(table)
    days = pc.strftime(table["__log_timestamp"], "%Y-%m-%d").to_pylist()
    for day in sorted(set(days)):
        FL.write_partition(root / f"log_date={day}", table.filter(pa.array([d == day for d in days])))


def test_a_served_value_that_differs_offline_is_caught(logged: FeatureStore) -> None:
    def change(t: pa.Table) -> pa.Table:
        amounts = t["user_spend__amount"].to_pylist()
        users, stamps = t["user_id"].to_pylist(), t["__log_timestamp"].to_pylist()
        i = next(i for i in range(t.num_rows) if users[i] == "u1" and stamps[i] == TIMES[3]
                 and amounts[i] is not None)
        amounts[i] = amounts[i] + 1000.0
        return t.set_column(t.schema.get_field_index("user_spend__amount"), "user_spend__amount",
                            pa.array(amounts, pa.float64()))

    _tamper(logged, change)
    report = logged.audit("fraud_v1", since="40d")
    assert report.failed
    bad = report.feature("user_spend:amount")
    assert bad.status == "ALERT" and bad.mismatch_rate == pytest.approx(1 / report.rows)
    valued = logged.read_feature_logs("fraud_v1")["user_spend__amount"].null_count
    assert bad.mean_abs_diff == pytest.approx(1000.0 / (report.rows - valued))   # over pairs of values
    [worst] = bad.worst
    assert worst["entity"]["user_id"] == "u1"
    assert worst["online"] == 1140.0 and worst["offline"] == 140.0 and worst["abs_diff"] == 1000.0
    assert worst["log_timestamp"] == TIMES[3].isoformat()
    for other in ("user_spend:n_txn", "pair_stats:last_country"):   # only that feature
        assert report.feature(other).status == "OK"
    saved = json.loads((logged.repo_path / "data/monitoring/audit/fraud_v1.json").read_text())
    assert saved == json.loads(json.dumps(report.to_dict()))
    assert saved["failed"] is True and saved["features"][0]["worst"][0]["offline"] == 140.0
    assert AuditReport.from_dict(saved).to_dict() == saved


def test_missing_online_and_missing_offline_are_told_apart(logged: FeatureStore) -> None:
    def change(t: pa.Table) -> pa.Table:
        amounts = t["user_spend__amount"].to_pylist()
        statuses = t["user_spend__amount__status"].to_pylist()
        served = [i for i, s in enumerate(statuses) if s == "PRESENT"]
        missing = [i for i, s in enumerate(statuses) if s == "NOT_FOUND"]
        amounts[served[0]], statuses[served[0]] = None, "NOT_FOUND"     # online lost a value
        amounts[missing[0]], statuses[missing[0]] = 5.0, "PRESENT"     # online had one offline lacks
        t = t.set_column(t.schema.get_field_index("user_spend__amount"), "user_spend__amount",
                         pa.array(amounts, pa.float64()))
        return t.set_column(t.schema.get_field_index("user_spend__amount__status"),
                            "user_spend__amount__status", pa.array(statuses))

    _tamper(logged, change)
    report = logged.audit("fraud_v1", since="40d", missing_online_rate=0.5, missing_offline_rate=0.5,
                          mismatch_rate=0.5)
    f = report.feature("user_spend:amount")
    n = report.rows
    assert (f.mismatch_rate, f.missing_online_rate, f.missing_offline_rate) == (2 / n, 1 / n, 1 / n)
    assert not report.failed          # under the thresholds passed
    assert len(f.worst) == 2
    assert {(w["online"] is None, w["offline"] is None) for w in f.worst} == {(True, False), (False, True)}


def test_floats_within_the_tolerance_are_equal(logged: FeatureStore) -> None:
    def change(t: pa.Table) -> pa.Table:
        col = pc.add(t["user_spend__amount"], 1e-9)
        return t.set_column(t.schema.get_field_index("user_spend__amount"), "user_spend__amount", col)

    _tamper(logged, change)
    assert not logged.audit("fraud_v1", since="40d").failed
    assert logged.audit("fraud_v1", since="40d", float_tolerance=0.0).feature("user_spend:amount").status == "ALERT"


def test_clear_errors(logged: FeatureStore) -> None:
    with pytest.raises(UnknownObjectError, match="fraud_v2.*did you mean 'fraud_v1'"):
        logged.audit("fraud_v2")
    with pytest.raises(InvalidRequestError, match="--since '1x' is not a duration"):
        logged.audit("fraud_v1", since="1x")
    with pytest.raises(InvalidRequestError, match="--since .* is not before --until"):
        logged.audit("fraud_v1", since="1d", until="2d")
    with pytest.raises(InvalidRequestError, match="no logged requests of feature service 'fraud_v1'"):
        logged.audit("fraud_v1", since="1h")         # nothing logged in the last hour
    # absurd values are clear errors naming the option, not a crash (an OverflowError, a
    # DuckDB binder error on `nan`) nor silently accepted
    with pytest.raises(InvalidRequestError, match="--since '9999999999d' is too long"):
        logged.audit("fraud_v1", since="9999999999d")
    with pytest.raises(InvalidRequestError, match="--since '3000000d' reaches before the year 1"):
        logged.audit("fraud_v1", since="3000000d")
    for tol in (float("nan"), float("inf"), -1.0):
        with pytest.raises(InvalidRequestError, match="float_tolerance .* is not a finite number"):
            logged.audit("fraud_v1", since="40d", float_tolerance=tol)
    with pytest.raises(InvalidRequestError, match="worst = -3 is negative"):
        logged.audit("fraud_v1", since="40d", worst=-3)
    assert parse_duration("90m") == timedelta(minutes=90)
    assert parse_duration("1.5d") == timedelta(hours=36)


def test_the_cli_exits_1_over_a_threshold(logged: FeatureStore, tmp_path: Path) -> None:
    runner = CliRunner()
    repo = str(logged.repo_path)
    # the CLI's clock is the wall clock: audit the logged period by its dates
    args = ["--repo", repo, "audit", "--service", "fraud_v1", "--since", "2024-01-01", "--until", "2024-03-01"]
    ok = runner.invoke(app, [*args, "--json", str(tmp_path / "a.json")])
    assert ok.exit_code == 0, ok.output
    assert json.loads((tmp_path / "a.json").read_text())["failed"] is False

    def change(t: pa.Table) -> pa.Table:
        return t.set_column(t.schema.get_field_index("user_spend__n_txn"), "user_spend__n_txn",
                            pc.add(t["user_spend__n_txn"], 1))

    _tamper(logged, change)
    bad = runner.invoke(app, args)
    assert bad.exit_code == 1
    assert "user_spend:n_txn" in bad.output and "ALERT" in bad.output
    assert runner.invoke(app, [*args, "--mismatch-rate", "1"]).exit_code == 0
    err = runner.invoke(app, ["--repo", repo, "audit", "--service", "fraud_v1", "--since", "yesterday"])
    assert err.exit_code == 1 and "--since 'yesterday'" in err.output


def test_gauges(logged: FeatureStore) -> None:
    registry = CollectorRegistry()
    report = logged.audit("fraud_v1", since="40d")
    gauges = audit_gauges(report, registry)
    labels = {"service": "fraud_v1", "feature": "user_spend:amount"}
    assert registry.get_sample_value("skewless_audit_mismatch_rate", labels) == 0.0
    assert registry.get_sample_value("skewless_audit_rows", {"service": "fraud_v1"}) == report.rows
    assert registry.get_sample_value("skewless_audit_failed", {"service": "fraud_v1"}) == 0
    report.features[0].mismatch_rate = 0.25
    gauges.update(report)
    assert registry.get_sample_value("skewless_audit_mismatch_rate", labels) == 0.25


def test_a_feature_logged_with_another_type_is_named_not_a_crash(logged: FeatureStore) -> None:
    # logs of the period whose value column holds strings (the feature was a String before a
    # re-apply): DuckDB cannot compare them with the offline doubles
    def change(t: pa.Table) -> pa.Table:
        i = t.schema.get_field_index("user_spend__amount")
        return t.set_column(i, "user_spend__amount",
                            pa.array([None if v is None else f"{v}!" for v in t[i].to_pylist()]))

    _tamper(logged, change)
    with pytest.raises(InvalidRequestError, match="feature 'user_spend:amount' of service 'fraud_v1' "
                       "cannot be compared: logged as string, offline double"):
        logged.audit("fraud_v1", since="40d")


@pytest.mark.parametrize("odd", [float("nan"), float("inf"), float("-inf")])
def test_a_nan_or_infinity_is_a_mismatch_and_leaves_the_mean_differences_finite(
        logged: FeatureStore, odd: float) -> None:
    def change(t: pa.Table) -> pa.Table:
        i = t.schema.get_field_index("user_spend__amount")
        values = t[i].to_pylist()
        first = next(k for k, v in enumerate(values) if v is not None)
        values[first] = odd
        return t.set_column(i, "user_spend__amount", pa.array(values, pa.float64()))

    _tamper(logged, change)
    report = logged.audit("fraud_v1", since="40d")
    amount = report.feature("user_spend:amount")
    assert amount.mismatch_rate == 1 / amount.compared
    assert amount.mean_abs_diff == 0.0 and amount.mean_rel_diff == 0.0   # the other rows agree
    assert amount.worst[0]["online"] == str(odd) and amount.worst[0]["abs_diff"] is None

    def strict(constant: str) -> None:
        raise ValueError(constant)

    text = (logged.repo_path / "data/monitoring/audit/fraud_v1.json").read_text()
    json.loads(text, parse_constant=strict)   # no bare NaN: valid JSON for any reader


def test_the_table_keeps_long_feature_names_on_a_narrow_terminal() -> None:
    # at 80 columns (a pipe, CI logs) the feature column was squeezed out entirely, leaving rows
    # of figures without their feature; now the figures that do not fit are left out instead
    from rich.console import Console

    from skewless.cli.audit import summary_table

    name = "merchant_category_risk:merchant_category_risk_score"
    f = {"feature": name, "compared": 151, "mismatch_rate": 1.0, "missing_online_rate": 0.0,
         "missing_offline_rate": 0.0, "mean_abs_diff": 0.00145128, "mean_rel_diff": 0.0436587,
         "status": "ALERT", "worst": []}
    report = AuditReport.from_dict({"service": "fraud_model", "since": "2026-11-29T00:00:00+00:00",
                                    "until": "2026-11-30T00:00:00+00:00", "rows": 151, "failed": True,
                                    "thresholds": {}, "features": [f]})
    for width in (80, 100, 160):
        console = Console(width=width, record=True, highlight=False)
        console.print(summary_table(report, width))
        text = console.export_text()
        assert name[:20] in text and "ALERT" in text and "100.00%" in text, (width, text)
