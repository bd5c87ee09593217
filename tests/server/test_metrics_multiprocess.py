"""`/metrics` exposes skewless's declared metrics and nothing else, with one worker and with
several (prometheus-client's multiprocess mode, where any metric a worker creates, registered
or not, lands in the shared directory: a stray `probe` histogram used to show up there)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from skewless.server import metrics as M
from skewless.server.results_export import NAMES as RESULT_NAMES

from .conftest import SERVICE, Server, start_server

SPEND = ["user_spend:amount", "user_spend:n_txn"]


def declared() -> set[str]:
    """The metric families skewless declares (``skewless.server.metrics``), as the exposition
    may name them (a counter's family ``x`` is written ``x_total``)."""
    from skewless.monitoring import feature_log   # its counters: rows logged, drops, errors

    collected = [*M.REGISTRY.collect(), *(c for m in (feature_log.WRITTEN, feature_log.DROPPED,
                                                      feature_log.WRITE_ERRORS) for c in m.collect())]
    names = {family.name for family in collected} | set(RESULT_NAMES)
    return names | {f"{family.name}_total" for family in collected if family.type == "counter"}


def families(text: str) -> set[str]:
    return set(re.findall(r"^# TYPE (\S+) ", text, re.M))


def sample_names(text: str) -> set[str]:
    return {line.split("{")[0].split(" ")[0] for line in text.splitlines() if line and not line.startswith("#")}


def belongs(sample: str, names: set[str]) -> bool:
    return any(sample == n or sample.startswith(n + "_") for n in names)


def test_declared_metrics_are_skewless_ones() -> None:
    names = declared()
    assert names and all(n.startswith("skewless_") for n in names), names
    assert "probe" not in names


def test_a_tally_creates_no_metric_of_its_own_in_multiprocess_mode(tmp_path: Path) -> None:
    """In a process in multiprocess mode: a Tally that observes and flushes writes only the
    declared metrics to the shared directory, and what it writes equals direct observation."""
    script = textwrap.dedent("""
        import json, sys
        from prometheus_client import CollectorRegistry, generate_latest, multiprocess
        from skewless.server import metrics as M
        tally = M.Tally()
        for v in (0.0001, 0.003, 0.7, 11.0):
            tally.observe(M.READ_SECONDS, ("batched",), v)
            M.READ_SECONDS.labels("direct").observe(v)
        tally.inc(M.SERVED, ("batched", "PRESENT"), 3)
        tally.flush()
        tally.observe(M.READ_SECONDS, ("batched",), 0.5)   # after the first flush: decided
        M.READ_SECONDS.labels("direct").observe(0.5)
        tally.flush()
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        print(generate_latest(registry).decode())
    """)
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    text = done.stdout
    assert families(text) <= declared(), families(text) - declared()
    assert all(belongs(s, declared()) for s in sample_names(text)), sample_names(text)
    assert "probe" not in text

    def series(view: str) -> list[str]:
        return sorted(re.sub(f'view="{view}"', 'view="X"', line) for line in text.splitlines()
                      if f'view="{view}"' in line and line.startswith("skewless_online_read"))
    assert series("batched") == series("direct") and len(series("direct")) > 5
    assert 'skewless_served_values_total{status="PRESENT",view="batched"} 3.0' in text


@pytest.fixture(scope="module")
def two_workers(sqlite_repo: Path) -> Iterator[Server]:
    server = start_server(sqlite_repo, workers=2)
    yield server
    server.stop()


@pytest.mark.parametrize("workers", [1, 2])
def test_metrics_expose_only_declared_metrics(workers: int, sqlite_server: Server,
                                              two_workers: Server) -> None:
    """After every kind of request (answers, errors, unknown paths), on one worker and on two."""
    server = sqlite_server if workers == 1 else two_workers
    for _ in range(6):  # with two workers, new connections spread over both
        assert server.post("/get-online-features", {"features": SPEND, "entities": {"user_id": ["u1", "u9"]}}).status_code == 200
        assert server.post("/get-online-features", {"feature_service": SERVICE, "entities": {
            "user_id": ["u1"], "merchant_id": ["m1"]}}).status_code == 200
        assert server.post("/get-online-features", {"features": ["nope:x"], "entities": {"user_id": ["u1"]}}).status_code == 400
        assert server.get("/nowhere").status_code == 404
        assert server.get("/health").status_code == 200
    text = server.get("/metrics").text
    names = families(text)
    assert names, text
    assert names <= declared(), f"undeclared metrics in /metrics: {sorted(names - declared())}"
    assert all(belongs(s, declared()) for s in sample_names(text)), sorted(
        s for s in sample_names(text) if not belongs(s, declared()))
    assert not re.search(r"^probe", text, re.M)
    for expected in ("skewless_http_requests_total", "skewless_http_request_duration_seconds",
                     "skewless_online_read_duration_seconds", "skewless_served_values_total"):
        assert expected in names, (expected, sorted(names))


def test_without_bulk_access_the_tally_replays_each_value(monkeypatch: pytest.MonkeyPatch) -> None:
    """A prometheus-client whose histogram children hide their buckets: the values kept until
    the first flush are observed one by one, later ones directly; the result is the same."""
    assert M._exposes_buckets(M.READ_SECONDS.labels("replay-direct"), len(M.LATENCY_BUCKETS) + 1)
    assert not M._exposes_buckets(object(), 3)
    monkeypatch.setattr(M, "_exposes_buckets", lambda child, n: False)
    tally = M.Tally()
    for v in (0.0001, 0.003, 0.7, 11.0):
        tally.observe(M.READ_SECONDS, ("replay-batched",), v)
        M.READ_SECONDS.labels("replay-direct").observe(v)
    tally.flush()
    tally.observe(M.READ_SECONDS, ("replay-batched",), 0.5)
    M.READ_SECONDS.labels("replay-direct").observe(0.5)
    tally.flush()

    def series(view: str) -> dict[tuple[str, str | None], float]:
        return {(s.name, s.labels.get("le")): s.value for family in M.READ_SECONDS.collect()
                for s in family.samples if s.labels.get("view") == view}
    assert series("replay-batched") == series("replay-direct")
    assert series("replay-direct")[("skewless_online_read_duration_seconds_count", None)] == 5
