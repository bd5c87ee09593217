"""FeatureStore: the thin facade. It builds components from config and hands each call to a
use-case module under ``skewless.services``."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from skewless.config import RepoConfig, config_from_dict, load_config
from skewless.define import Entity, FeatureService, FeatureView
from skewless.engines import OfflineEngine, RetrievalJob, make_engine
from skewless.registry import HistoryEntry, RegistryStore, Snapshot, open_registry
from skewless.services import apply as apply_svc
from skewless.services import retrieve


class FeatureStore:
    """Entry point of the SDK, shaped like Feast's.

    ``FeatureStore(repo_path)`` reads ``feature_store.yaml`` there; ``FeatureStore(config=...)``
    takes a dict or a RepoConfig instead (handy in notebooks and tests).
    """

    def __init__(self, repo_path: str | os.PathLike[str] = ".",
                 config: RepoConfig | dict[str, Any] | None = None) -> None:
        if config is None:
            self.config = load_config(repo_path)
        elif isinstance(config, dict):
            self.config = config_from_dict(config, repo_path)
        else:
            self.config = config
        self.repo_path: Path = self.config.repo_path
        self.project = self.config.project
        self.registry: RegistryStore = open_registry(self.config)
        self._engine: OfflineEngine | None = None

    @property
    def engine(self) -> OfflineEngine:
        if self._engine is None:
            self._engine = make_engine(self.config)
        return self._engine

    def snapshot(self) -> Snapshot:
        """The registry's current definitions."""
        return self.registry.load(self.project)

    # --- definitions -------------------------------------------------------------------------
    def plan(self, objects: Iterable[Any], partial: bool = True,
             objects_to_delete: Iterable[Any] = ()) -> apply_svc.PlanResult:
        """What ``apply(objects)`` would change, after checking every definition (nothing is
        written). Raises PlanError listing every problem at once."""
        return apply_svc.plan(self.registry, self.project, self.repo_path, list(objects), partial,
                              list(objects_to_delete))

    def apply(self, objects: Any, partial: bool = True, objects_to_delete: Iterable[Any] = (),
              force: bool = False) -> apply_svc.PlanResult:
        """Register definitions. ``partial=False`` makes the registry hold exactly ``objects``.
        Breaking schema changes are refused unless ``force``; a concurrent apply raises
        RegistryConflictError. Either way, a refused apply writes nothing."""
        if not isinstance(objects, (list, tuple, set)):
            objects = [objects]
        return apply_svc.apply(self.registry, self.project, self.repo_path, list(objects), partial,
                               list(objects_to_delete), force)

    def history(self, limit: int = 50) -> list[HistoryEntry]:
        """Past applies, newest first: version, time, user and what changed."""
        return self.registry.history(self.project, limit)

    def list_entities(self) -> list[Entity]:
        return list(self.snapshot().entities.values())

    def list_feature_views(self) -> list[FeatureView]:
        return list(self.snapshot().feature_views.values())

    def list_feature_services(self) -> list[FeatureService]:
        return list(self.snapshot().feature_services.values())

    def get_entity(self, name: str) -> Entity:
        return self.snapshot().get("entity", name)  # type: ignore[no-any-return]

    def get_feature_view(self, name: str) -> FeatureView:
        return self.snapshot().get("feature_view", name)  # type: ignore[no-any-return]

    def get_feature_service(self, name: str) -> FeatureService:
        return self.snapshot().get("feature_service", name)  # type: ignore[no-any-return]

    # --- training data -----------------------------------------------------------------------
    def get_historical_features(
        self,
        entity_df: Any,
        features: Sequence[str] | FeatureService | str | None = None,
        full_feature_names: bool = False,
        as_of: datetime | None = None,
        feature_service: FeatureService | str | None = None,
    ) -> RetrievalJob:
        """Point-in-time correct features for each row of ``entity_df`` (DESIGN.md section 2).

        ``entity_df``: pandas, Arrow or a SQL query, with the join keys and the timestamp column.
        ``features``: ``["view:feature", ...]`` or a FeatureService (or its name).
        ``as_of``: only rows created by then count, so a training set can be rebuilt exactly.
        """
        request = features if features is not None else feature_service
        if request is None:
            from skewless.errors import InvalidRequestError
            raise InvalidRequestError("pass features=[...] or feature_service=...")
        return retrieve.get_historical_features(
            self.engine, self.snapshot(), self.repo_path, entity_df, request,
            self.config.entity_timestamp_column, full_feature_names, as_of)
