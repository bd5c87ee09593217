"""``online-status``: per online view, what the online store holds and how fresh it is."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from skewless.online import OnlineStore, table_name
from skewless.plan.historical import to_utc
from skewless.registry import RegistryStore, Snapshot
from skewless.services.materialize import STATE, online_views


@dataclass(frozen=True)
class ViewStatus:
    view: str
    table: str
    entities: int                  # records in the online table
    materialized: bool             # ever materialized (a watermark exists)
    watermark: datetime | None     # materialized up to this event time
    age: timedelta | None          # how far the watermark is behind the clock
    last_run: datetime | None      # when the last materialize or rebuild finished
    last_run_rows: int | None      # rows that run wrote
    ttl: timedelta | None


def _time(state: dict[str, Any], key: str) -> datetime | None:
    value = state.get(key)
    return to_utc(datetime.fromisoformat(value)) if value else None


def online_status(store: OnlineStore, registry: RegistryStore, snapshot: Snapshot,
                  now: datetime) -> list[ViewStatus]:
    """One status per online view, in registry order; ``now`` is the store's clock."""
    now = to_utc(now)
    out = []
    for view in online_views(snapshot, None):
        table = table_name(snapshot.project, view.name)
        state = registry.get_state(snapshot.project, STATE, view.name) or {}
        watermark = _time(state, "end")
        out.append(ViewStatus(
            view=view.name, table=table, entities=store.count(table),
            materialized=watermark is not None, watermark=watermark,
            age=now - watermark if watermark is not None else None,
            last_run=_time(state, "at"), last_run_rows=state.get("rows"), ttl=view.ttl))
    return out
