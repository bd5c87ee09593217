"""Value types and their Arrow mapping: the only type table in skewless.

A feature's declared type decides how it is stored and served on every backend. Whether a
source column of some Arrow type may feed it is decided here, once, by the conformance table
(``conformance``, ``misfits``, ``convert``; documented in docs/types.md), for plan/apply,
training retrieval, materialization, rebuild-online and push alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pyarrow as pa

__all__ = [
    "ValueType", "PrimitiveType", "Array", "Int32", "Int64", "Float32", "Float64", "String",
    "Bool", "Bytes", "UnixTimestamp", "from_name", "from_arrow", "is_compatible",
    "ACCEPT", "CHECK", "REFUSE", "Conformance", "conformance", "misfits", "convert",
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


# --- the conformance table ------------------------------------------------------------------
#
# One rule decides whether a column of some Arrow type may feed a field of a declared type, on
# every path: plan/apply, training retrieval, materialization, rebuild-online and push
# (docs/types.md has the table). The verdicts:
#
# ACCEPT  the same type or a lossless widening: no value needs reading;
# CHECK   accepted when every value fits (an int64 column over Int32, a float column over an
#         integer field, float64 over Float32, an int64 column over Float64): the values of the
#         column are checked (``misfits``), and a refusal names a bad row;
# REFUSE  never: strings never become numbers or timestamps, numbers never become strings,
#         booleans never become numbers (nor the other way round).
#
# The Arrow null type (an all-None column) fits every type; a dictionary-encoded column is
# judged by its values' type; a list column element by element.

ACCEPT, CHECK, REFUSE = "accept", "check", "refuse"

FLOAT32_MAX = 3.4028234663852886e38


@dataclass(frozen=True)
class Conformance:
    """The verdict of the table for one (source type, target type) pair, and why."""

    verdict: str          # ACCEPT | CHECK | REFUSE
    rule: str             # the rule applied, in words (for errors and docs)

    @property
    def ok(self) -> bool:
        return self.verdict != REFUSE


def _target(t: ValueType | pa.DataType) -> pa.DataType:
    return t.to_arrow() if isinstance(t, ValueType) else t


def _int_range(t: pa.DataType) -> tuple[int, int]:
    bits = t.bit_width
    if pa.types.is_unsigned_integer(t):
        return 0, 2**bits - 1
    return -(2 ** (bits - 1)), 2 ** (bits - 1) - 1


_MANTISSA = {16: 11, 32: 24, 64: 53}   # integers up to 2**m are exact in a float of this width


def conformance(source: pa.DataType, target: ValueType | pa.DataType) -> Conformance:
    """Whether a column of Arrow type ``source`` may feed values of ``target`` (a declared
    skewless type, or the Arrow type a column is stored with). See docs/types.md."""
    target = _target(target)
    if pa.types.is_dictionary(source):
        source = source.value_type
    if source == target or pa.types.is_null(source):
        return Conformance(ACCEPT, "same type" if source == target else "all values are null")
    fs, ft = _family(source), _family(target)
    shown = _shown(target)
    name = arrow_name(source)
    if fs == ft == "int":
        lo, hi = _int_range(source)
        tlo, thi = _int_range(target)
        if tlo <= lo and hi <= thi:
            return Conformance(ACCEPT, f"{name} widens to {shown}")
        return Conformance(CHECK, f"{name} over {shown}: every value must fit {shown}")
    if fs == ft == "float":
        if source.bit_width <= target.bit_width:
            return Conformance(ACCEPT, f"{name} widens to {shown}")
        return Conformance(CHECK, f"{name} over {shown}: values are rounded to {shown} and "
                           "must lie within its range")
    if fs == "int" and ft == "float":
        if source.bit_width < _MANTISSA[target.bit_width]:
            return Conformance(ACCEPT, f"{name} widens to {shown}")
        return Conformance(CHECK, f"{name} over {shown}: every value must be exactly "
                           f"representable in {shown}")
    if fs == "float" and ft == "int":
        return Conformance(CHECK, f"{name} over {shown}: every value must be a whole number "
                           f"that fits {shown}")
    if fs == ft == "timestamp":
        if pa.types.is_date(target) and not pa.types.is_date(source):
            return Conformance(CHECK, f"{name} over {shown}: every value must be a midnight (UTC)")
        return Conformance(ACCEPT, f"{name} converts to {shown} (UTC; naive means UTC)")
    if fs == ft and fs in ("string", "binary", "bool"):
        return Conformance(ACCEPT, f"{name} widens to {shown}")
    if fs == ft == "list":
        inner = conformance(source.value_type, target.value_type)
        return Conformance(inner.verdict, f"list elements: {inner.rule}")
    return Conformance(REFUSE, f"{name} never converts to {shown}")


def arrow_name(t: pa.DataType) -> str:
    """An Arrow type as pandas users know it: ``float64`` rather than Arrow's ``double``."""
    return {"double": "float64", "float": "float32", "halffloat": "float16"}.get(str(t), str(t))


def _shown(t: pa.DataType) -> str:
    """An Arrow type as users declare it (``Float64``), with the Arrow type when they differ."""
    natural = from_arrow(t)
    return natural.name if natural.to_arrow() == t else f"{natural.name} ({arrow_name(t)})"


def misfits(array: pa.Array, target: ValueType | pa.DataType) -> pa.Array | None:
    """For a column whose conformance is CHECK: a boolean mask of the rows whose values do not
    fit ``target`` (None when every value fits). Vectorised (pyarrow compute), no Python loop."""
    import pyarrow.compute as pc

    target = _target(target)
    if pa.types.is_dictionary(array.type):
        array = array.dictionary_decode()
    source = array.type
    fs, ft = _family(source), _family(target)
    bad: pa.Array | None = None
    if fs == ft == "list":
        values = pc.list_flatten(array)
        inner = misfits(values, target.value_type)
        if inner is None:
            return None
        parents = pc.filter(pc.list_parent_indices(array), inner)
        bad = pc.is_in(pa.array(range(len(array)), pa.int64()), value_set=parents.cast(pa.int64()))
    elif fs == ft == "int":
        lo, hi = _int_range(target)
        s_lo, s_hi = _int_range(source)
        # A bound beyond the source type's own range cannot be crossed (and comparing with it
        # would make Arrow cast the column, e.g. uint64 values past 2**63 into int64).
        never = pa.repeat(False, len(array))
        below = pc.less(array, pa.scalar(lo, source)) if lo > s_lo else never
        above = pc.greater(array, pa.scalar(hi, source)) if hi < s_hi else never
        bad = pc.or_(below, above)
    elif fs == ft == "float":   # narrower float: finite values beyond its range
        out = pc.cast(array, target, safe=False)
        bad = pc.and_(pc.is_finite(array), pc.invert(pc.is_finite(out)))
    elif fs == "int" and ft == "float":
        m = 2 ** _MANTISSA[target.bit_width]
        s_lo, s_hi = _int_range(source)
        if s_hi <= m and s_lo >= -m:
            return None
        # bounds inside the column's own type only (else Arrow would cast the column)
        big = pc.greater(array, pa.scalar(m, source)) if s_hi > m else pa.repeat(False, len(array))
        if s_lo < -m:
            big = pc.or_(big, pc.less(array, pa.scalar(-m, source)))
        if not pc.any(big).as_py():
            return None
        # beyond 2**m only some integers are exact: round-trip them through the column's type
        wide = pc.cast(pc.cast(array, target, safe=False), pa.float64(), safe=False)
        back_ok = pc.and_(pc.less(wide, float(s_hi) + 1.0), pc.greater_equal(wide, float(s_lo)))
        back = pc.if_else(back_ok, pc.cast(pc.if_else(back_ok, wide, 0.0), source, safe=False), None)
        bad = pc.and_(big, pc.invert(pc.fill_null(pc.equal(back, array), False)))
    elif fs == ft == "timestamp":   # a timestamp into a date: midnights only
        day = pc.cast(pc.cast(array, target, safe=False), pa.timestamp("us", "UTC"), safe=False)
        bad = pc.not_equal(day, pc.cast(array, pa.timestamp("us", "UTC"), safe=False))
    elif fs == "float" and ft == "int":
        lo, hi = _int_range(target)
        x = pc.cast(array, pa.float64())
        bad = pc.or_(pc.or_(pc.invert(pc.is_finite(x)), pc.not_equal(pc.floor(x), x)),
                     pc.or_(pc.less(x, float(lo)), pc.greater_equal(x, float(hi) + 1.0)))
    if bad is None:
        return None
    bad = pc.fill_null(bad, False)
    return bad if pc.any(bad).as_py() else None


def convert(array: pa.Array, target: ValueType | pa.DataType) -> pa.Array:
    """``array`` as ``target`` once ``conformance`` accepted it and ``misfits`` found nothing:
    timestamps to microseconds (finer digits dropped), float64 rounded to float32."""
    import pyarrow.compute as pc

    target = _target(target)
    if pa.types.is_dictionary(array.type):
        array = array.dictionary_decode()
    if array.type == target:
        return array
    if pa.types.is_null(array.type):
        return pa.nulls(len(array), type=target)
    return pc.cast(array, target, safe=False)


def is_compatible(source: pa.DataType, declared: ValueType) -> bool:
    """True when the table accepts a column of Arrow type ``source`` for ``declared`` (possibly
    after checking its values: see ``conformance``)."""
    return conformance(source, declared).ok


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
