"""The aggregation plan (plan/aggregate.py): what an engine is told, and what it refuses."""

from __future__ import annotations

from datetime import timedelta

import pytest

from skewless import Aggregation, Entity, FeatureView, Field, FileSource
from skewless.kernels.source import ResolvedSource
from skewless.plan.aggregate import aggregate_request, window_start
from skewless.types import Float64, Int64, String

user = Entity("user", join_keys=["user_id"])
RESOLVED = ResolvedSource("/repo/data/tx", (), True, False)


def view(source: FileSource | None = None) -> FeatureView:
    return FeatureView(
        "tx", [user], [Field("user_id", Int64), Field("merchant", String), Field("amount", Float64, default=1.0)],
        source or FileSource("data/tx", "ts", field_mapping={"amt": "amount"}, event_id_column="eid"),
        aggregations=[Aggregation("amount", "sum", timedelta(hours=1)),
                      Aggregation("merchant", "last", timedelta(days=30), name="m")],
        on_missing="default")


def test_the_request_holds_the_rule_s_parameters() -> None:
    r = aggregate_request(view(), ["m"], ["tx__m"], ("user_id",), RESOLVED)
    (c,) = r.columns
    assert (c.output, c.function, c.source_column, c.window_us, c.tile_us) == (
        "tx__m", "last", "merchant", 30 * 86_400_000_000, 86_400_000_000)
    # every aggregated column is read (schema order), requested or not: the event-id tie-break
    assert r.value_columns == (("merchant", String), ("amt", Float64)) and r.event_id_column == "eid"
    assert r.dedup_columns == ("merchant", "amt")
    s = aggregate_request(view(), ["amount_sum_1h"], ["amount_sum_1h"], ("user_id",), RESOLVED).columns[0]
    assert s.default == 1.0 and s.window_start(10 * 3_600_000_000 + 7) == 9 * 3_600_000_000
    assert window_start(-1, 60, 60) == -120


def test_an_availability_delay_bounds_the_events_a_window_counts() -> None:
    """``ts + availability_delay <= t`` on top of ``ts < t``: the exclusive bound of a window's
    event times is ``t - delay + 1us`` with a delay, ``t`` without (plan/visibility.py)."""
    source = FileSource("data/tx", "ts", availability_delay=timedelta(hours=6))
    r = aggregate_request(view(source), ["m"], ["m"], ("user_id",), RESOLVED)
    six = 6 * 3_600_000_000
    assert r.delay_us == six and r.usable_before(10 * six) == 9 * six + 1
    plain = aggregate_request(view(), ["m"], ["m"], ("user_id",), RESOLVED)
    assert plain.delay_us == 0 and plain.usable_before(10 * six) == 10 * six
    one = aggregate_request(view(FileSource("data/tx", "ts", availability_delay=timedelta(microseconds=1))),
                            ["m"], ["m"], ("user_id",), RESOLVED)
    assert one.usable_before(7) == 7   # ts + 1us <= t is ts < t
