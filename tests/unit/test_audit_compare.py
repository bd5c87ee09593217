"""The audit's comparison of a served float with the offline one (docs/audit.md, "mismatch_rate"):
equal within ``float_tolerance * max(|a|, |b|) + float_abs_tolerance``, relative so a feature of
tiny values is compared at its own scale; NaN equals only NaN."""

from __future__ import annotations

import math

import duckdb
import pyarrow as pa
import pytest

from skewless.monitoring.audit import _ROW, _compare
from skewless.monitoring import feature_log as FL

LIMITS = {"mismatch_rate": 0.0, "missing_online_rate": 1.0, "missing_offline_rate": 1.0}


@pytest.mark.parametrize("online, offline, differ", [
    (1e-9, 5e-8, True),             # a tiny feature served 50 times too small
    (5e-8, 5e-8 * (1 + 1e-9), False),   # ... and arithmetic noise at its scale
    (1e-17, 0.0, False),             # noise around zero: under the absolute floor
    (1e-9, 0.0, True),               # ... but not a real value against zero
    (100.0, 100.0 + 1e-9, False),
    (100.0, 100.001, True),
    (math.nan, 1.0, True),
    (math.nan, math.nan, False),
    (math.inf, 1e308, True),
])
def test_floats_are_compared_at_their_own_scale(online: float, offline: float, differ: bool) -> None:
    con = duckdb.connect()
    con.register("t", pa.table({"v__f": [online], "v__f__offline": [offline], "v__f" + FL.STATUS_SUFFIX: ["PRESENT"],
                                FL.LOG_TIMESTAMP: pa.array([0], pa.timestamp("us", "UTC")), _ROW: [0]}))
    con.execute("CREATE TEMP TABLE j AS SELECT * FROM t")
    got = _compare(con, pa.float64(), "v__f", [], (1e-6, 1e-12), 5, LIMITS)
    assert (got.mismatch_rate == 1.0) is differ, (online, offline, got)
