"""The engine-neutral plan of an online read, beside ``HistoricalPlan``: which table holds each
requested view, how its keys are typed and encoded, which records are visible at the request
time (``plan/visibility.py``), each feature's response column, type and default, and which
views are served from the in-process cache when the store does not answer
(``fallback="cache"``). Built once per request shape and reused (``FeatureStore`` keeps them per
registry version)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pyarrow as pa

from skewless import types as T
from skewless.define import FeatureService, FeatureView
from skewless.errors import InvalidRequestError, SkewlessError
from skewless.kernels.source import resolve_source, source_schema
from skewless.online.codec import needs_restore
from skewless.plan.on_demand import OnDemandRequest, resolve_on_demand
from skewless.online.tiles import AggSpec, TileLayout
from skewless.plan.refs import output_names, parse_refs
from skewless.plan.visibility import Visibility, view_visibility
from skewless.registry import Snapshot


@dataclass(frozen=True)
class OnlineFeature:
    name: str
    output: str
    dtype: T.ValueType
    default: Any
    restore: bool = field(init=False)  # stored unlike served (timestamps, arrays): restore()

    def __post_init__(self) -> None:
        object.__setattr__(self, "restore", needs_restore(self.dtype))


@dataclass(frozen=True)
class OnlineView:
    view: str
    table: str
    join_keys: tuple[str, ...]
    key_types: tuple[T.ValueType | None, ...]
    visibility: Visibility   # which stored records count at the request time
    on_missing: str
    features: tuple[OnlineFeature, ...]
    fallback: bool = True   # serve the last cached value when the store does not answer
    # an aggregated view (docs/aggregations.md): one AggSpec per feature, in feature order; its
    # records are tile states (skewless.online.tiles), merged at the request time
    aggs: tuple[AggSpec, ...] = ()
    outputs: tuple[str, ...] = field(init=False)   # the features' response columns
    # an aggregated view's features in runs of consecutive features of one window: per run,
    # the window (column, window_us, tile_us), the run's outputs and its (feature, function)s
    agg_runs: tuple[tuple[tuple[str, int, int], tuple[str, ...],
                          tuple[tuple[OnlineFeature, str], ...]], ...] = field(init=False)
    key_signature: tuple[Any, ...] = field(init=False)   # views keyed alike share key encoding
    # stored layout -> (output, position, dtype to restore or None) per feature, or None when a
    # feature is not in the layout (see _extractor)
    _extractors: dict[tuple[str, ...], tuple[tuple[str, int, T.ValueType | None], ...] | None] = field(
        init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "outputs", tuple(f.output for f in self.features))
        runs: list[tuple[tuple[str, int, int], list[tuple[OnlineFeature, str]]]] = []
        for f, spec in zip(self.features, self.aggs):
            window = (spec.column, spec.window_us, spec.tile_us)
            if runs and runs[-1][0] == window:
                runs[-1][1].append((f, spec.function))
            else:
                runs.append((window, [(f, spec.function)]))
        object.__setattr__(self, "agg_runs", tuple(
            (w, tuple(f.output for f, _ in members), tuple(members)) for w, members in runs))
        object.__setattr__(self, "key_signature", (self.join_keys, tuple(
            t.name if t is not None else None for t in self.key_types)))
        object.__setattr__(self, "_extractors", {})


@dataclass(frozen=True)
class OnlinePlan:
    views: tuple[OnlineView, ...]
    join_keys: tuple[str, ...]   # every key column, in first-use order
    # the request's on-demand views (plan/on_demand.py): ``views`` then read their inputs under
    # working names, and the answer is finished by kernels/on_demand.online
    on_demand: OnDemandRequest | None = None
    fallback_tables: frozenset[str] = field(init=False)   # views served from the cache when the store is down
    aggregated: bool = field(init=False)   # some view is aggregated: the store needs 'aggregations'
    dtypes: dict[str, T.ValueType | None] = field(init=False, compare=False)  # declared type per output

    def __post_init__(self) -> None:
        object.__setattr__(self, "fallback_tables", frozenset(v.table for v in self.views if v.fallback))
        object.__setattr__(self, "aggregated", any(v.aggs for v in self.views))
        object.__setattr__(self, "dtypes", {f.output: f.dtype for v in self.views for f in v.features})


def _key_types(view: FeatureView, join_keys: tuple[str, ...], repo_path: str | Path | None
               ) -> tuple[T.ValueType | None, ...]:
    """Key types to check requests against: declared key fields, else the source's key columns
    (read once per plan from the Parquet footer; unknown if the source cannot be read here)."""
    declared = {f.name: f.dtype for f in view.schema}
    if all(k in declared for k in join_keys) or repo_path is None:
        return tuple(declared.get(k) for k in join_keys)
    try:
        schema = source_schema(resolve_source(view.batch_source, repo_path))
    except SkewlessError:
        return tuple(declared.get(k) for k in join_keys)
    out: list[T.ValueType | None] = []
    for k in join_keys:
        col = view.batch_source.source_column(k)
        out.append(declared.get(k) or (T.from_arrow(schema.field(col).type) if col in schema.names else None))
    return tuple(out)


def build_online_plan(snapshot: Snapshot, features: Sequence[str] | FeatureService | str,
                      full_feature_names: bool, repo_path: str | Path | None = None) -> OnlinePlan:
    """Resolve an online request (references, a service or its name) against the registry:
    one ``OnlineView`` per requested view, in request order. ``repo_path`` lets key types be
    read from the source when the view does not declare them (None: unknown, not checked).
    Raises UnknownObjectError / InvalidRequestError as ``parse_refs`` and ``output_names`` do,
    and InvalidRequestError when a feature's column would clash with a join key."""
    on_demand = resolve_on_demand(snapshot, features, full_feature_names)
    if on_demand is not None:
        base = (build_online_plan(snapshot, list(on_demand.base_refs), True, repo_path)
                if on_demand.base_refs else OnlinePlan((), ()))
        clash = set(on_demand.output_names) & set(base.join_keys)
        if clash:
            raise InvalidRequestError(f"feature name(s) {sorted(clash)} clash with join keys",
                                      hint="pass full_feature_names=True")
        return replace(base, on_demand=on_demand)
    views: list[OnlineView] = []
    keys: list[str] = []
    groups = parse_refs(snapshot, features)
    names = output_names(groups, full_feature_names)
    outputs = [o for outs in names for o in outs]
    for (view, feats), outs in zip(groups, names):
        jk = snapshot.join_keys(view)
        aggs: list[AggSpec] = []
        if view.aggregations:
            by_name = {f.name: f for _, f in view.aggregation_fields()}
            by_agg = {a.feature_name: a for a in view.aggregations}
            aggs = [agg_spec(view, by_agg[name], out) for name, out in zip(feats, outs)]
        else:
            by_name = {f.name: f for f in view.schema}
        cols = []
        for name, out in zip(feats, outs):
            dtype = by_name[name].dtype
            cols.append(OnlineFeature(name, out, dtype, as_served(by_name[name].default, dtype)))
        views.append(OnlineView(
            view.name, snapshot.online_table(view.name), jk,
            _key_types(view, jk, repo_path),
            view_visibility(view), view.on_missing, tuple(cols),
            # aggregated views: no fallback cache (keeping each read's tile states would cost
            # more than the read itself; docs/aggregations.md, "Online")
            view.fallback == "cache" and not aggs, tuple(aggs)))
        keys.extend(k for k in jk if k not in keys)
    clash = set(outputs) & set(keys)
    if clash:
        raise InvalidRequestError(f"feature name(s) {sorted(clash)} clash with join keys",
                                  hint="pass full_feature_names=True")
    return OnlinePlan(tuple(views), tuple(keys))


def agg_spec(view: FeatureView, agg: Any, output: str) -> AggSpec:
    """How the online path computes ``agg`` (an ``Aggregation`` of ``view``), served as
    ``output``."""
    return AggSpec(output, agg.column, agg.function, _us(agg.time_window), _us(view.tile_of(agg)))


def tile_layout(view: FeatureView) -> TileLayout:
    """What the tile states of aggregated ``view`` hold (every aggregation, whatever a request
    names)."""
    return TileLayout.of([agg_spec(view, a, a.feature_name) for a in view.aggregations],
                         view.batch_source.event_id_column is not None)


def _us(td: Any) -> int:
    return (td.days * 86_400 + td.seconds) * 1_000_000 + td.microseconds


def as_served(value: Any, dtype: T.ValueType) -> Any:
    """A field default as the offline join serves it: through the column's Arrow type, so an
    ``int`` default of a Float64 field is a float and a Float32 default is rounded to float32."""
    if value is None:
        return None
    return pa.array([value], type=dtype.to_arrow()).to_pylist()[0]
