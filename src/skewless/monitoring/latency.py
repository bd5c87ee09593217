"""Online read latency for the monitors: p50 / p95 / p99 per view from the feature server's
``skewless_online_read_duration_seconds`` histogram (docs/server.md), read from its
``GET /metrics`` (``monitoring.metrics_url``) or its multiprocess metrics directory
(``monitoring.metrics_dir``, ``PROMETHEUS_MULTIPROC_DIR`` of ``skewless serve --workers N``).

The histograms count since the server started, so the percentiles are over its lifetime.
Quantiles are estimated as Prometheus' ``histogram_quantile`` does: linear interpolation
inside the bucket that holds the rank (docs/monitoring.md, "Latency"). No server, or one that
does not answer: a check saying latency is not available, never an error.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from skewless.config import MonitoringConfig

METRIC = "skewless_online_read_duration_seconds"


def bucket_quantile(q: float, buckets: Sequence[tuple[float, float]]) -> float | None:
    """The ``q`` quantile (0..1) of a Prometheus histogram given as cumulative
    ``(upper bound, count)`` pairs sorted by bound, the last one ``+Inf``: Prometheus'
    ``histogram_quantile`` (linear within the bucket; a rank in the ``+Inf`` bucket gives the
    highest finite bound). None when the histogram counts nothing."""
    if not buckets or buckets[-1][1] <= 0:
        return None
    total = buckets[-1][1]
    rank = q * total
    prev_bound, prev_count = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if math.isinf(bound):
                return prev_bound
            if count == prev_count:
                return bound
            return prev_bound + (bound - prev_bound) * (rank - prev_count) / (count - prev_count)
        prev_bound, prev_count = bound, count
    return prev_bound


def parse(text: str) -> dict[str, list[tuple[float, float]]]:
    """Per view, the cumulative buckets of ``skewless_online_read_duration_seconds`` in a
    Prometheus text exposition (several workers' series of a view are added up)."""
    from prometheus_client.parser import text_string_to_metric_families

    per_view: dict[str, dict[float, float]] = {}
    for family in text_string_to_metric_families(text):
        if family.name != METRIC:
            continue
        for s in family.samples:
            if not s.name.endswith("_bucket"):
                continue
            view = s.labels.get("view", "")
            bound = float(s.labels["le"])
            per_view.setdefault(view, {})
            per_view[view][bound] = per_view[view].get(bound, 0.0) + float(s.value)
    return {v: sorted(b.items()) for v, b in per_view.items()}


@dataclass
class Percentiles:
    """The latency figures of one monitor run: per view its buckets (None: not available,
    ``why`` says why)."""

    buckets: dict[str, list[tuple[float, float]]] | None
    why: str = ""
    source: str = ""

    def checks(self, cfg: MonitoringConfig, views: Iterable[str], skip: set[str]) -> list[Any]:
        from skewless.monitoring.monitors import OK, Check, above

        if self.buckets is None:
            return [Check("latency", None, None, "server", None, "s", cfg.latency_p99_warn_seconds,
                          cfg.latency_p99_alert_seconds, OK, f"not available: {self.why}")]
        out = []
        for view in views:
            if view in skip:
                continue
            th = cfg.thresholds(view)
            b = self.buckets.get(view)
            if not b or b[-1][1] <= 0:
                out.append(Check("latency", view, None, "server", None, "s",
                                 th.latency_p99_warn_seconds, th.latency_p99_alert_seconds, OK,
                                 f"no online read of the view counted by {self.source}"))
                continue
            p = {f"p{int(q * 100)}": bucket_quantile(q, b) for q in (0.5, 0.95, 0.99)}
            p99 = p["p99"]
            out.append(Check("latency", view, None, "server", p99, "s",
                             th.latency_p99_warn_seconds, th.latency_p99_alert_seconds,
                             above(p99, th.latency_p99_warn_seconds, th.latency_p99_alert_seconds),
                             f"p99 of {int(b[-1][1]):,} reads since the server started "
                             f"(p50 {_ms(p['p50'])}, p95 {_ms(p['p95'])}) from {self.source}", p))
        return out


def _ms(s: float | None) -> str:
    return "n/a" if s is None else f"{s * 1000:.2f} ms"


def collect(cfg: MonitoringConfig, resolve: Any, timeout: float = 5.0) -> Percentiles:
    """The server's read-latency histograms, from ``metrics_url`` or ``metrics_dir`` (a path
    resolved by ``resolve``, the RepoConfig's); not available when neither is set or the server
    does not answer in ``timeout`` seconds."""
    if cfg.metrics_url:
        import httpx

        try:
            resp = httpx.get(cfg.metrics_url, timeout=timeout)
            resp.raise_for_status()
        except httpx.HTTPError as e:
            return Percentiles(None, f"the feature server at {cfg.metrics_url} did not answer "
                               f"({type(e).__name__}: {e})")
        return Percentiles(parse(resp.text), source=cfg.metrics_url)
    if cfg.metrics_dir:
        path = resolve(cfg.metrics_dir)
        if not path.is_dir() or not any(path.glob("*.db")):
            return Percentiles(None, f"no metrics in {path} (is `skewless serve --workers N` running?)")
        from prometheus_client import CollectorRegistry, generate_latest, multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=str(path))
        return Percentiles(parse(generate_latest(registry).decode()), source=str(path))
    return Percentiles(None, "no feature server configured (monitoring.metrics_url or "
                       "monitoring.metrics_dir, docs/monitoring.md)")
