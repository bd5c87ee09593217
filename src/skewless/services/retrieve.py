"""Point-in-time training data: resolve the request, check entity_df, hand the plan to the engine."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from skewless.context import RuntimeContext
from skewless.define import FeatureService
from skewless.engines.base import EntityInput, RetrievalJob, check_entity_input
from skewless.errors import SkewlessError, SourceError
from skewless.kernels.source import check_key_types, check_view_source, source_schema
from skewless.plan.aggregate import AggregateRequest
from skewless.plan.historical import ViewRequest, build_plan, check_entity_schema
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


__all__ = ["get_historical_features", "SkewlessError"]
