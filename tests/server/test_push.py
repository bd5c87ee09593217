"""``POST /push`` through the real server: read-after-write, timestamps as ISO strings or epoch
seconds, a bad batch rejected whole with its rows named, and FeatureClient.push."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from skewless import Entity, FeatureClient, FeatureStore, FeatureView, Field, FileSource, PushSource
from skewless.errors import InvalidRequestError, UnknownObjectError
from skewless.types import Float64, Int64, UnixTimestamp

from .conftest import make_repo

GET = "/get-online-features"
REFS = ["user_events:amount", "user_events:n", "user_events:last_seen"]


def push_definitions() -> list:
    user = Entity("user", join_keys=["user_id"])
    src = PushSource("events_push", batch_source=FileSource("data/events", timestamp_field="ts"))
    view = FeatureView(name="user_events", entities=[user], source=src, ttl=None,
                       schema=[Field("amount", Float64), Field("n", Int64), Field("last_seen", UnixTimestamp)])
    return [user, view]


def events_repo(path: Path, project: str) -> Path:
    """A repo whose push source's batch folder holds one row of user u1."""
    repo = make_repo(path, project=project)
    (repo / "data/events").mkdir(parents=True)
    at = pa.array([datetime(2024, 1, 1, tzinfo=timezone.utc)], type=pa.timestamp("us", tz="UTC"))
    pq.write_table(pa.table({"user_id": pa.array(["u1"]), "ts": at, "amount": pa.array([1.0]),
                             "n": pa.array([1], type=pa.int64()), "last_seen": at}),
                   repo / "data/events/part-0.parquet")
    return repo


@pytest.fixture(scope="module")
def push_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    repo = events_repo(tmp_path_factory.mktemp("push") / "repo", "srvpush")
    fs = FeatureStore(repo)
    fs.apply(push_definitions())
    fs.materialize_incremental()
    return repo


@pytest.fixture(scope="module")
def push_server(push_repo):
    from .conftest import start_server
    server = start_server(push_repo)
    yield server
    server.stop()


def read(server, user: str) -> dict:
    r = server.post(GET, {"features": REFS, "entities": {"user_id": [user]}})
    assert r.status_code == 200, r.text
    body = r.json()
    return {name: res["values"][0] for name, res in zip(body["metadata"]["feature_names"], body["results"])}


def test_push_then_read(push_repo, push_server):
    r = push_server.post("/push", {"push_source_name": "events_push", "to": "online_and_offline", "df": {
        "user_id": ["u5", "u6"], "ts": ["2024-03-01T00:00:00Z", 1709337600],  # ISO and epoch seconds
        "amount": [1.5, 2.5], "n": [2, 3], "last_seen": ["2024-02-29 23:00:00", None]}})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["rows"] == 2 and body["offline_rows"] == 2 and body["online_records"] == {"user_events": 2}
    assert read(push_server, "u5") == {"user_id": "u5", "amount": 1.5, "n": 2,
                                       "last_seen": "2024-02-29T23:00:00Z"}
    assert read(push_server, "u6")["amount"] == 2.5
    # offline first: the rows are in the offline history too, as the SDK reads it
    fs = FeatureStore(push_repo)
    hist = fs.get_historical_features(
        pd.DataFrame({"user_id": ["u5", "u6"], "event_timestamp": [pd.Timestamp("2024-03-05", tz="UTC")] * 2}),
        ["user_events:amount"]).to_df()
    assert hist["amount"].tolist() == [1.5, 2.5]
    # and the SDK serves the same value the server does
    assert fs.get_online_features(["user_events:amount"], [{"user_id": "u5"}]).to_dict()["amount"] == [1.5]


def test_push_offline_only_is_not_served(push_server):
    r = push_server.post("/push", {"push_source_name": "events_push", "to": "offline",
                                   "df": {"user_id": ["u7"], "ts": ["2024-03-01T00:00:00Z"],
                                          "amount": [7.0], "n": [7], "last_seen": [None]}})
    assert r.status_code == 200, r.text
    assert read(push_server, "u7")["amount"] is None


def test_bad_batch_is_rejected_whole(push_server):
    r = push_server.post("/push", {"push_source_name": "events_push", "df": {
        "user_id": ["u8", "u9", None], "ts": ["2024-03-01T00:00:00Z", "yesterday", "2024-03-01T00:00:00Z"],
        "amount": [1.0, "x", 3.0], "n": [1, 2, 3], "last_seen": [None] * 3}})
    assert r.status_code == 400, r.text
    err = r.json()
    assert err["code"] == "invalid_request"
    assert "nothing was written" in err["message"]
    assert "'ts'" in err["message"] and "row 1" in err["message"]
    assert "'amount'" in err["message"] and "'user_id'" in err["message"]
    assert read(push_server, "u8")["amount"] is None


@pytest.mark.parametrize("body, status, code, match", [
    ({"push_source_name": "nope", "df": {"user_id": ["u1"]}}, 404, "not_found", "push source 'nope'"),
    ({"push_source_name": "events_push", "df": {}}, 400, "invalid_request", "'df'"),
    ({"push_source_name": "events_push", "df": {"user_id": ["u1"], "n": []}}, 400, "invalid_request",
     "has 0 values"),
    ({"push_source_name": "events_push", "df": {"user_id": ["u1"]}, "to": "both"}, 400, "invalid_request",
     "'to' must be one of"),
    ({"df": {"user_id": ["u1"]}}, 400, "invalid_request", "push_source_name"),
    ({"push_source_name": "events_push", "df": {"user_id": "u1"}}, 400, "invalid_request", "array"),
    ({"push_source_name": "events_push", "df": {"user_id": ["u1"]}, "mode": 1}, 400, "invalid_request",
     "unknown field 'mode'"),
])
def test_push_errors(push_server, body, status, code, match):
    r = push_server.post("/push", body)
    assert r.status_code == status, r.text
    assert r.json()["code"] == code and match in r.json()["message"]


def test_feature_client_push(push_server):
    with FeatureClient(push_server.url) as client:
        df = pd.DataFrame({"user_id": ["u10"], "ts": [pd.Timestamp("2024-03-02 12:00", tz="UTC")],
                           "amount": [10.0], "n": [10], "last_seen": [pd.NaT]})
        out = client.push("events_push", df, to="online_and_offline")
        assert out["rows"] == 1
        got = client.get_online_features(REFS, [{"user_id": "u10"}])
        assert got.to_dict()["amount"] == [10.0]
        assert got.event_timestamps["amount"] == [datetime(2024, 3, 2, 12, tzinfo=timezone.utc)]
        out = client.push("events_push", {"user_id": ["u11"], "ts": [datetime(2024, 3, 2)],
                                          "amount": [11.0], "n": [11],
                                          "last_seen": [datetime(2024, 3, 1, tzinfo=timezone.utc)]})
        got = client.get_online_features(REFS, [{"user_id": "u11"}])
        assert got.to_dict()["last_seen"] == [datetime(2024, 3, 1, tzinfo=timezone.utc)]
        with pytest.raises(UnknownObjectError, match="push source 'nope'"):
            client.push("nope", df)
        with pytest.raises(InvalidRequestError, match="nothing was written"):
            client.push("events_push", {"user_id": ["u12"], "ts": ["2024-03-01"], "amount": ["x"], "n": [1],
                                            "last_seen": [None]})


def _rows_of(repo: Path, user: str) -> int:
    return sum(pq.read_table(p).to_pandas()["user_id"].eq(user).sum() for p in (repo / "data/events").glob("*.parquet"))


def test_a_retried_http_push_lands_once(push_repo, push_server):
    """The same body posted again (a client retrying after a timeout) is the same batch: its
    rows land offline once, the answer says ``duplicate`` (docs/server.md)."""
    body = {"push_source_name": "events_push", "df": {
        "user_id": ["u20", "u21"], "ts": ["2024-03-03T00:00:00Z"] * 2, "amount": [20.0, 21.0],
        "n": [20, 21], "last_seen": [None, None]}}
    first = push_server.post("/push", body)
    again = push_server.post("/push", body)
    assert first.status_code == again.status_code == 200, again.text
    assert first.json()["duplicate"] is False and first.json()["offline_rows"] == 2
    assert again.json()["duplicate"] is True and again.json()["offline_rows"] == 0
    assert again.json()["batch_id"] == first.json()["batch_id"]
    assert again.json()["online_records"] == {"user_events": 2}
    assert _rows_of(push_repo, "u20") == 1 and read(push_server, "u20")["amount"] == 20.0


def test_http_batch_id(push_repo, push_server):
    body = {"push_source_name": "events_push", "batch_id": "kafka-p0-000042", "df": {
        "user_id": ["u22"], "ts": ["2024-03-03T00:00:00Z"], "amount": [22.0], "n": [22], "last_seen": [None]}}
    assert push_server.post("/push", body).json()["batch_id"] == "kafka-p0-000042"
    assert push_server.post("/push", body).json()["duplicate"] is True
    assert (push_repo / "data/events/push-kafka-p0-000042.parquet").exists() and _rows_of(push_repo, "u22") == 1
    body["df"]["amount"] = [23.0]
    r = push_server.post("/push", body)
    assert r.status_code == 400 and "already pushed with other rows" in r.json()["message"]
    for bad in ("../x", 7):
        r = push_server.post("/push", {**body, "batch_id": bad})
        assert r.status_code == 400 and "batch_id" in r.json()["message"], r.text
    with FeatureClient(push_server.url) as client:
        df = {"user_id": ["u23"], "ts": ["2024-03-03T00:00:00Z"], "amount": [1.0], "n": [1], "last_seen": [None]}
        assert client.push("events_push", df, batch_id="c-1")["duplicate"] is False
        assert client.push("events_push", df, batch_id="c-1")["duplicate"] is True
    assert _rows_of(push_repo, "u23") == 1


def test_a_push_source_applied_elsewhere_takes_epoch_seconds_at_once(tmp_path: Path) -> None:
    """The push checks the registry as it is now; so does the reading of its timestamp
    columns: a source another process applied within registry_cache_ttl_seconds of the
    server's last registry read takes epoch seconds at once, as it did before the serving
    path had one registry cache."""
    from starlette.testclient import TestClient

    from skewless.server import create_app

    repo = events_repo(tmp_path / "repo", "srvpush2")
    store = FeatureStore(repo)
    with TestClient(create_app(store, tune_gc=False)) as client:
        assert client.get("/ready").status_code in (200, 503)   # the serving snapshot is read
        FeatureStore(repo).apply(push_definitions())            # another process applies
        r = client.post("/push", json={"push_source_name": "events_push", "df": {
            "user_id": ["u7"], "ts": [1709337600], "amount": [7.0], "n": [7],
            "last_seen": [1709337600]}})
        assert r.status_code == 200, r.text
        assert r.json()["online_records"] == {"user_events": 1}
