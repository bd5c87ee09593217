"""Key encoding and value packing shared by every online store.

An entity key is the tuple of join-key values in the view's join-key order, packed with
msgpack (ints of any width encode alike, so a key given as ``int32`` in the source and as a
Python ``int`` in a request meet). A stored record is the event time and created time in
microseconds since the epoch plus the feature values by name: the same (event, created) order
the offline join uses to pick the latest row decides "only if newer" online.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import msgpack

from skewless import types as T

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
OLDEST = -(2**62)  # a null created timestamp: older than any real one


def micros(ts: datetime) -> int:
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=timezone.utc)
    delta = ts - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_micros(us: int) -> datetime:
    from datetime import timedelta
    return EPOCH + timedelta(microseconds=us)


def encode_key(values: Sequence[Any]) -> bytes:
    """The storage key of one entity (join-key values in the view's key order)."""
    return msgpack.packb(list(values), use_bin_type=True)


def decode_key(key: bytes) -> tuple[Any, ...]:
    return tuple(msgpack.unpackb(key, raw=False))


@dataclass(frozen=True, slots=True)
class Record:
    """One entity's latest row of one view."""

    event_ts: int    # microseconds since epoch, UTC
    created_ts: int  # microseconds, OLDEST when the source has no created timestamp
    values: dict[str, Any]

    def newer_than(self, other: Record | None) -> bool:
        """Whether this record replaces ``other``: not older by (event, created) time. An equal
        pair is the same fact, so rewriting it is harmless and lets a re-materialization fill
        in fields added to the view since the record was first written."""
        return other is None or (self.event_ts, self.created_ts) >= (other.event_ts, other.created_ts)


def _to_storable(value: Any) -> Any:
    if isinstance(value, datetime):
        return micros(value)
    if isinstance(value, list):
        return [_to_storable(v) for v in value]
    return value


def pack_values(values: dict[str, Any]) -> bytes:
    return msgpack.packb({k: _to_storable(v) for k, v in values.items()}, use_bin_type=True)


def unpack_values(blob: bytes) -> dict[str, Any]:
    return msgpack.unpackb(blob, raw=False)  # type: ignore[no-any-return]


def restore(value: Any, dtype: T.ValueType) -> Any:
    """A stored value back in its declared type (timestamps were stored as microseconds)."""
    if value is None:
        return None
    if dtype is T.UnixTimestamp:
        return from_micros(value)
    if isinstance(dtype, T.Array) and dtype.element is T.UnixTimestamp:
        return [None if v is None else from_micros(v) for v in value]
    return value
