"""Aggregation definitions: names, tiles, output types, and the errors bad input gets (each
naming the view and the culprit, with how to fix it)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from skewless import Aggregation, Entity, FeatureService, FeatureView, Field, FileSource
from skewless.errors import DefinitionError
from skewless.types import Array, Bool, Float32, Float64, Int64, String, UnixTimestamp

user = Entity("user", join_keys=["user_id"])
SRC = FileSource("data/tx", timestamp_field="ts")
SCHEMA = [Field("user_id", Int64), Field("amount", Float64, default=0.0), Field("n", Int64),
          Field("merchant", String), Field("tags", Array(String)), Field("flag", Bool),
          Field("f32", Float32), Field("seen", UnixTimestamp)]
H, D = timedelta(hours=1), timedelta(days=1)


def view(*aggs: Aggregation, **kw: object) -> FeatureView:
    return FeatureView("tx", [user], SCHEMA, SRC, aggregations=list(aggs), **kw)  # type: ignore[arg-type]


def test_names_tiles_and_types() -> None:
    v = view(Aggregation("amount", "sum", timedelta(minutes=30)), Aggregation("amount", "mean", 7 * D),
             Aggregation("n", "count", 90 * D), Aggregation("merchant", "last", H, name="last_merchant"),
             Aggregation("f32", "max", 36 * H), Aggregation("seen", "min", H),
             Aggregation("n", "stddev_samp", H))
    feats = v.served_features({"user_id"})
    assert [f.name for f in feats] == ["amount_sum_30m", "amount_mean_7d", "n_count_90d", "last_merchant",
                                       "f32_max_36h", "seen_min_1h", "n_stddev_samp_1h"]
    assert [f.dtype for f in feats] == [Float64, Float64, Int64, String, Float32, UnixTimestamp, Float64]
    assert [f.default for f in feats][:3] == [0.0, 0.0, None]    # count is never missing
    assert [v.tile_of(a) for a in v.aggregations] == [
        timedelta(minutes=5), H, D, timedelta(minutes=5), H, timedelta(minutes=5), timedelta(minutes=5)]
    assert v.aggregated and v.feature_names[0] == "amount_sum_30m"
    tiled = view(Aggregation("amount", "sum", H), Aggregation("amount", "sum", D), aggregation_tile=H)
    assert {tiled.tile_of(a) for a in tiled.aggregations} == {H}
    assert FeatureView.from_spec(tiled.to_spec()) == tiled
    FeatureService("s", [v[["amount_sum_30m"]]])   # a projection names aggregated features


def test_plain_views_keep_their_stored_form() -> None:
    plain = FeatureView("tx", [user], SCHEMA, SRC)
    assert "aggregations" not in plain.to_spec() and "aggregation_tile_seconds" not in plain.to_spec()
    assert "event_id_column" not in SRC.to_spec()
    assert FileSource("data/tx", "ts", event_id_column="eid").to_spec()["event_id_column"] == "eid"


@pytest.mark.parametrize(("build", "message", "hint"), [
    (lambda: view(Aggregation("amout", "sum", H)),
     r"feature view 'tx': aggregation Aggregation\('amout', 'sum', 1h\) reads column 'amout', which is "
     r"not in the schema; did you mean 'amount'", "add Field('amout'"),
    (lambda: view(Aggregation("merchant", "mean", H)),
     r"feature view 'tx': aggregation Aggregation\('merchant', 'mean', 1h\): mean needs a numeric column, "
     r"but 'merchant' is String", "Int32, Int64, Float32, Float64"),
    (lambda: view(Aggregation("tags", "max", H)), r"max needs a column, but 'tags' is Array\(String\)",
     "String"),
    (lambda: view(Aggregation("flag", "stddev_pop", H)), r"stddev_pop needs a numeric column", "count"),
    (lambda: view(Aggregation("tags", "count", H)), r"count needs a column, but 'tags' is Array\(String\)",
     "Bool"),
    (lambda: view(Aggregation("amount", "sum", timedelta(minutes=90)), aggregation_tile=H),
     r"feature view 'tx': aggregation Aggregation\('amount', 'sum', 90m\): the window 90m is not a "
     r"multiple of the view's aggregation_tile 1h; the tile must divide every window", "divides 90m"),
    (lambda: view(Aggregation("amount", "sum", timedelta(minutes=30)), Aggregation("amount", "sum", D),
                  aggregation_tile=H),
     r"the window 30m is not a multiple of the view's aggregation_tile 1h", "omit aggregation_tile"),
    (lambda: view(Aggregation("amount", "sum", timedelta(minutes=7))),
     r"the window 7m is not a multiple of its default tile 5m", "aggregation_tile"),
    (lambda: Aggregation("amount", "average", H),
     r"Aggregation\('amount', 'average'\): unknown function 'average'; did you mean", "use one of count"),
    (lambda: Aggregation("amount", "stdev_pop", H), r"did you mean 'stddev_pop'", "count"),
    (lambda: view(Aggregation("amount", "sum", H), Aggregation("amount", "sum", H)),
     r"feature view 'tx': aggregations .* and .* are both named 'amount_sum_1h'", "another name="),
    (lambda: view(Aggregation("amount", "sum", H, name="n")), r"is named 'n', like a column of the schema",
     "another name="),
    (lambda: view(Aggregation("amount", "sum", H), ttl=D), r"an aggregated view takes no ttl", "remove ttl"),
    (lambda: FeatureView("tx", [user], SCHEMA, SRC, aggregation_tile=H),
     r"aggregation_tile is set but the view has no aggregations", "remove aggregation_tile"),
    (lambda: Aggregation("amount", "sum", timedelta(0)), r"time_window 0:00:00 must be a positive", "e.g."),
    (lambda: Aggregation("amount", "sum", timedelta(seconds=1.5)), r"whole number of seconds", "e.g."),
    (lambda: view(Aggregation("amount", "sum", H), aggregation_tile="1h"),
     r"aggregation_tile must be a timedelta, got '1h'", "timedelta"),
    (lambda: view("amount_sum"), r"aggregations must be Aggregation\(...\), got 'amount_sum'", "Aggregation("),
    (lambda: FeatureView("tx", [user], [Field("user_id", Int64), Field("n", Int64, default=1.5)], SRC,
                         aggregations=[Aggregation("n", "min", H)]),
     r"field 'n': default 1.5 is not a valid Int64", "default of type"),
    (lambda: FileSource("data/tx", "ts", event_id_column="ts"), r"event_id_column 'ts' is a timestamp column",
     "event_id"),
])
def test_bad_input_names_the_culprit(build: object, message: str, hint: str) -> None:
    with pytest.raises(DefinitionError, match=message) as e:
        build()  # type: ignore[operator]
    assert hint in (e.value.hint or ""), e.value.hint


@pytest.mark.parametrize("window", [timedelta.max, 10 ** 20, float("nan")])
def test_a_window_beyond_what_times_can_compare_is_refused(window: object) -> None:
    with pytest.raises(DefinitionError, match="time_window"):
        Aggregation("amount", "sum", window)  # type: ignore[arg-type]
