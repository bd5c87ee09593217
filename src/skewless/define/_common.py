"""Checks shared by every definition: names, tags, owners."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from skewless.errors import DefinitionError

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
    """Definitions are values: immutable after construction, hashable by their spec."""

    def __setattr__(self, key: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable; build a new one instead")

    def _set(self, key: str, value: Any) -> None:
        object.__setattr__(self, key, value)

    def to_spec(self) -> dict[str, Any]:
        raise NotImplementedError

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self.to_spec() == other.to_spec()  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((type(self).__name__, repr(sorted(self.to_spec().items(), key=lambda kv: kv[0]))))
