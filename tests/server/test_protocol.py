"""The wire format without a server: event times written as orjson writes datetimes, the
columnar entities, and FeatureClient decoding what the server encodes (types restored)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import orjson
import pytest

from skewless.client import entity_columns, error_from_body, response_from_json
from skewless.errors import (FeatureUnavailableError, InvalidRequestError, PlanError, SkewlessError,
                             UnknownObjectError)
from skewless.online.codec import micros
from skewless.server.protocol import (encode_online_response, entity_rows, iso_micros, oldest_by_view,
                                      parse_online_request, served_by_view)
from skewless.services.online import ColumnGroup, OnlineResponse

UTC = timezone.utc


@pytest.mark.parametrize("ts", [
    datetime(2024, 5, 1, 10, 0, tzinfo=UTC), datetime(2024, 5, 1, 10, 0, 0, 250_000, tzinfo=UTC),
    datetime(1969, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC), datetime(1970, 1, 1, tzinfo=UTC),
    datetime(9999, 12, 31, 23, 59, 59, 1, tzinfo=UTC),
])
def test_event_times_are_written_like_orjson_writes_datetimes(ts):
    assert orjson.dumps(iso_micros(micros(ts))) == orjson.dumps(ts, option=orjson.OPT_UTC_Z)


def test_column_groups_encode_per_column_and_count_per_view():
    """A view whose columns share statuses and times (one group) and a view split by a field
    added later (a group per column): the JSON has one result per column either way, and the
    metrics count values and the oldest age per view."""
    t1, t2 = micros(datetime(2024, 1, 1, tzinfo=UTC)), micros(datetime(2024, 1, 2, tzinfo=UTC))
    groups = [ColumnGroup("a", ("x", "y"), ["PRESENT", "NOT_FOUND"], [t2, None]),
              ColumnGroup("b", ("old",), ["PRESENT", "PRESENT"], [t1, t2]),
              ColumnGroup("b", ("new",), ["NOT_FOUND", "PRESENT"], [None, t2])]
    values = {"x": [1.0, None], "y": [2, None], "old": ["s", "t"], "new": [None, 5]}
    body = orjson.loads(encode_online_response({"k": [1, 2]}, values, groups, None))
    assert body["metadata"] == {"feature_names": ["k", "x", "y", "old", "new"]}
    day1, day2 = "2024-01-01T00:00:00Z", "2024-01-02T00:00:00Z"
    assert body["results"][1:] == [
        {"values": [1.0, None], "statuses": ["PRESENT", "NOT_FOUND"], "event_timestamps": [day2, None]},
        {"values": [2, None], "statuses": ["PRESENT", "NOT_FOUND"], "event_timestamps": [day2, None]},
        {"values": ["s", "t"], "statuses": ["PRESENT", "PRESENT"], "event_timestamps": [day1, day2]},
        {"values": [None, 5], "statuses": ["NOT_FOUND", "PRESENT"], "event_timestamps": [None, day2]}]
    assert sorted(served_by_view(groups)) == [("a", "NOT_FOUND", 2), ("a", "PRESENT", 2),
                                              ("b", "NOT_FOUND", 1), ("b", "PRESENT", 3)]
    now = t2 + 10_000_000
    assert sorted(oldest_by_view(groups, now)) == [("a", 10.0), ("b", 86_410.0)]


def test_entities_columns_to_rows_and_back():
    cols = {"user_id": ["u1", "u2"], "merchant_id": ["m1", "m2"]}
    rows = entity_rows(cols)
    assert rows == [{"user_id": "u1", "merchant_id": "m1"}, {"user_id": "u2", "merchant_id": "m2"}]
    assert entity_columns(rows) == cols
    with pytest.raises(InvalidRequestError, match="entity row 1 has keys"):
        entity_columns([{"user_id": "u1"}, {"merchant_id": "m1"}])


def test_request_target():
    req = parse_online_request(b'{"feature_service": "svc", "entities": {"k": [1]}}')
    assert req.target == "svc" and req.entity_rows == [{"k": 1}] and req.full_feature_names is False


def test_client_restores_what_the_server_encodes():
    t1 = datetime(2024, 5, 1, 10, 0, 0, 5, tzinfo=UTC)
    sdk = OnlineResponse(
        keys={"user_id": ["u1", "u2"]},
        values={"amount": [1.5, None], "blob": [b"\x00\xff", None], "seen": [t1, None],
                "seens": [[t1, None], None], "tags": [["a"], None]},
        groups=[ColumnGroup("v", ("amount", "blob", "seen", "seens", "tags"), ["PRESENT", "NOT_FOUND"],
                            [micros(t1), None])])
    body = encode_online_response(sdk.keys, sdk.values, sdk.groups,
                                  [None, "Float64", "Bytes", "UnixTimestamp", "Array(UnixTimestamp)",
                                   "Array(String)"])
    got = response_from_json(orjson.loads(body), ["user_id"])
    assert got.to_dict() == sdk.to_dict()
    assert got.statuses == sdk.statuses
    assert got.event_timestamps == sdk.event_timestamps


@pytest.mark.parametrize("code, cls", [("not_found", UnknownObjectError), ("invalid_request", InvalidRequestError),
                                       ("feature_unavailable", FeatureUnavailableError),
                                       ("invalid_plan", PlanError)])
def test_errors_come_back_as_their_class(code, cls):
    err = error_from_body(400, {"code": code, "message": "m", "hint": "h"})
    assert type(err) is cls and err.message == "m" and err.hint == "h" and err.code == code
    odd = error_from_body(418, {"code": "teapot", "message": "m", "hint": None})
    assert type(odd) is SkewlessError and odd.code == "teapot" and odd.http_status == 418


def test_client_frames_take_the_declared_dtypes() -> None:
    """FeatureClient's ``to_df`` has the SDK's (and training's) dtypes, read from the response's
    feature types: an Int64 column with a missing value stays nullable Int64 (docs/types.md);
    the JSON itself is unchanged."""
    groups = [ColumnGroup("v", ("n", "x", "flag"), ["PRESENT", "NOT_FOUND"], [0, None])]
    values = {"n": [3, None], "x": [0.5, None], "flag": [True, None]}
    body = encode_online_response({"user_id": ["u1", "u2"]}, values, groups,
                                  [None, "Int64", "Float32", "Bool"])
    assert orjson.loads(body)["results"][1]["values"] == [3, None]
    df = response_from_json(orjson.loads(body), ["user_id"]).to_df()
    assert {c: str(df[c].dtype) for c in ("n", "x", "flag")} == {
        "n": "Int64", "x": "float32", "flag": "boolean"}
    assert df["n"].tolist()[0] == 3 and df["n"].isna().tolist() == [False, True]


def test_nan_and_infinities_travel_as_protobuf_json_strings():
    """JSON has no NaN nor infinity (orjson writes null, a missing value): the server writes
    protobuf's strings, in float columns and float arrays, and FeatureClient turns them back."""
    import math

    nan, inf = math.nan, math.inf
    groups = [ColumnGroup("v", ("x", "xs", "f32", "s"), ["PRESENT", "PRESENT", "NOT_FOUND"], [0, 0, None])]
    values = {"x": [nan, -inf, None], "xs": [[1.0, nan, inf], None, None], "f32": [inf, 0.5, None],
              "s": ["NaN", "x", None]}
    for types in ([None, "Float64", "Array(Float64)", "Float32", "String"], None):
        body = orjson.loads(encode_online_response({"user_id": ["u1", "u2", "u3"]}, values, groups, types))
        assert [r["values"] for r in body["results"][1:]] == [
            ["NaN", "-Infinity", None], [[1.0, "NaN", "Infinity"], None, None], ["Infinity", 0.5, None],
            ["NaN", "x", None]]
    body = encode_online_response({"user_id": ["u1", "u2", "u3"]}, values, groups,
                                  [None, "Float64", "Array(Float64)", "Float32", "String"])
    got = response_from_json(orjson.loads(body), ["user_id"]).to_dict()
    assert math.isnan(got["x"][0]) and got["x"][1:] == [-inf, None]
    assert got["xs"][0][0] == 1.0 and math.isnan(got["xs"][0][1]) and got["xs"][0][2] == inf
    assert got["f32"] == [inf, 0.5, None] and got["s"] == ["NaN", "x", None]
