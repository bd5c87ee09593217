"""The aggregation plan (plan/aggregate.py): what an engine is told, and what it refuses."""

from __future__ import annotations

from datetime import timedelta

import pytest

from skewless import Aggregation, Entity, FeatureView, Field, FileSource
from skewless.errors import UnsupportedError
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


def test_an_availability_delay_is_refused_until_aggregations_honour_it() -> None:
    """Sources cannot declare ``availability_delay`` in this module's tests yet; once they can,
    an aggregated view over one must be refused (or honoured), never silently ignored."""
    source = FileSource("data/tx", "ts")
    object.__setattr__(source, "availability_delay", timedelta(hours=6))
    with pytest.raises(UnsupportedError, match=r"feature view 'tx': its source declares an availability_delay"):
        aggregate_request(view(source), ["m"], ["m"], ("user_id",), RESOLVED)
