"""The registry's content at one version: every definition of a project, by kind and name."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from skewless.define import Entity, FeatureService, FeatureView, OnDemandFeatureView
from skewless.errors import UnknownObjectError, closest
from skewless.online import table_name

KINDS: dict[str, Any] = {"entity": Entity, "feature_view": FeatureView,
                         "on_demand_feature_view": OnDemandFeatureView, "feature_service": FeatureService}


def kind_of(obj: object) -> str:
    for kind, cls in KINDS.items():
        if isinstance(obj, cls):
            return kind
    raise TypeError(f"{obj!r} is not a skewless definition (Entity, FeatureView, "
                    "OnDemandFeatureView, FeatureService)")


@dataclass
class Snapshot:
    """All definitions of a project at ``version`` (0 = nothing applied yet).

    ``generations``: per feature view name, the generation of its online table (docs/online.md,
    "Online state follows the registry"). A view created under a name never used before is
    generation 0 and keeps the table ``{project}.{view}`` (``skewless.online.table_name``); a view re-created after a delete,
    or changed so that stored records no longer fit it (forced breaking change, another source),
    starts a new generation, the registry version that made it, with a new, empty table. A
    deleted view's entry stays (a tombstone), so re-creating the name never reuses a table.
    """

    project: str
    version: int = 0
    entities: dict[str, Entity] = field(default_factory=dict)
    feature_views: dict[str, FeatureView] = field(default_factory=dict)
    feature_services: dict[str, FeatureService] = field(default_factory=dict)
    on_demand_feature_views: dict[str, OnDemandFeatureView] = field(default_factory=dict)
    generations: dict[str, int] = field(default_factory=dict)
    # where the registry store read it (its own token, e.g. the file's identity): lets
    # ``RegistryStore.load(project, unchanged=...)`` hand it back when nothing changed
    read_from: Any = field(default=None, compare=False, repr=False)

    def table(self, kind: str) -> dict[str, Any]:
        tables: dict[str, dict[str, Any]] = {"entity": self.entities, "feature_view": self.feature_views,
                                             "on_demand_feature_view": self.on_demand_feature_views,
                                             "feature_service": self.feature_services}
        return tables[kind]

    def objects(self) -> list[tuple[str, str, Any]]:
        return [(kind, name, obj) for kind in KINDS for name, obj in sorted(self.table(kind).items())]

    def copy(self) -> Snapshot:
        return Snapshot(self.project, self.version, dict(self.entities), dict(self.feature_views),
                        dict(self.feature_services), dict(self.on_demand_feature_views),
                        dict(self.generations))

    def online_key(self, view: str) -> str:
        """The identity of view ``view``'s online state in its current generation: the view
        name (generation 0), else ``{view}__v{generation}`` (view names never hold ``__``, so
        no two views' keys meet; no key holds a ``.``, which ``table_name`` relies on). It names the online table and keys the materialization state."""
        generation = self.generations.get(view, 0)
        return view if generation == 0 else f"{view}__v{generation}"

    def online_table(self, view: str) -> str:
        """The online table of view ``view``'s current generation."""
        return table_name(self.project, self.online_key(view))

    def get(self, kind: str, name: str) -> Any:
        table = self.table(kind)
        if name not in table:
            label = kind.replace("_", " ")
            raise UnknownObjectError(
                f"{label} '{name}' is not in project '{self.project}'; {closest(name, table)}",
                hint="run `skewless ls` to see what is registered, or `skewless apply` to register it",
            )
        return table[name]

    def join_keys(self, view: FeatureView) -> tuple[str, ...]:
        """The view's join-key columns, in entity order."""
        keys: list[str] = []
        for ename in view.entities:
            ent = self.entities.get(ename) or view.entity_objects.get(ename)  # type: ignore[attr-defined]
            if ent is None:
                raise UnknownObjectError(
                    f"feature view '{view.name}': entity '{ename}' is unknown; {closest(ename, self.entities)}"
                )
            keys.extend(ent.join_keys)
        return tuple(keys)

    @staticmethod
    def encode(obj: Any) -> str:
        return json.dumps(obj.to_spec(), sort_keys=True)

    @staticmethod
    def decode(kind: str, spec: str) -> Any:
        return KINDS[kind].from_spec(json.loads(spec))
