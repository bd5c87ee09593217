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
from skewless.server.protocol import (encode_online_response, entity_rows, iso_columns, iso_micros,
                                      parse_online_request)
from skewless.services.online import OnlineResponse

UTC = timezone.utc


@pytest.mark.parametrize("ts", [
    datetime(2024, 5, 1, 10, 0, tzinfo=UTC), datetime(2024, 5, 1, 10, 0, 0, 250_000, tzinfo=UTC),
    datetime(1969, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC), datetime(1970, 1, 1, tzinfo=UTC),
    datetime(9999, 12, 31, 23, 59, 59, 1, tzinfo=UTC),
])
def test_event_times_are_written_like_orjson_writes_datetimes(ts):
    assert orjson.dumps(iso_micros(micros(ts))) == orjson.dumps(ts, option=orjson.OPT_UTC_Z)


def test_shared_timestamp_columns_are_converted_once():
    shared = [micros(datetime(2024, 1, 1, tzinfo=UTC)), None]
    out = iso_columns({"a": shared, "b": shared, "c": [None]})
    assert out["a"] is out["b"] and out["a"] == ["2024-01-01T00:00:00Z", None] and out["c"] == [None]


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
        statuses={k: ["PRESENT", "NOT_FOUND"] for k in ("amount", "blob", "seen", "seens", "tags")},
        event_micros={k: [micros(t1), None] for k in ("amount", "blob", "seen", "seens", "tags")})
    body = encode_online_response(sdk.keys, sdk.values, sdk.statuses, iso_columns(sdk.event_micros),
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
