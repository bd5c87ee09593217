"""Point-in-time training data: resolve the request, check entity_df, hand the plan to the engine."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from skewless.context import RuntimeContext
from skewless.define import FeatureService
import pyarrow as pa

from skewless.engines.base import EntityInput, RetrievalJob, check_entity_input
from skewless.errors import InvalidRequestError, SkewlessError, SourceError
from skewless.kernels import on_demand as on_demand_kernel
from skewless.kernels.source import check_key_types, check_view_source, did_you_mean, source_schema
from skewless.plan.aggregate import AggregateRequest
from skewless.plan.historical import HistoricalPlan, ViewRequest, build_plan, check_entity_schema
from skewless.plan.on_demand import OnDemandRequest, resolve_on_demand
from skewless.registry import Snapshot


def get_historical_features(
    ctx: RuntimeContext,
    snapshot: Snapshot,
    entity_df: Any,
    features: Sequence[str] | FeatureService | str,
    *,
    full_feature_names: bool = False,
    as_of: datetime | None = None,
) -> RetrievalJob:
    """Validate everything up front (entity columns, key types, every source file by the one
    conformance table of docs/types.md), then return the context's engine's lazy job. The
    entity rows' timestamp column is the context's ``entity_timestamp_column``. Errors name
    the column, view or file at fault."""
    engine = ctx.engine
    entity = EntityInput.of(entity_df)
    check_entity_input(engine, entity)
    schema = engine.entity_schema(entity)
    on_demand = resolve_on_demand(snapshot, features, full_feature_names)
    if on_demand is not None:
        return _with_on_demand(ctx, snapshot, entity_df, entity, schema, on_demand, as_of)
    plan = build_plan(snapshot, features, ctx.repo_path, ctx.timestamp_column, full_feature_names,
                      as_of, reserved=schema.names)
    check_entity_schema(plan, schema)
    problems: list[str] = []
    requests: list[ViewRequest | AggregateRequest] = [*plan.views, *plan.aggregations]
    for v in requests:
        view = snapshot.feature_views[v.view]
        problems.extend(check_view_source(view, v.join_keys, v.source))
        problems.extend(check_key_types(v.view, v.join_keys, v.source_keys, source_schema(v.source),
                                        schema))
    if problems:
        raise SourceError(problems[0] if len(problems) == 1 else
                          f"{len(problems)} problems with the sources:\n"
                          + "\n".join(f"  - {p}" for p in problems),
                          hint="fix the data or the definition, then `skewless apply`; which "
                          "column types fit which declared types: docs/types.md")
    return engine.historical(plan, entity)


def _with_on_demand(ctx: RuntimeContext, snapshot: Snapshot, entity_df: Any, entity: EntityInput,
                    schema: pa.Schema, request: OnDemandRequest, as_of: datetime | None
                    ) -> RetrievalJob:
    """A request naming on-demand views: the base join of the plain features they need (full
    names), then the one runner (``kernels/on_demand.offline``). Request fields and result
    names are checked against entity_df before anything runs."""
    missing = [n for n in request.request_fields if n not in schema.names]
    if missing:
        name = missing[0]
        view = request.request_fields[name][1]
        raise InvalidRequestError(
            f"entity_df has no column '{name}', a request field of on-demand feature view "
            f"'{view}'{did_you_mean(name, schema.names)}; its columns are {schema.names}",
            hint=f"add a '{name}' column to entity_df (offline, request values are read from "
            "it, one per row)")
    clash = sorted(set(request.output_names) & set(schema.names))
    if clash:
        raise InvalidRequestError(
            f"feature column(s) {clash} would overwrite column(s) of entity_df",
            hint="rename those entity_df columns or pass full_feature_names=True")
    if request.base_refs:
        job = get_historical_features(ctx, snapshot, entity_df, list(request.base_refs),
                                      full_feature_names=True, as_of=as_of)
    else:   # only request fields are read: one empty feature row per entity row
        if ctx.timestamp_column not in schema.names:
            raise InvalidRequestError(f"entity_df has no timestamp column '{ctx.timestamp_column}'")
        plan = HistoricalPlan((), ctx.timestamp_column)
        job = RetrievalJob(plan, entity, lambda progress: _empty_features(ctx, entity))
    return job.on_demand(lambda features, table: on_demand_kernel.offline(request, features, table),
                         request.output_names)


def _empty_features(ctx: RuntimeContext, entity: EntityInput) -> pa.Table:
    if entity.table is not None:
        return entity.table.select([])
    return ctx.engine.historical(HistoricalPlan((), ctx.timestamp_column), entity).to_arrow()


__all__ = ["get_historical_features", "SkewlessError"]
