"""The hot path's metric tally: what it flushes is exactly what observing each value directly
gives (bucket edges included), and nothing is written before a flush."""

from __future__ import annotations

import math

from skewless.server import metrics as M


def samples(metric, labels: dict[str, str]) -> dict[tuple[str, str | None], float]:
    """(sample name, le) -> value of the series of ``metric`` with ``labels``."""
    out = {}
    for family in metric.collect():
        for s in family.samples:
            if all(s.labels.get(k) == v for k, v in labels.items()):
                out[s.name, s.labels.get("le")] = s.value
    return out


def test_flushed_histograms_and_counters_equal_direct_observation():
    values = [0.0, 0.0001, 0.00010001, 0.00025, 0.003, 0.7, 10.0, 11.0, 1e9, 0.0001, math.inf]
    tally = M.Tally()
    for v in values:
        M.READ_SECONDS.labels("tally-direct").observe(v)
        tally.observe(M.READ_SECONDS, ("tally-batched",), v)
    tally.observe_each(M.STALENESS, (("tally-a",), ("tally-b",)), 59.0)
    M.STALENESS.labels("tally-direct").observe(59.0)
    for n in (1, 2, 3):
        M.SERVED.labels("tally-direct", "PRESENT").inc(n)
        tally.inc(M.SERVED, ("tally-batched", "PRESENT"), n)

    assert samples(M.READ_SECONDS, {"view": "tally-batched"}) == {}  # nothing before the flush
    tally.flush()
    direct = samples(M.READ_SECONDS, {"view": "tally-direct"})
    assert direct[("skewless_online_read_duration_seconds_count", None)] == len(values)
    assert samples(M.READ_SECONDS, {"view": "tally-batched"}) == direct
    for view in ("tally-a", "tally-b"):
        assert samples(M.STALENESS, {"view": view}) == samples(M.STALENESS, {"view": "tally-direct"})
    assert (samples(M.SERVED, {"view": "tally-batched"})[("skewless_served_values_total", None)]
            == samples(M.SERVED, {"view": "tally-direct"})[("skewless_served_values_total", None)] == 6)

    tally.flush()  # a second flush with nothing new changes nothing
    assert samples(M.READ_SECONDS, {"view": "tally-batched"}) == direct


def test_unlabelled_counters_and_cache_counters_go_through_the_tally():
    tally = M.Tally()
    def fallbacks() -> float:
        return samples(M.STORE_FALLBACKS, {})[("skewless_online_store_fallbacks_total", None)]
    before = fallbacks()
    tally.inc(M.STORE_FALLBACKS)
    tally.inc(M.STORE_FALLBACKS)

    class Cache:
        hits, misses, fallbacks = 3, 1, 0
    counters = M.CacheCounters(Cache())
    hit_before = samples(M.CACHE, {"result": "hit"}).get(("skewless_cache_requests_total", None), 0.0)
    counters.update(tally)
    Cache.hits = 5
    counters.update(tally)
    assert fallbacks() == before  # nothing before the flush
    tally.flush()
    assert fallbacks() == before + 2
    assert samples(M.CACHE, {"result": "hit"})[("skewless_cache_requests_total", None)] == hit_before + 5


def test_every_histogram_has_its_bounds_from_its_own_declaration():
    from prometheus_client import Histogram

    histograms = [v for v in vars(M).values() if isinstance(v, Histogram)]
    assert len(histograms) == 4   # request, read, read batch, staleness
    for h in histograms:
        assert M._BOUNDS[h] == tuple(h._upper_bounds)
