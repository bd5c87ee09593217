"""Field: one named, typed column of a feature view."""

from __future__ import annotations

from typing import Any

from skewless import types as T
from skewless.define._common import FrozenMixin, check_name, check_str, check_tags
from skewless.errors import DefinitionError


class Field(FrozenMixin):
    """A feature (or entity column) with its type and an optional ``default``.

    The default is served, offline and online alike, when the view says ``on_missing="default"``
    and no row is known for the entity at that time.
    """

    name: str
    dtype: T.ValueType
    description: str
    tags: dict[str, str]
    default: Any

    def __init__(
        self,
        name: str,
        dtype: T.ValueType,
        description: str = "",
        tags: dict[str, str] | None = None,
        default: Any = None,
    ) -> None:
        self._set("name", check_name("field", name))
        if not isinstance(dtype, T.ValueType):
            raise DefinitionError(
                f"field '{name}': dtype {dtype!r} is not a skewless type",
                hint="use one of skewless.types: Int32, Int64, Float32, Float64, String, Bool, "
                "Bytes, UnixTimestamp, Array(T)",
            )
        self._set("dtype", dtype)
        self._set("description", check_str("field", name, "description", description))
        self._set("tags", check_tags("field", name, tags))
        if not T.python_value_ok(default, dtype):
            raise DefinitionError(
                f"field '{name}': default {default!r} is not a valid {dtype.name}",
                hint=f"give a default of type {dtype.name}, or None",
            )
        self._set("default", default)

    def to_spec(self) -> dict[str, Any]:
        default = self.default
        if isinstance(default, bytes):
            default = {"__bytes__": default.hex()}
        return {
            "name": self.name,
            "dtype": self.dtype.name,
            "description": self.description,
            "tags": dict(self.tags),
            "default": default,
        }

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> Field:
        spec = dict(spec)
        spec["dtype"] = T.from_name(spec["dtype"])
        d = spec.get("default")
        if isinstance(d, dict) and "__bytes__" in d:
            spec["default"] = bytes.fromhex(d["__bytes__"])
        return cls(**spec)

    def __repr__(self) -> str:
        extra = f", default={self.default!r}" if self.default is not None else ""
        return f"Field(name={self.name!r}, dtype={self.dtype}{extra})"
