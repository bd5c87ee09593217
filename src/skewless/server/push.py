"""``POST /push``: JSON columns to the batch ``FeatureStore.push`` takes.

JSON has no timestamp type. In the columns the push source declares as timestamps (its batch
source's ``timestamp_field`` and ``created_timestamp_column``, and the ``UnixTimestamp``
features of the views it feeds), ISO 8601 strings (naive means UTC) and epoch seconds become
UTC datetimes here; anything else is passed through as sent, for the store to reject with
every bad row named. All other checks (columns, types, null keys, future event times) are the
store's, so a push behaves the same through the SDK and the server.
"""

from __future__ import annotations

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
    """Converts the timestamp columns of a push request; which columns they are is taken from
    the store's serving snapshot (the one registry cache of the serving path) and cached for
    its version."""

    def __init__(self, store: FeatureStore) -> None:
        self.store = store
        self._columns: dict[str, tuple[int, frozenset[str]]] = {}

    def timestamp_columns(self, source_name: str) -> frozenset[str]:
        """Columns of a push to ``source_name`` that hold timestamps."""
        snapshot = self.store.serving_snapshot()
        hit = self._columns.get(source_name)
        if hit is not None and hit[0] == snapshot.version:
            return hit[1]
        if not any(getattr(getattr(v, "push_source", None), "name", None) == source_name
                   for v in snapshot.feature_views.values()):
            # a source applied since the serving snapshot was read (up to
            # registry_cache_ttl_seconds ago): the push itself checks the registry as it is
            # now, so its timestamp columns are read from there too
            snapshot = self.store.snapshot()
        cols: set[str] = set()
        for view in snapshot.feature_views.values():
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
        self._columns[source_name] = (snapshot.version, found)
        return found

    def columns(self, req: PushRequest) -> dict[str, list[Any]]:
        """The batch as a dict of columns, timestamp columns converted."""
        stamps = self.timestamp_columns(req.push_source_name)
        return {col: [_to_time(v, col, i) for i, v in enumerate(values)] if col in stamps else values
                for col, values in req.columns.items()}
