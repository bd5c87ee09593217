"""``FeatureClient``: the feature server, called like ``FeatureStore``.

    client = FeatureClient("http://127.0.0.1:6566")
    resp = client.get_online_features(["user_spend:amount_sum_7d"], [{"user_id": 1001}])
    resp.to_dict(), resp.statuses, resp.event_timestamps      # as FeatureStore returns them
    client.push("user_events", df, to="online_and_offline")

Connections are pooled and kept alive (one ``httpx.Client``; safe to share between threads).
A server error is raised as the same ``SkewlessError`` subclass the SDK would raise (matched by
its ``code``), with the server's message and hint; a server that cannot be reached raises
:class:`FeatureServerError`.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import orjson

from skewless.errors import FeatureServerError, InvalidRequestError, PlanError, SkewlessError
from skewless.online.codec import KEY_INT_RANGE, key_int_fits
from skewless.times import parse_iso_utc

if TYPE_CHECKING:
    import httpx

    from skewless.define import FeatureService
    from skewless.store import OnlineResponse


def _error_classes() -> dict[str, type[SkewlessError]]:
    out: dict[str, type[SkewlessError]] = {}
    stack: list[type[SkewlessError]] = [SkewlessError]
    while stack:
        cls = stack.pop()
        out.setdefault(cls.code, cls)
        stack.extend(cls.__subclasses__())
    return out


def error_from_body(status: int, body: Mapping[str, Any]) -> SkewlessError:
    """The SkewlessError a server error body ``{code, message, hint}`` stands for."""
    code = str(body.get("code") or "internal")
    message = str(body.get("message") or f"HTTP {status}")
    hint = body.get("hint")
    cls = _error_classes().get(code, SkewlessError)
    err = cls.__new__(cls)
    SkewlessError.__init__(err, message, hint if isinstance(hint, str) else None)
    if isinstance(err, PlanError):
        err.problems = []
    if cls.code != code:  # a code this client does not know: keep the server's
        err.code = code
    err.http_status = status
    return err


def _micros(text: str, cache: dict[str, int]) -> int:
    us = cache.get(text)
    if us is None:
        from skewless.online.codec import micros
        us = cache[text] = micros(_parse_time(text))
    return us


_parse_time = parse_iso_utc


def _decoder(dtype: str | None) -> Any:
    """How to turn a JSON value of a column of ``dtype`` back into what the SDK returns."""
    if dtype == "UnixTimestamp":
        return lambda v: None if v is None else _parse_time(v)
    if dtype == "Bytes":
        return lambda v: None if v is None else base64.b64decode(v)
    if dtype == "Array(UnixTimestamp)":
        return lambda v: None if v is None else [None if x is None else _parse_time(x) for x in v]
    if dtype == "Array(Bytes)":
        return lambda v: None if v is None else [None if x is None else base64.b64decode(x) for x in v]
    if dtype in ("Float32", "Float64"):   # "NaN", "Infinity", "-Infinity" (server/protocol.py)
        return _float
    if dtype in ("Array(Float32)", "Array(Float64)"):
        return lambda v: None if v is None else [_float(x) for x in v]
    return None


def _float(v: Any) -> Any:
    """A float the server wrote: a NaN or an infinity arrives as protobuf's JSON string."""
    return float(v) if type(v) is str else v


def response_from_json(data: Mapping[str, Any], sent_keys: Sequence[str]) -> OnlineResponse:
    """The SDK's OnlineResponse from a get-online-features response body."""
    from skewless import types as T
    from skewless.store import ColumnGroup, OnlineResponse

    meta = data["metadata"]
    names: list[str] = meta["feature_names"]
    types: list[str | None] = meta.get("feature_types") or [None] * len(names)
    results = data["results"]
    keys: dict[str, list[Any]] = {}
    values: dict[str, list[Any]] = {}
    groups: list[ColumnGroup] = []
    sent = set(sent_keys)
    i = 0
    while i < len(names) and names[i] in sent:  # join keys come first
        keys[names[i]] = results[i]["values"]
        i += 1
    cache: dict[str, int] = {}
    dtypes: dict[str, T.ValueType | None] = {}
    for name, dtype, res in zip(names[i:], types[i:], results[i:]):
        try:
            dtypes[name] = T.from_name(dtype) if dtype else None
        except ValueError:
            dtypes[name] = None
        decode = _decoder(dtype)
        values[name] = res["values"] if decode is None else [decode(v) for v in res["values"]]
        groups.append(ColumnGroup("", (name,), res["statuses"],
                                  [None if t is None else _micros(t, cache) for t in res["event_timestamps"]]))
    store_error = meta.get("store_error")
    return OnlineResponse(keys, values, groups, dtypes=dtypes,
                          store_error=store_error if isinstance(store_error, str) else None)


def entity_columns(entity_rows: Sequence[Mapping[str, Any]]) -> dict[str, list[Any]]:
    """The SDK's entity rows as Feast's columnar ``entities``; every row needs the same keys."""
    if isinstance(entity_rows, Mapping) or not isinstance(entity_rows, Sequence):
        raise InvalidRequestError("entity_rows must be a list of dicts, e.g. [{'user_id': 1}]")
    if not entity_rows:
        raise InvalidRequestError("entity_rows is empty", hint="pass at least one entity row")
    first = entity_rows[0]
    if not isinstance(first, Mapping):
        raise InvalidRequestError(f"entity row 0 must be a dict of join keys, got {type(first).__name__}")
    names = list(first)
    cols: dict[str, list[Any]] = {k: [] for k in names}
    for i, row in enumerate(entity_rows):
        if not isinstance(row, Mapping):
            raise InvalidRequestError(f"entity row {i} must be a dict of join keys, got {type(row).__name__}")
        if len(row) != len(names) or any(k not in row for k in names):
            raise InvalidRequestError(
                f"entity row {i} has keys {sorted(row)} but entity row 0 has {sorted(names)}",
                hint="the feature server takes entities column by column: give every row the same keys")
        for k in names:
            v = row[k]
            if hasattr(v, "item") and not isinstance(v, (str, bytes)):
                v = v.item()
            if type(v) is int and not key_int_fits(v):
                raise InvalidRequestError(
                    f"entity row {i}: join key '{k}' = {v} is beyond the 64-bit integer range "
                    f"({KEY_INT_RANGE}); "
                    "no stored entity can have it", hint="send the key as the source stores it")
            cols[k].append(v)
    return cols


def _push_columns(df: Any) -> dict[str, list[Any]]:
    """A pandas DataFrame, a pyarrow Table, a dict of columns or a list of row dicts as JSON
    columns; timestamps as ISO 8601 strings, missing values as null."""
    if hasattr(df, "to_pandas") and hasattr(df, "schema"):  # pyarrow
        df = df.to_pandas()
    if hasattr(df, "columns") and hasattr(df, "dtypes"):  # pandas
        import pandas as pd
        out: dict[str, list[Any]] = {}
        for col in df.columns:
            s = df[col]
            if pd.api.types.is_datetime64_any_dtype(s.dtype):
                out[str(col)] = [None if pd.isna(v) else _iso(v.to_pydatetime()) for v in s]
            else:
                out[str(col)] = [None if _is_missing(v) else _plain(v) for v in s.tolist()]
        return out
    if isinstance(df, Mapping):
        return {str(k): [_plain(v) for v in vals] for k, vals in df.items()}
    if isinstance(df, Sequence) and df and isinstance(df[0], Mapping):
        names = list(df[0])
        return {k: [_plain(row.get(k)) for row in df] for k in names}
    raise InvalidRequestError(f"push: df must be a pandas DataFrame, a pyarrow Table, a dict of "
                              f"columns or a list of rows, got {type(df).__name__}")


def _is_missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and v != v)


def _iso(ts: datetime) -> str:
    return (ts.replace(tzinfo=timezone.utc) if ts.tzinfo is None else ts.astimezone(timezone.utc)).isoformat()


def _plain(v: Any) -> Any:
    if isinstance(v, datetime):
        return _iso(v)
    if hasattr(v, "item") and not isinstance(v, (str, bytes)):
        return v.item()
    return v


class FeatureClient:
    """A feature server client with ``FeatureStore``'s ``get_online_features`` and ``push``."""

    def __init__(self, url: str = "http://127.0.0.1:6566", timeout: float = 5.0,
                 max_connections: int = 32, headers: Mapping[str, str] | None = None) -> None:
        import httpx

        self.url = url.rstrip("/")
        self._http: httpx.Client = httpx.Client(
            base_url=self.url, timeout=timeout,
            limits=httpx.Limits(max_connections=max_connections,
                                max_keepalive_connections=max_connections),
            headers={"content-type": "application/json", **(headers or {})})
        self._timeout = timeout

    def __enter__(self) -> FeatureClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def __repr__(self) -> str:
        return f"FeatureClient({self.url!r})"

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        import httpx

        try:
            content = orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NAIVE_UTC)
        except TypeError as e:
            raise InvalidRequestError(f"cannot send the request as JSON: {e}") from None
        try:
            r = self._http.post(path, content=content)
        except httpx.TimeoutException:
            raise FeatureServerError(f"the feature server at {self.url} did not answer {path} within "
                                     f"{self._timeout:g} s",
                                     hint="check that it is up and not overloaded, or raise timeout=") from None
        except httpx.HTTPError as e:
            raise FeatureServerError(f"cannot reach the feature server at {self.url}: {e}",
                                     hint="check the URL and that `skewless serve` is running there") from None
        try:
            data = orjson.loads(r.content)
        except orjson.JSONDecodeError:
            data = None
        if r.status_code == 200 and isinstance(data, dict):
            return data
        if isinstance(data, dict) and "code" in data and "message" in data:
            raise error_from_body(r.status_code, data)
        raise FeatureServerError(
            f"unexpected answer from {self.url}{path}: HTTP {r.status_code} {r.text[:200]!r}",
            hint="is this URL a skewless feature server?")

    def get_online_features(self, features: Sequence[str] | FeatureService | str | None = None,
                            entity_rows: Sequence[Mapping[str, Any]] = (),
                            full_feature_names: bool = False,
                            feature_service: FeatureService | str | None = None) -> OnlineResponse:
        """As ``FeatureStore.get_online_features``: feature references or a feature service
        (an object or its name), entity rows as dicts of join keys."""
        body: dict[str, Any] = {}
        target = feature_service if feature_service is not None else features
        if target is None:
            raise InvalidRequestError("pass features=[...] or feature_service=...")
        if features is not None and feature_service is not None:
            raise InvalidRequestError("pass either features or feature_service, not both")
        if isinstance(target, str):
            if ":" in target and feature_service is None:
                body["features"] = [target]
            else:
                body["feature_service"] = target
        elif hasattr(target, "projections") and hasattr(target, "name"):
            body["feature_service"] = target.name
        else:
            body["features"] = list(target)
        entities = entity_columns(entity_rows)
        body["entities"] = entities
        if full_feature_names:
            body["full_feature_names"] = True
        data = self._post("/get-online-features", body)
        try:
            return response_from_json(data, list(entities))
        except (KeyError, TypeError, ValueError, IndexError) as e:
            raise FeatureServerError(f"malformed get-online-features response from {self.url}: {e!r}") from None

    def push(self, source_name: str, df: Any, to: str = "online_and_offline",
             batch_id: str | None = None) -> dict[str, Any]:
        """As ``FeatureStore.push``: rows to the push source ``source_name``, to the offline
        store, the online store or both (offline first). Idempotent: retrying the same batch
        (same rows, or the same ``batch_id``) after a timeout lands its rows once."""
        to = getattr(to, "value", to)   # Feast's PushMode
        body: dict[str, Any] = {"push_source_name": source_name, "df": _push_columns(df), "to": to}
        if batch_id is not None:
            body["batch_id"] = batch_id
        return self._post("/push", body)
