"""Lifecycle hooks through the feature server (docs/hooks.md): the app serves a FeatureStore
whose hooks see every request; a before-hook's refusal is answered with that error's HTTP
status and JSON body, for that request only, on the batched read path, the threaded one and
``POST /push``. In process (the ASGI app over a real SQLite repo), since hooks are Python
objects registered on the store."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from starlette.testclient import TestClient

from skewless import FeatureStore, SkewlessError
from skewless import hooks as H
from skewless.hooks import BaseHook, Event, Outcome
from skewless.server import create_app
from skewless.server import metrics as M
from skewless.server.app import LARGE_REQUEST_ENTITIES

from .conftest import SERVICE
from .test_push import push_definitions

GET = "/get-online-features"


class Refused(SkewlessError):
    http_status = 403
    code = "refused_by_hook"


class Gate(BaseHook):
    """Refuses the events for which ``refuse(event)`` holds; records every event."""

    def __init__(self) -> None:
        self.refuse: Any = lambda event: False
        self.seen: list[tuple[str, str, Any]] = []

    def before(self, event: Event) -> None:
        self.seen.append(("before", event.kind, event))
        if self.refuse(event):
            raise Refused(f"{event.kind} refused", hint="the gate is closed")

    def after(self, event: Event, outcome: Outcome) -> None:
        self.seen.append(("after", event.kind, outcome))


@pytest.fixture(scope="module")
def store(sqlite_repo: Path) -> FeatureStore:
    (sqlite_repo / "data/events").mkdir()
    when = pa.array([datetime(2024, 1, 1, tzinfo=timezone.utc)], type=pa.timestamp("us", tz="UTC"))
    pq.write_table(pa.table({"user_id": pa.array(["u1"]), "ts": when, "amount": pa.array([1.0]),
                             "n": pa.array([1], type=pa.int64()), "last_seen": when}),
                   sqlite_repo / "data/events/part-0.parquet")
    fs = FeatureStore(sqlite_repo)
    fs.apply(push_definitions(), partial=True)
    return fs


@pytest.fixture
def gated(store: FeatureStore) -> Iterator[tuple[TestClient, Gate]]:
    gate = Gate()
    store.add_hook(gate)
    try:
        with TestClient(create_app(store, tune_gc=False)) as client:
            yield client, gate
    finally:
        store.remove_hook(gate)


def get(client: TestClient, users: list[str], features: Any = None) -> Any:
    body: dict[str, Any] = {"entities": {"user_id": users}}
    if features is None:
        body["features"] = ["user_spend:amount"]
    elif isinstance(features, str):
        body["feature_service"] = features
        body["entities"]["merchant_id"] = ["m1"] * len(users)
    else:
        body["features"] = features
    return client.post(GET, json=body)


def test_hooks_see_every_request_and_a_refusal_is_its_http_status(
        gated: tuple[TestClient, Gate]) -> None:
    client, gate = gated
    ok = get(client, ["u1"])
    assert ok.status_code == 200 and ok.json()["results"][1]["values"] == [140.0]
    assert [(p, k) for p, k, _ in gate.seen] == [("before", H.ONLINE_READ), ("after", H.ONLINE_READ)]

    gate.refuse = lambda e: e.kind == H.ONLINE_READ and e.request["features"] == SERVICE
    refused = get(client, ["u1"], SERVICE)
    assert refused.status_code == 403
    assert refused.json() == {"code": "refused_by_hook", "message": "online_read refused",
                              "hint": "the gate is closed"}
    assert get(client, ["u1"]).status_code == 200          # other requests are answered
    # a large request is read in a thread: refused the same way
    many = [f"u{i}" for i in range(LARGE_REQUEST_ENTITIES + 1)]
    assert get(client, many, SERVICE).status_code == 403
    assert get(client, many).status_code == 200


def test_a_refused_push_writes_nothing(gated: tuple[TestClient, Gate], sqlite_repo: Path) -> None:
    client, gate = gated
    gate.refuse = lambda e: e.kind == H.PUSH
    files = sorted((sqlite_repo / "data/events").iterdir())
    r = client.post("/push", json={"push_source_name": "events_push",
                                   "df": {"user_id": ["u7"], "ts": ["2024-01-02T00:00:00Z"],
                                          "amount": [1.0], "n": [1], "last_seen": [None]}})
    assert r.status_code == 403 and r.json()["code"] == "refused_by_hook"
    assert sorted((sqlite_repo / "data/events").iterdir()) == files
    (kind, outcome), = [(k, o) for p, k, o in gate.seen if p == "after"]
    assert kind == H.PUSH and isinstance(outcome.error, Refused)


def test_the_metrics_hook_is_registered_once_per_store(store: FeatureStore) -> None:
    for _ in range(3):
        create_app(store, tune_gc=False)
    assert sum(isinstance(h, M.MetricsHook) for h in store.hooks) == 1


def test_feature_metrics_come_from_the_hook(store: FeatureStore) -> None:
    """What the server counts per view goes through the metrics hook: a read by the SDK on the
    served store is counted too (the HTTP counters are not: no request was answered)."""
    app = create_app(store, tune_gc=False)
    tally = app.server.tally

    def served(view: str) -> float:
        tally.flush()
        return sum(s.value for fam in M.SERVED.collect() for s in fam.samples
                   if s.labels.get("view") == view and s.labels.get("status") == "PRESENT")
    before = served("user_spend")
    store.get_online_features(["user_spend:amount", "user_spend:n_txn"], [{"user_id": "u1"}, {"user_id": "u2"}])
    assert served("user_spend") - before == 4
