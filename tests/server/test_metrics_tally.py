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
