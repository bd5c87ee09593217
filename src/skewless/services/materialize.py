"""Materialization: offline source -> online store, the latest row per entity, only if newer.

Idempotent and order-independent (the store keeps the greatest (event, created) pair), and
resumable: a view's watermark advances in the registry only after all its rows are written, so
a run killed midway is simply repeated. Watermarks live in the registry's state table, apart
from the definitions.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pyarrow as pa

from skewless.define import FeatureView
from skewless.engines.base import OfflineEngine
from skewless.errors import MaterializationError, SourceError, UnknownObjectError, closest
from skewless.kernels.source import check_view_source, resolve_source
from skewless.online import OnlineStore, table_name
from skewless.online.codec import OLDEST, Record, encode_key, micros
from skewless.plan.historical import to_utc
from skewless.plan.materialize import CREATED_TS, EVENT_TS, materialize_request
from skewless.registry import RegistryStore, Snapshot

STATE = "materialization"
_NO_CREATED_YET = datetime(1, 1, 1, tzinfo=timezone.utc)
RowsCallback = Callable[[str, int], None]


@dataclass
class ViewReport:
    view: str
    rows: int
    start: datetime | None
    end: datetime
    seconds: float


def online_views(snapshot: Snapshot, names: Sequence[str] | None) -> list[FeatureView]:
    if names is None:
        return [v for v in snapshot.feature_views.values() if v.online]
    out = []
    for n in names:
        if n not in snapshot.feature_views:
            raise UnknownObjectError(f"feature view '{n}' is unknown; {closest(n, snapshot.feature_views)}")
        view = snapshot.feature_views[n]
        if not view.online:
            raise MaterializationError(f"feature view '{n}' has online=False; it is not served online")
        out.append(view)
    return out


def check_sources(snapshot: Snapshot, views: Sequence[FeatureView], repo_path: str | Path) -> None:
    """Every file of every view's source against its declaration, by the one conformance table
    (docs/types.md), before anything is written: a drifted file is a SourceError naming the
    view, the file, the column and a bad row; the online store and the watermarks stay as they
    were, for every view of the run."""
    problems: list[str] = []
    for view in views:
        resolved = resolve_source(view.batch_source, repo_path)
        problems.extend(check_view_source(view, snapshot.join_keys(view), resolved))
    if problems:
        names = ", ".join(f"'{v.name}'" for v in views)
        raise SourceError(
            f"source data does not match the declared types; nothing was written online and no "
            f"watermark moved (feature view(s) {names}):\n" + "\n".join(f"  - {p}" for p in problems),
            hint="fix or remove the file(s) named (or change the declared types, then "
            "`skewless apply`); see docs/types.md")


def check_window(start: datetime | None, end: datetime, now: datetime) -> tuple[datetime | None, datetime]:
    end = to_utc(end)
    start = to_utc(start) if start is not None else None
    if end > now:
        raise MaterializationError(
            f"end {end.isoformat()} is in the future (now is {now.isoformat()})",
            hint="materialize up to now at most: the online store must never run ahead of what the "
            "offline join would know")
    if start is not None and start > end:
        raise MaterializationError(f"start {start.isoformat()} is after end {end.isoformat()}",
                                   hint="swap them")
    return start, end


def _storable_column(col: pa.ChunkedArray | pa.Array) -> list[Any]:
    """A column as Python values the online codec stores: timestamps (and lists of them) as
    microseconds since the epoch, computed by Arrow rather than via Python datetimes."""
    t = col.type
    if pa.types.is_timestamp(t):
        col = col.cast(pa.timestamp("us", t.tz)).cast(pa.int64())
    elif (pa.types.is_list(t) or pa.types.is_large_list(t)) and pa.types.is_timestamp(t.value_type):
        col = col.cast(pa.list_(pa.timestamp("us", t.value_type.tz))).cast(pa.list_(pa.int64()))
    return col.to_pylist()  # type: ignore[no-any-return]


def batch_records(batch: pa.RecordBatch, join_keys: Sequence[str], features: Sequence[str]
                  ) -> list[tuple[bytes, Record]]:
    """Arrow rows of the latest-row query -> (encoded key, Record) pairs."""
    keys = zip(*(batch.column(k).to_pylist() for k in join_keys))
    event = batch.column(EVENT_TS).cast(pa.int64()).to_pylist()
    created = [OLDEST if c is None else c for c in batch.column(CREATED_TS).cast(pa.int64()).to_pylist()]
    names = tuple(features)
    rows = zip(*(_storable_column(batch.column(f)) for f in features)) if features else \
        iter(lambda: (), None)
    return [(encode_key(key), Record(ev, cr, names, vals))
            for key, ev, cr, vals in zip(keys, event, created, rows)]


def materialize(engine: OfflineEngine, store: OnlineStore, registry: RegistryStore, snapshot: Snapshot,
                repo_path: str | Path, views: Sequence[str] | None, start: datetime | None,
                end: datetime, now: datetime, incremental: bool = False,
                on_rows: RowsCallback | None = None, batch_rows: int = 100_000) -> list[ViewReport]:
    start, end = check_window(start, end, now)
    reports = []
    selected = online_views(snapshot, views)
    check_sources(snapshot, selected, repo_path)
    for view in selected:
        t0 = time.perf_counter()
        state = registry.get_state(snapshot.project, STATE, view.name) if incremental else None
        v_start, created_after = start, None
        if state is not None:
            prev_end = datetime.fromisoformat(state["end"])
            if prev_end >= end and not view.batch_source.created_timestamp_column:
                reports.append(ViewReport(view.name, 0, prev_end, end, 0.0))
                continue
            v_start = prev_end + timedelta(microseconds=1)
            if state.get("created_high"):
                created_after = datetime.fromisoformat(state["created_high"])
            elif view.batch_source.created_timestamp_column:
                # No created time seen yet (none written, or all null): any row with one may
                # be late data, whatever its event time.
                created_after = _NO_CREATED_YET
        request = materialize_request(snapshot, view, repo_path, end, v_start, created_after)
        table = table_name(snapshot.project, view.name)
        store.create([table])
        features = [f.output for f in request.features]
        rows = 0
        created_high = created_after
        for batch in engine.latest(request, batch_rows):
            records = batch_records(batch, request.join_keys, features)
            store.write_batch({table: records})
            rows += len(records)
            top = max((r.created_ts for _, r in records), default=OLDEST)
            if top != OLDEST:
                top_dt = datetime.fromtimestamp(0, timezone.utc) + timedelta(microseconds=top)
                created_high = top_dt if created_high is None else max(created_high, top_dt)
            if on_rows:
                on_rows(view.name, len(records))
        prev = registry.get_state(snapshot.project, STATE, view.name) or {}
        new_end = max(end, datetime.fromisoformat(prev["end"])) if prev.get("end") else end
        if prev.get("created_high"):
            old_high = datetime.fromisoformat(prev["created_high"])
            created_high = old_high if created_high is None else max(created_high, old_high)
        registry.set_state(snapshot.project, STATE, view.name, {
            "end": new_end.isoformat(),
            "created_high": created_high.isoformat() if created_high else None,
            "rows": rows, "total_rows": prev.get("total_rows", 0) + rows,
            "at": datetime.now(timezone.utc).isoformat(),
        })
        reports.append(ViewReport(view.name, rows, v_start, end, time.perf_counter() - t0))
    return reports


def watermarks(registry: RegistryStore, project: str) -> dict[str, dict[str, Any]]:
    return registry.list_state(project, STATE)


__all__ = ["ViewReport", "materialize", "watermarks", "micros"]
