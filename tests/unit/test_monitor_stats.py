"""The monitors' pure parts: PSI (formula, empty bins), KS through scipy, quantile bins,
Prometheus histogram quantiles, grading, and the checks over a feature-log table."""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

import numpy as np
import pyarrow as pa
import pytest
from scipy.stats import ks_2samp

from skewless.config import MonitoringConfig
from skewless.monitoring import stats
from skewless.monitoring.latency import bucket_quantile, parse
from skewless.monitoring.monitors import above, below, log_checks


def test_psi_by_hand() -> None:
    # shares 0.5/0.5 vs 0.25/0.75: (0.25-0.5)ln(0.25/0.5) + (0.75-0.5)ln(0.75/0.5)
    expected = -0.25 * math.log(0.5) + 0.25 * math.log(1.5)
    assert stats.psi([50, 50], [25, 75]) == pytest.approx(expected)
    assert stats.psi([10, 20, 30], [1, 2, 3]) == pytest.approx(0.0)


def test_psi_empty_bins_use_the_epsilon() -> None:
    value = stats.psi([100, 0], [50, 50], epsilon=1e-4)
    pb, pc = 1e-4, 0.5
    assert value == pytest.approx((0.5 - 1.0) * math.log(0.5 / 1.0) + (pc - pb) * math.log(pc / pb))
    assert math.isfinite(stats.psi([100, 0], [0, 100]))


def test_psi_refuses_what_it_cannot_compare() -> None:
    with pytest.raises(ValueError):
        stats.psi([1, 2], [1, 2, 3])
    with pytest.raises(ValueError):
        stats.psi([0, 0], [1, 2])


def test_ks_is_scipys() -> None:
    rng = np.random.default_rng(1)
    a, b = rng.normal(0, 1, 500), rng.normal(0.3, 1, 700)
    assert stats.ks(a, b) == ks_2samp(a, b).statistic
    assert stats.ks([1.0, np.nan, 2.0], [1.0, 2.0]) == 0.0
    with pytest.raises(ValueError):
        stats.ks([np.nan], [1.0])


def test_quantile_edges_and_histogram() -> None:
    edges = stats.quantile_edges(np.arange(100, dtype=float), 4)
    assert edges == pytest.approx([24.75, 49.5, 74.25])
    assert stats.histogram(np.arange(100, dtype=float), edges) == [25, 25, 25, 25]
    # a discrete feature: repeated quantiles collapse into fewer bins
    edges = stats.quantile_edges([1] * 40 + [2] * 40 + [3] * 20, 10)
    assert len(edges) < 9 and edges == sorted(set(edges))
    assert stats.histogram([0.5, 1.0, 2.5, 3.0, np.nan], [1.0, 2.0, 3.0]) == [1, 1, 1, 1]


def test_same_distribution_stays_under_and_a_shift_goes_over() -> None:
    """Sizes chosen so that this is no luck: for n = 5,000 a side, the expected PSI of two
    samples of one distribution over 10 bins is about 9 * (2 / 5,000) = 0.004 and KS's 99.99%
    critical value is about 0.04; a shift of 0.5 standard deviation gives PSI ~ 0.25 and KS ~ 0.2."""
    rng = np.random.default_rng(42)
    same = stats.drift(rng.normal(0, 1, 5000), rng.normal(0, 1, 5000))
    assert same.psi < 0.02 and same.ks < 0.05
    shifted = stats.drift(rng.normal(0, 1, 5000), rng.normal(0.5, 1, 5000))
    assert shifted.psi > 0.2 and shifted.ks > 0.15
    assert len(shifted.baseline) == len(shifted.edges) + 1 == 10


def test_bucket_quantile_is_prometheus_histogram_quantile() -> None:
    buckets = [(0.1, 10.0), (0.2, 50.0), (0.5, 90.0), (math.inf, 100.0)]
    assert bucket_quantile(0.5, buckets) == pytest.approx(0.1 + 0.1 * (50 - 10) / 40)
    assert bucket_quantile(0.05, buckets) == pytest.approx(0.05)
    assert bucket_quantile(0.99, buckets) == 0.5          # in +Inf: the highest finite bound
    assert bucket_quantile(0.5, [(0.1, 0.0), (math.inf, 0.0)]) is None


def test_parse_adds_up_workers() -> None:
    text = "\n".join([
        "# TYPE skewless_online_read_duration_seconds histogram",
        'skewless_online_read_duration_seconds_bucket{le="0.001",view="v"} 3.0',
        'skewless_online_read_duration_seconds_bucket{le="+Inf",view="v"} 4.0',
        'skewless_online_read_duration_seconds_count{view="v"} 4.0',
        'skewless_online_read_duration_seconds_sum{view="v"} 0.01', ""])
    assert parse(text) == {"v": [(0.001, 3.0), (math.inf, 4.0)]}


def test_grading() -> None:
    assert above(None, 1, 2) == "OK" and above(1.5, 1, 2) == "WARN" and above(3, 1, 2) == "ALERT"
    assert above(3, None, None) == "OK" and above(1, 1, 2) == "OK"
    assert below(0.98, 0.99, 0.95) == "WARN" and below(0.5, 0.99, 0.95) == "ALERT"
    assert below(1.0, 0.99, 0.95) == "OK" and below(0.5, None, None) == "OK"


def _log_table(now: datetime, shift: float, null_share: float) -> pa.Table:
    rng = np.random.default_rng(3)
    n = 8000
    ts = [now - timedelta(seconds=float(s)) for s in rng.uniform(0, 8 * 86_400, n)]
    current = np.array([t >= now - timedelta(days=1) for t in ts])
    amount = rng.normal(10.0, 2.0, n) + np.where(current, shift * 2.0, 0.0)
    nulls = current & (rng.uniform(size=n) < null_share)
    return pa.table({
        "user_id": pa.array(rng.integers(0, 50, n)),
        "user_spend__amount": pa.array(amount, mask=nulls),
        "user_spend__amount__timestamp": pa.array(ts, pa.timestamp("us", tz="UTC")),
        "user_spend__amount__status": pa.array(["PRESENT"] * n),
        "user_spend__tier": pa.array(rng.choice(["a", "b"], n)),
        "__log_timestamp": pa.array(ts, pa.timestamp("us", tz="UTC")),
        "__request_id": pa.array([str(i) for i in range(n)]),
        "__feature_service": pa.array(["svc"] * n)})


def test_log_checks_catch_a_shift_and_nulls_in_served_values() -> None:
    now = datetime(2026, 1, 10, tzinfo=timezone.utc)
    cfg = MonitoringConfig()
    healthy = {(c.check, c.feature): c for c in log_checks(_log_table(now, 0.0, 0.0), now, cfg)}
    assert all(c.status == "OK" and c.scope == "log" for c in healthy.values()), healthy
    assert healthy[("completeness", "amount")].value == 1.0
    assert healthy[("psi", "amount")].value < 0.05 and healthy[("ks", "amount")].value < 0.07
    assert "not a numeric" in healthy[("psi", "tier")].detail
    assert {c.view for c in healthy.values()} == {"user_spend"}
    bad = {(c.check, c.feature): c for c in log_checks(_log_table(now, 1.0, 0.3), now, cfg, "svc")}
    assert bad[("completeness", "amount")].status == "ALERT"
    assert 0.6 < bad[("completeness", "amount")].value < 0.8
    assert bad[("psi", "amount")].status == "ALERT" and bad[("ks", "amount")].status == "ALERT"
    days = [p["date"] for p in bad[("completeness", "amount")].series]
    assert days == sorted(days) and len(days) >= 8
