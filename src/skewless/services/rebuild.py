"""Disaster recovery: rebuild the online store from the offline store (``rebuild-online``).

The offline store is the source of truth (every write path lands there first:
``docs/online.md#push``), so each online table can be rebuilt from it. Per view:

1. materialize everything up to ``now`` (the latest row per entity) into a fresh staging table;
2. swap it in: readers see the old table, then the new one, never a gap;
3. record the view as covered from the beginning up to ``now`` (its watermark);
4. verify: the new table holds one record per entity that has a source row at or before
   ``now``, and, on a random sample of entities, serving answers exactly what the offline join
   answers at ``now`` (values, nulls, defaults and TTL).

A view whose rebuild fails (source unreadable, store down) keeps its live table untouched: the
staging table is dropped and the error names the view. Views rebuilt before it stay rebuilt.
Concurrent ``materialize`` runs should be paused during a rebuild: rows they write to the live
table between steps 1 and 2 are replaced by the swap (the watermark reset to ``now`` makes the
next incremental run write them again, unless that run's own watermark is saved last).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from skewless import types as T
from skewless.define import FeatureView
from skewless.engines.base import OfflineEngine
from skewless.errors import SkewlessError
from skewless.online import OnlineStore, table_name
from skewless.online.codec import OLDEST, decode_key, from_micros, micros
from skewless.plan.historical import to_utc
from skewless.plan.materialize import materialize_request
from skewless.registry import RegistryStore, Snapshot
from skewless.services import online as online_svc
from skewless.services import retrieve
from skewless.registry.diff import materialization_signature
from skewless.services.materialize import (STATE, Coverage, RowsCallback, batch_records, check_sources,
                                           online_views)

SAMPLE_SIZE = 100


def staging_table(project: str, view: str) -> str:
    """The staging table of a view's rebuild (``view``: the view's online key,
    ``Snapshot.online_key``: its name, or ``{name}__v{generation}``).

    ``table_name`` joins project and online key with ``__``; a view name never contains ``__``
    and an online key never ends with it, so no table name of any view (of any project sharing
    the store) ends with ``__``: this name cannot collide with a live table. It uses only letters, digits and ``_``, valid in every
    store (SQLite quotes it; Redis allows letters, digits, ``_``, ``.`` and ``-``).
    """
    return f"{table_name(project, view)}__rebuild__"


@dataclass(frozen=True)
class Mismatch:
    """One sampled value where serving and the offline join disagree."""

    entity: dict[str, Any]
    feature: str
    online: Any
    offline: Any


@dataclass
class RebuildReport:
    view: str
    entities: int           # entities with a source row at or before ``now`` (rows written)
    stored: int             # records in the new online table after the swap
    sample_size: int        # entities whose values were compared with the offline join
    mismatches: list[Mismatch] = field(default_factory=list)
    seconds: float = 0.0    # rebuild and verification
    now: datetime | None = None

    @property
    def count_ok(self) -> bool:
        return self.stored == self.entities

    @property
    def ok(self) -> bool:
        return self.count_ok and not self.mismatches


def rebuild_online(engine: OfflineEngine, online_store: OnlineStore, registry: RegistryStore,
                   snapshot: Snapshot, repo_path: str | Path, views: Sequence[str] | None,
                   now: datetime, on_rows: RowsCallback | None = None,
                   timestamp_column: str = "event_timestamp", sample_size: int = SAMPLE_SIZE,
                   batch_rows: int = 100_000) -> list[RebuildReport]:
    """Rebuild the online tables of ``views`` (default: every online view) from the offline
    store as of ``now``, swap them in atomically, set the watermarks to ``now`` and verify.
    ``timestamp_column`` names the entity-row timestamp of the verification join."""
    now = to_utc(now)
    reports = []
    selected = online_views(snapshot, views)
    for view in selected:   # every source checked before any table is touched
        try:
            check_sources(snapshot, [view], repo_path)
        except SkewlessError as e:
            _prefix(e, f"rebuild of feature view '{view.name}' failed and its online table was "
                       "left untouched (so was every other view's): ")
            raise
    for view in selected:
        t0 = time.perf_counter()
        written, created_high = _build_and_swap(engine, online_store, snapshot, repo_path, view, now,
                                                on_rows, batch_rows)
        table = snapshot.online_table(view.name)
        key = snapshot.online_key(view.name)
        prev = registry.get_state(snapshot.project, STATE, key) or {}
        if created_high is not None:
            created_high = min(created_high, now)   # the created-time mark never passes the clock
        coverage = Coverage(materialization_signature(snapshot, view), ((None, now),), created_high)
        registry.set_state(snapshot.project, STATE, key, coverage.to_state(
            rows=written, total_rows=prev.get("total_rows", 0) + written))
        stored = online_store.count(table)
        keys = online_store.scan_keys(table, sample_size)
        mismatches = _verify_sample(engine, online_store, snapshot, repo_path, view, keys, now,
                                    timestamp_column)
        reports.append(RebuildReport(view.name, written, stored, len(keys), mismatches,
                                     time.perf_counter() - t0, now))
    return reports


def _build_and_swap(engine: OfflineEngine, store: OnlineStore, snapshot: Snapshot,
                    repo_path: str | Path, view: FeatureView, now: datetime,
                    on_rows: RowsCallback | None, batch_rows: int) -> tuple[int, datetime | None]:
    """Materialize ``view`` up to ``now`` into its staging table, then swap it in. Returns the
    rows written and the highest created timestamp seen. On failure the staging table is
    dropped and the live table is left as it was."""
    table = snapshot.online_table(view.name)
    staging = staging_table(snapshot.project, snapshot.online_key(view.name))
    written, created_high = 0, OLDEST
    try:
        request = materialize_request(snapshot, view, repo_path, now)
        store.drop([staging])   # a leftover of a rebuild killed midway
        store.create([staging])
        features = [f.output for f in request.features]
        for batch in engine.latest(request, batch_rows):
            records = batch_records(batch, request.join_keys, features)
            store.write_batch({staging: records})
            written += len(records)
            created_high = max([created_high, *(r.created_ts for _, r in records)])
            if on_rows:
                on_rows(view.name, len(records))
        store.swap(table, staging)
    except BaseException as e:
        try:
            store.drop([staging])
        except Exception:  # noqa: BLE001 - the original error matters more
            pass
        if isinstance(e, SkewlessError):
            _prefix(e, f"rebuild of feature view '{view.name}' failed and its online table was "
                       "left untouched: ")
        raise
    return written, (from_micros(created_high) if created_high != OLDEST else None)


def _prefix(e: SkewlessError, text: str) -> None:
    """Say which view failed, keeping the error's type, hint and retryability."""
    e.message = text + e.message
    e.args = (e.message if not e.hint else f"{e.message}\n  hint: {e.hint}",)


def _verify_sample(engine: OfflineEngine, store: OnlineStore, snapshot: Snapshot,
                   repo_path: str | Path, view: FeatureView, keys: list[bytes], now: datetime,
                   timestamp_column: str) -> list[Mismatch]:
    """Serve the sampled entities at ``now`` and compare with the offline join at ``now``."""
    join_keys = snapshot.join_keys(view)
    feats = view.features_for(set(join_keys))
    if not keys or not feats:
        return []
    refs = [f"{view.name}:{f.name}" for f in feats]
    entities = [dict(zip(join_keys, decode_key(k))) for k in keys]

    plan = online_svc.build_online_plan(snapshot, refs, full_feature_names=True)
    # Fail-closed views would raise on the first stale entity; the offline join reads them as null.
    plan = replace(plan, views=tuple(replace(v, on_missing="null") if v.on_missing == "fail" else v
                                     for v in plan.views))
    served = online_svc.get_online_features(store, plan, entities, now).values

    by_name = {f.name: f for f in view.schema}
    columns: dict[str, pa.Array] = {}
    for k in join_keys:
        values = [e[k] for e in entities]
        declared = by_name[k].dtype.to_arrow() if k in by_name else None
        columns[k] = pa.array(values, type=declared) if declared is not None else pa.array(values)
    columns[timestamp_column] = pa.array([now] * len(entities), type=pa.timestamp("us", tz="UTC"))
    offline = retrieve.get_historical_features(
        engine, snapshot, repo_path, pa.table(columns), refs, timestamp_column,
        full_feature_names=True).to_arrow()

    out = []
    for f in feats:
        name = f"{view.name}__{f.name}"
        want = offline.column(name).to_pylist()
        got = served[name]
        for i, entity in enumerate(entities):
            if _norm(got[i], f.dtype) != _norm(want[i], f.dtype):
                out.append(Mismatch(entity, f.name, got[i], want[i]))
    return out


def _norm(value: Any, dtype: T.ValueType) -> Any:
    """A value in a comparable form: in its declared precision, timestamps as microseconds,
    NaN equal to NaN."""
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        element = dtype.element if isinstance(dtype, T.Array) else dtype
        return [_norm(v, element) for v in value]
    if isinstance(value, datetime):
        return micros(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if dtype is T.Float32:
            return float(np.float32(value))
    return value


def describe_key(entity: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in entity.items())


__all__ = ["Mismatch", "RebuildReport", "describe_key", "rebuild_online", "staging_table"]
