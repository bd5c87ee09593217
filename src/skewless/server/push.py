"""``POST /push``: JSON columns to the batch ``FeatureStore.push`` takes.

JSON has no timestamp type. In the columns the push source declares as timestamps (its batch
source's ``timestamp_field`` and ``created_timestamp_column``, and the ``UnixTimestamp``
features of the views it feeds), ISO 8601 strings (naive means UTC) and epoch seconds become
UTC datetimes here; anything else is passed through as sent, for the store to reject with
every bad row named. All other checks (columns, types, null keys, future event times) are the
store's, so a push behaves the same through the SDK and the server.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import TYPE_CHECKING, Any

from skewless import types as T
from skewless.errors import InvalidRequestError
from skewless.server.protocol import PushRequest, parse_timestamp

if TYPE_CHECKING:
    from skewless.store import FeatureStore


def _to_time(value: Any, column: str, row: int) -> Any:
    if value is None or isinstance(value, (bool, datetime)):
        return value
    try:
        return parse_timestamp(value, column, row)
    except InvalidRequestError:
        return value  # the store names it, with every other bad row


class PushPreparer:
    def __init__(self, store: FeatureStore, ttl: float = 10.0) -> None:
        self.store = store
        self._ttl = ttl
        self._columns: dict[str, tuple[float, frozenset[str]]] = {}

    def timestamp_columns(self, source_name: str) -> frozenset[str]:
        """Columns of a push to ``source_name`` that hold timestamps (cached ``ttl`` seconds)."""
        now = time.monotonic()
        hit = self._columns.get(source_name)
        if hit is not None and now - hit[0] < self._ttl:
            return hit[1]
        cols: set[str] = set()
        for view in self.store.list_feature_views():
            push = getattr(view, "push_source", None)
            if push is None or push.name != source_name:
                continue
            batch = push.batch_source
            cols.add(batch.timestamp_field)
            if batch.created_timestamp_column:
                cols.add(batch.created_timestamp_column)
            cols.update(f.name for f in view.schema if f.dtype is T.UnixTimestamp)
        found = frozenset(cols)
        if len(self._columns) > 1024:
            self._columns.clear()
        self._columns[source_name] = (now, found)
        return found

    def columns(self, req: PushRequest) -> dict[str, list[Any]]:
        """The batch as a dict of columns, timestamp columns converted."""
        stamps = self.timestamp_columns(req.push_source_name)
        return {col: [_to_time(v, col, i) for i, v in enumerate(values)] if col in stamps else values
                for col, values in req.columns.items()}
