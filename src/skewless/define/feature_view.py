"""FeatureView: a set of features of one entity, read from one source, with a TTL."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from skewless import types as T
from skewless.aggregate.functions import NUMERIC_FUNCTIONS, accepts, column_ok, output_type
from skewless.aggregate.windows import default_tile, format_duration, format_window, micros
from skewless.define._common import (FrozenMixin, check_duration, check_name, check_str, check_tags,
                                     seconds_duration)
from skewless.define._fields import (BREAKING, IDENTITY, SCHEMA, SOURCE, Spec, as_dict, as_list, spec_of,
                                     specs_of)
from skewless.define.aggregation import Aggregation, duration
from skewless.define.entity import Entity
from skewless.define.field import Field, check_schema
from skewless.define.source import FileSource, PushSource, Source, offline_source, source_from_spec
from skewless.errors import DefinitionError, closest

ON_MISSING = ("null", "default", "fail")
FALLBACKS = ("cache", "none")


def _ttl(name: str, ttl: Any) -> timedelta | None:
    if ttl is None:
        return None
    ttl = seconds_duration(f"feature view '{name}': ttl", ttl)
    if not isinstance(ttl, timedelta):
        raise DefinitionError(f"feature view '{name}': ttl must be a timedelta (or seconds), got {ttl!r}")
    if ttl < timedelta(0):
        raise DefinitionError(f"feature view '{name}': ttl {ttl} is negative")
    check_duration(f"feature view '{name}': ttl", ttl)
    return ttl if ttl > timedelta(0) else None


def _ttl_seconds(ttl: timedelta | None) -> float | None:
    return ttl.total_seconds() if ttl else None


def _ttl_from_seconds(seconds: float | None) -> timedelta | None:
    return timedelta(seconds=seconds) if seconds else None


def _schema_from_specs(specs: list[dict[str, Any]]) -> list[Field]:
    return [Field.from_spec(f) for f in specs]


def _aggregations_from_specs(specs: list[dict[str, Any]]) -> list[Aggregation]:
    return [Aggregation.from_spec(a) for a in specs]


def _tile_seconds(tile: timedelta | None) -> int | None:
    return int(tile.total_seconds()) if tile else None


class FeatureView(FrozenMixin):
    """Features of one entity (or entity combination) with their history in ``source``.

    Point-in-time rule: for a label at time t, a feature takes the value of the latest source row
    with ``t - ttl <= event_ts <= t`` (no lower bound when ``ttl`` is None or 0) that had landed
    by t (``event_ts + availability_delay <= t``, the source's delay, 0 when none). When no row
    qualifies, ``on_missing`` decides: ``"null"``, the field's ``"default"``, or ``"fail"``
    (online serving errors out instead of serving a missing or stale value).

    ``fallback`` is what serving does when the online store does not answer: ``"cache"`` serves
    the last value this process read for the entity (still subject to ``ttl``), ``"none"`` goes
    straight to ``on_missing``. A value served from the cache has status ``CACHED``; a value
    the cache cannot give is ``UNAVAILABLE``: null, the default, or a 503 (fail closed) by
    ``on_missing``.

    ``schema`` lists the features; fields named like a join key describe the key column and are
    not features. ``entities`` takes Entity objects or entity names.

    With ``aggregations`` (docs/aggregations.md) the view serves windowed aggregates of its
    source's events instead: its features are the aggregations' ``feature_name``s, and
    ``schema`` declares the join keys and the source columns the aggregations read, with their
    types (a field's ``default`` is served for an empty window under ``on_missing="default"``).
    ``aggregation_tile`` (a timedelta dividing every window) sets the tile; by default each
    window gets 5 minutes under 12 hours, 1 hour under 12 days, else 1 day. An aggregated view
    takes no ``ttl``: its windows say how far back it reads.
    """

    name: str
    entities: tuple[str, ...]
    schema: tuple[Field, ...]
    source: Source
    ttl: timedelta | None
    online: bool
    description: str
    owner: str
    tags: dict[str, str]
    on_missing: str
    fallback: str
    aggregations: tuple[Aggregation, ...]
    aggregation_tile: timedelta | None

    KIND = "feature view"
    FIELDS = (
        Spec("name", diff=IDENTITY, ls=(0, "name")),
        Spec("entities", dump=as_list, diff=BREAKING, describe=(1, "entities"), ls=(1, "entities")),
        Spec("schema", dump=specs_of, load=_schema_from_specs, diff=SCHEMA, ls=(2, "features")),
        Spec("source", dump=spec_of, load=source_from_spec, diff=SOURCE, describe=(3, "source"),
             ls=(4, "source")),
        Spec("ttl", key="ttl_seconds", dump=_ttl_seconds, load=_ttl_from_seconds, label="ttl",
             shown=_ttl_from_seconds, describe=(4, "ttl"), ls=(3, "ttl")),
        Spec("online", describe=(7, "online")),
        Spec("description", describe=(0, "description"), ls=(5, "description")),
        Spec("owner", describe=(8, "owner"), ls=(6, "owner")),
        Spec("tags", dump=as_dict, describe=(9, "tags"), ls=(7, "tags")),
        Spec("on_missing", describe=(5, "on missing")),
        Spec("fallback", describe=(6, "fallback")),
        Spec("aggregations", dump=specs_of, load=_aggregations_from_specs, diff=BREAKING,
             describe=(10, "aggregations"), omit=[]),
        Spec("aggregation_tile", key="aggregation_tile_seconds", dump=_tile_seconds,
             load=_ttl_from_seconds, diff=BREAKING, label="aggregation_tile",
             shown=_ttl_from_seconds, describe=(11, "aggregation tile"), omit=None),
    )

    def __init__(
        self,
        name: str,
        entities: Sequence[Entity | str],
        schema: Sequence[Field],
        source: Source,
        ttl: timedelta | int | None = None,
        online: bool = True,
        description: str = "",
        owner: str = "",
        tags: dict[str, str] | None = None,
        on_missing: str = "null",
        fallback: str = "cache",
        aggregations: Sequence[Aggregation] | None = None,
        aggregation_tile: timedelta | None = None,
    ) -> None:
        check_name("feature view", name)
        label = f"feature view '{name}'"
        self._set("name", name)
        if isinstance(entities, (Entity, str)):
            entities = [entities]
        ents: list[str] = []
        objs: dict[str, Entity] = {}
        for e in entities or []:
            if isinstance(e, Entity):
                ents.append(e.name)
                objs[e.name] = e
            elif isinstance(e, str):
                ents.append(e)
            else:
                raise DefinitionError(f"{label}: entities must be Entity objects or names, got {e!r}")
        if not ents:
            raise DefinitionError(f"{label}: needs at least one entity", hint="entities=[user]")
        if len(set(ents)) != len(ents):
            raise DefinitionError(f"{label}: entity listed twice in {ents}")
        self._set("entities", tuple(ents))
        self._set("entity_objects", objs)
        fields = check_schema(label, schema)
        self._set("schema", fields)
        if not isinstance(source, (FileSource, PushSource)):
            raise DefinitionError(
                f"{label}: source must be a FileSource or a PushSource, got {type(source).__name__}")
        self._set("source", source)
        self._set("ttl", _ttl(name, ttl))
        self._set("online", bool(online))
        self._set("description", check_str("feature view", name, "description", description))
        self._set("owner", check_str("feature view", name, "owner", owner))
        self._set("tags", check_tags("feature view", name, tags))
        if on_missing not in ON_MISSING:
            raise DefinitionError(
                f"{label}: on_missing={on_missing!r} is invalid", hint=f"use one of {list(ON_MISSING)}"
            )
        self._set("on_missing", on_missing)
        if fallback not in FALLBACKS:
            raise DefinitionError(
                f"{label}: fallback={fallback!r} is invalid", hint=f"use one of {list(FALLBACKS)}")
        self._set("fallback", fallback)
        key_names = {k for e in objs.values() for k in e.join_keys}
        self._set_aggregations(label, aggregations, aggregation_tile, key_names)
        if key_names and not self.aggregations and not self.features_for(key_names):
            raise DefinitionError(f"{label}: schema has no features besides the join keys")
        batch = offline_source(source)
        for reserved in (batch.timestamp_field, batch.created_timestamp_column):
            if reserved and reserved in {f.name for f in fields}:
                raise DefinitionError(
                    f"{label}: field {reserved!r} is the source's timestamp column, not a feature",
                    hint="remove it from schema",
                )

    def _set_aggregations(self, label: str, aggregations: Sequence[Aggregation] | None,
                          aggregation_tile: Any, key_names: set[str]) -> None:
        """Check and set ``aggregations`` and ``aggregation_tile`` (docs/aggregations.md,
        "Errors"): every DefinitionError names the view and the aggregation."""
        aggs = list(aggregations or [])
        for a in aggs:
            if not isinstance(a, Aggregation):
                raise DefinitionError(f"{label}: aggregations must be Aggregation(...), got {a!r}",
                                      hint="Aggregation('amount', 'sum', timedelta(hours=1))")
        tile = None
        if aggregation_tile is not None:
            if not aggs:
                raise DefinitionError(f"{label}: aggregation_tile is set but the view has no aggregations",
                                      hint="remove aggregation_tile, or add aggregations=[...]")
            tile = duration(label, "aggregation_tile", aggregation_tile)
        if aggs and self.ttl is not None:
            raise DefinitionError(
                f"{label}: an aggregated view takes no ttl; its windows say how far back it reads",
                hint="remove ttl= from the view")
        fields = {f.name: f for f in self.schema}
        seen: dict[str, Aggregation] = {}
        for a in aggs:
            what = f"{label}: aggregation {a!r}"
            if a.column not in fields:
                raise DefinitionError(
                    f"{what} reads column {a.column!r}, which is not in the schema; "
                    f"{closest(a.column, fields)}",
                    hint=f"add Field({a.column!r}, <type>) to schema (the source column's type)")
            dtype = fields[a.column].dtype
            if not column_ok(a.function, dtype):
                allowed = ", ".join(t.name for t in accepts(a.function))
                raise DefinitionError(
                    f"{what}: {a.function} needs a {'numeric ' if a.function in NUMERIC_FUNCTIONS else ''}"
                    f"column, but {a.column!r} is {dtype.name}",
                    hint=f"aggregate a column of type {allowed}"
                    + (", or use count" if a.function != "count" else ""))
            window_us = micros(a.time_window)
            tile_us = micros(tile) if tile is not None else default_tile(window_us)
            if window_us % tile_us:
                shown = format_duration(a.time_window)
                if tile is not None:
                    raise DefinitionError(
                        f"{what}: the window {shown} is not a multiple of the view's "
                        f"aggregation_tile {format_duration(tile)}; the tile must divide every window",
                        hint=f"use a tile that divides {shown} (e.g. timedelta(minutes=5)), or a "
                        "window that is a multiple of the tile, or omit aggregation_tile")
                raise DefinitionError(
                    f"{what}: the window {shown} is not a multiple of its default tile "
                    f"{format_window(tile_us)} (docs/aggregations.md, \"The view\")",
                    hint=f"use a window that is a multiple of {format_window(tile_us)}, or set the "
                    f"view's aggregation_tile to a timedelta dividing every window (e.g. "
                    f"timedelta(minutes=1))")
            name = a.feature_name
            check_name(f"{label}: aggregation", name, "feature name")
            if name in seen:
                raise DefinitionError(
                    f"{label}: aggregations {seen[name]!r} and {a!r} are both named {name!r}",
                    hint="give one of them another name=")
            if name in fields or name in key_names:
                raise DefinitionError(
                    f"{label}: aggregation {a!r} is named {name!r}, like a column of the schema",
                    hint="give it another name= (the schema's columns are the aggregations' inputs)")
            default = fields[a.column].default
            if a.function != "count" and default is not None and \
                    not T.python_value_ok(default, output_type(a.function, dtype)):
                raise DefinitionError(
                    f"{what}: the default {default!r} of field {a.column!r} is no valid "
                    f"{output_type(a.function, dtype).name}, the type of {a.function}",
                    hint="give the field a default of that type, or None")
            seen[name] = a
        self._set("aggregations", tuple(aggs))
        self._set("aggregation_tile", tile)

    @property
    def aggregated(self) -> bool:
        """Whether the view serves windowed aggregations (docs/aggregations.md)."""
        return bool(self.aggregations)

    def tile_of(self, aggregation: Aggregation) -> timedelta:
        """The tile of ``aggregation``'s window: the view's ``aggregation_tile``, or the default
        for its window (``skewless.aggregate.windows.default_tile``)."""
        from skewless.aggregate.windows import default_tile

        if self.aggregation_tile is not None:
            return self.aggregation_tile
        return timedelta(microseconds=default_tile(micros(aggregation.time_window)))

    def aggregation_fields(self) -> tuple[tuple[Aggregation, Field], ...]:
        """Each aggregation with the feature it serves: a Field named ``feature_name`` of the
        function's output type (docs/aggregations.md, "Types"), whose default is the column
        field's default as that type (none for count, which is never missing)."""
        fields = {f.name: f for f in self.schema}
        out = []
        for a in self.aggregations:
            col = fields[a.column]
            dtype = output_type(a.function, col.dtype)
            default = None if a.function == "count" or col.default is None else col.default
            if default is not None and dtype is T.Float64:
                default = float(default)
            out.append((a, Field(a.feature_name, dtype, description=col.description, default=default)))
        return tuple(out)

    def served_features(self, join_keys: set[str]) -> tuple[Field, ...]:
        """The features a request can name: the aggregations' features of an aggregated view,
        else ``features_for(join_keys)``."""
        if self.aggregations:
            return tuple(f for _, f in self.aggregation_fields())
        return self.features_for(join_keys)

    @property
    def feature_names(self) -> list[str]:
        """Names a projection may list: the aggregations' features of an aggregated view, else
        the schema's fields."""
        if self.aggregations:
            return [a.feature_name for a in self.aggregations]
        return self.field_names

    @property
    def batch_source(self) -> FileSource:
        """Where this view's history is read offline: ``source``, or the batch source of a
        PushSource. Every reader of the offline history goes through this."""
        return offline_source(self.source)

    @property
    def push_source(self) -> PushSource | None:
        """The PushSource feeding this view, if any."""
        return self.source if isinstance(self.source, PushSource) else None

    def features_for(self, join_keys: set[str]) -> tuple[Field, ...]:
        """The feature fields, given the view's resolved join keys."""
        return tuple(f for f in self.schema if f.name not in join_keys)

    @property
    def field_names(self) -> list[str]:
        return [f.name for f in self.schema]

    def __getitem__(self, features: Sequence[str] | str) -> FeatureViewProjection:
        """``view[["a", "b"]]``: a projection of some features, for a FeatureService."""
        if isinstance(features, str):
            features = [features]
        return FeatureViewProjection(self, list(features))

    def __repr__(self) -> str:
        return f"FeatureView(name={self.name!r}, entities={list(self.entities)!r}, fields={self.field_names!r})"


class FeatureViewProjection:
    """Some features of one view, as used in a FeatureService (``view[["a", "b"]]``)."""

    def __init__(self, view: FeatureView | str, features: Sequence[str] | None = None) -> None:
        self.view_name = view if isinstance(view, str) else view.name
        self.features = list(features) if features is not None else None
        if isinstance(view, FeatureView) and self.features is not None:
            known = view.feature_names
            for f in self.features:
                if f not in known:
                    raise DefinitionError(
                        f"feature view '{view.name}' has no feature {f!r}; {closest(f, known)}"
                    )
        if self.features is not None and len(set(self.features)) != len(self.features):
            raise DefinitionError(f"projection of '{self.view_name}' lists a feature twice: {self.features}")

    def to_spec(self) -> dict[str, Any]:
        return {"view": self.view_name, "features": self.features}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FeatureViewProjection) and self.to_spec() == other.to_spec()

    def __repr__(self) -> str:
        return f"{self.view_name}{self.features!r}" if self.features is not None else self.view_name
