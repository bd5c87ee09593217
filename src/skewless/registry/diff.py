"""Compare two snapshots: what ``plan`` shows and what ``apply`` refuses.

Schema evolution: adding a field is safe. Removing, renaming or retyping a field, or changing a
view's entities or an entity's join keys, is breaking: models trained on the old definition
would silently get different features.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from skewless.define import Entity, FeatureView
from skewless.registry.snapshot import KINDS, Snapshot


@dataclass
class Change:
    kind: str                  # entity | feature_view | feature_service
    name: str
    op: str                    # create | update | delete
    details: list[str] = field(default_factory=list)
    breaking: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "op": self.op, "details": self.details,
                "breaking": self.breaking}


def _view_changes(old: FeatureView, new: FeatureView) -> tuple[list[str], list[str]]:
    details: list[str] = []
    breaking: list[str] = []
    old_f = {f.name: f for f in old.schema}
    new_f = {f.name: f for f in new.schema}
    removed = [n for n in old_f if n not in new_f]
    added = [n for n in new_f if n not in old_f]
    renamed: set[str] = set()
    for r in removed:
        twin = next((a for a in added if a not in renamed and new_f[a].dtype == old_f[r].dtype), None)
        if twin is not None and len(removed) == len(added):
            breaking.append(f"field '{r}' renamed to '{twin}'")
            renamed.add(twin)
        else:
            breaking.append(f"field '{r}' removed")
    for a in added:
        if a not in renamed:
            details.append(f"field '{a}' added ({new_f[a].dtype})")
    for n in old_f.keys() & new_f.keys():
        if old_f[n].dtype != new_f[n].dtype:
            breaking.append(f"field '{n}' retyped {old_f[n].dtype} -> {new_f[n].dtype}")
        elif old_f[n] != new_f[n]:
            details.append(f"field '{n}' description/tags/default changed")
    if old.entities != new.entities:
        breaking.append(f"entities changed {list(old.entities)} -> {list(new.entities)}")
    for attr in ("ttl", "online", "on_missing", "description", "owner", "tags"):
        a, b = getattr(old, attr), getattr(new, attr)
        if a != b:
            details.append(f"{attr}: {_show(a)} -> {_show(b)}")
    if old.source != new.source:
        a_src, b_src = old.batch_source, new.batch_source
        if a_src.path != b_src.path:
            details.append(f"source changed ({a_src.path} -> {b_src.path})")
        elif a_src != b_src:
            details.append("source options changed")
        if old.push_source != new.push_source:
            details.append(f"push source: {_push(old)} -> {_push(new)}")
    return details, breaking


def _push(view: FeatureView) -> str:
    push = view.push_source
    return "none" if push is None else repr(push.name)


def _show(value: Any) -> str:
    if isinstance(value, timedelta):
        if value.days and not value.seconds and not value.microseconds:
            return f"{value.days} day" + ("s" if value.days != 1 else "")
        return str(value)
    return "none" if value is None else repr(value)


def _entity_changes(old: Entity, new: Entity) -> tuple[list[str], list[str]]:
    details, breaking = [], []
    if old.join_keys != new.join_keys:
        breaking.append(f"join keys changed {list(old.join_keys)} -> {list(new.join_keys)}")
    for attr in ("description", "owner", "tags"):
        if getattr(old, attr) != getattr(new, attr):
            details.append(f"{attr} changed")
    return details, breaking


def diff(old: Snapshot, new: Snapshot) -> list[Change]:
    """Every create / update / delete from ``old`` to ``new``, in a stable order."""
    changes: list[Change] = []
    for kind in KINDS:
        a, b = old.table(kind), new.table(kind)
        for name in sorted(b.keys() - a.keys()):
            changes.append(Change(kind, name, "create"))
        for name in sorted(a.keys() & b.keys()):
            if a[name] == b[name]:
                continue
            if kind == "feature_view":
                details, breaking = _view_changes(a[name], b[name])
            elif kind == "entity":
                details, breaking = _entity_changes(a[name], b[name])
            else:
                details, breaking = ["features or metadata changed"], []
            changes.append(Change(kind, name, "update", details, breaking))
        for name in sorted(a.keys() - b.keys()):
            changes.append(Change(kind, name, "delete"))
    return changes
