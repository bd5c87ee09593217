"""The engine-neutral plan of a point-in-time retrieval.

Everything an engine must know is decided here, once: which source columns feed which output
columns, the TTL, defaults, the created-timestamp tie-break, the ``as_of`` cut-off. Engines
translate a ``HistoricalPlan``; they never reinterpret the rules (``docs/point-in-time.md#the-rule``;
which rows count at a time, TTL, ``as_of`` and availability, is ``plan/visibility.py``):

  for each entity row r and view V, take the source row f with the same join keys,
  ``r.ts - V.ttl <= f.ts <= r.ts`` (no lower bound without ttl), the greatest ``f.ts``, ties
  broken by the greatest created timestamp (a null created timestamp is the oldest). With
  ``as_of``, only rows known by then count (``created <= as_of``, or ``f.ts <= as_of`` when
  the source has no created timestamp). No row: the field default if ``on_missing="default"``,
  else null.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa

from skewless import types as T
from skewless.define import FeatureService, FeatureView
from skewless.errors import InvalidRequestError, UnknownObjectError, closest
from skewless.kernels.source import ResolvedSource, did_you_mean, resolve_source
from skewless.registry.snapshot import Snapshot
from skewless.plan.aggregate import AggregateRequest, aggregate_request
from skewless.plan.refs import output_names, parse_refs
from skewless.plan.visibility import Visibility
from skewless.times import to_utc

ROW_ID = "__skewless_row"


@dataclass(frozen=True)
class FeatureColumn:
    feature: str          # name in the view
    source_column: str    # column in the source files
    output: str           # column name in the result
    dtype: T.ValueType
    default: Any          # served when nothing is known and the view uses defaults


@dataclass(frozen=True)
class ViewRequest:
    view: str
    source: ResolvedSource
    timestamp_column: str
    created_column: str | None
    join_keys: tuple[str, ...]     # entity_df columns
    source_keys: tuple[str, ...]   # matching source columns
    ttl: timedelta | None
    use_default: bool
    features: tuple[FeatureColumn, ...]
    # how long after its event time a source row lands (DESIGN section 2); not declarable yet:
    # None until sources carry it, and the one field the engines will read it from
    availability_delay: timedelta | None = None

    @property
    def visibility(self) -> Visibility:
        """Which source rows count at a label's time (plan/visibility.py)."""
        return Visibility.of(self.ttl, self.availability_delay)


@dataclass(frozen=True)
class HistoricalPlan:
    """``views``: the point-in-time views; ``aggregations``: the aggregated views
    (``plan/aggregate.py``). The result's feature columns come in request order
    (``output_columns``), whichever of the two a feature belongs to."""

    views: tuple[ViewRequest, ...]
    timestamp_column: str          # in the entity_df
    as_of: datetime | None = None
    aggregations: tuple[AggregateRequest, ...] = ()
    order: tuple[str, ...] = ()    # the feature columns in request order (default: views first)

    @property
    def output_columns(self) -> list[str]:
        if self.order:
            return list(self.order)
        return ([f.output for v in self.views for f in v.features]
                + [c.output for a in self.aggregations for c in a.columns])

    @property
    def output_schema(self) -> pa.Schema:
        types = {f.output: f.dtype for v in self.views for f in v.features}
        types.update({c.output: c.dtype for a in self.aggregations for c in a.columns})
        return pa.schema([(name, types[name].to_arrow()) for name in self.output_columns])

    def point_in_time(self) -> HistoricalPlan:
        """The plan without its aggregations (what the point-in-time join computes)."""
        return HistoricalPlan(self.views, self.timestamp_column, self.as_of)

    @property
    def join_key_sets(self) -> list[tuple[str, tuple[str, ...]]]:
        """(view, its entity_df join keys) of every view requested, aggregated or not."""
        return [(v.view, v.join_keys) for v in self.views] + [
            (a.view, a.join_keys) for a in self.aggregations]


def build_plan(
    snapshot: Snapshot,
    features: Sequence[str] | FeatureService | str,
    repo_path: str | Path,
    timestamp_column: str,
    full_feature_names: bool = False,
    as_of: datetime | None = None,
    reserved: Sequence[str] = (),
) -> HistoricalPlan:
    """Resolve the request against the registry into an engine-neutral plan."""
    requests = []
    aggregations = []
    groups = parse_refs(snapshot, features)
    all_outputs: list[str] = []
    for (view, feats), outs in zip(groups, output_names(groups, full_feature_names)):
        keys = snapshot.join_keys(view)
        src = view.batch_source
        if view.aggregated:
            all_outputs.extend(outs)
            aggregations.append(aggregate_request(view, feats, outs, keys, resolve_source(src, repo_path)))
            continue
        by_name = {f.name: f for f in view.schema}
        cols = []
        for fname, out in zip(feats, outs):
            field = by_name[fname]
            cols.append(FeatureColumn(fname, src.source_column(fname), out, field.dtype,
                                      field.default if view.on_missing == "default" else None))
        all_outputs.extend(outs)
        requests.append(ViewRequest(
            view=view.name,
            source=resolve_source(src, repo_path),
            timestamp_column=src.timestamp_field,
            created_column=src.created_timestamp_column,
            join_keys=keys,
            source_keys=tuple(src.source_column(k) for k in keys),
            ttl=view.ttl,
            use_default=view.on_missing == "default",
            features=tuple(cols),
        ))
    clash = sorted(set(all_outputs) & set(reserved))
    if clash:
        raise InvalidRequestError(
            f"feature column(s) {clash} would overwrite column(s) of entity_df",
            hint="rename those entity_df columns or pass full_feature_names=True")
    return HistoricalPlan(tuple(requests), timestamp_column, to_utc(as_of) if as_of else None,
                          tuple(aggregations), tuple(all_outputs))


def check_entity_schema(plan: HistoricalPlan, schema: pa.Schema) -> None:
    """entity_df must have the timestamp column (a timestamp) and every view's join keys."""
    ts = plan.timestamp_column
    if ts not in schema.names:
        raise InvalidRequestError(
            f"entity_df has no timestamp column '{ts}'{did_you_mean(ts, schema.names)}; its "
            f"columns are {schema.names}",
            hint=f"add a '{ts}' column (when each label was observed), or set "
            "entity_timestamp_column in feature_store.yaml")
    t = schema.field(ts).type
    if not (pa.types.is_timestamp(t) or pa.types.is_date(t)):
        raise InvalidRequestError(
            f"entity_df column '{ts}' has type {t}, expected a timestamp",
            hint=f"convert it: df['{ts}'] = pd.to_datetime(df['{ts}'], utc=True)")
    for view, join_keys in plan.join_key_sets:
        missing = [k for k in join_keys if k not in schema.names]
        if missing:
            near = "".join(did_you_mean(k, schema.names).replace(" (", f" ('{k}': ", 1) for k in missing)
            raise InvalidRequestError(
                f"entity_df lacks join key column(s) {missing} needed by feature view '{view}'"
                f"{near}; its columns are {schema.names}",
                hint=f"add {missing} to entity_df, or drop the features of '{view}'")
    if ROW_ID in schema.names:
        raise InvalidRequestError(f"entity_df may not have a column named '{ROW_ID}'")
