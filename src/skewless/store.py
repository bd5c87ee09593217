"""FeatureStore: the thin facade. It builds components from config and hands each call to a
use-case module under ``skewless.services``."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

from skewless.config import RepoConfig, config_from_dict, load_config
from skewless.define import Entity, FeatureService, FeatureView
from skewless.engines import OfflineEngine, RetrievalJob, make_engine
from skewless.errors import SkewlessError
from skewless.registry import HistoryEntry, RegistryStore, Snapshot, open_registry
from skewless.online import OnlineStore, make_online_store
from skewless.online.cache import RecordCache
from skewless.services import apply as apply_svc
from skewless.services import materialize as materialize_svc
from skewless.services import online as online_svc
from skewless.services import online_status as status_svc
from skewless.services import push as push_svc
from skewless.services import rebuild as rebuild_svc
from skewless.services import retrieve


_T = TypeVar("_T")


class FeatureStore:
    """Entry point of the SDK, shaped like Feast's.

    ``FeatureStore(repo_path)`` reads ``feature_store.yaml`` there; ``FeatureStore(config=...)``
    takes a dict or a RepoConfig instead (handy in notebooks and tests).
    """

    def __init__(self, repo_path: str | os.PathLike[str] = ".",
                 config: RepoConfig | dict[str, Any] | None = None,
                 clock: Callable[[], datetime] | None = None) -> None:
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
        self._online: OnlineStore | None = None
        self.clock: Callable[[], datetime] = clock or (lambda: datetime.now(timezone.utc))
        self._serving: tuple[float, Snapshot] | None = None
        self._online_plans: dict[Any, online_svc.OnlinePlan] = {}
        self.cache = RecordCache(self.config.cache.ttl_seconds, self.config.cache.max_entries)

    @property
    def engine(self) -> OfflineEngine:
        if self._engine is None:
            self._engine = make_engine(self.config)
        return self._engine

    @property
    def online_store(self) -> OnlineStore:
        if self._online is None:
            self._online = make_online_store(self.config)
        return self._online

    def snapshot(self) -> Snapshot:
        """The registry's current definitions."""
        return self.registry.load(self.project)

    def _serving_snapshot(self) -> Snapshot:
        """Definitions for the serving hot path, re-read at most every
        ``registry_cache_ttl_seconds`` (and at once after an apply through this store)."""
        now = time.monotonic()
        if self._serving is None or now - self._serving[0] > self.config.registry_cache_ttl_seconds:
            snap = self.snapshot()
            if self._serving is None or self._serving[1].version != snap.version:
                self._online_plans.clear()
            self._serving = (now, snap)
        return self._serving[1]

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
        self._serving = None
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
        """Point-in-time correct features for each row of ``entity_df`` (``docs/point-in-time.md``).

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

    # --- online ------------------------------------------------------------------------------
    def materialize(self, start_date: datetime | None, end_date: datetime,
                    views: Sequence[str] | None = None,
                    on_rows: Callable[[str, int], None] | None = None,
                    batch_rows: int = 100_000) -> list[materialize_svc.ViewReport]:
        """Write the latest row per entity with ``start_date <= event_ts <= end_date`` to the
        online store, only where newer than what is stored, ``batch_rows`` entities per write.
        Idempotent and resumable."""
        return self._after_write(materialize_svc.materialize(
            self.engine, self.online_store, self.registry, self.snapshot(), self.repo_path, views,
            start_date, end_date, self.clock(), incremental=False, on_rows=on_rows,
            batch_rows=batch_rows))

    def materialize_incremental(self, end_date: datetime | None = None,
                                views: Sequence[str] | None = None,
                                on_rows: Callable[[str, int], None] | None = None,
                                batch_rows: int = 100_000) -> list[materialize_svc.ViewReport]:
        """Materialize what arrived since each view's watermark, up to ``end_date`` (default:
        now), including late rows whose created timestamp is newer than the last run's."""
        return self._after_write(materialize_svc.materialize(
            self.engine, self.online_store, self.registry, self.snapshot(), self.repo_path, views,
            None, end_date or self.clock(), self.clock(), incremental=True, on_rows=on_rows,
            batch_rows=batch_rows))

    def rebuild_online(self, views: Sequence[str] | None = None,
                       on_rows: Callable[[str, int], None] | None = None,
                       batch_rows: int = 100_000) -> list[rebuild_svc.RebuildReport]:
        """Disaster recovery: rebuild each online view's table from the offline store up to now
        in a staging table, swap it in (serving never sees a gap), set the watermark to now and
        verify counts and a sample of values against the offline join."""
        return self._after_write(rebuild_svc.rebuild_online(
            self.engine, self.online_store, self.registry, self.snapshot(), self.repo_path, views,
            self.clock(), on_rows, self.config.entity_timestamp_column, batch_rows=batch_rows))

    def _after_write(self, result: _T) -> _T:
        """Writes through this store are read back at once, hot-key cache or not."""
        self.cache.forget_hot()
        return result

    def online_status(self) -> list[status_svc.ViewStatus]:
        """Per online view: entities stored, watermark and its age, last run."""
        return status_svc.online_status(self.online_store, self.registry, self.snapshot(),
                                        self.clock())

    def push(self, source_name: str, df: Any, to: str = "online_and_offline") -> push_svc.PushReport:
        """Write rows (pandas, Arrow or a dict of columns) to the PushSource ``source_name``:
        the whole batch is validated first (a bad one is rejected with nothing written), then
        written offline (a new file in the batch source) and online (only if newer). ``to``:
        "online_and_offline", "offline", or "online" (not rebuildable from offline)."""
        return self._after_write(push_svc.push(
            self._serving_snapshot(), lambda: self.online_store, self.repo_path, source_name, df,
            to, self.clock()))

    def get_online_features(self, features: Sequence[str] | FeatureService | str,
                            entity_rows: Sequence[dict[str, Any]],
                            full_feature_names: bool = False) -> online_svc.OnlineResponse:
        """Latest values for ``entity_rows`` (a list of dicts of join keys), with per-value
        status and event timestamp; TTL and defaults as in the offline join."""
        return online_svc.get_online_features(self.online_store, self._online_plan(features, full_feature_names),
                                              entity_rows, self.clock(), self.cache)

    def get_online_features_many(
            self, requests: Sequence[tuple[Sequence[str] | FeatureService | str, Sequence[dict[str, Any]], bool]]
    ) -> list[online_svc.OnlineResponse | SkewlessError]:
        """Several ``get_online_features(features, entity_rows, full_feature_names)`` requests
        answered with one online store round trip (the feature server combines the requests that
        arrive together this way). Each answer is what ``get_online_features`` would return; a
        request's error (unknown feature, bad key, fail-closed view) is returned in its place."""
        items: list[tuple[online_svc.OnlinePlan, Sequence[dict[str, Any]]] | SkewlessError] = []
        for features, entity_rows, full_feature_names in requests:
            try:
                items.append((self._online_plan(features, full_feature_names), entity_rows))
            except SkewlessError as e:
                items.append(e)
        return online_svc.get_online_features_many(self.online_store, items, self.clock(), self.cache)

    def _online_plan(self, features: Sequence[str] | FeatureService | str,
                     full_feature_names: bool) -> online_svc.OnlinePlan:
        snap = self._serving_snapshot()
        key = (features.name if isinstance(features, FeatureService) else
               features if isinstance(features, str) else tuple(features), full_feature_names)
        plan = self._online_plans.get(key)
        if plan is None:
            plan = online_svc.build_online_plan(snap, features, full_feature_names, self.repo_path)
            self._online_plans[key] = plan
        return plan
