"""The engine-neutral plan of a materialization: per view, the latest row of each entity
among the source rows in a window (``docs/online.md#materialization``).

Window: the rows that land in ``[start, end]`` (``start`` None: from the beginning), a row
landing at ``event_ts + availability_delay`` (the source's delay, 0 when none;
``plan/visibility.py``): so ``start - delay <= event_ts <= end - delay``, the event-time bounds
the request carries. A run up to ``end`` therefore writes only rows already usable at ``end``,
and "materialized up to t" means every source row usable by t is in the online store
(docs/online.md, "Availability delay").

Incremental runs add ``created_after``: rows whose created timestamp is at or after the
previous run's high-water mark count too, whatever their event time (late data: an old event
written recently is not lost), as long as they had landed by ``end``. "At or after": a row
written after the last run may share the high-water mark's created time when created times are
coarse (seconds, days); reading a row twice is harmless, since the store keeps only newer rows.
The latest row is the greatest (event_ts, created_ts), exactly the order of the offline join;
the online store keeps a row only if it is newer still.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from skewless.define import FeatureView
from skewless.kernels.source import ResolvedSource, resolve_source
from skewless.plan.historical import FeatureColumn
from skewless.plan.visibility import view_visibility
from skewless.registry import Snapshot

EVENT_TS = "__event_ts"
CREATED_TS = "__created_ts"


@dataclass(frozen=True)
class MaterializeRequest:
    view: str
    source: ResolvedSource
    timestamp_column: str
    created_column: str | None
    join_keys: tuple[str, ...]
    source_keys: tuple[str, ...]
    features: tuple[FeatureColumn, ...]
    end: datetime                   # event-time bounds (inclusive): the window less the delay
    start: datetime | None = None
    created_after: datetime | None = None


def materialize_request(snapshot: Snapshot, view: FeatureView, repo_path: str | Path, end: datetime,
                        start: datetime | None = None, created_after: datetime | None = None
                        ) -> MaterializeRequest:
    """The request of ``view`` for the rows landing in ``[start, end]`` (module docstring): the
    event-time bounds are the window's, less the source's availability delay."""
    vis = view_visibility(view)
    keys = snapshot.join_keys(view)
    src = view.batch_source
    feats = tuple(FeatureColumn(f.name, src.source_column(f.name), f.name, f.dtype, None)
                  for f in view.features_for(set(keys)))
    return MaterializeRequest(
        view=view.name, source=resolve_source(src, repo_path),
        timestamp_column=src.timestamp_field,
        created_column=src.created_timestamp_column,
        join_keys=keys, source_keys=tuple(src.source_column(k) for k in keys),
        features=feats, end=vis.available_until(end),
        start=vis.available_until(start) if start is not None else None,
        created_after=created_after if src.created_timestamp_column else None)
