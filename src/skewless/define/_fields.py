"""One field list per definition kind: how each field is stored, compared, described and listed.

Every definition class (Entity, Field, FileSource, PushSource, FeatureView, FeatureService)
declares ``FIELDS``, a tuple of ``Spec`` in the order of its registry spec. Everything that
walks a definition's fields reads that tuple instead of naming the fields again:

- serialisation: ``to_spec`` / ``from_spec`` (``FrozenMixin``), the registry's stored format;
- the plan's diff (``registry/diff.py``): which reading shows a change, and whether it is
  breaking;
- what a change of a source does to the online table (``resets_online``);
- ``skewless describe`` rows and ``skewless ls`` columns (``cli/catalog.py``).

A parameter of a definition's ``__init__`` that is not in its ``FIELDS`` (or not explicitly
listed as a spelling, see ``ALIASES``) fails ``tests/unit/test_definition_fields.py``; so does
a field whose change would not show in serialisation, the plan or ``describe``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from skewless.errors import DefinitionError

# How a change of a field shows in the plan (``registry/diff.py`` has one reading per name):
VALUE = "value"          # ``label: old -> new`` (the spec values, nested specs by their own fields)
BREAKING = "breaking"    # ``<label> changed old -> new``, a breaking change
IDENTITY = "identity"    # the object's name: another name is another object (create + delete)
SCHEMA = "schema"        # a view's schema, field by field (added, removed, renamed, retyped)
SOURCE = "source"        # a view's source: the batch source's fields, then the push source's
PART = "part"            # read by the enclosing definition's reading (a field's dtype, a push
                         # source's batch source): never shown on its own
READINGS = (VALUE, BREAKING, IDENTITY, SCHEMA, SOURCE, PART)


def _same(value: Any) -> Any:
    return value


_KEEP = object()   # ``Spec.omit`` default: the key is always written


@dataclass(frozen=True)
class Spec:
    """One field of a definition kind.

    ``name``: the attribute, and the ``__init__`` parameter it comes from (``param`` when that
    differs, e.g. FeatureService's ``features`` held as ``projections``). ``key``: the spec key
    the registry stores it under (default ``name``). ``dump`` turns the attribute into the
    JSON-able spec value, ``load`` the spec value back into an ``__init__`` argument; a spec
    without the key (written before the field existed) passes nothing, so ``__init__``'s default
    applies. ``diff``: the plan's reading of a change (``READINGS``); ``label``: the word the
    plan shows (default ``key``), ``shown`` what it shows of a spec value (e.g. seconds as a
    timedelta). ``resets_online``: for a source's fields, whether a change means other rows (a
    new, empty online table: ``registry.diff.online_reset``).
    ``describe``: ``(row, label)`` of its row in ``skewless describe`` (rows sorted by ``row``;
    None: shown another way, e.g. as the title or a table); ``ls``: ``(column, heading)`` of its
    column in ``skewless ls`` (None: not listed). ``omit``: a spec value that is not written
    (the key is left out, and loads back as ``__init__``'s default), so a field added later
    leaves the stored form of every definition that does not use it unchanged (and the digests
    read from it, e.g. ``materialization_signature``).
    """

    name: str
    key: str = ""
    param: str = ""
    dump: Callable[[Any], Any] = _same
    load: Callable[[Any], Any] = _same
    diff: str = VALUE
    label: str = ""
    shown: Callable[[Any], Any] = _same
    resets_online: bool = False
    describe: tuple[int, str] | None = None
    ls: tuple[int, str] | None = None
    omit: Any = _KEEP

    def __post_init__(self) -> None:
        if self.diff not in READINGS:
            raise ValueError(f"field {self.name!r}: diff={self.diff!r} is not one of {READINGS}")
        object.__setattr__(self, "key", self.key or self.name)
        object.__setattr__(self, "param", self.param or self.name)
        object.__setattr__(self, "label", self.label or self.key)

    def value(self, obj: Any) -> Any:
        """The field's spec value on ``obj`` (what the registry stores and the diff compares)."""
        return self.dump(getattr(obj, self.name))


def as_list(value: Any) -> list[Any]:
    return list(value)


def as_dict(value: Any) -> dict[Any, Any]:
    return dict(value)


def specs_of(items: Any) -> list[dict[str, Any]]:
    """A sequence of nested definitions as their specs."""
    return [item.to_spec() for item in items]


def spec_of(item: Any) -> dict[str, Any]:
    return item.to_spec()  # type: ignore[no-any-return]


def to_spec(obj: Any, fields: tuple[Spec, ...], type_tag: str | None = None) -> dict[str, Any]:
    """``obj``'s spec: ``{"type": type_tag}`` first when given, then each field's key in order."""
    spec: dict[str, Any] = {"type": type_tag} if type_tag else {}
    for f in fields:
        value = getattr(obj, f.name)
        value = value if f.dump is _same else f.dump(value)
        if f.omit is not _KEEP and value == f.omit:
            continue
        spec[f.key] = value
    return spec


def init_args(kind: str, fields: tuple[Spec, ...], spec: Mapping[str, Any],
              type_tag: str | None = None) -> dict[str, Any]:
    """The ``__init__`` arguments a stored spec gives: each present key loaded; a missing key
    (a field added after the spec was written) left to ``__init__``'s default. A key no field
    declares is a DefinitionError: the registry was written by a newer skewless."""
    known = {f.key for f in fields} | ({"type"} if type_tag else set())
    unknown = sorted(k for k in spec if k not in known)
    if unknown:
        raise DefinitionError(
            f"registry entry of {kind} {spec.get('name')!r} holds {unknown}, which this version of "
            "skewless does not know",
            hint="upgrade skewless to the version that applied this registry")
    return {f.param: f.load(spec[f.key]) for f in fields if f.key in spec}


# Parameters of a definition's ``__init__`` that are other spellings of a field, or Feast
# arguments refused with a hint (docs/configuration.md, "Coming from Feast"): they are never
# stored, so they are not fields.
ALIASES: dict[str, frozenset[str]] = {
    "FileSource": frozenset({"file_format", "event_timestamp_column", "tags", "owner",
                             "s3_endpoint_override"}),
    "LoggingConfig": frozenset({"destination"}),
}
