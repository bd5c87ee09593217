"""Checks shared by every definition: names, tags, owners."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import timedelta
from typing import Any, ClassVar, TypeVar

from skewless.define._fields import Spec, init_args, to_spec
from skewless.errors import DefinitionError

D = TypeVar("D", bound="FrozenMixin")

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def check_name(kind: str, name: Any, what: str = "name") -> str:
    """A definition name must be a Python-identifier-like string: it becomes a column, a table
    and a key prefix on every backend."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise DefinitionError(
            f"{kind} {what} {name!r} is invalid",
            hint="use letters, digits and underscores, not starting with a digit (e.g. 'user_spend')",
        )
    if "__" in name:
        raise DefinitionError(
            f"{kind} {what} {name!r} contains '__', which skewless reserves for 'view__feature' names",
            hint=f"rename it, e.g. {name.replace('__', '_')!r}",
        )
    return name


MAX_DURATION = timedelta(days=100 * 365_250)   # 100,000 years: microseconds fit 64 bits


def seconds_duration(label: str, value: Any) -> Any:
    """A duration given as a number of seconds (not a bool) as a timedelta; anything else is
    returned as it is for the caller's type check. DefinitionError naming ``label`` when it is
    not finite or beyond ``MAX_DURATION``."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            value = timedelta(seconds=value)
        except (OverflowError, ValueError):
            raise DefinitionError(f"{label} {value!r} is not a finite number of seconds within "
                                  f"{MAX_DURATION.days:,} days",
                                  hint="give a timedelta, e.g. timedelta(hours=6)") from None
    return value


def check_duration(label: str, value: timedelta) -> timedelta:
    """``value`` if every engine and store can compare it (its microseconds fit 64 bits, with
    room for the times it is added to); else DefinitionError naming ``label``."""
    if value > MAX_DURATION:
        raise DefinitionError(f"{label} {value} is longer than {MAX_DURATION.days:,} days, which "
                              "times cannot be compared with",
                              hint="for no limit at all, leave it out (None)")
    return value


def check_tags(kind: str, name: str, tags: Any) -> dict[str, str]:
    if tags is None:
        return {}
    if not isinstance(tags, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in tags.items()
    ):
        raise DefinitionError(f"{kind} '{name}': tags must be a dict of str to str, got {tags!r}")
    return dict(tags)


def check_str(kind: str, name: str, field: str, value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise DefinitionError(f"{kind} '{name}': {field} must be a string, got {type(value).__name__}")
    return value


class FrozenMixin:
    """Definitions are values: immutable after construction, hashable by their spec.

    Each subclass lists its fields once in ``FIELDS`` (``define/_fields.py``); its spec (the
    registry's stored form, by which definitions compare) is read from that list, and built back
    from it. ``TYPE_TAG`` names the kind inside a spec where several kinds share a slot (sources).
    ``KIND`` is the word errors use.
    """

    FIELDS: ClassVar[tuple[Spec, ...]] = ()
    TYPE_TAG: ClassVar[str | None] = None
    KIND: ClassVar[str] = "definition"

    def __setattr__(self, key: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable; build a new one instead")

    def _set(self, key: str, value: Any) -> None:
        object.__setattr__(self, key, value)

    def to_spec(self) -> dict[str, Any]:
        """The definition as the registry stores it: JSON-able, one key per field."""
        return to_spec(self, self.FIELDS, self.TYPE_TAG)

    @classmethod
    def from_spec(cls: type[D], spec: dict[str, Any]) -> D:
        """The definition a stored spec describes; a key missing from an older spec gets the
        parameter's default."""
        return cls(**init_args(cls.KIND, cls.FIELDS, spec, cls.TYPE_TAG))

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self.to_spec() == other.to_spec()  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((type(self).__name__, repr(sorted(self.to_spec().items(), key=lambda kv: kv[0]))))
