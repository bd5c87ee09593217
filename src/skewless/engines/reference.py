"""The reference engine: the rule of ``docs/point-in-time.md#the-rule`` as the obvious loop,
written to be read, not fast.

It is the oracle of the conformance suite: every other engine must return exactly its table.
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Literal

import pyarrow as pa

from skewless.backends import Backend, BackendSettings, never
from skewless.engines.base import Capabilities, EntityInput, ProgressCallback, RetrievalJob
from skewless.engines.reference_aggregate import aggregated_columns
from skewless.errors import InvalidRequestError
from skewless.kernels.source import UTC_MICROS, read_conformed
from skewless.plan.historical import HistoricalPlan, ViewRequest
from skewless.plan.materialize import CREATED_TS, EVENT_TS, MaterializeRequest

if TYPE_CHECKING:
    from skewless.config import RepoConfig


# --- the backend: settings, capabilities, factory ----------------------------------------------
class ReferenceOfflineConfig(BackendSettings):
    """The brute-force reference engine: the oracle the other engines are tested against."""

    type: Literal["reference"]


_ORACLE = "the reference engine is a brute-force loop over in-memory tables (the oracle)"
CAPABILITIES = Capabilities(
    sql_entity_df=never(_ORACLE, "pass entity_df as a DataFrame or an Arrow table, or use "
                        "offline_store: {type: duckdb}"),
    streaming_parquet=never(_ORACLE),
    spills_to_disk=never(_ORACLE, "use offline_store: {type: duckdb} for larger-than-memory data"),
)


def _make(config: RepoConfig, settings: ReferenceOfflineConfig) -> ReferenceEngine:
    return ReferenceEngine()


BACKEND = Backend("offline_engine", "reference", ReferenceOfflineConfig, _make, CAPABILITIES,
                  testing="skewless.testing.backends:REFERENCE",
                  description="the brute-force oracle the other engines are tested against")
# -------------------------------------------------------------------------------------------------

_OLDEST = datetime.min.replace(tzinfo=timezone.utc)


def _utc(value: Any) -> datetime | None:
    """A timestamp cell as an aware UTC datetime (naive means UTC), microsecond precision."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=timezone.utc)
    raise TypeError(f"not a timestamp: {value!r}")


def _timestamps(column: pa.ChunkedArray) -> list[datetime | None]:
    t = column.type
    if pa.types.is_timestamp(t) and t.unit == "ns":  # Python datetimes hold microseconds
        column = column.cast(pa.timestamp("us", tz=t.tz), safe=False)
    return [_utc(v) for v in column.to_pylist()]


def _read(r: ViewRequest | MaterializeRequest) -> pa.Table:
    """The columns the request reads, file by file, each feature converted to its declared type
    by the one conformance table (shared with every path; docs/types.md), times to UTC
    microseconds. What the loop below does with them is this engine's own."""
    columns: dict[str, pa.DataType | None] = {r.timestamp_column: UTC_MICROS}
    if r.created_column:
        columns[r.created_column] = UTC_MICROS
    for k in r.source_keys:
        columns.setdefault(k, None)
    for f in r.features:
        columns[f.source_column] = f.dtype.to_arrow()
    return read_conformed(r.source, columns, r.view)


class ReferenceEngine:
    name = "reference"
    capabilities = CAPABILITIES

    def entity_schema(self, entity: EntityInput) -> pa.Schema:
        if entity.table is None:
            raise InvalidRequestError("the reference engine takes entity_df as a DataFrame or "
                                      "Arrow table, not SQL")
        return entity.table.schema

    def historical(self, plan: HistoricalPlan, entity: EntityInput) -> RetrievalJob:
        self.entity_schema(entity)
        return RetrievalJob(plan, entity, lambda progress: self._run(plan, entity.table))

    def _run(self, plan: HistoricalPlan, entity: pa.Table) -> pa.Table:
        label_times = _timestamps(entity.column(plan.timestamp_column))
        columns: dict[str, list[Any]] = {}
        for view in plan.views:
            rows = self._source_rows(view, plan)
            keys = list(zip(*(entity.column(k).to_pylist() for k in view.join_keys)))
            for feature in view.features:
                columns[feature.output] = []
            for key, t in zip(keys, label_times):
                best = self._latest(rows, key, t, view) if t is not None else None
                for feature in view.features:
                    if best is None:
                        columns[feature.output].append(feature.default if view.use_default else None)
                    else:
                        columns[feature.output].append(best["values"][feature.source_column])
        for request in plan.aggregations:
            columns.update(aggregated_columns(request, entity, label_times, plan.as_of))
        schema = plan.output_schema
        return pa.table({name: pa.array(columns[name], type=schema.field(name).type)
                         for name in schema.names}, schema=schema)

    def latest(self, request: MaterializeRequest, batch_rows: int = 100_000) -> Iterator[pa.RecordBatch]:
        """For each entity, the row with the greatest (event, created) time in the window."""
        table = _read(request)
        event = _timestamps(table.column(request.timestamp_column))
        created = (_timestamps(table.column(request.created_column)) if request.created_column
                   else [None] * table.num_rows)
        keys = list(zip(*(table.column(k).to_pylist() for k in request.source_keys)))
        end = _utc(request.end)
        start = _utc(request.start) if request.start else None
        after = _utc(request.created_after) if request.created_after else None
        best: dict[tuple[Any, ...], int] = {}
        for i, key in enumerate(keys):
            ts = event[i]
            if ts is None or ts > end or any(k is None for k in key):  # type: ignore[operator]
                continue
            in_window = (start is None or ts >= start
                         or (after is not None and created[i] is not None and created[i] >= after))  # type: ignore[operator]
            if not in_window:
                continue
            j = best.get(key)
            if j is None or (ts, created[i] or _OLDEST) > (event[j], created[j] or _OLDEST):  # type: ignore[operator]
                best[key] = i
        rows = pa.array(list(best.values()), pa.int64())  # typed: an empty window takes nothing
        columns: dict[str, pa.Array] = {}
        for k, sk in zip(request.join_keys, request.source_keys):
            columns[k] = table.column(sk).take(rows)
        ts_type = pa.timestamp("us", tz="UTC")
        columns[EVENT_TS] = pa.array([event[i] for i in best.values()], type=ts_type)
        columns[CREATED_TS] = pa.array([created[i] for i in best.values()], type=ts_type)
        for f in request.features:
            columns[f.output] = table.column(f.source_column).take(rows)
        yield from pa.table(columns).to_batches(max_chunksize=batch_rows)

    @staticmethod
    def _latest(rows: list[dict[str, Any]], key: tuple[Any, ...], t: datetime,
                view: ViewRequest) -> dict[str, Any] | None:
        """The source row for entity ``key`` known at ``t``: the latest event time within the
        TTL, ties broken by the latest created time."""
        if any(k is None for k in key):
            return None
        best = None
        for row in rows:
            if row["key"] != key or row["ts"] is None or row["ts"] > t:
                continue
            if view.ttl is not None and row["ts"] < t - view.ttl:
                continue
            if best is None or (row["ts"], row["created"]) > (best["ts"], best["created"]):
                best = row
        return best

    @staticmethod
    def _source_rows(view: ViewRequest, plan: HistoricalPlan) -> list[dict[str, Any]]:
        table = _read(view)
        event = _timestamps(table.column(view.timestamp_column))
        created = (_timestamps(table.column(view.created_column)) if view.created_column
                   else [None] * table.num_rows)
        values = {}
        for f in view.features:
            values[f.source_column] = table.column(f.source_column).to_pylist()
        key_cols = [table.column(k).to_pylist() for k in view.source_keys]
        rows = []
        for i in range(table.num_rows):
            known_at = created[i] if view.created_column else event[i]
            if plan.as_of is not None and (known_at is None or known_at > plan.as_of):
                continue
            rows.append({
                "key": tuple(col[i] for col in key_cols),
                "ts": event[i],
                "created": created[i] or _OLDEST,
                "values": {name: vals[i] for name, vals in values.items()},
            })
        return rows
