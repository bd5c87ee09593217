"""The wire format of the feature server: request parsing and validation by hand (orjson, no
validation framework on the hot path) and response encoding.

``POST /get-online-features`` takes Feast's request and answers Feast's response shape, one
result per column (join keys first, then features, in request order)::

    {"metadata": {"feature_names": ["user_id", "amount"], "feature_types": ["String", "Float64"]},
     "results": [{"values": ["u1"], "statuses": ["PRESENT"], "event_timestamps": ["1970-01-01T00:00:00Z"]},
                 {"values": [140.0], "statuses": ["PRESENT"], "event_timestamps": ["2024-02-05T00:00:00Z"]}]}

``feature_types`` is an addition to Feast's metadata (Feast clients ignore it): it lets
:class:`skewless.FeatureClient` restore timestamps and bytes exactly as the SDK returns them.
So are ``degraded`` and ``store_error``, present only when the online store did not answer and
the values came from the fallback chain (statuses ``CACHED`` and ``UNAVAILABLE``).
Bytes values travel base64-encoded; timestamps as ISO 8601 UTC strings (``Z``); a value with
nothing stored has a null event timestamp. A NaN or an infinity (a value, not a missing one:
docs/aggregations.md, "Floats") travels as the string ``"NaN"``, ``"Infinity"`` or
``"-Infinity"``, as protobuf's JSON mapping (and so Feast's server) writes it: JSON has no such
numbers, and orjson would write null.
"""

from __future__ import annotations

import base64
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import orjson

from skewless.kernels.batch import parse_iso_utc
from skewless.errors import InvalidRequestError, UnknownObjectError, closest
from skewless.store import check_entity_count

if TYPE_CHECKING:
    from skewless.store import ColumnGroup

JSON_OPTIONS = orjson.OPT_UTC_Z | orjson.OPT_NAIVE_UTC
EPOCH_ISO = "1970-01-01T00:00:00Z"  # Feast's event timestamp of a join-key column
PRESENT = "PRESENT"
PUSH_TARGETS = ("online", "offline", "online_and_offline")

_GET_KEYS = ("features", "feature_service", "entities", "full_feature_names")
_PUSH_KEYS = ("push_source_name", "df", "to", "batch_id")


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _default(value: Any) -> Any:
    """What orjson cannot encode natively."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode("ascii")
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return value.item()
    if isinstance(value, datetime):  # datetime subclasses (pandas.Timestamp); naive means UTC
        ts = value.to_pydatetime() if hasattr(value, "to_pydatetime") else value
        ts = ts.replace(tzinfo=timezone.utc) if ts.tzinfo is None else ts.astimezone(timezone.utc)
        return ts.replace(tzinfo=None).isoformat() + "Z"
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, (date, timedelta)):
        return str(value)
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"cannot encode a {type(value).__name__} as JSON")


def dumps(obj: Any) -> bytes:
    return orjson.dumps(obj, default=_default, option=JSON_OPTIONS)


def parse_json(body: bytes, what: str) -> dict[str, Any]:
    """A request body that must be one JSON object."""
    if not body.strip():
        raise InvalidRequestError(f"the {what} request body is empty; expected a JSON object",
                                  hint="see GET /openapi.json for the request schema")
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as e:
        raise InvalidRequestError(f"the {what} request body is not valid JSON: {e}",
                                  hint="send one JSON object (Content-Type: application/json)") from None
    if not isinstance(data, dict):
        raise InvalidRequestError(f"the {what} request body must be a JSON object, got {_json_type(data)}",
                                  hint="see GET /openapi.json for the request schema")
    return data


def _check_keys(data: dict[str, Any], allowed: Sequence[str], what: str) -> None:
    for key in data:
        if key not in allowed:
            raise InvalidRequestError(
                f"unknown field {key!r} in the {what} request; {closest(key, allowed)}",
                hint=f"valid fields: {', '.join(allowed)}")


@dataclass(frozen=True, slots=True)
class OnlineRequest:
    features: list[str] | None
    feature_service: str | None
    entity_rows: list[dict[str, Any]]
    full_feature_names: bool

    @property
    def target(self) -> list[str] | str:
        return self.features if self.features is not None else self.feature_service  # type: ignore[return-value]


def parse_online_request(body: bytes, max_entities: int | None = None) -> OnlineRequest:
    """``{"features": [...] | "feature_service": "name", "entities": {key: [values]},
    "full_feature_names": false}``: shapes checked here, names and key types by the store.
    More than ``max_entities`` entity rows raise RequestTooLargeError (413) before the rows
    are built."""
    data = parse_json(body, "get-online-features")
    _check_keys(data, _GET_KEYS, "get-online-features")
    features = data.get("features")
    service = data.get("feature_service")
    if features is not None and service is not None:
        raise InvalidRequestError("pass either 'features' or 'feature_service', not both")
    if features is None and service is None:
        raise InvalidRequestError("no features requested",
                                  hint='pass "features": ["view:feature", ...] or "feature_service": "name"')
    if features is not None:
        if not isinstance(features, list):
            raise InvalidRequestError(f"'features' must be an array of 'view:feature' strings, got "
                                      f"{_json_type(features)}")
        if not features:
            raise InvalidRequestError("'features' is empty",
                                      hint='pass "features": ["view:feature", ...] or "feature_service": "name"')
        if not all(type(ref) is str for ref in features):
            i, ref = next((i, r) for i, r in enumerate(features) if type(r) is not str)
            raise InvalidRequestError(f"features[{i}] must be a 'view:feature' string, got {_json_type(ref)}")
    elif not isinstance(service, str):
        raise InvalidRequestError(f"'feature_service' must be a string, got {_json_type(service)}")
    elif ":" in service or not service:
        raise UnknownObjectError(f"feature service {service!r} does not exist",
                                 hint="feature service names have no ':'; to request features, "
                                 'pass "features": ["view:feature", ...]')
    full = data.get("full_feature_names", False)
    if not isinstance(full, bool):
        raise InvalidRequestError(f"'full_feature_names' must be true or false, got {_json_type(full)}")
    return OnlineRequest(features, service, entity_rows(data.get("entities"), max_entities), full)


def entity_rows(entities: Any, max_entities: int | None = None) -> list[dict[str, Any]]:
    """Feast's columnar ``{key: [values]}`` as the SDK's list of entity rows (at most
    ``max_entities``: checked before they are built)."""
    if not isinstance(entities, dict):
        raise InvalidRequestError(
            f"'entities' must be an object mapping each join key to an array of values, got "
            f"{_json_type(entities)}", hint='e.g. "entities": {"user_id": [1001, 1002]}')
    if not entities:
        raise InvalidRequestError("'entities' names no join key",
                                  hint='e.g. "entities": {"user_id": [1001, 1002]}')
    n = -1
    first = ""
    for key, col in entities.items():
        if not isinstance(col, list):
            raise InvalidRequestError(f"entities[{key!r}] must be an array of key values, got {_json_type(col)}",
                                      hint='e.g. "entities": {"user_id": [1001, 1002]}')
        if n < 0:
            n, first = len(col), key
        elif len(col) != n:
            raise InvalidRequestError(
                f"entities[{key!r}] has {len(col)} values but entities[{first!r}] has {n}",
                hint="every join key needs one value per entity row")
    if max_entities is not None:
        check_entity_count(n, max_entities)
    if len(entities) == 1:
        ((key, col),) = entities.items()
        return [{key: v} for v in col]
    names = list(entities)
    return [dict(zip(names, vals)) for vals in zip(*entities.values())]


# --- get-online-features response ------------------------------------------------------------
_EPOCH = datetime(1970, 1, 1)
_ISO: dict[int, str] = {}
_ISO_MAX = 1 << 18


def iso_micros(us: int) -> str:
    """Microseconds since the epoch as ISO 8601 UTC, the way orjson writes a UTC datetime
    (``2024-05-01T10:00:00Z``, ``...:00.250000Z``); memoized, since served event times repeat."""
    s = _ISO.get(us)
    if s is None:
        if len(_ISO) >= _ISO_MAX:
            _ISO.clear()
        s = _ISO[us] = (_EPOCH + timedelta(microseconds=us)).isoformat() + "Z"
    return s


def iso_list(event_micros: Sequence[int | None]) -> list[str | None]:
    """A column of event times (microseconds, or None) as ISO strings."""
    get = _ISO.get
    return [None if us is None else (get(us) or iso_micros(us)) for us in event_micros]


_FLOAT_TYPES = frozenset({"Float32", "Float64", "Array(Float32)", "Array(Float64)"})
_ODD = {math.inf: "Infinity", -math.inf: "-Infinity"}


def _odd(v: Any) -> bool:
    """A NaN or an infinity, or a list holding one."""
    if isinstance(v, float):
        return not math.isfinite(v)
    return type(v) is list and any(isinstance(x, float) and not math.isfinite(x) for x in v)


def _odd_float(v: Any) -> Any:
    """A NaN or an infinity as protobuf's JSON writes it; any other value as it is."""
    if isinstance(v, float) and not math.isfinite(v):
        return "NaN" if v != v else _ODD[float(v)]
    if type(v) is list:
        return [_odd_float(x) for x in v]
    return v


def _json_floats(col: list[Any]) -> list[Any]:
    """A column with its NaN and infinities (``_odd_float``) as strings: the column itself
    when it has none (the common case: one pass, no copy)."""
    try:   # a column of floats only: summed at C speed, finite unless it holds NaN or inf
        if math.isfinite(sum(col, 0.0)):   # (or overflows: then the look below says no)
            return col
    except TypeError:   # a None, a list: look value by value
        pass
    return [_odd_float(v) for v in col] if any(_odd(v) for v in col) else col


def encode_online_response(keys: dict[str, list[Any]], values: dict[str, list[Any]],
                           groups: Sequence[ColumnGroup], types: Sequence[str | None] | None,
                           store_error: str | None = None) -> bytes:
    """Feast's response: one result per column, join keys first, then the features of
    ``groups`` (``OnlineResponse.groups``: a group's columns share statuses and event times,
    which are converted once per group). When the online store did not answer
    (``store_error``), the metadata says so: ``"degraded": true`` and ``"store_error"`` (the
    store's error), and the statuses say which values came from the cache (``CACHED``) or not
    at all (``UNAVAILABLE``)."""
    n = len(next(iter(keys.values()))) if keys else len(next(iter(values.values()), ()))
    key_status = [PRESENT] * n
    key_stamps = [EPOCH_ISO] * n
    names = list(keys)
    results: list[dict[str, Any]] = [
        {"values": col, "statuses": key_status, "event_timestamps": key_stamps} for col in keys.values()]
    for g in groups:
        statuses, stamps = g.statuses, iso_list(g.event_micros)
        for name in g.outputs:
            names.append(name)
            results.append({"values": values[name], "statuses": statuses, "event_timestamps": stamps})
    metadata: dict[str, Any] = {"feature_names": names}
    known = types if types is not None and len(types) == len(names) else None
    for i in range(len(keys), len(results)):   # features: NaN and infinities as strings
        if known is None or known[i] in _FLOAT_TYPES:
            results[i]["values"] = _json_floats(results[i]["values"])
    if known is not None:
        metadata["feature_types"] = known
    if store_error is not None:
        metadata["degraded"] = True
        metadata["store_error"] = store_error
    return dumps({"metadata": metadata, "results": results})


def served_by_view(groups: Sequence[ColumnGroup]) -> list[tuple[str, str, int]]:
    """(view, status, values) served, from the response's column groups."""
    out: dict[tuple[str, str], int] = {}
    for g in groups:
        width, sts = len(g.outputs), g.statuses
        present = sts.count(PRESENT)
        if present:
            out[g.view, PRESENT] = out.get((g.view, PRESENT), 0) + present * width
        if present != len(sts):
            for st, k in Counter(sts).items():
                if st != PRESENT:
                    out[g.view, st] = out.get((g.view, st), 0) + k * width
    return [(view, st, k) for (view, st), k in out.items()]


def oldest_by_view(groups: Sequence[ColumnGroup], now_us: int) -> list[tuple[str, float]]:
    """(view, age in seconds of the oldest value of the view served), for views with a value."""
    oldest: dict[str, int] = {}
    for g in groups:
        m = min((t for t in g.event_micros if t is not None), default=None)
        if m is not None and (g.view not in oldest or m < oldest[g.view]):
            oldest[g.view] = m
    return [(view, (now_us - m) / 1e6) for view, m in oldest.items()]


# --- push ------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class PushRequest:
    push_source_name: str
    columns: dict[str, list[Any]]
    to: str
    batch_id: str | None = None


def parse_push_request(body: bytes) -> PushRequest:
    """``{"push_source_name": "...", "df": {column: [values]}, "to": "online_and_offline",
    "batch_id": "..."}`` (``batch_id`` optional: the push's idempotency key)."""
    data = parse_json(body, "push")
    _check_keys(data, _PUSH_KEYS, "push")
    name = data.get("push_source_name")
    if not isinstance(name, str) or not name:
        raise InvalidRequestError(f"'push_source_name' must be a non-empty string, got {_json_type(name)}",
                                  hint="the name of a PushSource of the project")
    df = data.get("df")
    if not isinstance(df, dict) or not df:
        raise InvalidRequestError(
            f"'df' must be an object mapping each column to an array of values, got "
            f"{_json_type(df) if df != {} else 'an empty object'}",
            hint='e.g. "df": {"user_id": [1001], "event_timestamp": ["2024-05-01T10:00:00Z"], "amount": [3.5]}')
    n = -1
    first = ""
    for col, vals in df.items():
        if not isinstance(vals, list):
            raise InvalidRequestError(f"df[{col!r}] must be an array of values, got {_json_type(vals)}")
        if n < 0:
            n, first = len(vals), col
        elif len(vals) != n:
            raise InvalidRequestError(f"df[{col!r}] has {len(vals)} values but df[{first!r}] has {n}",
                                      hint="every column needs one value per row")
    if n == 0:
        raise InvalidRequestError("'df' has no rows", hint="push at least one row")
    to = data.get("to", "online_and_offline")
    if to not in PUSH_TARGETS:
        raise InvalidRequestError(f"'to' must be one of {', '.join(PUSH_TARGETS)}, got {to!r}",
                                  hint='"online_and_offline" (the default) keeps the online store '
                                  "derivable from the offline one")
    batch_id = data.get("batch_id")
    if batch_id is not None and not isinstance(batch_id, str):
        raise InvalidRequestError(f"'batch_id' must be a string, got {_json_type(batch_id)}",
                                  hint="the batch's idempotency key, e.g. the producer's offset")
    return PushRequest(name, df, to, batch_id)


def parse_timestamp(value: Any, column: str, row: int) -> datetime | None:
    """An ISO 8601 string (naive means UTC) or epoch seconds, as an aware UTC datetime."""
    if value is None:
        return None
    if isinstance(value, bool):
        pass
    elif isinstance(value, (int, float)):
        try:
            return datetime.fromtimestamp(value, tz=timezone.utc)
        except (OverflowError, OSError, ValueError):
            pass
    elif isinstance(value, str):
        try:
            return parse_iso_utc(value)
        except ValueError:
            pass
    raise InvalidRequestError(
        f"df[{column!r}] row {row}: {value!r} is not a timestamp",
        hint="send ISO 8601 strings ('2024-05-01T10:00:00Z'; naive means UTC) or epoch seconds")
