"""The plan's diff is derived from the definitions' own fields: a change of any field of any
definition class is reported, and deleting a view (or resetting its online table) is marked
destructive."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from skewless import (Aggregation, Entity, FeatureService, FeatureView, Field, FileSource, LoggingConfig,
                      PushSource)
from skewless.registry import Snapshot, diff
from skewless.registry.diff import Change
from skewless.services.apply import PlanResult
from skewless.types import Float64, Int64

user = Entity("user", join_keys=["user_id"])
SRC = FileSource("data/v.parquet", "ts")
PUSH = PushSource("p_push", batch_source=FileSource("data/events", "ts"))


def fv(name: str = "v", entities: list[Any] | None = None, schema: list[Field] | None = None,
       source: Any = None, **kw: Any) -> FeatureView:
    return FeatureView(name, entities or [user], schema or [Field("x", Int64)], source or SRC, **kw)


def pushed(source: PushSource = PUSH) -> FeatureView:
    return fv("p", schema=[Field("y", Int64)], source=source)


def svc(**kw: Any) -> FeatureService:
    args: dict[str, Any] = {"name": "s", "features": [fv()]}
    args.update(kw)
    return FeatureService(**args)


def snapshot(entities: list[Entity] | None = None, views: list[FeatureView] | None = None,
             services: list[FeatureService] | None = None) -> Snapshot:
    ents = entities or [user]
    return Snapshot("proj", 1, {e.name: e for e in ents},
                    {v.name: v for v in (views or [fv(), pushed()])},
                    {s.name: s for s in (services or [svc()])})


def with_view(view: FeatureView) -> Snapshot:
    views = {v.name: v for v in [fv(), pushed()]}
    views[view.name] = view
    return snapshot(views=list(views.values()))


def field(**kw: Any) -> Snapshot:
    args: dict[str, Any] = {"name": "x", "dtype": Int64}
    args.update(kw)
    return with_view(fv(schema=[Field(**args)]))


def file_source(**kw: Any) -> Snapshot:
    args: dict[str, Any] = {"path": "data/v.parquet", "timestamp_field": "ts"}
    args.update(kw)
    return with_view(fv(source=FileSource(**args)))


# class -> attribute -> (the registry after changing only that attribute, text the diff must show)
VARIANTS: dict[type, dict[str, tuple[Callable[[], Snapshot], str]]] = {
    Entity: {
        "name": (lambda: snapshot(entities=[Entity("customer", join_keys=["user_id"])]), "+ entity customer"),
        "join_keys": (lambda: snapshot(entities=[Entity("user", join_keys=["uid"])]), "join keys changed"),
        "description": (lambda: snapshot(entities=[Entity("user", ["user_id"], description="d")]), "description: '' -> 'd'"),
        "owner": (lambda: snapshot(entities=[Entity("user", ["user_id"], owner="me")]), "owner: '' -> 'me'"),
        "tags": (lambda: snapshot(entities=[Entity("user", ["user_id"], tags={"a": "b"})]), "tags: {} -> {'a': 'b'}"),
    },
    FeatureView: {
        "name": (lambda: snapshot(views=[fv("w"), pushed()]), "+ feature view w"),
        "entities": (lambda: snapshot(entities=[user, Entity("other", ["user_id"])],
                                      views=[fv(entities=["other"]), pushed()]), "entities changed"),
        "schema": (lambda: with_view(fv(schema=[Field("x", Int64), Field("z", Float64)])), "field 'z' added (Float64)"),
        "source": (lambda: with_view(fv(source=FileSource("data/w.parquet", "ts"))),
                   "source.path: 'data/v.parquet' -> 'data/w.parquet'"),
        "ttl": (lambda: with_view(fv(ttl=timedelta(days=1))), "ttl: none -> 1 day"),
        "online": (lambda: with_view(fv(online=False)), "online: True -> False"),
        "description": (lambda: with_view(fv(description="d")), "description: '' -> 'd'"),
        "owner": (lambda: with_view(fv(owner="me")), "owner: '' -> 'me'"),
        "tags": (lambda: with_view(fv(tags={"a": "b"})), "tags: {} -> {'a': 'b'}"),
        "on_missing": (lambda: with_view(fv(on_missing="default")), "on_missing: 'null' -> 'default'"),
        "fallback": (lambda: with_view(fv(fallback="none")), "fallback: 'cache' -> 'none'"),
        "aggregations": (lambda: with_view(fv(aggregations=[Aggregation("x", "sum", timedelta(hours=1))])),
                         "aggregations changed [] -> [{'column': 'x', 'function': 'sum'"),
        "aggregation_tile": (lambda: with_view(fv(aggregations=[Aggregation("x", "sum", timedelta(hours=1))],
                                                  aggregation_tile=timedelta(minutes=1))),
                             "aggregation_tile changed none -> 0:01:00"),
    },
    FeatureService: {
        "name": (lambda: snapshot(services=[svc(name="t")]), "+ feature service t"),
        "projections": (lambda: snapshot(services=[svc(features=[fv()[["x"]]])]), "features:"),
        "description": (lambda: snapshot(services=[svc(description="d")]), "description: '' -> 'd'"),
        "owner": (lambda: snapshot(services=[svc(owner="me")]), "owner: '' -> 'me'"),
        "tags": (lambda: snapshot(services=[svc(tags={"a": "b"})]), "tags: {} -> {'a': 'b'}"),
        "logging_config": (lambda: snapshot(services=[svc(logging_config=LoggingConfig(sample_rate=0.5))]),
                           "logging_config: none -> {'sample_rate': 0.5}"),
    },
    Field: {
        "name": (lambda: field(name="z"), "field 'x' renamed to 'z'"),
        "dtype": (lambda: field(dtype=Float64), "field 'x' retyped Int64 -> Float64"),
        "description": (lambda: field(description="d"), "field 'x' description: '' -> 'd'"),
        "tags": (lambda: field(tags={"a": "b"}), "field 'x' tags: {} -> {'a': 'b'}"),
        "default": (lambda: field(default=7), "field 'x' default: none -> 7"),
    },
    FileSource: {
        "path": (lambda: file_source(path="data/w.parquet"), "source.path: 'data/v.parquet' -> 'data/w.parquet'"),
        "timestamp_field": (lambda: file_source(timestamp_field="t2"), "source.timestamp_field: 'ts' -> 't2'"),
        "created_timestamp_column": (lambda: file_source(created_timestamp_column="c"),
                                     "source.created_timestamp_column: none -> 'c'"),
        "field_mapping": (lambda: file_source(field_mapping={"a": "x"}), "source.field_mapping: {} -> {'a': 'x'}"),
        "name": (lambda: file_source(name="other"), "source.name: 'v' -> 'other'"),
        "description": (lambda: file_source(description="d"), "source.description: '' -> 'd'"),
        "availability_delay": (lambda: file_source(availability_delay=timedelta(hours=6)),
                               "source.availability_delay changed none -> 6:00:00"),
        "event_id_column": (lambda: file_source(event_id_column="eid"), "source.event_id_column: none -> 'eid'"),
    },
    PushSource: {
        "name": (lambda: with_view(pushed(PushSource("q_push", PUSH.batch_source))),
                 "push source.name: 'p_push' -> 'q_push'"),
        "batch_source": (lambda: with_view(pushed(PushSource("p_push", FileSource("data/other", "ts")))),
                         "source.path: 'data/events' -> 'data/other'"),
        "description": (lambda: with_view(pushed(PushSource("p_push", PUSH.batch_source, description="d"))),
                        "push source.description: '' -> 'd'"),
    },
}


def fields_of(cls: type) -> set[str]:
    """The fields a definition class declares (its annotations)."""
    return {name for name in getattr(cls, "__annotations__", {}) if not name.startswith("_")}


@pytest.mark.parametrize("cls", list(VARIANTS), ids=lambda c: c.__name__)
def test_every_field_of_every_definition_has_a_variant_here(cls: type) -> None:
    """A field added to a definition class fails here until it has a variant below, which the
    diff (derived from the spec) then reports without a change to diff.py."""
    assert fields_of(cls) == set(VARIANTS[cls]), (
        f"{cls.__name__}: add a variant to VARIANTS for {sorted(fields_of(cls) - set(VARIANTS[cls]))}")


CASES = [(cls, attr) for cls, table in VARIANTS.items() for attr in table]


@pytest.mark.parametrize(("cls", "attr"), CASES, ids=[f"{c.__name__}.{a}" for c, a in CASES])
def test_a_change_of_any_field_is_reported(cls: type, attr: str) -> None:
    build, expected = VARIANTS[cls][attr]
    old, new = snapshot(), build()
    changes = diff(old, new)
    assert changes, f"{cls.__name__}.{attr}: no change reported"
    shown = PlanResult(old, new, changes).render()
    assert expected in shown, shown
    for c in changes:
        if c.op == "update":
            assert c.details or c.breaking or c.destructive, c


def test_changing_fallback_is_an_update_with_details() -> None:
    """The issue's case: `fallback` was left out of the hand-written list of view fields."""
    (change,) = diff(snapshot(), with_view(fv(fallback="none")))
    assert (change.op, change.details, change.breaking) == ("update", ["fallback: 'cache' -> 'none'"], [])
    assert change.destructive == []


def test_deleting_a_view_is_destructive_in_the_plan() -> None:
    old = snapshot()
    new = snapshot(views=[pushed()], services=[FeatureService("s", [pushed()])])
    changes = diff(old, new)
    shown = PlanResult(old, new, changes).render()
    assert "drops its online table and materialization state" in shown
    (gone,) = [c for c in changes if c.name == "v"]
    assert gone.op == "delete" and gone.destructive
    assert "- feature view v  DESTRUCTIVE" in shown
    assert "drops its online table and materialization state" in shown
    assert shown.splitlines()[-1].endswith("; 1 destructive (online state dropped)")


@pytest.mark.parametrize(("build", "why"), [
    (lambda: with_view(fv(schema=[Field("x", Float64)])), "field 'x' retyped Int64 -> Float64"),
    (lambda: with_view(fv(schema=[Field("z", Int64)])), "field 'x' removed or renamed"),
    (lambda: with_view(fv(source=FileSource("data/w.parquet", "ts"))), "another source"),
    (lambda: file_source(availability_delay=timedelta(hours=6)), "availability delay none -> 6:00:00"),
    (lambda: snapshot(entities=[Entity("user", join_keys=["uid"])]), "join keys ['user_id'] -> ['uid']"),
])
def test_changes_that_reset_the_online_table_are_destructive(build: Callable[[], Snapshot], why: str) -> None:
    (change,) = [c for c in diff(snapshot(), build()) if c.name == "v"]
    assert change.op == "update" and len(change.destructive) == 1
    assert why in change.destructive[0] and "online table starts empty" in change.destructive[0]


@pytest.mark.parametrize("build", [
    lambda: with_view(fv(schema=[Field("x", Int64), Field("z", Int64)])),   # a field added
    lambda: with_view(fv(ttl=timedelta(hours=1), description="d")),
    lambda: file_source(description="d", name="renamed_source"),
])
def test_changes_that_keep_the_online_table_are_not_destructive(build: Callable[[], Snapshot]) -> None:
    changes: list[Change] = diff(snapshot(), build())
    assert changes and not any(c.destructive for c in changes)
