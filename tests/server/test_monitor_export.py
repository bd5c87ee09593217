"""The server's ``/metrics`` exports the last monitor and audit results from their files (read
on scrape, cached by mtime; a missing or corrupt file is no error), and ``skewless monitor``
reads the server's read-latency histograms from ``/metrics``."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest

from skewless import FeatureStore
from skewless.server.results_export import ResultsCollector

from .conftest import SERVICE, Server

MONITOR = {"generated_at": "2026-01-02T03:04:05+00:00", "status": "ALERT", "checks": [
    {"check": "psi", "view": "user_spend", "feature": "amount", "scope": "offline", "value": 0.9,
     "unit": "", "warn": 0.1, "alert": 0.25, "status": "ALERT", "detail": "", "series": None},
    {"check": "freshness", "view": "user_spend", "feature": None, "scope": "online", "value": 12.5,
     "unit": "s", "warn": 60.0, "alert": 120.0, "status": "OK", "detail": "", "series": None},
    {"check": "latency", "view": None, "feature": None, "scope": "server", "value": None,
     "unit": "s", "warn": 0.05, "alert": 0.25, "status": "WARN", "detail": "", "series": None}]}
AUDIT = {"service": "fraud_v1", "since": "2026-01-01T00:00:00+00:00",
         "until": "2026-01-02T00:00:00+00:00", "rows": 1234, "failed": True,
         "thresholds": {"mismatch_rate": 0.01},
         "features": [{"feature": "user_spend:amount", "compared": 1200, "mismatch_rate": 0.25,
                       "missing_online_rate": 0.01, "missing_offline_rate": 0.0,
                       "mean_abs_diff": 3.5, "mean_rel_diff": 0.1, "status": "ALERT", "worst": []}]}


def scrape(collector: ResultsCollector) -> str:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return generate_latest(registry).decode()


def write(path: Path, data: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data) if not isinstance(data, str) else data)


def test_results_become_gauges(tmp_path: Path) -> None:
    write(tmp_path / "last.json", MONITOR)
    write(tmp_path / "audit" / "fraud_v1.json", AUDIT)
    text = scrape(ResultsCollector(tmp_path))
    assert ('skewless_monitor_status{check="psi",feature="amount",scope="offline",view="user_spend"} 2.0'
            in text)
    assert ('skewless_monitor_value{check="psi",feature="amount",scope="offline",view="user_spend"} 0.9'
            in text)
    assert 'skewless_monitor_status{check="latency",feature="",scope="server",view=""} 1.0' in text
    assert 'check="latency"' not in "".join(line for line in text.splitlines()
                                           if line.startswith("skewless_monitor_value"))
    assert 'skewless_audit_mismatch_rate{feature="user_spend:amount",service="fraud_v1"} 0.25' in text
    assert 'skewless_audit_missing_online_rate{feature="user_spend:amount",service="fraud_v1"} 0.01' in text
    assert 'skewless_audit_rows{service="fraud_v1"} 1234.0' in text
    assert "skewless_monitor_generated_timestamp_seconds 1.767323045e+09" in text


def test_missing_and_corrupt_files_export_nothing_and_are_logged_once(tmp_path: Path, caplog) -> None:
    collector = ResultsCollector(tmp_path)
    assert "skewless_monitor" not in scrape(collector)   # nothing yet: no error, no family
    write(tmp_path / "last.json", "{ half a fi")
    write(tmp_path / "audit" / "svc.json", "[1, 2]")
    for _ in range(3):
        text = scrape(collector)
        assert "skewless_monitor_status" not in text and "skewless_audit" not in text
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len([w for w in warnings if "last.json" in w]) == 1
    assert len([w for w in warnings if "svc.json" in w]) == 1
    # fixed: exported again (a new mtime or size)
    write(tmp_path / "last.json", MONITOR)
    assert "skewless_monitor_status" in scrape(collector)


def test_a_file_is_parsed_again_only_when_it_changes(tmp_path: Path) -> None:
    path = tmp_path / "last.json"
    write(path, MONITOR)
    collector = ResultsCollector(tmp_path)
    assert "0.9" in scrape(collector)
    st = os.stat(path)
    # same size and mtime: the cached figures (the file is not read again)
    changed = json.dumps(MONITOR).replace("0.9", "0.8")
    path.write_text(changed)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert 'view="user_spend"} 0.9' in scrape(collector)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    assert 'view="user_spend"} 0.8' in scrape(collector)


def test_the_server_exports_the_results_and_its_latency_feeds_the_monitor(
        sqlite_repo: Path, sqlite_server: Server) -> None:
    mon = sqlite_repo / "data" / "monitoring"
    write(mon / "audit" / "fraud_v1.json", AUDIT)
    for _ in range(20):
        assert sqlite_server.post("/get-online-features", {"feature_service": SERVICE, "entities": {
            "user_id": ["u1"], "merchant_id": ["m1"]}}).status_code == 200
    # the monitor reads the server's histograms (and writes last.json, which the server exports)
    store = FeatureStore(sqlite_repo, config={
        "project": "srv", "registry": "data/registry.db",
        "monitoring": {"metrics_url": sqlite_server.url + "/metrics"}})
    report = store.monitor()
    latency = {c.view: c for c in report.checks if c.check == "latency"}
    assert set(latency) >= {"user_spend", "pair_stats"}, report.to_dict()
    spend = latency["user_spend"]
    assert spend.value is not None and 0 < spend.value < 10
    assert set(spend.series) == {"p50", "p95", "p99"}
    assert spend.series["p50"] <= spend.series["p95"] <= spend.series["p99"]
    text = sqlite_server.get("/metrics").text
    assert re.search(r'^skewless_monitor_status\{check="latency",feature="",scope="server",'
                     r'view="user_spend"\} [012]\.0$', text, re.M), text
    assert 'skewless_audit_mismatch_rate{feature="user_spend:amount",service="fraud_v1"} 0.25' in text


def test_a_server_that_does_not_answer_leaves_latency_not_available(sqlite_repo: Path) -> None:
    store = FeatureStore(sqlite_repo, config={
        "project": "srv", "registry": "data/registry.db",
        "monitoring": {"metrics_url": "http://127.0.0.1:9/metrics"}})
    report = store.monitor(record=False)
    latency = [c for c in report.checks if c.check == "latency"]
    assert len(latency) == 1 and latency[0].status == "OK" and latency[0].value is None
    assert "did not answer" in latency[0].detail
