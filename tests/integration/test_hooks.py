"""Lifecycle hooks on the SDK (docs/hooks.md): before and after events for online reads,
historical retrieval, materialize, push and apply; a before-hook refuses with a SkewlessError
and then nothing runs; unused hooks build no event. Real SQLite stores, no mocks."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from skewless import Entity, FeatureStore, FeatureView, Field, FileSource, PushSource, SkewlessError
from skewless import hooks as H
from skewless.engines import RetrievalJob
from skewless.errors import InvalidRequestError
from skewless.hooks import BaseHook, Event, Outcome
from skewless.store import OnlineResponse, PlanResult, PushReport, RebuildReport, ViewReport
from skewless.types import Float64

from .conftest import spend_view, user, write_data

NOW = datetime(2024, 3, 1, tzinfo=timezone.utc)
SPEND = ["user_spend:amount"]


class Refused(SkewlessError):
    http_status = 403
    code = "refused_by_hook"


def events_view() -> FeatureView:
    src = PushSource("events_push", batch_source=FileSource("data/events", timestamp_field="ts"))
    return FeatureView(name="user_events", entities=[Entity("user", join_keys=["user_id"])],
                       source=src, ttl=None, schema=[Field("amount", Float64)])


def definitions() -> list[Any]:
    return [user, spend_view(), events_view()]


@pytest.fixture
def hook_repo(tmp_path: Path) -> Path:
    (tmp_path / "feature_store.yaml").write_text("project: hooks\nregistry: data/registry.db\n")
    write_data(tmp_path)
    (tmp_path / "data/events").mkdir()
    pq.write_table(pa.table({"user_id": ["u1"], "ts": pa.array([datetime(2024, 1, 1, tzinfo=timezone.utc)],
                                                               pa.timestamp("us", tz="UTC")),
                             "amount": [1.0]}), tmp_path / "data/events/part-0.parquet")
    return tmp_path


def open_store(repo: Path, hooks: list[Any] | None = None) -> FeatureStore:
    return FeatureStore(repo, clock=lambda: NOW, hooks=hooks)


def applied(repo: Path) -> Path:
    fs = open_store(repo)
    fs.apply(definitions())
    fs.materialize_incremental()
    return repo


class Recorder(BaseHook):
    def __init__(self) -> None:
        self.seen: list[tuple[str, str, Any]] = []

    def before(self, event: Event) -> None:
        self.seen.append(("before", event.kind, event))

    def after(self, event: Event, outcome: Outcome) -> None:
        self.seen.append(("after", event.kind, outcome))


class Refuser(BaseHook):
    def __init__(self, kind: str, when: Any = None) -> None:
        self.kind, self.when = kind, when

    def before(self, event: Event) -> None:
        if event.kind == self.kind and (self.when is None or self.when(event)):
            raise Refused(f"{event.kind} refused by the test's hook", hint="ask the test")


def push_rows(amount: float = 7.0) -> pd.DataFrame:
    return pd.DataFrame({"user_id": ["u1"], "ts": [pd.Timestamp("2024-02-20", tz="UTC")], "amount": [amount]})


CALLS = {
    H.APPLY: lambda fs: fs.apply(definitions()),
    H.MATERIALIZE: lambda fs: fs.materialize_incremental(),
    H.ONLINE_READ: lambda fs: fs.get_online_features(SPEND, [{"user_id": "u1"}]),
    H.HISTORICAL_RETRIEVAL: lambda fs: fs.get_historical_features(
        pd.DataFrame({"user_id": ["u1"], "event_timestamp": [pd.Timestamp("2024-02-01", tz="UTC")]}), SPEND),
    H.PUSH: lambda fs: fs.push("events_push", push_rows()),
    H.REBUILD_ONLINE: lambda fs: fs.rebuild_online(),
}
RESULTS = {H.APPLY: PlanResult, H.MATERIALIZE: list, H.ONLINE_READ: OnlineResponse,
           H.HISTORICAL_RETRIEVAL: RetrievalJob, H.PUSH: PushReport, H.REBUILD_ONLINE: list}
REQUEST_KEYS = {H.APPLY: {"objects", "objects_to_delete", "partial", "force"},
                H.MATERIALIZE: {"views", "start", "end", "incremental"},
                H.ONLINE_READ: {"features", "entity_rows", "full_feature_names"},
                H.HISTORICAL_RETRIEVAL: {"features", "entity_df", "full_feature_names", "as_of"},
                H.PUSH: {"source_name", "to", "batch_id", "rows"},
                H.REBUILD_ONLINE: {"views"}}


def test_every_event_fires_before_and_after_with_its_result(hook_repo: Path) -> None:
    recorder = Recorder()
    fs = open_store(hook_repo, hooks=[recorder])
    for kind in (H.APPLY, H.MATERIALIZE, H.ONLINE_READ, H.HISTORICAL_RETRIEVAL, H.PUSH, H.REBUILD_ONLINE):
        recorder.seen.clear()
        CALLS[kind](fs)
        (b, kind_b, event), (a, kind_a, outcome) = recorder.seen
        assert (b, kind_b, a, kind_a) == ("before", kind, "after", kind)
        assert set(event.request) == REQUEST_KEYS[kind] and event.principal is None
        assert isinstance(outcome.result, RESULTS[kind]) and outcome.error is None
        assert outcome.seconds >= 0
    assert all(isinstance(r, ViewReport) for r in CALLS[H.MATERIALIZE](fs))
    assert all(isinstance(r, RebuildReport) for r in CALLS[H.REBUILD_ONLINE](fs))


def test_the_after_event_gets_the_error(hook_repo: Path) -> None:
    recorder = Recorder()
    fs = open_store(applied(hook_repo), hooks=[recorder])
    with pytest.raises(SkewlessError) as info:
        fs.get_online_features(["user_spend:nope"], [{"user_id": "u1"}])
    (_, _, _), (_, kind, outcome) = recorder.seen
    assert kind == H.ONLINE_READ and outcome.error is info.value and outcome.result is None


def _state(fs: FeatureStore, repo: Path) -> tuple[Any, ...]:
    """What a call could have changed: the registry, the watermarks, the pushed files."""
    fresh = FeatureStore(repo, clock=lambda: NOW)
    return (fresh.snapshot().version, [(s.view, s.watermark, s.entities) for s in fresh.online_status()],
            sorted(p.name for p in (repo / "data/events").iterdir()))


@pytest.mark.parametrize("kind", H.EVENTS)
def test_a_before_hook_refuses_and_nothing_runs(hook_repo: Path, kind: str) -> None:
    repo = applied(hook_repo)
    recorder, other = Recorder(), Recorder()
    fs = open_store(repo, hooks=[recorder, Refuser(kind), other])
    before = _state(fs, repo)
    with pytest.raises(Refused, match=f"{kind} refused by the test's hook"):
        CALLS[kind](fs)
    # nothing ran: no backend was even opened, nothing changed
    assert fs.context._online is None and fs.context._engine is None
    assert _state(fs, repo) == before
    # every hook gets the after event with the refusal; hooks after the refusing one are not asked
    assert [(p, k) for p, k, _ in recorder.seen] == [("before", kind), ("after", kind)]
    assert isinstance(recorder.seen[1][2].error, Refused)
    assert [(p, k) for p, k, _ in other.seen] == [("after", kind)]
    # the other events still run
    for other_kind in H.EVENTS:
        if other_kind != kind:
            CALLS[other_kind](fs)


def test_requests_read_together_fire_one_event_each_and_refuse_alone(hook_repo: Path) -> None:
    recorder = Recorder()
    refuse_u2 = Refuser(H.ONLINE_READ, lambda e: e.request["entity_rows"][0]["user_id"] == "u2")
    fs = open_store(applied(hook_repo), hooks=[recorder, refuse_u2])
    answers = fs.get_online_features_many([(SPEND, [{"user_id": u}], False) for u in ("u1", "u2", "u3")]
                                          + [(["user_spend:nope"], [{"user_id": "u1"}], False)])
    assert answers[0].to_dict()["amount"] == [140.0]
    assert isinstance(answers[1], Refused) and answers[2].to_dict()["amount"] == [2100.0]
    assert isinstance(answers[3], SkewlessError) and not isinstance(answers[3], Refused)
    befores = [e for p, _, e in recorder.seen if p == "before"]
    afters = [o for p, _, o in recorder.seen if p == "after"]
    assert [e.request["entity_rows"] for e in befores] == [[{"user_id": u}] for u in ("u1", "u2", "u3", "u1")]
    assert [type(o.error).__name__ if o.error else type(o.result).__name__ for o in afters] == [
        "OnlineResponse", "Refused", "OnlineResponse", "UnknownObjectError"]
    # the same answers as without hooks
    plain = open_store(hook_repo)
    assert answers[0].to_dict() == plain.get_online_features(SPEND, [{"user_id": "u1"}]).to_dict()


def test_unused_hooks_build_no_event(hook_repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fs = open_store(applied(hook_repo))

    def no_event(*a: Any, **k: Any) -> Any:
        raise AssertionError("an event was built although no hook is registered")
    monkeypatch.setattr(H, "Event", no_event)
    for kind in H.EVENTS:
        CALLS[kind](fs)
    fs.get_online_features_many([(SPEND, [{"user_id": "u1"}], False)])


def test_hooks_are_added_and_removed(hook_repo: Path) -> None:
    fs = open_store(applied(hook_repo))
    first, second = Recorder(), Recorder()
    fs.add_hook(first)
    fs.add_hook(second)
    assert fs.hooks == (first, second) and fs.context.hooks is fs.hooks
    fs.remove_hook(first)
    CALLS[H.ONLINE_READ](fs)
    assert first.seen == [] and len(second.seen) == 2
    with pytest.raises(InvalidRequestError, match="is not a hook"):
        fs.add_hook(object())  # type: ignore[arg-type]
    with pytest.raises(InvalidRequestError, match="is not a hook"):
        FeatureStore(hook_repo, hooks=[lambda e: None])  # type: ignore[list-item]


def test_a_failing_after_hook_does_not_undo_the_call(hook_repo: Path, caplog: pytest.LogCaptureFixture) -> None:
    class Broken(BaseHook):
        def after(self, event: Event, outcome: Outcome) -> None:
            raise RuntimeError("the hook's own bug")
    fs = open_store(applied(hook_repo), hooks=[Broken()])
    report = fs.push("events_push", push_rows(9.0))
    assert report.rows == 1
    assert fs.get_online_features(["user_events:amount"], [{"user_id": "u1"}]).to_dict()["amount"] == [9.0]
    assert "after-hook" in caplog.text and "the hook's own bug" in caplog.text


def test_a_before_hook_bug_propagates(hook_repo: Path) -> None:
    class Buggy(BaseHook):
        def before(self, event: Event) -> None:
            raise KeyError("bug")
    fs = open_store(applied(hook_repo), hooks=[Buggy()])
    with pytest.raises(KeyError):
        CALLS[H.ONLINE_READ](fs)


def test_what_cannot_run_as_a_hook_is_refused_when_registered(hook_repo: Path) -> None:
    """An ``async def before`` would be called without being awaited: its body, and so its
    refusal, would never run. A hook class (not an instance) would fail on the first call. Both
    are refused when registered, as is one hook given where a list is expected."""
    class AsyncRefuser(BaseHook):
        async def before(self, event: Event) -> None:   # type: ignore[override]
            raise SkewlessError("no")

    fs = open_store(applied(hook_repo))
    with pytest.raises(InvalidRequestError, match="before is a coroutine function"):
        fs.add_hook(AsyncRefuser())
    with pytest.raises(InvalidRequestError, match="is a class, not a hook"):
        fs.add_hook(Recorder)  # type: ignore[arg-type]
    with pytest.raises(InvalidRequestError, match="hooks= takes a list of hooks"):
        FeatureStore(hook_repo, hooks=Recorder())  # type: ignore[arg-type]
    assert fs.hooks == ()
