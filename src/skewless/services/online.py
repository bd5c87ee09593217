"""Online serving: the latest materialized values, with the offline join's TTL and defaults.

Status per value: ``PRESENT``; ``NOT_FOUND`` (nothing stored for the entity); ``OUTSIDE_TTL``
(stored, but older than ``ttl`` at request time: treated exactly as the offline join treats
it, as missing). Missing values get the field default when ``on_missing="default"``, null
otherwise; ``on_missing="fail"`` raises FeatureUnavailableError instead (fail closed).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from datetime import datetime
from typing import Any

import pandas as pd
import pyarrow as pa

from skewless import types as T
from skewless.define import FeatureService, FeatureView
from skewless.errors import FeatureUnavailableError, InvalidRequestError, SkewlessError
from skewless.kernels.source import resolve_source, source_schema
from skewless.online import OnlineStore, table_name
from skewless.online.codec import encode_key, from_micros, micros, restore
from skewless.plan.historical import duration_micros, output_names, parse_refs
from skewless.registry import Snapshot

PRESENT, NOT_FOUND, OUTSIDE_TTL = "PRESENT", "NOT_FOUND", "OUTSIDE_TTL"

_KEY_FAMILIES: dict[str, tuple[type, ...]] = {"Int32": (int,), "Int64": (int,), "String": (str,),
                                               "Bytes": (bytes,)}


@dataclass(frozen=True)
class OnlineFeature:
    name: str
    output: str
    dtype: T.ValueType
    default: Any


@dataclass(frozen=True)
class OnlineView:
    view: str
    table: str
    join_keys: tuple[str, ...]
    key_types: tuple[T.ValueType | None, ...]
    ttl_us: int | None
    on_missing: str
    features: tuple[OnlineFeature, ...]


@dataclass(frozen=True)
class OnlinePlan:
    views: tuple[OnlineView, ...]
    join_keys: tuple[str, ...]   # every key column, in first-use order


def _key_types(view: FeatureView, join_keys: tuple[str, ...], repo_path: str | Path | None
               ) -> tuple[T.ValueType | None, ...]:
    """Key types to check requests against: declared key fields, else the source's key columns
    (read once per plan from the Parquet footer; unknown if the source cannot be read here)."""
    declared = {f.name: f.dtype for f in view.schema}
    if all(k in declared for k in join_keys) or repo_path is None:
        return tuple(declared.get(k) for k in join_keys)
    try:
        schema = source_schema(resolve_source(view.source, repo_path))
    except SkewlessError:
        return tuple(declared.get(k) for k in join_keys)
    out: list[T.ValueType | None] = []
    for k in join_keys:
        col = view.source.source_column(k)
        out.append(declared.get(k) or (T.from_arrow(schema.field(col).type) if col in schema.names else None))
    return tuple(out)


def build_online_plan(snapshot: Snapshot, features: Sequence[str] | FeatureService | str,
                      full_feature_names: bool, repo_path: str | Path | None = None) -> OnlinePlan:
    views: list[OnlineView] = []
    keys: list[str] = []
    groups = parse_refs(snapshot, features)
    names = output_names(groups, full_feature_names)
    outputs = [o for outs in names for o in outs]
    for (view, feats), outs in zip(groups, names):
        jk = snapshot.join_keys(view)
        by_name = {f.name: f for f in view.schema}
        cols = []
        for name, out in zip(feats, outs):
            dtype = by_name[name].dtype
            cols.append(OnlineFeature(name, out, dtype, as_served(by_name[name].default, dtype)))
        views.append(OnlineView(
            view.name, table_name(snapshot.project, view.name), jk,
            _key_types(view, jk, repo_path),
            duration_micros(view.ttl), view.on_missing, tuple(cols)))
        keys.extend(k for k in jk if k not in keys)
    clash = set(outputs) & set(keys)
    if clash:
        raise InvalidRequestError(f"feature name(s) {sorted(clash)} clash with join keys",
                                  hint="pass full_feature_names=True")
    return OnlinePlan(tuple(views), tuple(keys))


def as_served(value: Any, dtype: T.ValueType) -> Any:
    """A field default as the offline join serves it: through the column's Arrow type, so an
    ``int`` default of a Float64 field is a float and a Float32 default is rounded to float32."""
    if value is None:
        return None
    return pa.array([value], type=dtype.to_arrow()).to_pylist()[0]


def _key_value(view: OnlineView, i: int, row: Mapping[str, Any], k: str, t: T.ValueType | None) -> Any:
    try:
        v = row[k]
    except KeyError:
        raise InvalidRequestError(
            f"entity row {i} has no join key '{k}' (needed by feature view '{view.view}'); "
            f"it has {sorted(row)}", hint=f"add '{k}' to every entity row") from None
    except TypeError:
        raise InvalidRequestError(f"entity row {i} must be a dict of join keys, got {type(row).__name__}") from None
    if hasattr(v, "item") and not isinstance(v, (str, bytes)):
        v = v.item()  # numpy scalars
    if isinstance(v, bool) or not isinstance(v, (int, str, bytes)):
        raise InvalidRequestError(
            f"entity row {i}: join key '{k}' = {v!r} has type {type(v).__name__}; keys are int or str")
    if t is not None and t.name in _KEY_FAMILIES and not isinstance(v, _KEY_FAMILIES[t.name]):
        raise InvalidRequestError(
            f"entity row {i}: join key '{k}' = {v!r} is a {type(v).__name__}, but feature view "
            f"'{view.view}' declares it {t.name}", hint="send the key with its declared type")
    return v


class OnlineResponse:
    """Feast-shaped result: ``to_dict()`` maps each column (join keys, then features) to a list.
    ``statuses`` and ``event_timestamps`` give, per feature, each value's status and event time."""

    def __init__(self, keys: dict[str, list[Any]], values: dict[str, list[Any]],
                 statuses: dict[str, list[str]], event_micros: dict[str, list[int | None]]) -> None:
        self.keys = keys
        self.values = values
        self.statuses = statuses
        self._event_micros = event_micros
        self._event_timestamps: dict[str, list[datetime | None]] | None = None

    @property
    def event_timestamps(self) -> dict[str, list[datetime | None]]:
        """Per feature, each value's event time (UTC), or None where nothing is stored.
        Converted on first access: most callers never read them."""
        if self._event_timestamps is None:
            conv: dict[int | None, datetime | None] = {None: None}
            self._event_timestamps = {
                name: [conv[us] if us in conv else conv.setdefault(us, from_micros(us)) for us in col]  # type: ignore[arg-type]
                for name, col in self._event_micros.items()}
        return self._event_timestamps

    def to_dict(self, include_event_timestamps: bool = False, include_statuses: bool = False
                ) -> dict[str, list[Any]]:
        out: dict[str, list[Any]] = {**self.keys, **self.values}
        if include_statuses:
            out.update({f"{k}__status": v for k, v in self.statuses.items()})
        if include_event_timestamps:
            out.update({f"{k}__event_timestamp": v for k, v in self.event_timestamps.items()})
        return out

    def to_df(self, include_event_timestamps: bool = False, include_statuses: bool = False) -> pd.DataFrame:
        return pd.DataFrame(self.to_dict(include_event_timestamps, include_statuses))


def get_online_features(store: OnlineStore, plan: OnlinePlan, entity_rows: Sequence[Mapping[str, Any]],
                        now: datetime) -> OnlineResponse:
    if isinstance(entity_rows, Mapping) or not isinstance(entity_rows, Sequence):
        raise InvalidRequestError("entity_rows must be a list of dicts, e.g. [{'user_id': 1}]")
    n = len(entity_rows)
    reads: dict[str, list[bytes]] = {}
    encoded: dict[tuple[Any, ...], list[bytes]] = {}  # views keyed alike share one encoding
    for view in plan.views:
        sig = (view.join_keys, view.key_types)
        if sig not in encoded:
            encoded[sig] = [
                encode_key([_key_value(view, i, row, k, t) for k, t in zip(view.join_keys, view.key_types)])
                for i, row in enumerate(entity_rows)]
        reads[view.table] = encoded[sig]
    records = store.read_batch(reads)
    now_us = micros(now)
    keys = {k: [row[k] for row in entity_rows] for k in plan.join_keys}
    values: dict[str, list[Any]] = {}
    statuses: dict[str, list[str]] = {}
    stamps: dict[str, list[int | None]] = {}
    for view in plan.views:
        recs = records[view.table]
        cutoff = now_us - view.ttl_us if view.ttl_us is not None else None
        # One status and one timestamp per row for the whole view; features only differ when a
        # record predates a field added to the view (then that field is NOT_FOUND).
        row_status = [NOT_FOUND if r is None else OUTSIDE_TTL if cutoff is not None and r.event_ts < cutoff
                      else PRESENT for r in recs]
        if view.on_missing == "fail" and any(st is not PRESENT for st in row_status):
            i = next(j for j, st in enumerate(row_status) if st is not PRESENT)
            _fail(view, entity_rows[i], row_status[i], recs[i])
        row_stamp: list[int | None] = [None if r is None else r.event_ts for r in recs]
        wanted = {f.name for f in view.features}
        complete = all(st is PRESENT for st in row_status) and all(
            wanted <= r.values.keys() for r in recs)  # type: ignore[union-attr]
        use_default = view.on_missing == "default"
        for f in view.features:
            name, out = f.name, f.output
            timestamps = f.dtype is T.UnixTimestamp or (isinstance(f.dtype, T.Array)
                                                         and f.dtype.element is T.UnixTimestamp)
            if complete:
                col = [r.values[name] for r in recs]  # type: ignore[union-attr]
                values[out] = [restore(v, f.dtype) for v in col] if timestamps else col
                statuses[out] = row_status[:]
                stamps[out] = row_stamp
                continue
            vals: list[Any] = []
            sts: list[str] = []
            for r, st in zip(recs, row_status):
                if st is PRESENT and name not in r.values:  # type: ignore[union-attr]
                    st = NOT_FOUND
                if st is PRESENT:
                    v = r.values[name]  # type: ignore[union-attr]
                    vals.append(restore(v, f.dtype) if timestamps else v)
                else:
                    vals.append(f.default if use_default else None)
                sts.append(st)
            values[out], statuses[out] = vals, sts
            stamps[out] = [None if st is NOT_FOUND else us for st, us in zip(sts, row_stamp)]
    return OnlineResponse(keys, values, statuses, stamps)


def _fail(view: OnlineView, row: Mapping[str, Any], status: str, rec: Any) -> None:
    age = "" if rec is None else f" (last value at {from_micros(rec.event_ts).isoformat()})"
    raise FeatureUnavailableError(
        f"feature view '{view.view}' has no {'fresh ' if rec else ''}value for entity "
        f"{dict(zip(view.join_keys, (row[k] for k in view.join_keys)))}: "
        f"{status}{age}; the view is declared on_missing='fail'",
        hint="materialize the view (`skewless materialize-incremental`) or change on_missing")
