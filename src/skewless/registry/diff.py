"""Compare two snapshots: what ``plan`` shows and what ``apply`` refuses.

Every difference is read from the definitions' field lists (``FIELDS``, ``define/_fields.py``),
the same lists their serialisation is built from: each field names its reading. Most are shown
as ``label: old -> new``; a view's schema is read field by field, its source as the batch
source's fields then the push source's, and a change of a view's entities or an entity's join
keys is breaking. A field added to a definition is in its field list, so it is in the plan.

Schema evolution: adding a field is safe. Removing, renaming or retyping a field, or changing a
view's entities or an entity's join keys, is breaking: models trained on the old definition
would silently get different features.

Online state follows the registry (docs/online.md): deleting a view drops its online table and
materialization state, and a view whose stored records no longer fit its definition (a breaking
change, other join keys, another source) starts a new online table, empty. Both are marked
``destructive`` in the plan, with what is lost.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from skewless.define import FeatureView, Field, FileSource, PushSource
from skewless.define._common import FrozenMixin
from skewless.define._fields import BREAKING, SCHEMA, SOURCE, VALUE, Spec
from skewless.define.source import Source, offline_source
from skewless.errors import SkewlessError
from skewless.registry.snapshot import KINDS, Snapshot

DROPS_ONLINE = ("drops its online table and materialization state: served values of this view "
                "are gone until a view of this name is applied and materialized again")
STARTS_EMPTY = ("online table starts empty ({why}): records written under the old definition are "
                "never served; run `skewless materialize-incremental` to fill it")


@dataclass
class Change:
    kind: str                  # entity | feature_view | feature_service
    name: str
    op: str                    # create | update | delete
    details: list[str] = field(default_factory=list)
    breaking: list[str] = field(default_factory=list)
    destructive: list[str] = field(default_factory=list)   # online state this change drops

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "op": self.op, "details": self.details,
                "breaking": self.breaking, "destructive": self.destructive}


# --- showing values --------------------------------------------------------------------------

def _show(spec: Spec, value: Any) -> str:
    if value is None:
        return "none"
    value = spec.shown(value)
    if isinstance(value, timedelta):
        if value.days and not value.seconds and not value.microseconds:
            return f"{value.days} day" + ("s" if value.days != 1 else "")
        return str(value)
    return repr(value)


# --- per kind: every field of the kind's field list, through its reading ------------------------

def field_changes(old: FrozenMixin, new: FrozenMixin, details: list[str], breaking: list[str],
                  prefix: str = "") -> None:
    """Every field of ``old`` / ``new`` (one definition kind) whose spec value differs, shown
    through the field's reading (``define/_fields.py``): ``label: old -> new`` in ``details``,
    ``label changed old -> new`` in ``breaking``, a view's schema and source field by field.
    The object's name and the parts an enclosing reading shows are skipped."""
    for spec in type(old).FIELDS:
        a, b = spec.value(old), spec.value(new)
        if a == b:
            continue
        if spec.diff == VALUE:
            details.append(f"{prefix}{spec.label}: {_show(spec, a)} -> {_show(spec, b)}")
        elif spec.diff == BREAKING:
            breaking.append(f"{prefix}{spec.label} changed {a} -> {b}")
        elif spec.diff == SCHEMA:
            _schema(getattr(old, spec.name), getattr(new, spec.name), details, breaking)
        elif spec.diff == SOURCE:
            _source(getattr(old, spec.name), getattr(new, spec.name), details, breaking)


def _schema(old: tuple[Field, ...], new: tuple[Field, ...], details: list[str],
            breaking: list[str]) -> None:
    """A view's schema, field by field: added (safe); removed, renamed (a removed field and an
    added one of the same type) or retyped (breaking); each kept field's other changes."""
    old_f = {f.name: f for f in old}
    new_f = {f.name: f for f in new}
    removed = [n for n in old_f if n not in new_f]
    added = [n for n in new_f if n not in old_f]
    renamed: set[str] = set()
    for r in removed:
        twin = next((a for a in added if a not in renamed and new_f[a].dtype.name == old_f[r].dtype.name),
                    None)
        if twin is not None and len(removed) == len(added):
            breaking.append(f"field '{r}' renamed to '{twin}'")
            renamed.add(twin)
        else:
            breaking.append(f"field '{r}' removed")
    for a in added:
        if a not in renamed:
            details.append(f"field '{a}' added ({new_f[a].dtype.name})")
    for n in [n for n in old_f if n in new_f]:
        a_field, b_field = old_f[n], new_f[n]
        if a_field.dtype.name != b_field.dtype.name:
            breaking.append(f"field '{n}' retyped {a_field.dtype.name} -> {b_field.dtype.name}")
        field_changes(a_field, b_field, details, breaking, f"field '{n}' ")
    if [n for n in old_f if n in new_f] != [n for n in new_f if n in old_f]:
        details.append(f"field order: {list(old_f)} -> {list(new_f)}")


def _source(old: Source, new: Source, details: list[str], breaking: list[str]) -> None:
    """A source's changes: those of the batch source (where history is read), then those of
    the push source in front of it, if any."""
    field_changes(offline_source(old), offline_source(new), details, breaking, "source.")
    a_push = old if isinstance(old, PushSource) else None
    b_push = new if isinstance(new, PushSource) else None
    if a_push is None or b_push is None:
        if a_push is not b_push:
            details.append(f"push source: {_push_name(a_push)} -> {_push_name(b_push)}")
    else:
        field_changes(a_push, b_push, details, breaking, "push source.")


def _push_name(push: PushSource | None) -> str:
    return "none" if push is None else repr(push.name)


def _changes(old: FrozenMixin, new: FrozenMixin) -> tuple[list[str], list[str]]:
    details: list[str] = []
    breaking: list[str] = []
    field_changes(old, new, details, breaking)
    return details, breaking


# --- online identity ----------------------------------------------------------------------------

def _join_keys(snapshot: Snapshot, view: FeatureView) -> tuple[str, ...] | None:
    try:
        return snapshot.join_keys(view)
    except SkewlessError:
        return None


_KEEPS_ROWS = frozenset(f.key for f in FileSource.FIELDS if not f.resets_online)


def _batch_identity(view: FeatureView) -> dict[str, Any]:
    """What the offline history of a view is read from: its batch source's spec without the
    fields that do not change which rows it holds (``resets_online=False``: name,
    description). Part of ``materialization_signature``, so its shape is fixed."""
    spec = view.batch_source.to_spec()
    return {k: v for k, v in spec.items() if k not in _KEEPS_ROWS}


def _aggregation_identity(view: FeatureView) -> dict[str, Any]:
    """What an aggregated view's online tiles hold: its aggregations and tile."""
    spec = view.to_spec()
    return {k: spec.get(k) for k in ("aggregations", "aggregation_tile_seconds")}


def online_reset(old_snap: Snapshot, old: FeatureView, new_snap: Snapshot, new: FeatureView) -> str | None:
    """Why ``new`` cannot keep the online records written under ``old`` (then it starts a new
    generation: a new, empty online table), or None when they still fit: same join keys and key
    types, same source, and every old feature still there with its type (added features are
    filled by the next run: see ``materialization_signature``)."""
    old_keys, new_keys = _join_keys(old_snap, old), _join_keys(new_snap, new)
    if old_keys != new_keys:
        return f"join keys {list(old_keys or ())} -> {list(new_keys or ())}"
    keys = set(new_keys or ())
    old_types = {f.name: f.dtype.name for f in old.schema}
    new_types = {f.name: f.dtype.name for f in new.schema}
    for k in sorted(keys):
        if old_types.get(k) != new_types.get(k):
            return f"join key '{k}' type {old_types.get(k)} -> {new_types.get(k)}"
    if _batch_identity(old) != _batch_identity(new):
        return "another source"
    if _aggregation_identity(old) != _aggregation_identity(new):
        return "other aggregations"
    for name, dtype in old_types.items():
        if name in keys:
            continue
        if name not in new_types:
            return f"field '{name}' removed or renamed"
        if new_types[name] != dtype:
            return f"field '{name}' retyped {dtype} -> {new_types[name]}"
    return None


def materialization_signature(snapshot: Snapshot, view: FeatureView) -> str:
    """A digest of what a view's materialization writes: join keys, features and their types,
    and the source. Coverage recorded under another signature (a field added since) does not
    count: the next incremental run reads the source again (docs/online.md)."""
    keys = _join_keys(snapshot, view) or ()
    body: dict[str, Any] = {"keys": list(keys), "fields": [[f.name, f.dtype.name] for f in view.schema],
                            "source": _batch_identity(view)}
    if view.aggregations:   # absent for plain views: their digest stays what it was
        body["aggregations"] = _aggregation_identity(view)
    return hashlib.blake2b(json.dumps(body, sort_keys=True).encode(), digest_size=8).hexdigest()


# --- the diff -----------------------------------------------------------------------------------

def diff(old: Snapshot, new: Snapshot) -> list[Change]:
    """Every create / update / delete from ``old`` to ``new``, in a stable order. A view whose
    definition is unchanged but whose entity's join keys changed is listed as an update too:
    its online table starts empty."""
    changes: list[Change] = []
    for kind in KINDS:
        a, b = old.table(kind), new.table(kind)
        for name in sorted(b.keys() - a.keys()):
            changes.append(Change(kind, name, "create"))
        for name in sorted(a.keys() & b.keys()):
            details: list[str] = []
            breaking: list[str] = []
            if a[name] != b[name]:
                details, breaking = _changes(a[name], b[name])
            destructive: list[str] = []
            if kind == "feature_view":
                why = online_reset(old, a[name], new, b[name])
                if why is not None:
                    destructive.append(STARTS_EMPTY.format(why=why))
            if a[name] != b[name] or destructive:
                changes.append(Change(kind, name, "update", details, breaking, destructive))
        for name in sorted(a.keys() - b.keys()):
            changes.append(Change(kind, name, "delete",
                                  destructive=[DROPS_ONLINE] if kind == "feature_view" else []))
    return changes
