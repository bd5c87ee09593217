"""Every field of every definition kind, walked from its field list (``FIELDS``,
``define/_fields.py``) and cross-checked against its ``__init__``: changing that one field
round-trips through the registry's serialisation, shows in the plan, and shows in
``skewless describe``. A parameter added to a definition without a field-list entry fails here,
and so does a field the plan or ``describe`` would leave out (``fallback`` once was)."""

from __future__ import annotations

import inspect
import json
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from skewless import (Aggregation, Entity, FeatureService, FeatureStore, FeatureView, Field, FileSource,
                      LoggingConfig, OnDemandFeatureView, PushSource, RequestSource)
from skewless.cli import catalog
from skewless.cli._common import console
from skewless.define._common import FrozenMixin
from skewless.define._fields import ALIASES, BREAKING, IDENTITY, READINGS, VALUE
from skewless.errors import DefinitionError
from skewless.registry import Snapshot, diff
from skewless.registry.diff import materialization_signature
from skewless.services.apply import PlanResult
from skewless.types import Bytes, Float64, Int64

KINDS: list[type[FrozenMixin]] = [Entity, Field, FileSource, PushSource, FeatureView, FeatureService,
                                  RequestSource, OnDemandFeatureView, Aggregation]
TOP_LEVEL = (Entity, FeatureView, FeatureService, OnDemandFeatureView)   # the registry's kinds; the rest live in one


def plus_one(inputs: dict[str, list[Any]]) -> dict[str, list[Any]]:
    """The base on-demand view's function (module level: stored as its text)."""
    return {"o": [None if x is None else x + 1.0 for x in inputs["x"]]}


def times_two(inputs: pd.DataFrame) -> pd.DataFrame:
    """The changed on-demand view's function."""
    return pd.DataFrame({"o": inputs["x"] * 2.0, "o2": inputs["x"] * 3.0})

# --- one registry, and one way to build it with a single field of one definition changed -------

# kind -> the keyword arguments of its object in the base registry
BASE: dict[type, dict[str, Any]] = {
    Entity: {"name": "user", "join_keys": ["user_id"]},
    Field: {"name": "x", "dtype": Int64},
    FileSource: {"path": "data/v.parquet", "timestamp_field": "ts"},
    PushSource: {"name": "p_push"},   # batch_source: below
    FeatureView: {"name": "v", "entities": ["user"]},   # schema, source: below
    FeatureService: {"name": "s"},   # features: below
    RequestSource: {"name": "req", "schema": [Field("r", Int64)]},
    OnDemandFeatureView: {"name": "od", "schema": [Field("o", Float64)], "udf": plus_one,
                          "mode": "python"},   # sources: below
    Aggregation: {"column": "x", "function": "sum", "time_window": timedelta(hours=1)},
}

# kind -> field -> another value (every other field keeps its BASE value)
CHANGED: dict[type, dict[str, Any]] = {
    Entity: {"name": "customer", "join_keys": ["uid"], "description": "people who pay",
             "owner": "me@example.com", "tags": {"team": "risk"}},
    Field: {"name": "z", "dtype": Float64, "description": "spend", "tags": {"pii": "no"},
            "default": 7},
    FileSource: {"name": "other_name", "path": "data/w.parquet", "timestamp_field": "t2",
                 "created_timestamp_column": "created", "field_mapping": {"amount": "x"},
                 "description": "daily dump", "availability_delay": timedelta(hours=6),
                 "event_id_column": "eid"},
    PushSource: {"name": "q_push", "batch_source": FileSource("data/other", "ts"),
                 "description": "pushed by the app"},
    FeatureView: {"name": "w", "entities": ["merchant"], "schema": [Field("x", Int64), Field("y", Int64)],
                  "source": FileSource("data/w.parquet", "ts"), "ttl": timedelta(days=3),
                  "online": False, "description": "spend", "owner": "me@example.com",
                  "tags": {"team": "risk"}, "on_missing": "default", "fallback": "none",
                  "aggregations": [Aggregation("x", "max", timedelta(days=1))],
                  "aggregation_tile": timedelta(hours=2)},
    FeatureService: {"name": "t", "features": "projection", "description": "fraud model",
                     "owner": "me@example.com", "tags": {"stage": "prod"},
                     "logging_config": LoggingConfig(sample_rate=0.5, path="logs")},
    RequestSource: {"name": "req2", "schema": [Field("r", Int64), Field("r2", Float64)],
                    "description": "sent by the app"},
    OnDemandFeatureView: {"name": "od2", "sources": "projection",
                          "schema": [Field("o", Float64), Field("o2", Float64)], "udf": times_two,
                          "mode": "pandas", "description": "scaled", "owner": "me@example.com",
                          "tags": {"team": "risk"}},
    Aggregation: {"column": "y", "function": "mean", "time_window": timedelta(days=2), "name": "y_avg"},
}


def make(kind: type, changed: dict[type, dict[str, Any]]) -> Any:
    args = {**BASE[kind], **changed.get(kind, {})}
    if kind is PushSource:
        args.setdefault("batch_source", FileSource("data/events", "ts"))
    return kind(**args)


def registry(changed: dict[type, dict[str, Any]]) -> Snapshot:
    """The base registry, with the arguments in ``changed`` (kind -> field -> value) applied:
    a view ``v`` over a FileSource, a view ``p`` over a PushSource, an aggregated view ``a``,
    an entity, a service."""
    user, merchant = make(Entity, changed), Entity("merchant", join_keys=["user_id"])
    field = make(Field, changed)
    view_args = {"schema": [field], "source": make(FileSource, changed), **changed.get(FeatureView, {})}
    if "aggregation_tile" in view_args and "aggregations" not in view_args:   # a tile needs some
        view_args["aggregations"] = CHANGED[FeatureView]["aggregations"]
    view = make(FeatureView, {FeatureView: view_args})
    if user.name != "user":   # the entity renamed: the views follow it
        view = FeatureView(**{**BASE[FeatureView], **view_args, "entities": [user.name]})
    pushed = FeatureView("p", [user.name], [Field("y", Int64)], make(PushSource, changed))
    aggregated = FeatureView("a", [user.name], [Field("x", Int64), Field("y", Int64)],
                             FileSource("data/v.parquet", "ts"), aggregations=[make(Aggregation, changed)])
    svc_args = dict(changed.get(FeatureService, {}))
    features = [view[[view.feature_names[0]]]] if svc_args.pop("features", None) == "projection" else [view]
    service = FeatureService(**{**BASE[FeatureService], **svc_args, "features": features})
    od_args = dict(changed.get(OnDemandFeatureView, {}))
    sources = [view[["x"]] if od_args.pop("sources", None) == "projection" else view,
               make(RequestSource, changed)]
    odfv = OnDemandFeatureView(**{**BASE[OnDemandFeatureView], **od_args, "sources": sources})
    return Snapshot("proj", 1, {user.name: user, "merchant": merchant},
                    {view.name: view, pushed.name: pushed, aggregated.name: aggregated},
                    {service.name: service}, {odfv.name: odfv})


def registry_with(kind: type, field: str) -> Snapshot:
    return registry({kind: {field: CHANGED[kind][field]}})


def subject(snap: Snapshot, kind: type) -> Any:
    """The object of ``kind`` in ``snap`` that the change is made to."""
    if kind is Entity:
        return next(e for e in snap.entities.values() if e.name != "merchant")
    if kind is FeatureService:
        return next(iter(snap.feature_services.values()))
    if kind is PushSource:
        return snap.feature_views["p"].source
    if kind is OnDemandFeatureView:
        return next(iter(snap.on_demand_feature_views.values()))
    if kind is RequestSource:
        return next(iter(snap.on_demand_feature_views.values())).request_sources[0]
    if kind is Aggregation:
        return snap.feature_views["a"].aggregations[0]
    view = next(v for n, v in snap.feature_views.items() if n not in ("p", "a"))
    return {FeatureView: view, FileSource: view.source, Field: view.schema[0]}[kind]


def describe(snap: Snapshot, kind: type) -> str:
    """``skewless describe`` of the object the change shows on (a field, a source: its view)."""
    obj = subject(snap, kind)
    if kind in (Field, FileSource):
        obj = next(v for n, v in snap.feature_views.items() if n not in ("p", "a"))
    elif kind is PushSource:
        obj = snap.feature_views["p"]
    elif kind is RequestSource:
        obj = next(iter(snap.on_demand_feature_views.values()))
    elif kind is Aggregation:
        obj = snap.feature_views["a"]
    show = {Entity: catalog.describe_entity, FeatureView: catalog.describe_view,
            FeatureService: catalog.describe_service,
            OnDemandFeatureView: catalog.describe_on_demand}[type(obj)]
    with console.capture() as out:
        show(snap, obj)
    return out.get()


def plan(old: Snapshot, new: Snapshot) -> str:
    """What ``skewless plan`` / ``FeatureStore.plan`` prints for going from ``old`` to ``new``."""
    return PlanResult(old, new, diff(old, new)).render()


# --- the walk ------------------------------------------------------------------------------------

FIELDS = [(kind, f.name) for kind in KINDS for f in kind.FIELDS]
IDS = [f"{kind.__name__}.{name}" for kind, name in FIELDS]


def spec_of(kind: type, name: str) -> Any:
    return next(f for f in kind.FIELDS if f.name == name)


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.__name__)
def test_the_field_list_is_the_init_signature(kind: type[FrozenMixin]) -> None:
    """Every ``__init__`` parameter is a field (or a listed alias), and every field is one."""
    params = set(inspect.signature(kind.__init__).parameters) - {"self"}
    params -= ALIASES.get(kind.__name__, frozenset())
    listed = [f.param for f in kind.FIELDS]
    assert len(listed) == len(set(listed)), f"{kind.__name__}: a parameter is listed twice"
    assert params == set(listed), (
        f"{kind.__name__}: __init__ parameters not in FIELDS: {sorted(params - set(listed))}; "
        f"FIELDS not in __init__: {sorted(set(listed) - params)} (define/_fields.py)")
    for f in kind.FIELDS:
        assert f.diff in READINGS and hasattr(subject(registry({}), kind), f.name), f


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.__name__)
def test_every_field_has_a_changed_value_here(kind: type) -> None:
    params = {f.param for f in kind.FIELDS}
    assert set(CHANGED[kind]) == params, (
        f"{kind.__name__}: give CHANGED a value for {sorted(params - set(CHANGED[kind]))}")


def test_the_base_registry_has_no_changes() -> None:
    assert plan(registry({}), registry({})) == "No changes: the registry already matches your definitions."


@pytest.mark.parametrize(("kind", "name"), FIELDS, ids=IDS)
def test_a_changed_field_round_trips_through_the_registry(kind: type, name: str) -> None:
    field = spec_of(kind, name)
    base, changed = subject(registry({}), kind), subject(registry_with(kind, field.param), kind)
    assert field.value(base) != field.value(changed), f"{kind.__name__}.{name}: the change is not in the spec"
    for obj in (base, changed):
        stored = json.loads(json.dumps(obj.to_spec(), sort_keys=True))
        back = kind.from_spec(stored)
        assert back == obj and back.to_spec() == obj.to_spec()
        assert field.value(back) == field.value(obj)


@pytest.mark.parametrize(("kind", "name"), FIELDS, ids=IDS)
def test_a_changed_field_shows_in_the_plan(kind: type, name: str) -> None:
    field = spec_of(kind, name)
    old, new = registry({}), registry_with(kind, field.param)
    shown = plan(old, new)
    assert not shown.startswith("No changes"), f"{kind.__name__}.{name}: the plan shows nothing"
    changes = diff(old, new)
    if field.diff == IDENTITY and kind in TOP_LEVEL:   # another name: another object
        assert any(c.op == "create" for c in changes) and any(c.op == "delete" for c in changes), shown
        return
    updates = [c for c in changes if c.op == "update"]
    assert updates and all(c.details or c.breaking or c.destructive for c in updates), shown
    if field.diff in (VALUE, BREAKING):
        assert f"{field.label}" in shown, shown
    if field.diff == BREAKING:
        assert any(c.breaking for c in updates), shown


@pytest.mark.parametrize(("kind", "name"), FIELDS, ids=IDS)
def test_a_changed_field_shows_in_describe(kind: type, name: str) -> None:
    field = spec_of(kind, name)
    before = describe(registry({}), kind)
    after = describe(registry_with(kind, field.param), kind)
    assert before != after, f"{kind.__name__}.{name}: `skewless describe` does not show it\n{after}"


@pytest.mark.parametrize(("kind", "name"), FIELDS, ids=IDS)
def test_an_older_spec_without_the_key_gets_the_default(kind: type, name: str) -> None:
    """A registry written before a field existed still loads: the parameter's default."""
    field = spec_of(kind, name)
    default = inspect.signature(kind.__init__).parameters[field.param].default
    if default is inspect.Parameter.empty:
        return
    obj = subject(registry_with(kind, field.param), kind)
    older = {k: v for k, v in obj.to_spec().items() if k != field.key}
    try:
        expected = kind(**{**_args(obj), field.param: default})
    except DefinitionError:   # the default is no valid value (a source's timestamp_field)
        with pytest.raises(DefinitionError):
            kind.from_spec(older)
        return
    assert kind.from_spec(older) == expected


def _args(obj: Any) -> dict[str, Any]:
    return {f.param: f.load(f.value(obj)) for f in type(obj).FIELDS}


def test_a_spec_with_a_key_no_field_declares_is_a_clear_error() -> None:
    spec = {**FeatureView("v", ["user"], [Field("x", Int64)], FileSource("data/v.parquet", "ts")).to_spec(),
            "windows": []}
    with pytest.raises(DefinitionError, match=r"feature view 'v' holds \['windows'\]") as e:
        FeatureView.from_spec(spec)
    assert e.value.hint and "upgrade skewless" in e.value.hint


# --- the stored format is the one main wrote -----------------------------------------------------

STORED = {
    "entity": '{"description": "", "join_keys": ["user_id"], "name": "user", "owner": "", "tags": {}}',
    "feature_view": (
        '{"description": "d", "entities": ["user"], "fallback": "none", "name": "p", "on_missing": '
        '"default", "online": false, "owner": "o", "schema": [{"default": {"__bytes__": "00ff"}, '
        '"description": "", "dtype": "Bytes", "name": "b", "tags": {}}, {"default": 1.5, '
        '"description": "spend", "dtype": "Float64", "name": "y", "tags": {"k": "v"}}], "source": '
        '{"batch_source": {"created_timestamp_column": "c", "description": "", "field_mapping": '
        '{"amt": "y"}, "name": "events", "path": "data/events", "timestamp_field": "ts", "type": '
        '"file"}, "description": "pd", "name": "p_push", "type": "push"}, "tags": {"a": "b"}, '
        '"ttl_seconds": 86400.0}'),
    "feature_service": ('{"description": "", "features": [{"features": ["y"], "view": "p"}, '
                        '{"features": null, "view": "v"}], "name": "s", "owner": "", "tags": {}}'),
}


@pytest.mark.parametrize("kind", list(STORED))
def test_specs_stored_by_earlier_versions_load_and_compare_equal(kind: str) -> None:
    obj = Snapshot.decode(kind, STORED[kind])
    assert Snapshot.encode(obj) == STORED[kind]
    assert Snapshot.decode(kind, Snapshot.encode(obj)) == obj


def test_a_view_spec_from_before_fallback_and_on_missing_gets_their_defaults() -> None:
    spec = json.loads(STORED["feature_view"])
    for key in ("fallback", "on_missing", "online", "description", "owner", "tags", "ttl_seconds"):
        del spec[key]
    view = FeatureView.from_spec(spec)
    assert (view.fallback, view.on_missing, view.online, view.ttl, view.tags) == \
        ("cache", "null", True, None, {})
    assert view.schema[0].default == b"\x00\xff" and view.schema[0].dtype == Bytes


def test_the_materialization_signature_is_unchanged() -> None:
    """Stored coverage is keyed by this digest: the field list must not change it."""
    snap = registry({})
    assert materialization_signature(snap, snap.feature_views["v"]) == SIGNATURE_V
    assert materialization_signature(snap, snap.feature_views["p"]) == SIGNATURE_P




# computed by main before the field lists existed
SIGNATURE_V = "a1160a176df6b952"
SIGNATURE_P = "630c22e6fed98768"


def test_the_plan_docs_list_every_field() -> None:
    """docs/plan-apply.md's table of what a plan shows names every field of every kind."""
    doc = (Path(__file__).resolve().parents[2] / "docs" / "plan-apply.md").read_text()
    listed: dict[str, set[str]] = {}
    kind = ""
    for line in doc.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 3 or not line.startswith("|"):
            continue
        if cells[0].startswith("`"):
            kind = cells[0].split("`")[1]
        listed.setdefault(kind, set()).update(re.findall(r"`(\w+)`", cells[1]))
    for k in KINDS:
        missing = {f.param for f in k.FIELDS} - listed.get(k.__name__, set())
        assert not missing, f"docs/plan-apply.md: {k.__name__} fields {sorted(missing)} are not in the table"


# --- through FeatureStore.plan, on a real registry -------------------------------------------------

@pytest.fixture
def store(tmp_path: Path) -> FeatureStore:
    """A repo whose registry holds the base registry (sources as real Parquet files)."""
    (tmp_path / "feature_store.yaml").write_text("project: proj\nregistry: data/registry.db\n")
    times = pd.to_datetime(["2024-01-01", "2024-01-02"])
    # every column any changed definition reads (join keys, features, timestamps)
    rows = pd.DataFrame({"user_id": [1, 2], "uid": [1, 2], "x": [1, 2], "y": [3, 4], "z": [1.0, 2.0],
                         "amount": [1, 2], "ts": times, "t2": times, "created": times})
    for path in ("data/v.parquet", "data/w.parquet", "data/events/0.parquet", "data/other/0.parquet"):
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        rows.to_parquet(tmp_path / path)
    fs = FeatureStore(tmp_path)
    fs.apply(_objects(registry({})))
    return fs


def _objects(snap: Snapshot) -> list[Any]:
    return [obj for _, _, obj in snap.objects()]


@pytest.mark.parametrize(("kind", "name"), FIELDS, ids=IDS)
def test_a_changed_field_shows_in_feature_store_plan(store: FeatureStore, kind: type, name: str) -> None:
    """``FeatureStore.plan`` (what ``skewless plan`` prints) on a registry file: the same lines
    as the diff of the two snapshots, and never "No changes"."""
    field = spec_of(kind, name)
    target = registry_with(kind, field.param)
    result = store.plan(_objects(target), partial=False)
    assert not result.render().startswith("No changes"), f"{kind.__name__}.{name}: plan shows nothing"
    assert result.render() == plan(store.snapshot(), target)
