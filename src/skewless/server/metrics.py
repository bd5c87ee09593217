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
- ``skewless_online_read_batch_requests``: requests answered by each online store read (the
  requests that arrive together are read together, at most ``MAX_READ_BATCH`` = 128 at a time)
- ``skewless_feature_staleness_seconds{view}``: per request, age of the oldest value of the view served
- ``skewless_served_values_total{view,status}``: feature values served, by status
- ``skewless_cache_requests_total{result}``: in-process cache hits, misses and fallbacks
- ``skewless_online_store_fallbacks_total``: requests served by the fallback chain
- ``skewless_push_rows_total{push_source,to}``: rows accepted by ``POST /push``
- ``skewless_registry_read_timestamp_seconds``: Unix time of the serving definitions' last good
  registry read (the snapshot's age is ``time() - this``; with several workers, the oldest)
- ``skewless_registry_stale``: 1 while the registry cannot be read and the server serves its
  last good snapshot (with several workers: 1 if any worker does)
- ``skewless_monitor_*`` and ``skewless_audit_*``: the last monitor and audit results, read
  from their files on scrape (``skewless.server.results_export``, docs/monitoring.md)

The routes' figures are added up in the worker (``Tally``) and written to these metrics at
most ``FLUSH_SECONDS`` later, and before the worker renders ``/metrics``: with several workers,
``/metrics`` may lag the other workers' last second of traffic. (Unknown paths, answered
outside the routes, are counted directly.)

The HTTP figures (requests, their status and duration, errors) are counted by the routes. The
figures about features (reads per view, values served, staleness, fallbacks, pushed rows) come
from ``MetricsHook``, a lifecycle hook (docs/hooks.md) the server registers on its store: they
are counted wherever the store is called from, one event per request.
"""

from __future__ import annotations

import asyncio
import math
import os
import threading
from bisect import bisect_left
from collections.abc import Callable
from datetime import datetime
from typing import Any

from prometheus_client import (CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram,
                               disable_created_metrics, generate_latest)

from skewless.hooks import ONLINE_READ, PUSH, BaseHook, Event, Outcome
from skewless.online.codec import micros as to_micros
from skewless.server.protocol import oldest_by_view, served_by_view

disable_created_metrics()  # no ``*_created`` series: they double the output and nobody graphs them

LATENCY_BUCKETS = (0.0001, 0.00025, 0.0005, 0.00075, 0.001, 0.0015, 0.0025, 0.005, 0.01, 0.025,
                   0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
STALENESS_BUCKETS = (1.0, 10.0, 60.0, 300.0, 900.0, 3600.0, 6 * 3600.0, 86_400.0, 7 * 86_400.0,
                     30 * 86_400.0, 365 * 86_400.0)

REGISTRY = CollectorRegistry(auto_describe=True)
_BOUNDS: dict[Any, tuple[float, ...]] = {}   # histogram -> its bucket upper bounds, +Inf last (Tally)


def _histogram(name: str, documentation: str, labels: list[str], buckets: tuple[float, ...]) -> Histogram:
    h = Histogram(name, documentation, labels, buckets=buckets, registry=REGISTRY)
    _BOUNDS[h] = (*buckets, math.inf)
    return h


REQUESTS = Counter("skewless_http_requests", "HTTP requests answered, by endpoint and status code.",
                   ["endpoint", "status"], registry=REGISTRY)
REQUEST_SECONDS = _histogram("skewless_http_request_duration_seconds",
                             "Time to answer an HTTP request (body read to response built), by endpoint.",
                             ["endpoint"], LATENCY_BUCKETS)
ERRORS = Counter("skewless_http_errors", "Error responses, by endpoint and error code.",
                 ["endpoint", "code"], registry=REGISTRY)
READ_SECONDS = _histogram("skewless_online_read_duration_seconds",
                          "Online read time (FeatureStore.get_online_features) of requests that read the view.",
                          ["view"], LATENCY_BUCKETS)
READ_BATCH_BUCKETS = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0)
READ_BATCH = _histogram("skewless_online_read_batch_requests",
                        "Requests answered by one online store read (requests that arrive together "
                        "are read together, at most 128 at a time).", [], READ_BATCH_BUCKETS)
STALENESS = _histogram("skewless_feature_staleness_seconds",
                       "Age (request time minus event time) of the oldest value of the view served by a request.",
                       ["view"], STALENESS_BUCKETS)
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

REGISTRY_READ_AT = Gauge("skewless_registry_read_timestamp_seconds",
                         "Unix time of the last good registry read of the definitions served "
                         "(age: time() - this).", registry=REGISTRY, multiprocess_mode="livemin")
REGISTRY_STALE = Gauge("skewless_registry_stale",
                       "1 while the registry cannot be read and the last good definitions are served.",
                       registry=REGISTRY, multiprocess_mode="livemax")


def set_registry_health(health: Any) -> None:
    """The registry gauges from ``FeatureStore.registry_health()``."""
    if health.read_at is not None:
        REGISTRY_READ_AT.set(health.read_at)
    REGISTRY_STALE.set(1 if health.error is not None else 0)


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or os.environ.get("prometheus_multiproc_dir")


_RESULTS: CollectorRegistry | None = None   # the monitor and audit results (results_export)


def export_results(monitoring_dir: Any) -> None:
    """Export the monitor and audit results under ``monitoring_dir`` (``<repo>/data/monitoring``)
    in ``render()``'s output from now on (``skewless.server.results_export``)."""
    global _RESULTS
    from skewless.server.results_export import ResultsCollector

    registry = CollectorRegistry(auto_describe=False)
    registry.register(ResultsCollector(monitoring_dir))
    _RESULTS = registry


def render() -> tuple[bytes, str]:
    """The Prometheus text exposition of every worker's metrics, then the monitor and audit
    results (read from their files, ``export_results``)."""
    if multiprocess_dir():
        from prometheus_client import multiprocess
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        data = generate_latest(registry)
    else:
        data = generate_latest(REGISTRY)
    if _RESULTS is not None:
        data += generate_latest(_RESULTS)
    return data, CONTENT_TYPE_LATEST


class CacheCounters:
    """Feeds ``skewless_cache_requests_total`` from the store's cache totals (``store.cache``:
    ``hits``, ``misses``, ``fallbacks``), by difference after each request."""

    LABELS = (("hit",), ("miss",), ("fallback",))

    def __init__(self, cache: object) -> None:
        self.cache = cache
        self._last = (0, 0, 0)

    def update(self, tally: Tally) -> None:
        c = self.cache
        now = (getattr(c, "hits", 0), getattr(c, "misses", 0), getattr(c, "fallbacks", 0))
        if now != self._last:
            for labels, new, old in zip(self.LABELS, now, self._last):
                if new > old:
                    tally.inc(CACHE, labels, new - old)
            self._last = now


FLUSH_SECONDS = 1.0


def _exposes_buckets(child: Any, n_buckets: int) -> bool:
    """Whether a histogram child exposes its bucket and sum values (every prometheus-client
    release since 0.4 does); if not, ``Tally`` observes each value directly.

    Asked of a real child of a declared histogram, never of a throwaway one: in multiprocess
    mode every histogram created, registered or not, is written to the shared directory and
    would show up in ``/metrics``."""
    buckets = getattr(child, "_buckets", None)
    return (isinstance(buckets, list) and len(buckets) == n_buckets
            and hasattr(getattr(child, "_sum", None), "inc") and all(hasattr(b, "inc") for b in buckets))


class Tally:
    """The server's metric updates, added up in plain dicts and written to prometheus-client in
    one go by ``flush()``.

    Each prometheus-client update takes a lock and, with several workers, writes a memory-mapped
    file: a 1 x 50 request (5 views) made 28 such writes, 38 us of its CPU. Here an update is a
    dict addition (a histogram observation also a bisect), and ``flush()`` writes each changed
    counter and bucket once. Histograms keep Prometheus' meaning exactly: a value is counted in
    the first bucket whose upper bound is >= the value. Not thread-safe: the event loop's
    thread updates and flushes it."""

    def __init__(self) -> None:
        self._counts: dict[tuple[Any, tuple[str, ...]], float] = {}
        self._hists: dict[tuple[Any, tuple[str, ...]], list[float]] = {}
        self._children: dict[tuple[Any, tuple[str, ...]], Any] = {}
        # Whether histogram children take bulk updates: decided at the first flush, from the
        # first child written; until then the observed values are also kept as they are.
        self._bulk: bool | None = None
        self._raw: dict[tuple[Any, tuple[str, ...]], list[float]] = {}
        self._scheduled = False

    def _child(self, key: tuple[Any, tuple[str, ...]]) -> Any:
        child = self._children.get(key)
        if child is None:
            if len(self._children) > 10_000:  # views come and go: stay bounded
                self._children.clear()
            metric, labels = key
            child = self._children[key] = metric.labels(*labels) if labels else metric
        return child

    def inc(self, metric: Counter, labels: tuple[str, ...] = (), amount: float = 1.0) -> None:
        key = (metric, labels)
        self._counts[key] = self._counts.get(key, 0.0) + amount

    def observe(self, metric: Histogram, labels: tuple[str, ...], value: float) -> None:
        self.observe_each(metric, (labels,), value)

    def observe_each(self, metric: Histogram, label_sets: tuple[tuple[str, ...], ...], value: float) -> None:
        """One observation of ``value`` for each label set (views read in one round trip share
        its latency)."""
        if self._bulk is False:
            for labels in label_sets:
                self._child((metric, labels)).observe(value)
            return
        if self._bulk is None:
            for labels in label_sets:
                self._raw.setdefault((metric, labels), []).append(value)
        bounds = _BOUNDS[metric]
        i = bisect_left(bounds, value)
        hists = self._hists
        for labels in label_sets:
            key = (metric, labels)
            h = hists.get(key)
            if h is None:
                h = hists[key] = [0.0] * (len(bounds) + 1)  # bucket counts, then the sum
            if i < len(bounds):  # NaN is in no bucket, as with Histogram.observe
                h[i] += 1
            h[-1] += value

    def schedule_flush(self) -> None:
        """Flush within FLUSH_SECONDS, on the running event loop (once per period: cheap to
        call on every request)."""
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_later(FLUSH_SECONDS, self.flush)

    def flush(self) -> None:
        """Write what was added up since the last flush to the metrics."""
        counts, self._counts = self._counts, {}
        hists, self._hists = self._hists, {}
        raw, self._raw = self._raw, {}
        self._scheduled = False
        for key, amount in counts.items():
            self._child(key).inc(amount)
        for key, h in hists.items():
            child = self._child(key)
            if self._bulk is None:
                self._bulk = _exposes_buckets(child, len(h) - 1)
            if not self._bulk:
                for value in raw.get(key, ()):
                    child.observe(value)
                continue
            child._sum.inc(h[-1])
            for bucket, n in zip(child._buckets, h):
                if n:
                    bucket.inc(n)


class MetricsHook(BaseHook):
    """The feature-level metrics, fed by the store's lifecycle events (docs/hooks.md): per
    online read, its read time per view, the values served per view and status, the oldest
    value's age per view and a fallback when the store did not answer; per push, the rows
    accepted. Failed calls count nothing here (the routes count their errors).

    Updates go to ``tally``, which belongs to the event loop's thread (``bind``): an event
    fired in another thread (a read or push run in the thread pool) is handed to the loop, so
    it is counted before the route answers."""

    def __init__(self, tally: Tally, clock: Callable[[], datetime]) -> None:
        self.tally = tally
        self.clock = clock
        self.loop: asyncio.AbstractEventLoop | None = None
        self.loop_thread: int | None = None

    def bind(self) -> None:
        """Count on the running event loop's thread from now on."""
        self.loop = asyncio.get_running_loop()
        self.loop_thread = threading.get_ident()

    def after(self, event: Event, outcome: Outcome) -> None:
        if outcome.error is not None:
            return
        if event.kind == ONLINE_READ:
            count = self._read
        elif event.kind == PUSH:
            count = self._pushed
        else:
            return
        if self.loop is not None and threading.get_ident() != self.loop_thread:
            self.loop.call_soon_threadsafe(count, event, outcome)
        else:
            count(event, outcome)

    def _read(self, event: Event, outcome: Outcome) -> None:
        resp, tally = outcome.result, self.tally
        groups = resp.groups
        if resp.store_error:
            tally.inc(STORE_FALLBACKS)
        tally.observe_each(READ_SECONDS, tuple({(g.view,): 0 for g in groups}),
                           resp.read_seconds or outcome.seconds)
        for view, status, n in served_by_view(groups):
            tally.inc(SERVED, (view, status), n)
        for view, age in oldest_by_view(groups, to_micros(self.clock())):
            tally.observe(STALENESS, (view,), max(age, 0.0))

    def _pushed(self, event: Event, outcome: Outcome) -> None:
        request = event.request
        self.tally.inc(PUSHED, (request["source_name"], request["to"]), outcome.result.rows)
