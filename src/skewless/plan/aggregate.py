"""The engine-neutral plan of the windowed aggregations of a retrieval (docs/aggregations.md).

Beside ``HistoricalPlan``'s point-in-time views, a retrieval may ask for aggregated features;
each aggregated view requested becomes one ``AggregateRequest``. Everything an engine must know
is decided here, once:

  for each entity row r at time t and each aggregation a of view V: the events e of V's source
  with the same join keys and ``window_start(t) <= e.ts < t``, where
  ``window_start(t) = floor_tile(t - a.window)`` (tiles epoch-aligned, ``a.tile_us`` long),
  and usable by ``t``: ``e.ts + availability_delay <= t`` (``plan/visibility.py``; the
  source's delay, 0 when none: then ``e.ts < t`` is the whole bound);
  with ``as_of``, only the events known by then (``plan/visibility.py``'s ``known_column``);
  with an event id column, one row per event id (``skewless.aggregate.dedup_events``' rule);
  null values skipped; then ``a.function`` over the values. An empty window: count 0, else
  the default when the view's ``on_missing`` is ``"default"``, else null. A label without a
  time or with a null key has an empty window.

Engines translate the rule; the reference engine scans each entity's events for each label,
the DuckDB engine merges partials per (key, tile) (``engines/sql.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from skewless import types as T
from skewless.aggregate.windows import floor_tile, micros
from skewless.define import FeatureView
from skewless.kernels.source import ResolvedSource
from skewless.plan.visibility import Visibility, view_visibility


@dataclass(frozen=True)
class AggregateColumn:
    """One requested aggregated feature."""

    feature: str                 # the feature's name in the view
    output: str                  # its column in the result
    function: str
    source_column: str           # the column of the source files it reads
    column_type: T.ValueType     # the declared type of that column
    dtype: T.ValueType           # the feature's type (``skewless.aggregate.output_type``)
    window_us: int
    tile_us: int
    default: Any                 # for an empty window, when the view uses defaults (never count)

    def window_start(self, t_us: int) -> int:
        """The first event time the window at ``t_us`` covers (events before ``t_us`` count)."""
        return window_start(t_us, self.window_us, self.tile_us)


def window_start(t_us: int, window_us: int, tile_us: int) -> int:
    """``floor_tile(t - window)``: the window's tail rounded down to its tile."""
    return floor_tile(t_us - window_us, tile_us)


@dataclass(frozen=True)
class ReadColumn:
    source_column: str
    dtype: T.ValueType


@dataclass(frozen=True)
class AggregateRequest:
    """The requested aggregations of one view, and how to read its events."""

    view: str
    source: ResolvedSource
    timestamp_column: str
    created_column: str | None
    event_id_column: str | None
    join_keys: tuple[str, ...]        # entity_df columns
    source_keys: tuple[str, ...]      # matching source columns
    columns: tuple[AggregateColumn, ...]
    # the source columns of every aggregation of the view (schema order), with their types
    value_columns: tuple[tuple[str, T.ValueType], ...]
    use_default: bool
    # the source's availability delay in microseconds (0: none): an event counts at t only
    # once usable, ``ts + delay_us <= t`` (``plan/visibility.py``)
    delay_us: int = 0

    def usable_before(self, t_us: int) -> int:
        """The exclusive upper bound of the event times a window at ``t_us`` counts: ``t_us``
        without a delay (``e.ts < t``), else ``newest_us(t) + 1`` (``e.ts + delay <= t``, which
        implies ``e.ts < t``)."""
        return usable_before(t_us, self.delay_us)

    @property
    def features(self) -> tuple[ReadColumn, ...]:
        """The value columns read, as readers of a view's columns expect them (error
        diagnosis: ``engines/duckdb_errors.py``)."""
        return tuple(ReadColumn(name, dtype) for name, dtype in self.value_columns)

    @property
    def dedup_columns(self) -> tuple[str, ...]:
        """The value columns breaking ties between copies of one event id, in order: every
        aggregated column of the view, in schema order (docs/aggregations.md, "Event ids")."""
        return tuple(c for c, _ in self.value_columns)


def usable_before(t_us: int, delay_us: int) -> int:
    """The exclusive bound of the event times of a source with availability delay ``delay_us``
    (0: none) usable at ``t_us`` by a window (``e.ts < t`` and ``e.ts + delay <= t``): ``t_us``
    without a delay, ``newest_us(t) + 1`` with one. What offline windows count at ``t`` and what
    an aggregated view's tiles hold once materialized up to ``t``."""
    return t_us if not delay_us else Visibility(None, delay_us).newest_us(t_us) + 1


def aggregate_request(view: FeatureView, features: list[str], outputs: list[str],
                      join_keys: tuple[str, ...], source: ResolvedSource) -> AggregateRequest:
    """The request for ``features`` of the aggregated ``view`` (their result columns
    ``outputs``). The source's availability delay bounds the events counted
    (``AggregateRequest.usable_before``)."""
    src = view.batch_source
    by_feature = {a.feature_name: (a, f) for a, f in view.aggregation_fields()}
    declared = {f.name: f.dtype for f in view.schema}
    cols = []
    for name, out in zip(features, outputs):
        agg, field = by_feature[name]
        cols.append(AggregateColumn(
            feature=name, output=out, function=agg.function,
            source_column=src.source_column(agg.column), column_type=declared[agg.column],
            dtype=field.dtype, window_us=micros(agg.time_window),
            tile_us=micros(view.tile_of(agg)),
            default=field.default if view.on_missing == "default" else None))
    # every aggregated column of the view, in schema order, requested or not: the event-id
    # tie-break reads them all, so an event's surviving copy never depends on the request
    aggregated = {a.column for a in view.aggregations}
    values = tuple((src.source_column(f.name), f.dtype) for f in view.schema if f.name in aggregated)
    return AggregateRequest(
        view=view.name, source=source, timestamp_column=src.timestamp_field,
        created_column=src.created_timestamp_column, event_id_column=src.event_id_column,
        join_keys=join_keys, source_keys=tuple(src.source_column(k) for k in join_keys),
        columns=tuple(cols), value_columns=values, use_default=view.on_missing == "default",
        delay_us=view_visibility(view).delay_us)
