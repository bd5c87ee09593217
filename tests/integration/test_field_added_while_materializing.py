"""A field added by ``apply`` is filled by the next incremental run (docs/online.md#watermarks-mean-coverage):
between two runs, and while a run of the old definition is still writing (its records, which
lack the field, may replace those of a run of the new definition). SQLite and the shared Redis
under a project of its own; the racing runs are real threads with their own stores, paused
at chosen batches."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from skewless import FeatureStore, Field
from skewless.testing.clock import Clock
from skewless.testing.redis_server import SHARED_REDIS, purge_project, require_shared_redis
from skewless.types import Float64, Int64

from .conftest import spend_view, user
from .test_push import NOW

USERS = ["u1", "u2", "u3"]
AMOUNT = [140.0, 89.0, 2100.0]
N_TXN = [3, 1, 7]
WAIT = 60.0   # generous: a loaded 2-core machine


def old_view() -> Any:
    return spend_view(schema=[Field("amount", Float64)])


def new_view() -> Any:
    return spend_view(schema=[Field("amount", Float64), Field("n_txn", Int64)])


@pytest.fixture(params=["sqlite", "redis"])
def make(request: pytest.FixtureRequest, repo: Path) -> Iterator[Any]:
    """A factory of stores over one repo and one online store (each call: a new FeatureStore,
    as another process would have)."""
    if request.param == "redis":
        require_shared_redis(SHARED_REDIS)
        project = f"addfield_{uuid.uuid4().hex[:10]}"
        online: dict[str, Any] = {"type": "redis", "connection_string": SHARED_REDIS}
    else:
        project, online = "fraud", {"type": "sqlite", "path": "data/online.db"}
    made: list[FeatureStore] = []

    def new() -> FeatureStore:
        fs = FeatureStore(repo, config={"project": project, "registry": "data/registry.db",
                                        "online_store": online}, clock=Clock(NOW))
        made.append(fs)
        return fs
    yield new
    for fs in made:
        fs.online_store.close()
    if request.param == "redis":
        purge_project(project, SHARED_REDIS)


def served(fs: FeatureStore) -> dict[str, list[Any]]:
    fs._serving = None
    resp = fs.get_online_features(["user_spend:amount", "user_spend:n_txn"],
                                  [{"user_id": u} for u in USERS])
    return resp.to_dict()


def test_field_added_between_runs_is_filled_by_the_next_run(make: Any) -> None:
    fs = make()
    fs.apply([user, old_view()])
    fs.materialize_incremental(NOW)
    fs.apply([user, new_view()])
    assert served(fs)["n_txn"] == [None, None, None]
    fs.materialize_incremental(NOW)
    assert served(fs) == {"user_id": USERS, "amount": AMOUNT, "n_txn": N_TXN}


class Paused:
    """An ``on_rows`` callback that, each time the rows written reach one of ``at``, says so
    (``reached[i]``) and waits to be released (``go[i]``)."""

    def __init__(self, *at: int) -> None:
        self.at, self.rows = at, 0
        self.reached = [threading.Event() for _ in at]
        self.go = [threading.Event() for _ in at]

    def __call__(self, view: str, n: int) -> None:
        before, self.rows = self.rows, self.rows + n
        for i, mark in enumerate(self.at):
            if before < mark <= self.rows:
                self.reached[i].set()
                assert self.go[i].wait(WAIT), "never released"


def run(fs: FeatureStore, on_rows: Paused, errors: list[BaseException],
        incremental: bool = True) -> threading.Thread:
    def target() -> None:
        try:
            if incremental:
                fs.materialize_incremental(NOW, on_rows=on_rows, batch_rows=1)
            else:
                fs.materialize(None, NOW, on_rows=on_rows, batch_rows=1)
        except BaseException as e:  # noqa: BLE001 - reported by the test
            errors.append(e)
    t = threading.Thread(target=target, daemon=True)
    t.start()
    return t


@pytest.mark.parametrize("old_run_ends", ["first", "last"])
def test_field_added_while_a_run_of_the_old_definition_writes(make: Any, old_run_ends: str) -> None:
    """Run A (old definition, a full window) writes one entity and pauses; apply adds a field; run B (new
    definition) writes every entity and pauses before recording its coverage; A writes the
    rest (records without the field, replacing B's) and records its coverage before B does
    (``first``) or after (``last``). Whatever the order, the next incremental run fills the
    field for every entity."""
    setup = make()
    setup.apply([user, old_view()])
    setup.materialize_incremental(NOW)
    errors: list[BaseException] = []
    a_pause, b_pause = Paused(1, len(USERS)), Paused(len(USERS))
    a = run(make(), a_pause, errors, incremental=False)   # reads the old definition as it starts
    assert a_pause.reached[0].wait(WAIT)
    make().apply([user, new_view()])
    b = run(make(), b_pause, errors)
    assert b_pause.reached[0].wait(WAIT)     # B wrote every entity, with the new field
    a_pause.go[0].set()
    assert a_pause.reached[1].wait(WAIT)     # A wrote the rest, without it
    if old_run_ends == "first":
        a_pause.go[1].set()
        a.join(WAIT)
        b_pause.go[0].set()
        b.join(WAIT)
    else:
        b_pause.go[0].set()
        b.join(WAIT)
        a_pause.go[1].set()
        a.join(WAIT)
    assert not a.is_alive() and not b.is_alive() and not errors, errors
    fs = make()
    fs.materialize_incremental(NOW)
    assert served(fs) == {"user_id": USERS, "amount": AMOUNT, "n_txn": N_TXN}


def test_ready_says_a_field_was_added_not_never_materialized(repo: Path) -> None:
    """After ``apply`` adds a field, /ready lists the view in ``not_materialized`` (documented),
    but its message must not claim the view was "never materialized": it was, its other
    fields are served, and only the new field waits for the next incremental run."""
    from datetime import datetime, timezone

    import pandas as pd

    from skewless.server.app import readiness

    spend = pd.read_parquet(repo / "data/spend.parquet")
    spend.assign(extra=spend["amount"] * 2).to_parquet(repo / "data/spend.parquet")
    fs = FeatureStore(repo, clock=lambda: datetime(2024, 2, 10, tzinfo=timezone.utc))
    fs.apply([user, spend_view()])
    fs.materialize_incremental()
    assert readiness(fs)[0]
    fs.apply([user, spend_view(schema=list(spend_view().schema) + [Field("extra", Float64)])])
    ok, body = readiness(fs)
    assert not ok and body["not_materialized"] == ["user_spend"], body
    assert "never materialized" not in body["message"], body
    assert "definition" in body["message"] and "user_spend" in body["message"], body
    fs.materialize_incremental()
    assert readiness(fs)[0]
