"""The consumer's bulk histogram update equals prometheus-client's own observe(), value by
value, bucket edges included (docs/streams.md, "Metrics")."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, strategies as st
from prometheus_client import CollectorRegistry, Histogram

from skewless.services.ingest import FRESHNESS_BUCKETS, observe_many

EDGES = st.sampled_from([0.0, *FRESHNESS_BUCKETS, 1e6])
VALUES = st.lists(st.one_of(EDGES, st.floats(0, 5000, allow_nan=False)), max_size=60)


@given(VALUES)
def test_observe_many_equals_observe_each(values: list[float]) -> None:
    registry = CollectorRegistry()
    one = Histogram("one", "", buckets=FRESHNESS_BUCKETS, registry=registry)
    bulk = Histogram("bulk", "", buckets=FRESHNESS_BUCKETS, registry=registry)
    for v in values:
        one.observe(v)
    observe_many(bulk, np.array(FRESHNESS_BUCKETS), np.array(values, dtype=float))
    samples = {m.name: {(s.name.split("_", 1)[1], tuple(sorted(s.labels.items()))): s.value
                        for s in m.samples if not s.name.endswith("_created")}
               for m in registry.collect()}
    one_s, bulk_s = samples["one"], samples["bulk"]
    assert one_s.keys() == bulk_s.keys()
    for k, v in one_s.items():
        if k[0] == "sum":   # summed in another order
            assert bulk_s[k] == pytest.approx(v, rel=1e-9, abs=1e-9)
        else:
            assert bulk_s[k] == v, k
