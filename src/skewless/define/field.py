"""Field: one named, typed column of a feature view."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from skewless import types as T
from skewless.define._common import FrozenMixin, check_name, check_str, check_tags
from skewless.define._fields import IDENTITY, PART, Spec, as_dict
from skewless.errors import DefinitionError


def _dump_default(value: Any) -> Any:
    """A default as JSON: bytes as ``{"__bytes__": hex}``."""
    return {"__bytes__": value.hex()} if isinstance(value, bytes) else value


def _load_default(value: Any) -> Any:
    if isinstance(value, dict) and "__bytes__" in value:
        return bytes.fromhex(value["__bytes__"])
    return value


def _dtype_name(dtype: T.ValueType) -> str:
    return dtype.name


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

    KIND = "field"
    # ``ls``: the columns of a view's field table in ``skewless describe`` (column 2 is the
    # field's role there: join key or feature).
    FIELDS = (
        Spec("name", diff=IDENTITY, ls=(0, "name")),
        Spec("dtype", dump=_dtype_name, load=T.from_name, diff=PART, ls=(1, "type")),
        Spec("description", ls=(4, "description")),
        Spec("tags", dump=as_dict, ls=(5, "tags")),
        Spec("default", dump=_dump_default, load=_load_default, ls=(3, "default")),
    )

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

    def __repr__(self) -> str:
        extra = f", default={self.default!r}" if self.default is not None else ""
        return f"Field(name={self.name!r}, dtype={self.dtype}{extra})"


def check_schema(label: str, schema: Sequence[Field] | None, example: str | None = None,
                 dtype: str = "Float64") -> tuple[Field, ...]:
    """The fields of ``schema``: every entry a Field, no name twice, and, when ``example`` is
    given, not empty; else DefinitionError naming ``label`` (the hint shows a field named
    ``example`` of ``dtype``). The one schema check of every definition with a schema."""
    fields = list(schema or [])
    if not fields and example is not None:
        raise DefinitionError(f"{label}: schema is empty",
                              hint=f"schema=[Field(name='{example}', dtype={dtype})]")
    for f in fields:
        if not isinstance(f, Field):
            raise DefinitionError(f"{label}: schema entries must be Field(...), got {f!r}")
    names = [f.name for f in fields]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise DefinitionError(f"{label}: field(s) {dup} declared twice in schema")
    return tuple(fields)
