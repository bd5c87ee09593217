"""On-demand feature views in a request: the engine-neutral part, decided once for the offline
and the online path (docs/on-demand.md).

A request that names an on-demand view (``"odfv:feature"``, ``"odfv:*"``, or a FeatureService
listing one) is split into

- a *base* request of plain features, ``"view:feature"`` references: the ones asked for and the
  ones the on-demand views read (their sources), answered by the ordinary point-in-time join or
  online read, with full names (``view__feature``) so no two columns meet;
- one ``Transform`` per on-demand view: which base column feeds which input name, which request
  fields it reads (from ``entity_df`` offline, from the entity rows online), its outputs;
- the result columns in request order, each with its base or transform column and its name.

A view's features are read as features of a view whatever computes them (a windowed
aggregation's features are features of its view), so any FeatureView can be a source.
The transforms themselves run in ``kernels/on_demand.py``, the one runner both paths call.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from skewless import types as T
from skewless.define import FeatureService, FeatureView, FeatureViewProjection, OnDemandFeatureView
from skewless.define.on_demand import UserFunction
from skewless.errors import InvalidRequestError, UnknownObjectError, closest
from skewless.registry.snapshot import Snapshot


@dataclass(frozen=True)
class Transform:
    """One on-demand view's run: ``inputs`` are (name the function sees, base column, type),
    ``request`` the request fields it reads (name, declared type), ``outputs`` its declared
    outputs (feature, working column, type), all computed on every run."""

    view: str
    function: UserFunction
    mode: str
    inputs: tuple[tuple[str, str, T.ValueType], ...]
    request: tuple[tuple[str, T.ValueType], ...]
    outputs: tuple[tuple[str, str, T.ValueType], ...]


@dataclass(frozen=True)
class OnDemandRequest:
    """A request with on-demand views, split as the module docstring says. ``columns``: (working
    column, result name) per result column in request order; ``dtypes``: the declared type of
    each result column; ``request_fields``: every request field the transforms read, with the
    type and the name of the first view reading it (for errors; each transform converts the
    values to the type its own request source declares: ``Transform.request``)."""

    base_refs: tuple[str, ...]
    transforms: tuple[Transform, ...]
    columns: tuple[tuple[str, str], ...]
    dtypes: dict[str, T.ValueType]
    request_fields: dict[str, tuple[T.ValueType, str]]

    @property
    def output_names(self) -> list[str]:
        return [out for _, out in self.columns]


def view_features(snapshot: Snapshot, view: FeatureView) -> dict[str, T.ValueType]:
    """The features a view serves (name -> type), as an on-demand view reads them: the one
    place that says what "all features of a view" are for on-demand inputs (a view computing
    features another way, windowed aggregations, lists them here: their aggregated features)."""
    return {f.name: f.dtype for f in view.served_features(set(snapshot.join_keys(view)))}


def working(view: str, feature: str) -> str:
    """The working column of ``view``'s ``feature`` (view names never hold ``__``)."""
    return f"{view}__{feature}"


def _items(snapshot: Snapshot, features: Sequence[str] | FeatureService | str
           ) -> list[tuple[str, list[str] | None]] | None:
    """(view or on-demand view name, features or None for all) per requested group, in request
    order; None when nothing on-demand is requested (the caller's plain path answers it)."""
    odfvs = snapshot.on_demand_feature_views
    if not odfvs:
        return None   # the plain path, untouched
    if isinstance(features, str) and ":" not in features:
        features = snapshot.get("feature_service", features)
    items: list[tuple[str, list[str] | None]] = []
    if isinstance(features, FeatureService):
        items = [(p.view_name, None if p.features is None else list(p.features)) for p in features.projections]
    else:
        if isinstance(features, str):
            features = [features]
        for ref in features:
            if not isinstance(ref, str) or ref.count(":") != 1:
                return None   # the plain parser names the bad reference
            name, feat = ref.split(":")
            items.append((name, None if feat == "*" else [feat]))
    if not any(name in odfvs for name, _ in items):
        return None
    return items


def resolve_on_demand(snapshot: Snapshot, features: Sequence[str] | FeatureService | str,
                      full_feature_names: bool) -> OnDemandRequest | None:
    """The split of a request that names an on-demand view, or None when it names none.
    Raises UnknownObjectError for an unknown view or feature (closest names suggested) and
    InvalidRequestError when two result columns would share a name."""
    items = _items(snapshot, features)
    if items is None:
        return None
    odfvs = snapshot.on_demand_feature_views
    groups: dict[str, list[str]] = {}
    for name, feats in items:
        if name in odfvs:
            known = odfvs[name].field_names
        elif name in snapshot.feature_views:
            known = list(view_features(snapshot, snapshot.feature_views[name]))
        else:
            raise UnknownObjectError(
                f"unknown feature view '{name}'; {closest(name, [*snapshot.feature_views, *odfvs])}",
                hint="run `skewless ls` to list views")
        for f in known if feats is None else feats:
            if f not in known:
                raise UnknownObjectError(
                    f"feature view '{name}' has no feature '{f}'; {closest(f, known)}",
                    hint=f"run `skewless describe {name}` to list its features")
            group = groups.setdefault(name, [])
            if f not in group:
                group.append(f)
    base: list[str] = []
    transforms: list[Transform] = []
    request_fields: dict[str, tuple[T.ValueType, str]] = {}
    for name, feats in groups.items():
        if name not in odfvs:
            base.extend(f"{name}:{f}" for f in feats)
    for name in groups:
        if name in odfvs:
            transforms.append(_transform(snapshot, odfvs[name], base, request_fields))
    columns: list[tuple[str, str]] = []
    dtypes: dict[str, T.ValueType] = {}
    owner: dict[str, str] = {}
    for name, feats in groups.items():
        types = ({f.name: f.dtype for f in odfvs[name].schema} if name in odfvs
                 else view_features(snapshot, snapshot.feature_views[name]))
        for f in feats:
            out = working(name, f) if full_feature_names else f
            if out in owner:
                raise InvalidRequestError(
                    f"feature name '{out}' is requested from both '{owner[out]}' and '{name}'",
                    hint="pass full_feature_names=True to get 'view__feature' column names")
            owner[out] = name
            columns.append((working(name, f), out))
            dtypes[out] = types[f]
    return OnDemandRequest(tuple(base), tuple(transforms), tuple(columns), dtypes, request_fields)


def _transform(snapshot: Snapshot, odfv: OnDemandFeatureView, base: list[str],
               request_fields: dict[str, tuple[T.ValueType, str]]) -> Transform:
    inputs: list[tuple[str, str, T.ValueType]] = []
    for proj in odfv.view_sources:
        view = snapshot.feature_views.get(proj.view_name)
        if view is None:
            raise UnknownObjectError(
                f"on-demand feature view '{odfv.name}' reads feature view '{proj.view_name}', "
                "which is not registered", hint="apply the view, or remove it from the sources")
        types = view_features(snapshot, view)
        feats = proj.features if proj.features is not None else list(types)
        for f in feats:
            ref = f"{view.name}:{f}"
            if ref not in base:
                base.append(ref)
            inputs.append((f, working(view.name, f), types[f]))
    request: list[tuple[str, T.ValueType]] = []
    for src in odfv.request_sources:
        for field in src.schema:
            request.append((field.name, field.dtype))
            request_fields.setdefault(field.name, (field.dtype, odfv.name))
    outputs = tuple((f.name, working(odfv.name, f.name), f.dtype) for f in odfv.schema)
    return Transform(odfv.name, odfv.udf, odfv.mode, tuple(inputs), tuple(request), outputs)


def check_on_demand_sources(target: Snapshot) -> list[str]:
    """Problems of the on-demand views of ``target`` (what ``plan`` / ``apply`` report): a
    source view that is not registered, a projected feature the view does not have, an input
    name given by two sources, a request field named like a feature it reads."""
    problems: list[str] = []
    for odfv in target.on_demand_feature_views.values():
        label = f"on-demand feature view '{odfv.name}'"
        seen: dict[str, str] = {}
        for src in odfv.sources:
            if isinstance(src, FeatureViewProjection):
                view = target.feature_views.get(src.view_name)
                if view is None:
                    other = " (an on-demand view cannot read another one)" \
                        if src.view_name in target.on_demand_feature_views else ""
                    problems.append(f"{label}: source '{src.view_name}' is not a known feature view"
                                    f"{other}; {closest(src.view_name, target.feature_views)}")
                    continue
                try:
                    known = list(view_features(target, view))
                except UnknownObjectError:
                    continue   # reported with the view
                names = src.features if src.features is not None else known
                where = f"feature view '{view.name}'"
            else:
                names, where = src.field_names, f"request source '{src.name}'"
                known = names
            for n in names:
                if n not in known:
                    problems.append(f"{label}: source '{src.view_name}' has no feature '{n}'; "  # type: ignore[union-attr]
                                    f"{closest(n, known)}")
                elif n in seen and seen[n] != where:
                    problems.append(f"{label}: input '{n}' comes from both {seen[n]} and {where}")
                else:
                    seen[n] = where
    return problems
