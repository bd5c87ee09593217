"""On-demand feature views through the feature server and FeatureClient: the server process
rebuilds each stored function from the registry (docs/on-demand.md, "How the function is
stored") and answers what the SDK answers; request values arrive in Feast's ``entities``; a
missing request field is a 400 naming it, a failing function a 500 naming the view."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from skewless import FeatureClient, FeatureService, FeatureStore, Field, OnDemandFeatureView
from skewless.errors import InvalidRequestError, TransformError
from skewless.types import Float64

from ..integration.test_on_demand import _raises, spend_pd, spend_py
from .conftest import Server, assert_same, definitions, make_repo, start_server

GET = "/get-online-features"
REFS = ["user_spend:amount", "spend_py:ratio", "spend_py:total", "spend_py:big", "spend_pd:country_amount",
        "spend_pd:half"]
ROWS = [{"user_id": "u1", "merchant_id": "m1", "txn_amount": 10.0, "bonus": 1},
        {"user_id": "u2", "merchant_id": "m1", "txn_amount": None, "bonus": 2},
        {"user_id": "u9", "merchant_id": "m2", "txn_amount": 3.0, "bonus": 3}]


def _broken() -> OnDemandFeatureView:
    from ..integration.conftest import spend_view
    return OnDemandFeatureView("broken", [spend_view()], [Field("out", Float64)], _raises, mode="python")


@pytest.fixture(scope="module")
def od_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    repo = make_repo(tmp_path_factory.mktemp("od") / "repo")
    fs = FeatureStore(repo)
    fs.apply([*definitions(), spend_py, spend_pd, _broken(),
              FeatureService("od_service", [spend_py[["ratio"]], definitions()[2][["amount"]]])])
    fs.materialize_incremental()
    return repo


@pytest.fixture(scope="module")
def od_server(od_repo: Path) -> Iterator[Server]:
    server = start_server(od_repo)
    yield server
    server.stop()


def _columns(rows: list[dict[str, Any]]) -> dict[str, list[Any]]:
    return {k: [r[k] for r in rows] for k in rows[0]}


@pytest.mark.parametrize("body, sdk", [
    ({"features": REFS, "entities": _columns(ROWS)}, (REFS, ROWS, False)),
    ({"features": REFS, "entities": _columns(ROWS), "full_feature_names": True}, (REFS, ROWS, True)),
    ({"feature_service": "od_service", "entities": _columns(ROWS)}, ("od_service", ROWS, False)),
])
def test_the_server_answers_what_the_sdk_answers(od_repo: Path, od_server: Server, body: dict[str, Any],
                                                 sdk: tuple[Any, ...]) -> None:
    resp = od_server.post(GET, body)
    assert resp.status_code == 200, resp.text
    expected = FeatureStore(od_repo).get_online_features(sdk[0], sdk[1], full_feature_names=sdk[2])
    assert_same(resp.json(), expected)
    assert any(v is not None for v in expected.values[next(n for n in expected.values if "ratio" in n)])


def test_feature_client_equals_the_sdk(od_repo: Path, od_server: Server) -> None:
    with FeatureClient(od_server.url) as client:
        got = client.get_online_features(REFS, ROWS)
    want = FeatureStore(od_repo).get_online_features(REFS, ROWS)
    assert got.to_dict() == want.to_dict()
    assert got.statuses == want.statuses
    assert got.to_df().dtypes.to_dict() == want.to_df().dtypes.to_dict()


def test_a_missing_request_field_is_a_400_naming_it(od_server: Server) -> None:
    entities = {k: v for k, v in _columns(ROWS).items() if k != "bonus"}
    resp = od_server.post(GET, {"features": ["spend_py:total"], "entities": entities})
    assert resp.status_code == 400, resp.text
    body = resp.json()
    assert body["code"] == "invalid_request"
    assert "no request field 'bonus' needed by on-demand feature view 'spend_py'" in body["message"]
    with FeatureClient(od_server.url) as client, pytest.raises(InvalidRequestError, match="'bonus'"):
        client.get_online_features(["spend_py:total"], [{k: v for k, v in r.items() if k != "bonus"} for r in ROWS])


def test_a_failing_function_is_a_500_naming_the_view(od_server: Server) -> None:
    resp = od_server.post(GET, {"features": ["broken:out"], "entities": {"user_id": ["u1"]}})
    assert resp.status_code == 500, resp.text
    body = resp.json()
    assert body["code"] == "transform_failed"
    assert "on-demand feature view 'broken': its function '_raises' raised ZeroDivisionError" in body["message"]
    with FeatureClient(od_server.url) as client, pytest.raises(TransformError, match="'broken'"):
        client.get_online_features(["broken:out"], [{"user_id": "u1"}])
    # the server still answers
    assert od_server.post(GET, {"features": ["user_spend:amount"], "entities": {"user_id": ["u1"]}}).status_code == 200
