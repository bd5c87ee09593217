"""``store.monitor`` and ``skewless monitor`` on generated data (docs/monitoring.md): healthy data
raises no alarm, and each injected failure is caught: a stalled materialization (freshness,
materialization), a column that turns null (completeness), a shifted distribution (PSI, KS),
a failed materialization run; bad monitoring config is a clear error."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from skewless import Entity, FeatureStore, FeatureView, Field, FileSource
from skewless.errors import ConfigError, SkewlessError, UnknownObjectError
from skewless.monitoring.monitors import completeness
from skewless.types import Float64, Int64, String

user = Entity("user", join_keys=["user_id"])
# the wall clock's minute: the registry stamps materialization runs with the wall clock
NOW = datetime.now(timezone.utc).replace(second=0, microsecond=0)
ROWS_PER_DAY = 2000
DAYS = 14


def txn_view(**kw) -> FeatureView:
    args = dict(name="txn_stats", entities=[user],
                schema=[Field("amount", Float64), Field("n_items", Int64), Field("country", String)],
                source=FileSource("data/txn", "ts"), ttl=timedelta(days=1))
    args.update(kw)
    return FeatureView(**args)


def generate(repo: Path, *, seed: int = 7, end: datetime = NOW, shift: float = 0.0,
             null_share: float = 0.0, days: int = DAYS, nan: bool = False) -> None:
    """``days`` days of rows up to ``end`` (the last 10 minutes before it empty), one file per
    day: amount ~ N(100, 15), n_items ~ Poisson(3), country of 4. In the last day (the
    current window) amount is shifted by ``shift`` standard deviations and null in
    ``null_share`` of the rows."""
    rng = np.random.default_rng(seed)
    out = repo / "data" / "txn"
    out.mkdir(parents=True, exist_ok=True)
    for d in range(days):
        hi = end - timedelta(days=d) - timedelta(minutes=10)
        lo = end - timedelta(days=d + 1)
        secs = rng.uniform(0, (hi - lo).total_seconds(), ROWS_PER_DAY)
        ts = pd.to_datetime([lo + timedelta(seconds=float(s)) for s in secs], utc=True)
        amount = rng.normal(100.0, 15.0, ROWS_PER_DAY)
        if d == 0:
            amount = amount + shift * 15.0
            amount = np.where(rng.uniform(size=ROWS_PER_DAY) < null_share, np.nan, amount)
        df = pd.DataFrame({
            "user_id": rng.integers(0, 300, ROWS_PER_DAY), "ts": ts,
            "amount": pd.array([None if np.isnan(a) else a for a in amount], dtype="Float64"),
            "n_items": rng.poisson(3.0, ROWS_PER_DAY),
            "country": rng.choice(["FR", "DE", "US", "JP"], ROWS_PER_DAY)})
        if nan:   # the missing amounts written as NaN, not null
            table = pa.Table.from_pandas(df, preserve_index=False)
            table = table.set_column(table.schema.get_field_index("amount"), "amount",
                                     pa.array(amount, pa.float64(), from_pandas=False))
            pq.write_table(table, out / f"day-{d:02d}.parquet")
        else:
            df.to_parquet(out / f"day-{d:02d}.parquet")


def make_repo(tmp_path: Path, monitoring: dict | None = None, **gen) -> Path:
    cfg = {"project": "mon", "registry": "data/registry.db",
           "online_store": {"type": "sqlite", "path": "data/online.db"}}
    if monitoring is not None:
        cfg["monitoring"] = monitoring
    (tmp_path / "feature_store.yaml").write_text(yaml.safe_dump(cfg))
    generate(tmp_path, **gen)
    return tmp_path


def open_store(repo: Path, at: datetime = NOW) -> FeatureStore:
    store = FeatureStore(repo, clock=lambda: at)
    store.apply([user, txn_view()])
    return store


def bad(report, check=None, scope=None):
    return [(c.check, c.feature, c.scope, c.status, c.value) for c in report.checks
            if c.status != "OK" and (check is None or c.check == check)
            and (scope is None or c.scope == scope)]


def find(report, check, scope, feature=None):
    hits = [c for c in report.checks if c.check == check and c.scope == scope
            and c.feature == feature]
    assert len(hits) == 1, (check, scope, feature, report.to_dict())
    return hits[0]


def test_healthy_data_raises_no_alarm(tmp_path: Path) -> None:
    store = open_store(make_repo(tmp_path))
    store.materialize_incremental()
    report = store.monitor()
    assert bad(report) == [], report.to_dict()
    assert report.status == "OK"
    checks = {(c.check, c.scope) for c in report.checks}
    assert {("freshness", "offline"), ("freshness", "online"), ("completeness", "offline"),
            ("completeness", "online"), ("psi", "offline"), ("ks", "offline"),
            ("materialization", "online"), ("latency", "server")} <= checks
    # same distribution: far from the thresholds, not barely under them
    assert find(report, "psi", "offline", "amount").value < 0.05
    assert find(report, "ks", "offline", "amount").value < 0.06
    assert find(report, "psi", "offline", "n_items").value < 0.05
    # a string feature has no distribution check, said so
    assert "not a numeric" in find(report, "psi", "offline", "country").detail
    assert "not available" in find(report, "latency", "server").detail
    # what a plot needs
    fresh = find(report, "freshness", "offline")
    assert len(fresh.series) >= DAYS and all(p["age_seconds"] < 86_400 for p in fresh.series)
    comp = find(report, "completeness", "offline", "amount")
    assert comp.value == 1.0 and all(p["non_null"] == 1.0 for p in comp.series)
    hist = find(report, "psi", "offline", "amount").series
    assert len(hist["baseline"]) == len(hist["current"]) == len(hist["edges"]) + 1 == 10
    # recorded for the server and the report
    last = json.loads((tmp_path / "data/monitoring/last.json").read_text())
    assert last == json.loads(json.dumps(report.to_dict()))
    assert set(last) == {"generated_at", "status", "checks"}
    assert set(last["checks"][0]) == {"check", "view", "feature", "scope", "value", "unit", "warn",
                                      "alert", "status", "detail", "series"}
    store.monitor()
    history = (tmp_path / "data/monitoring/history.jsonl").read_text().splitlines()
    assert len(history) == 2 and json.loads(history[0])["status"] == "OK"


def test_a_shifted_distribution_is_caught_by_psi_and_ks(tmp_path: Path) -> None:
    store = open_store(make_repo(tmp_path, shift=1.0))
    report = store.monitor()
    psi, ks = find(report, "psi", "offline", "amount"), find(report, "ks", "offline", "amount")
    # a shift of one standard deviation: PSI ~ 1, KS ~ 0.38
    assert psi.status == "ALERT" and psi.value > 0.5, psi
    assert ks.status == "ALERT" and ks.value > 0.3, ks
    # only that feature
    assert {c.feature for c in report.checks if c.check in ("psi", "ks") and c.status != "OK"} == {"amount"}
    assert report.status == "ALERT"


def test_a_column_that_turns_null_is_caught(tmp_path: Path) -> None:
    store = open_store(make_repo(tmp_path, null_share=0.5))
    report = store.monitor()
    comp = find(report, "completeness", "offline", "amount")
    assert comp.status == "ALERT" and 0.4 < comp.value < 0.6
    assert comp.series[-1]["non_null"] < 0.7 and comp.series[0]["non_null"] == 1.0
    assert find(report, "completeness", "offline", "n_items").status == "OK"


def test_a_column_that_turns_nan_is_caught_as_null(tmp_path: Path) -> None:
    # NaN is how many writers spell a missing float: it counts as missing, not as a value
    store = open_store(make_repo(tmp_path, null_share=0.5, nan=True))
    store.materialize_incremental()
    report = store.monitor()
    comp = find(report, "completeness", "offline", "amount")
    assert comp.status == "ALERT" and 0.4 < comp.value < 0.6
    assert comp.series[-1]["non_null"] < 0.7 and comp.series[0]["non_null"] == 1.0
    # online, the newest record of most users is of the last day: about half are NaN
    assert find(report, "completeness", "online", "amount").value < 0.8
    # served values (scope log): NaN is missing too
    served = pa.array([1.0, float("nan"), None, 2.0])
    assert completeness(served) == 0.5 and completeness(pa.array([1, None])) == 0.5


def test_no_drift_is_computed_from_fewer_than_min_rows_non_null_values(tmp_path: Path) -> None:
    # 2,000 rows in the current window, 99.9% null: PSI and KS of a couple of values are noise
    store = open_store(make_repo(tmp_path, null_share=0.999))
    report = store.monitor()
    assert find(report, "completeness", "offline", "amount").status == "ALERT"
    for check in ("psi", "ks"):
        drift = find(report, check, "offline", "amount")
        assert drift.status == "OK" and drift.value is None, drift
        assert "non-null values (min_rows: 1000)" in drift.detail


def test_a_stalled_materialization_is_caught(tmp_path: Path) -> None:
    # the source keeps getting rows up to NOW + 2 days, the last run was at NOW
    repo = make_repo(tmp_path, end=NOW + timedelta(days=2), days=DAYS + 2)
    store = open_store(repo, NOW)
    store.materialize_incremental()
    # 1 day 40 minutes later: past the ttl (1 day), within the grace (1 hour): WARN
    store.clock = lambda: NOW + timedelta(days=1, minutes=40)
    report = store.monitor()
    online = find(report, "freshness", "online")
    assert online.status == "WARN", online
    assert find(report, "freshness", "offline").status == "OK"
    # two days later: ALERT, online and for the materialization; offline is still fresh
    store.clock = lambda: NOW + timedelta(days=2)
    report = store.monitor()
    assert find(report, "freshness", "online").status == "ALERT"
    assert find(report, "materialization", "online").status == "ALERT"
    assert find(report, "freshness", "offline").status == "OK"
    assert report.status == "ALERT"


def test_a_stale_source_is_caught_offline(tmp_path: Path) -> None:
    store = open_store(make_repo(tmp_path), NOW + timedelta(days=3))
    fresh = find(store.monitor(), "freshness", "offline")
    assert fresh.status == "ALERT" and fresh.value > 2 * 86_400
    # the series shows the age growing day by day
    ages = [p["age_seconds"] for p in fresh.series]
    assert ages[-1] > ages[-2] > ages[-3]


def test_a_failed_materialization_is_an_alert(tmp_path: Path) -> None:
    repo = make_repo(tmp_path)
    store = open_store(repo)
    store.materialize_incremental()
    for f in (repo / "data/txn").glob("*.parquet"):
        f.write_bytes(b"not parquet")
    with pytest.raises(SkewlessError):
        store.materialize_incremental()
    mat = find(store.monitor(), "materialization", "online")
    assert mat.status == "ALERT" and "1 failed run" in mat.detail


def test_per_view_overrides_and_skips(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, shift=1.0, monitoring={
        "views": {"txn_stats": {"psi_alert": 5.0, "psi_warn": 4.0, "skip": ["ks"]}}})
    report = open_store(repo).monitor()
    psi = find(report, "psi", "offline", "amount")
    assert psi.status == "OK" and psi.alert == 5.0
    assert not [c for c in report.checks if c.check == "ks"]


def test_a_max_age_set_for_a_view_wins_over_its_ttl(tmp_path: Path) -> None:
    # the view's ttl is 1 day; its source is 1 day 10 minutes old: past the ttl, in the grace
    at = NOW + timedelta(days=1)
    for d in "abc":
        (tmp_path / d).mkdir()
    stale = find(open_store(make_repo(tmp_path / "a"), at).monitor(), "freshness", "offline")
    assert stale.status == "WARN" and stale.warn == 86_400
    # set for the view itself: graded against 2 days, so OK
    repo = make_repo(tmp_path / "b", monitoring={
        "views": {"txn_stats": {"freshness_max_age_seconds": 172_800}}})
    fresh = find(open_store(repo, at).monitor(), "freshness", "offline")
    assert fresh.status == "OK" and fresh.warn == 172_800
    # the default max age (for views without a ttl) does not override a view's ttl
    repo = make_repo(tmp_path / "c", monitoring={"freshness_max_age_seconds": 172_800})
    ttl = find(open_store(repo, at).monitor(), "freshness", "offline")
    assert ttl.status == "WARN" and ttl.warn == 86_400


def test_views_selected_by_name(tmp_path: Path) -> None:
    store = open_store(make_repo(tmp_path))
    assert {c.view for c in store.monitor(["txn_stats"]).checks} <= {"txn_stats", None}
    with pytest.raises(UnknownObjectError, match="txn_stat"):
        store.monitor(["txn_stat"])


@pytest.mark.parametrize("monitoring, culprit", [
    ({"views": {"txn_stats": {"psi_wran": 0.2}}}, "monitoring.views.txn_stats.psi_wran"),
    ({"psi_alret": 0.2}, "monitoring.psi_alret"),
    ({"views": {"txn_stats": {"skip": ["psy"]}}}, "psy"),
    ({"completeness_warn": 1.5}, "monitoring.completeness_warn"),
    ({"webhook_retries": -1}, "monitoring.webhook_retries"),
])
def test_bad_monitoring_config_names_the_key(tmp_path: Path, monitoring: dict, culprit: str) -> None:
    make_repo(tmp_path, monitoring=monitoring, days=1)
    with pytest.raises(ConfigError) as e:
        FeatureStore(tmp_path)
    assert culprit in e.value.message


def test_unknown_key_lists_the_valid_ones_of_its_section(tmp_path: Path) -> None:
    make_repo(tmp_path, monitoring={"views": {"txn_stats": {"psi_wran": 0.2}}}, days=1)
    with pytest.raises(ConfigError) as e:
        FeatureStore(tmp_path)
    assert "psi_warn" in e.value.message and "project" not in e.value.message.split("valid keys here")[1]


def test_an_override_for_a_view_that_does_not_exist_names_it(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, monitoring={"views": {"txn_stat": {"psi_warn": 0.2}}}, days=1)
    with pytest.raises(ConfigError, match=r"monitoring\.views\.txn_stat: there is no feature view"):
        open_store(repo).monitor()
    assert not (repo / "data/monitoring/last.json").exists()


def test_an_aggregated_view_is_checked_offline_and_by_its_materialization(tmp_path: Path) -> None:
    """Its online records are tiles: no online value check (a note says so); its source's
    columns are checked offline, and no false alarm comes of it."""
    from skewless import Aggregation

    repo = make_repo(tmp_path)
    store = FeatureStore(repo, clock=lambda: NOW)
    store.apply([user, FeatureView(
        "txn_agg", entities=[user], schema=[Field("user_id", Int64), Field("amount", Float64)],
        source=FileSource("data/txn", "ts"),
        aggregations=[Aggregation("amount", "sum", timedelta(days=1))])])
    store.materialize_incremental()
    report = store.monitor()
    assert bad(report) == [], report.to_dict()
    assert "aggregated view" in find(report, "freshness", "online").detail
    assert find(report, "psi", "offline", "amount").value < 0.05
    assert find(report, "materialization", "online").status == "OK"


def test_what_was_served_is_checked_from_the_feature_log(tmp_path: Path) -> None:
    # a service logs every request: the monitor checks the served values too (scope "log"):
    # their completeness is the share of non-null values actually served, and PSI / KS
    # between the two windows of served values raise no alarm for one distribution
    from skewless import FeatureService, LoggingConfig

    repo = make_repo(tmp_path, monitoring={"baseline_days": 1, "current_days": 1})
    clock = [NOW - timedelta(days=1, hours=12)]
    store = FeatureStore(repo, clock=lambda: clock[0])
    svc = FeatureService("scoring", [txn_view()], logging_config=LoggingConfig(sample_rate=1.0))
    store.apply([user, txn_view(), svc])
    assert not [c for c in store.monitor(record=False).checks if c.scope == "log"]   # nothing logged yet
    served: list = []
    for end in (NOW - timedelta(days=2), NOW):   # baseline traffic, then current traffic
        clock[0] = end + timedelta(hours=12) if end != NOW else NOW
        store.materialize(end - timedelta(days=DAYS), end)
        for _ in range(5):
            rows = [{"user_id": u} for u in range(300)]
            resp = store.get_online_features("scoring", rows).to_dict()
            if end == NOW:
                served += resp["amount"]
    assert store.flush_feature_logs()
    report = store.monitor(record=False)
    got = find(report, "completeness", "log", "amount")
    assert got.value == pytest.approx(sum(v is not None for v in served) / len(served))
    for check in ("psi", "ks"):
        c = find(report, check, "log", "amount")
        assert c.value is not None and c.status == "OK", c
