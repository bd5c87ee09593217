"""Prometheus metrics of the feature server (``GET /metrics``).

With several workers (``skewless serve --workers N``) every worker is its own process: the
server then runs prometheus-client's multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``, set by
``skewless serve`` to a fresh temporary directory unless already set) and ``/metrics``
aggregates the workers' values, whichever worker answers.

Metric names (``docs/server.md`` explains each):

- ``skewless_http_requests_total{endpoint,status}``, ``skewless_http_request_duration_seconds{endpoint}``
- ``skewless_http_errors_total{endpoint,code}``: error responses by machine-readable code
- ``skewless_online_read_duration_seconds{view}``: the store read of each request that read the view
  (views are read in one batch: one round trip on Redis, so a request's read time counts for
  every view it read)
- ``skewless_feature_staleness_seconds{view}``: per request, age of the oldest value of the view served
- ``skewless_served_values_total{view,status}``: feature values served, by status
- ``skewless_cache_requests_total{result}``: in-process cache hits, misses and fallbacks
- ``skewless_online_store_fallbacks_total``: requests served by the fallback chain
- ``skewless_push_rows_total{push_source,to}``: rows accepted by ``POST /push``
"""

from __future__ import annotations

import os

from prometheus_client import (CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram,
                               disable_created_metrics, generate_latest)

disable_created_metrics()  # no ``*_created`` series: they double the output and nobody graphs them

LATENCY_BUCKETS = (0.0001, 0.00025, 0.0005, 0.00075, 0.001, 0.0015, 0.0025, 0.005, 0.01, 0.025,
                   0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
STALENESS_BUCKETS = (1.0, 10.0, 60.0, 300.0, 900.0, 3600.0, 6 * 3600.0, 86_400.0, 7 * 86_400.0,
                     30 * 86_400.0, 365 * 86_400.0)

REGISTRY = CollectorRegistry(auto_describe=True)

REQUESTS = Counter("skewless_http_requests", "HTTP requests answered, by endpoint and status code.",
                   ["endpoint", "status"], registry=REGISTRY)
REQUEST_SECONDS = Histogram("skewless_http_request_duration_seconds",
                            "Time to answer an HTTP request (body read to response built), by endpoint.",
                            ["endpoint"], buckets=LATENCY_BUCKETS, registry=REGISTRY)
ERRORS = Counter("skewless_http_errors", "Error responses, by endpoint and error code.",
                 ["endpoint", "code"], registry=REGISTRY)
READ_SECONDS = Histogram("skewless_online_read_duration_seconds",
                         "Online read time (FeatureStore.get_online_features) of requests that read the view.",
                         ["view"], buckets=LATENCY_BUCKETS, registry=REGISTRY)
STALENESS = Histogram("skewless_feature_staleness_seconds",
                      "Age (request time minus event time) of the oldest value of the view served by a request.",
                      ["view"], buckets=STALENESS_BUCKETS, registry=REGISTRY)
SERVED = Counter("skewless_served_values", "Feature values served, by view and status.",
                 ["view", "status"], registry=REGISTRY)
CACHE = Counter("skewless_cache_requests",
                "In-process cache lookups: hit and miss (hot-key cache), fallback (served from the "
                "cache while the online store did not answer).", ["result"], registry=REGISTRY)
STORE_FALLBACKS = Counter("skewless_online_store_fallbacks",
                          "Requests answered through the fallback chain (cache, then on_missing) "
                          "because the online store did not answer.", registry=REGISTRY)
PUSHED = Counter("skewless_push_rows", "Rows accepted by POST /push, by push source and target.",
                 ["push_source", "to"], registry=REGISTRY)


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or os.environ.get("prometheus_multiproc_dir")


def render() -> tuple[bytes, str]:
    """The Prometheus text exposition of every worker's metrics."""
    if multiprocess_dir():
        from prometheus_client import multiprocess
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


class CacheCounters:
    """Feeds ``skewless_cache_requests_total`` from the store's cache totals (``store.cache``:
    ``hits``, ``misses``, ``fallbacks``), by difference after each request."""

    def __init__(self, cache: object) -> None:
        self.cache = cache
        self._last = (0, 0, 0)
        self._children = (CACHE.labels("hit"), CACHE.labels("miss"), CACHE.labels("fallback"))

    def update(self) -> None:
        c = self.cache
        now = (getattr(c, "hits", 0), getattr(c, "misses", 0), getattr(c, "fallbacks", 0))
        if now != self._last:
            for child, new, old in zip(self._children, now, self._last):
                if new > old:
                    child.inc(new - old)
            self._last = now
