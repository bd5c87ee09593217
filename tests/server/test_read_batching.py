"""The feature server's read coalescing, deterministically: the requests that reach the read in
one event-loop turn are read together, at most MAX_READ_BATCH (128) per store call, each answered
exactly as alone. In process, on one event loop, over the real SQLite store of the server
tests (the store is called for real; the test only records the sizes of the calls)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson
import pytest

from skewless import FeatureStore
from skewless.errors import SkewlessError
from skewless.server import metrics as M
from skewless.server.app import MAX_READ_BATCH, FeatureServer
from skewless.server.protocol import parse_online_request

from .conftest import SERVICE

SPEND = ["user_spend:amount", "user_spend:n_txn"]
USERS = ["u1", "u2", "u3", "u9"]


def body(i: int) -> dict[str, Any]:
    u = USERS[i % 4]
    if i % 16 == 5:
        return {"features": ["user_spend:nope"], "entities": {"user_id": [u]}}
    if i % 2:
        return {"feature_service": SERVICE, "entities": {"user_id": [u], "merchant_id": ["m1"]}}
    return {"features": SPEND, "entities": {"user_id": [u, "u1"]}}


class Recording:
    """The store, with the size of each ``get_online_features_many`` call written down."""

    def __init__(self, store: FeatureStore) -> None:
        self.store = store
        self.calls: list[int] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    def get_online_features_many(self, requests: Any) -> Any:
        self.calls.append(len(requests))
        return self.store.get_online_features_many(requests)


def queue(store: FeatureStore, n: int, turns: int = 1) -> tuple[list[int], list[Any]]:
    """``n`` requests reaching the read in ``turns`` event-loop turns; returns the sizes of the
    store calls and each request's answer (or error)."""
    recording = Recording(store)
    server = FeatureServer(recording)  # type: ignore[arg-type]
    requests = [parse_online_request(orjson.dumps(body(i))) for i in range(n)]

    async def run() -> list[Any]:
        futures = []
        per_turn = -(-n // turns)
        for start in range(0, n, per_turn):
            futures += [server._read_together(r) for r in requests[start:start + per_turn]]
            await asyncio.sleep(0)  # the end of a turn: what is pending is read
        return list(await asyncio.gather(*futures, return_exceptions=True))
    answers = asyncio.run(run())
    return recording.calls, answers


def alone(store: FeatureStore, i: int) -> Any:
    r = parse_online_request(orjson.dumps(body(i)))
    try:
        return store.get_online_features(r.target, r.entity_rows, r.full_feature_names)
    except SkewlessError as e:
        return e


@pytest.mark.parametrize(("n", "sizes"), [
    (1, [1]), (2, [2]), (127, [127]), (128, [128]), (129, [128, 1]), (200, [128, 72]),
    (300, [128, 128, 44]), (512, [128, 128, 128, 128]),
])
def test_one_turn_is_read_together_in_batches_of_at_most_128(sqlite_repo: Path, n: int,
                                                               sizes: list[int]) -> None:
    assert MAX_READ_BATCH == 128
    store = FeatureStore(sqlite_repo)
    calls, answers = queue(store, n)
    assert calls == sizes
    for i, got in enumerate(answers):
        want = alone(store, i)
        if isinstance(want, SkewlessError):
            assert type(got) is type(want) and got.message == want.message, (i, got)
        else:
            assert got.to_dict() == want.to_dict() and got.statuses == want.statuses, i
            assert got.event_timestamps == want.event_timestamps, i


def test_requests_of_different_turns_are_not_held_back(sqlite_repo: Path) -> None:
    """A request is read in the turn it arrives: 3 turns of 10 give 3 reads of 10, never one
    read that waited for later requests."""
    calls, answers = queue(FeatureStore(sqlite_repo), 30, turns=3)
    assert calls == [10, 10, 10]
    assert len(answers) == 30


def test_each_read_is_counted_with_its_size(sqlite_repo: Path) -> None:
    """``skewless_online_read_batch_requests`` observes every store read with its number of
    requests (what tests/server/test_server_redis.py checks end to end)."""
    def figures() -> tuple[float, float]:
        samples = {s.name: s.value for family in M.READ_BATCH.collect() for s in family.samples
                   if s.labels.get("le") in (None, "128.0")}
        return samples["skewless_online_read_batch_requests_count"], samples["skewless_online_read_batch_requests_sum"]
    store = FeatureStore(sqlite_repo)
    recording = Recording(store)
    server = FeatureServer(recording)  # type: ignore[arg-type]
    before = figures()

    async def run() -> None:
        reqs = [parse_online_request(orjson.dumps(body(i))) for i in range(300)]
        await asyncio.gather(*[server._read_together(r) for r in reqs], return_exceptions=True)
    asyncio.run(run())
    server.tally.flush()
    count, total = figures()
    assert (count - before[0], total - before[1]) == (3, 300)
