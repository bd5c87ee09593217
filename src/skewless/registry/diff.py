"""Compare two snapshots: what ``plan`` shows and what ``apply`` refuses.

Every difference is read from the definitions' own description, their spec (``to_spec()``: the
one serialisation the registry stores and compares definitions by), key by key. A key this
module has no special reading for is still reported (``key: old -> new``), so a field added to
a definition can never be left out of the plan. A few keys get a finer reading: a view's schema
(field by field), its entities, its source (and push source), an entity's join keys.

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
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from skewless.define import Entity, FeatureView
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

_LABELS = {"ttl_seconds": "ttl", "features": "features"}   # spec key -> the word users write


def _show(key: str, value: Any) -> str:
    if value is None:
        return "none"
    if key == "ttl_seconds":
        value = timedelta(seconds=value)
    if isinstance(value, timedelta):
        if value.days and not value.seconds and not value.microseconds:
            return f"{value.days} day" + ("s" if value.days != 1 else "")
        return str(value)
    return repr(value)


def spec_changes(old: dict[str, Any], new: dict[str, Any], prefix: str = "") -> list[str]:
    """``key: old -> new`` for every spec key whose value differs (nested specs of sources by
    their own keys, ``source.path: ...``)."""
    out: list[str] = []
    for key in [*old, *(k for k in new if k not in old)]:
        a, b = old.get(key), new.get(key)
        if a == b:
            continue
        label = prefix + _LABELS.get(key, key)
        if key == "batch_source" and isinstance(a, dict) and isinstance(b, dict):
            out.extend(spec_changes(a, b, label + "."))
        else:
            out.append(f"{label}: {_show(key, a)} -> {_show(key, b)}")
    return out


# --- per kind -----------------------------------------------------------------------------------

def _schema(old: list[dict[str, Any]], new: list[dict[str, Any]], details: list[str],
            breaking: list[str]) -> None:
    old_f = {f["name"]: f for f in old}
    new_f = {f["name"]: f for f in new}
    removed = [n for n in old_f if n not in new_f]
    added = [n for n in new_f if n not in old_f]
    renamed: set[str] = set()
    for r in removed:
        twin = next((a for a in added if a not in renamed and new_f[a]["dtype"] == old_f[r]["dtype"]), None)
        if twin is not None and len(removed) == len(added):
            breaking.append(f"field '{r}' renamed to '{twin}'")
            renamed.add(twin)
        else:
            breaking.append(f"field '{r}' removed")
    for a in added:
        if a not in renamed:
            details.append(f"field '{a}' added ({new_f[a]['dtype']})")
    for n in [n for n in old_f if n in new_f]:
        a_spec, b_spec = old_f[n], new_f[n]
        if a_spec["dtype"] != b_spec["dtype"]:
            breaking.append(f"field '{n}' retyped {a_spec['dtype']} -> {b_spec['dtype']}")
        rest = spec_changes({k: v for k, v in a_spec.items() if k != "dtype"},
                            {k: v for k, v in b_spec.items() if k != "dtype"}, f"field '{n}' ")
        details.extend(rest)
    if [n for n in old_f if n in new_f] != [n for n in new_f if n in old_f]:
        details.append(f"field order: {list(old_f)} -> {list(new_f)}")


def _source(old: dict[str, Any], new: dict[str, Any], details: list[str]) -> None:
    """A source's changes: those of the batch source (where history is read), then those of
    the push source in front of it, if any."""
    def parts(spec: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any] | None]:
        if spec.get("type") == "push":
            return spec["batch_source"], {k: v for k, v in spec.items() if k != "batch_source"}
        return spec, None
    a_batch, a_push = parts(old)
    b_batch, b_push = parts(new)
    details.extend(spec_changes(a_batch, b_batch, "source."))
    if a_push is None or b_push is None:
        if a_push != b_push:
            details.append(f"push source: {_push_name(a_push)} -> {_push_name(b_push)}")
    else:
        details.extend(spec_changes(a_push, b_push, "push source."))


def _push_name(spec: dict[str, Any] | None) -> str:
    return "none" if spec is None else repr(spec["name"])


def _view_changes(old: FeatureView, new: FeatureView) -> tuple[list[str], list[str]]:
    details: list[str] = []
    breaking: list[str] = []
    a, b = old.to_spec(), new.to_spec()
    special: dict[str, Callable[[Any, Any], None]] = {
        "schema": lambda x, y: _schema(x, y, details, breaking),
        "entities": lambda x, y: breaking.append(f"entities changed {x} -> {y}"),
        "source": lambda x, y: _source(x, y, details),
    }
    _by_key(a, b, special, details)
    return details, breaking


def _entity_changes(old: Entity, new: Entity) -> tuple[list[str], list[str]]:
    details: list[str] = []
    breaking: list[str] = []
    special: dict[str, Callable[[Any, Any], None]] = {
        "join_keys": lambda x, y: breaking.append(f"join keys changed {x} -> {y}")}
    _by_key(old.to_spec(), new.to_spec(), special, details)
    return details, breaking


def _by_key(a: dict[str, Any], b: dict[str, Any], special: dict[str, Callable[[Any, Any], None]],
            details: list[str]) -> None:
    """Every differing key of two specs: through its special reading, else as ``key: a -> b``."""
    for key in [*a, *(k for k in b if k not in a)]:
        x, y = a.get(key), b.get(key)
        if x == y:
            continue
        if key in special:
            special[key](x, y)
        else:
            details.extend(spec_changes({key: x}, {key: y}))


def _changes(kind: str, old: Any, new: Any) -> tuple[list[str], list[str]]:
    if kind == "feature_view":
        return _view_changes(old, new)
    if kind == "entity":
        return _entity_changes(old, new)
    return spec_changes(old.to_spec(), new.to_spec()), []


# --- online identity ----------------------------------------------------------------------------

def _join_keys(snapshot: Snapshot, view: FeatureView) -> tuple[str, ...] | None:
    try:
        return snapshot.join_keys(view)
    except SkewlessError:
        return None


def _batch_identity(view: FeatureView) -> dict[str, Any]:
    """What the offline history of a view is read from (a source's name and description do
    not change which rows it holds)."""
    spec = view.batch_source.to_spec()
    return {k: v for k, v in spec.items() if k not in ("name", "description")}


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
    body = {"keys": list(keys), "fields": [[f.name, f.dtype.name] for f in view.schema],
            "source": _batch_identity(view)}
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
                details, breaking = _changes(kind, a[name], b[name])
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
