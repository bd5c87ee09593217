"""Key encoding and value packing shared by every online store.

An entity key is the tuple of join-key values in the view's join-key order, packed with
msgpack (ints of any width encode alike, so a key given as ``int32`` in the source and as a
Python ``int`` in a request meet). A stored record is the event time and created time in
microseconds since the epoch plus the feature values, packed as an array with the fingerprint
of their names (see Layouts): the same (event, created) order the offline join uses to pick
the latest row decides "only if newer" online.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any, NamedTuple

import msgpack

from skewless import types as T
from skewless.errors import OnlineStoreError

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


# Integer keys the key encoding can hold: any 64-bit integer, signed or unsigned (msgpack's
# range). A key outside is an invalid request wherever it is given (no stored entity can have
# it, and an entity_df could not carry it); one inside but beyond the key's declared type (an
# Int32 key of 2**40) matches nothing, as in the offline join: NOT_FOUND (docs/online.md).
KEY_INT_MIN, KEY_INT_MAX = -2 ** 63, 2 ** 64 - 1
KEY_INT_RANGE = "-2**63 .. 2**64-1"


def key_int_fits(value: int) -> bool:
    """Whether the key encoding can hold the integer key ``value``."""
    return KEY_INT_MIN <= value <= KEY_INT_MAX


def encode_key(values: Sequence[Any]) -> bytes:
    """The storage key of one entity (join-key values in the view's key order)."""
    return msgpack.packb(list(values), use_bin_type=True)


def decode_key(key: bytes) -> tuple[Any, ...]:
    return tuple(msgpack.unpackb(key, raw=False))


class Record(NamedTuple):
    """One entity's latest row of one view: event and created time, and the values of the
    fields ``names`` (the view's fields when the row was written: a field added to the view
    later is simply absent from older records)."""

    event_ts: int    # microseconds since epoch, UTC
    created_ts: int  # microseconds, OLDEST when the source has no created timestamp
    names: tuple[str, ...]
    vals: Sequence[Any]

    @classmethod
    def of(cls, event_ts: int, created_ts: int, values: Mapping[str, Any]) -> Record:
        """A record from a name -> value mapping (tests, single writes)."""
        return cls(event_ts, created_ts, tuple(values), tuple(values.values()))

    @property
    def values(self) -> dict[str, Any]:
        """The values by field name (convenient, not for hot paths)."""
        return dict(zip(self.names, self.vals))

    def newer_than(self, other: Record | None) -> bool:
        """Whether this record replaces ``other``: not older by (event, created) time. An equal
        pair is the same fact, so rewriting it is harmless and lets a re-materialization fill
        in fields added to the view since the record was first written."""
        return other is None or (self.event_ts, self.created_ts) >= (other.event_ts, other.created_ts)


WIDE_INT = 1   # msgpack extension type: an integer beyond 64 bits, two's complement, big-endian


def storable(value: Any) -> Any:
    """msgpack's hook for what it cannot pack natively: datetimes become microseconds; an
    integer beyond msgpack's 64 bits (the exact integer sum of an aggregated view's tiles can
    grow past them: docs/aggregations.md, "Floats") becomes a ``WIDE_INT`` extension."""
    if isinstance(value, datetime):
        return micros(value)
    if type(value) is int:
        return msgpack.ExtType(WIDE_INT, value.to_bytes((value.bit_length() + 8) // 8, "big", signed=True))
    raise TypeError(f"cannot store a value of type {type(value).__name__} online: {value!r}")


def restored(code: int, data: bytes) -> Any:
    """msgpack's hook for extension types on the way back (``storable``'s wide integers)."""
    if code == WIDE_INT:
        return int.from_bytes(data, "big", signed=True)
    return msgpack.ExtType(code, data)


def pack_vals(vals: Sequence[Any]) -> bytes:
    """The values of a record as a msgpack array, in the order of its layout's names."""
    return msgpack.packb(vals, use_bin_type=True, default=storable)


def unpack_vals(blob: bytes | memoryview) -> tuple[Any, ...]:
    """A record's values as a tuple (array values inside are tuples too: ``restore`` makes
    them lists)."""
    return msgpack.unpackb(blob, raw=False, use_list=False, ext_hook=restored)  # type: ignore[no-any-return]


FINGERPRINT_SIZE = 8


def fingerprint(names: Sequence[str]) -> bytes:
    """8 bytes naming a layout (an ordered tuple of field names); content-addressed, so equal
    layouts of any view, project or process get the same fingerprint."""
    return hashlib.blake2b("\x1f".join(names).encode(), digest_size=FINGERPRINT_SIZE).digest()


class Layouts:
    """Fingerprint <-> field names of stored records.

    A stored record holds its values as an array plus the fingerprint of its names, so a read
    decodes an array instead of a map (4x less work) and a record written before a field was
    added still says which fields it has. The names of each fingerprint are saved in the store
    (``save``) before the first record using them, and looked up (``load``) by a reader that
    has not seen them yet; both directions are cached for the life of the store object.
    """

    def __init__(self, load: Callable[[list[bytes]], dict[bytes, tuple[str, ...]]],
                 save: Callable[[dict[bytes, tuple[str, ...]]], None]) -> None:
        self._load, self._save = load, save
        self._by_fp: dict[bytes, tuple[str, ...]] = {}
        self._by_names: dict[tuple[str, ...], bytes] = {}
        self._lock = threading.Lock()

    def encode(self, names_of: Iterable[tuple[str, ...]]) -> dict[tuple[str, ...], bytes]:
        """Fingerprints of the layouts about to be written, saving the new ones first."""
        out: dict[tuple[str, ...], bytes] = {}
        new: dict[bytes, tuple[str, ...]] = {}
        for names in names_of:
            if names in out:
                continue
            fp = self._by_names.get(names)
            if fp is None:
                fp = fingerprint(names)
                if fp not in self._by_fp:
                    new[fp] = names
            out[names] = fp
        if new:
            self._save(new)
            with self._lock:
                for fp, names in new.items():
                    self._by_fp[fp] = names
        with self._lock:
            for names, fp in out.items():
                self._by_names.setdefault(names, fp)
        return out

    def names(self, fp: bytes) -> tuple[str, ...]:
        got = self._by_fp.get(fp)
        if got is not None:
            return got
        found = self._load([fp])
        if fp not in found:
            raise OnlineStoreError(
                f"a stored record has layout {fp.hex()}, which the online store does not list",
                hint="the store was written by an incompatible version: run `skewless rebuild-online`")
        with self._lock:
            names = self._by_fp.setdefault(fp, tuple(found[fp]))
        return names

    def forget_saved(self) -> None:
        """Save every layout again before its next use: the store lost them (it was replaced
        by a blank one: another SQLite file, a Redis restarted empty)."""
        with self._lock:
            self._by_names.clear()
            self._by_fp.clear()

    @property
    def known(self) -> dict[bytes, tuple[str, ...]]:
        return self._by_fp


def restore(value: Any, dtype: T.ValueType) -> Any:
    """A stored value back in its declared type: timestamps were stored as microseconds, and
    arrays come back from msgpack as tuples."""
    if value is None:
        return None
    if dtype is T.UnixTimestamp:
        return from_micros(value)
    if isinstance(dtype, T.Array):
        if dtype.element is T.UnixTimestamp:
            return [None if v is None else from_micros(v) for v in value]
        return list(value)
    return value


def needs_restore(dtype: T.ValueType) -> bool:
    """Whether stored values of ``dtype`` differ from served ones (see ``restore``)."""
    return dtype is T.UnixTimestamp or isinstance(dtype, T.Array)
