"""Value types and their Arrow mapping: the only type table in skewless.

A feature's declared type decides how it is stored and served on every backend. Source columns
must match it exactly or widen safely (``int32`` into ``Int64``, ``float32`` into ``Float64``);
anything else is a schema error naming the column.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pyarrow as pa

__all__ = [
    "ValueType", "PrimitiveType", "Array", "Int32", "Int64", "Float32", "Float64", "String",
    "Bool", "Bytes", "UnixTimestamp", "from_name", "from_arrow", "is_compatible",
]


class ValueType:
    """A feature value type. Subclasses know their Arrow type and their serialised name."""

    name: str

    def to_arrow(self) -> pa.DataType:
        raise NotImplementedError

    def __repr__(self) -> str:
        return self.name

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True, repr=False)
class PrimitiveType(ValueType):
    name: str
    arrow: pa.DataType

    def to_arrow(self) -> pa.DataType:
        return self.arrow


@dataclass(frozen=True, repr=False)
class Array(ValueType):
    """A list of values of one primitive type, e.g. ``Array(Float32)`` for an embedding."""

    element: ValueType

    def __post_init__(self) -> None:
        if not isinstance(self.element, ValueType):
            raise TypeError(f"Array() takes a skewless type such as Float32, got {self.element!r}")
        if isinstance(self.element, Array):
            raise TypeError("nested arrays are not supported; use Array(<primitive type>)")

    @property
    def name(self) -> str:  # type: ignore[override]
        return f"Array({self.element.name})"

    def to_arrow(self) -> pa.DataType:
        return pa.list_(self.element.to_arrow())


Int32 = PrimitiveType("Int32", pa.int32())
Int64 = PrimitiveType("Int64", pa.int64())
Float32 = PrimitiveType("Float32", pa.float32())
Float64 = PrimitiveType("Float64", pa.float64())
String = PrimitiveType("String", pa.string())
Bool = PrimitiveType("Bool", pa.bool_())
Bytes = PrimitiveType("Bytes", pa.binary())
UnixTimestamp = PrimitiveType("UnixTimestamp", pa.timestamp("us", tz="UTC"))

_PRIMITIVES: dict[str, PrimitiveType] = {
    t.name: t for t in (Int32, Int64, Float32, Float64, String, Bool, Bytes, UnixTimestamp)
}


def from_name(name: str) -> ValueType:
    """Parse a serialised type name (``"Float64"``, ``"Array(Int64)"``)."""
    if name.startswith("Array(") and name.endswith(")"):
        return Array(from_name(name[6:-1]))
    try:
        return _PRIMITIVES[name]
    except KeyError:
        raise ValueError(f"unknown type {name!r}; valid: {', '.join(_PRIMITIVES)}, Array(T)") from None


def _family(t: pa.DataType) -> str:
    if pa.types.is_integer(t):
        return "int"
    if pa.types.is_floating(t):
        return "float"
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return "string"
    if pa.types.is_binary(t) or pa.types.is_large_binary(t):
        return "binary"
    if pa.types.is_boolean(t):
        return "bool"
    if pa.types.is_timestamp(t) or pa.types.is_date(t):
        return "timestamp"
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return "list"
    if pa.types.is_dictionary(t):
        return _family(t.value_type)
    return str(t)


def from_arrow(t: pa.DataType) -> ValueType:
    """The natural skewless type for an Arrow type (used by ``init`` and error messages)."""
    if pa.types.is_dictionary(t):
        t = t.value_type
    fam = _family(t)
    if fam == "int":
        return Int32 if t.bit_width <= 32 else Int64
    if fam == "float":
        return Float32 if t.bit_width <= 32 else Float64
    if fam == "list":
        return Array(from_arrow(t.value_type))
    return {"string": String, "binary": Bytes, "bool": Bool, "timestamp": UnixTimestamp}.get(fam, String)


def is_compatible(source: pa.DataType, declared: ValueType) -> bool:
    """True when a source column of Arrow type ``source`` can hold values of ``declared``
    without loss: the same type, or a safe widening within one family."""
    if pa.types.is_dictionary(source):
        source = source.value_type
    target = declared.to_arrow()
    fam_s, fam_t = _family(source), _family(target)
    if fam_s != fam_t:
        return False
    if fam_s in ("int", "float"):
        return bool(source.bit_width <= target.bit_width)
    if fam_s == "list":
        assert isinstance(declared, Array)
        return is_compatible(source.value_type, declared.element)
    return True


def python_value_ok(value: Any, declared: ValueType) -> bool:
    """Whether a Python value (e.g. a ``Field.default``) fits ``declared``."""
    if value is None:
        return True
    try:
        pa.array([value], type=declared.to_arrow())
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, OverflowError):
        return False
    if declared in (Int32, Int64) and isinstance(value, (bool, float)):
        return False
    if declared is Float32 and isinstance(value, (int, float)) and not isinstance(value, bool):
        import math
        return not math.isfinite(value) or abs(value) <= 3.4028234663852886e38
    return True
