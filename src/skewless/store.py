"""FeatureStore: the thin facade. It builds components from config and hands each call to a
use-case module under ``skewless.services``."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, TypeVar

from skewless.config import RepoConfig, config_from_dict, load_config
from skewless.define import Entity, FeatureService, FeatureView
from skewless.engines import OfflineEngine, RetrievalJob, make_engine
from skewless.errors import InvalidRequestError, RegistryError, SkewlessError
from skewless.registry import HistoryEntry, RegistryStore, Snapshot, open_registry
from skewless.online import OnlineStore, make_online_store
from skewless.online.cached import CachedStore
from skewless.plan.online import OnlinePlan, build_online_plan
from skewless.services import apply as apply_svc
from skewless.services import materialize as materialize_svc
from skewless.services import online as online_svc
from skewless.services import online_status as status_svc
from skewless.services import push as push_svc
from skewless.services import rebuild as rebuild_svc
from skewless.services import retrieve
from skewless.times import TimeLike, to_utc


_T = TypeVar("_T")


@dataclass(frozen=True)
class RegistryHealth:
    """The serving definitions' source: see ``FeatureStore.registry_health``."""

    read_at: float | None          # Unix time of the last good registry read
    error: RegistryError | None    # the last read's failure, if it failed
    version: int | None            # registry version served

    @property
    def stale(self) -> bool:
        """Serving uses the last good snapshot: the registry cannot be read now."""
        return self.error is not None and self.read_at is not None

    def age(self, now: float | None = None) -> float | None:
        """Seconds since the snapshot served was read (None before the first read)."""
        return None if self.read_at is None else max((now or time.time()) - self.read_at, 0.0)


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
        self._registry_error: RegistryError | None = None
        self._registry_read_at: float | None = None
        self._online_plans: dict[Any, OnlinePlan] = {}
        # the online store as serving reads it: behind the hot-key and fallback cache
        self.cache = CachedStore(lambda: self.online_store, self.config.cache.ttl_seconds,
                                 self.config.cache.max_entries)

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

    def _fresh_serving_snapshot(self) -> Snapshot:
        """The registry as it is now, which also becomes the serving cache's snapshot (a
        RegistryError if it cannot be read: never the last good snapshot)."""
        snap = self._serving_snapshot(fresh=True)
        if self._registry_error is not None:
            raise self._registry_error
        return snap

    def _serving_snapshot(self, fresh: bool = False) -> Snapshot:
        """Definitions for the serving hot path, re-read at most every
        ``registry_cache_ttl_seconds`` (at once with ``fresh``, and after an apply through this
        store).

        When the registry cannot be read (a full or read-only disk, a corrupt file) and a
        snapshot was read before, serving goes on with that last good snapshot, retrying at
        the same pace (at least a second apart); ``registry_health()`` says so (``/ready``,
        ``/metrics``). With no snapshot yet, the RegistryError is raised."""
        now = time.monotonic()
        if (fresh or self._serving is None
                or now - self._serving[0] > self.config.registry_cache_ttl_seconds):
            try:
                snap = self.snapshot()
                if snap.version == 0 and self._serving is not None and self._serving[1].version > 0:
                    raise self._registry_lost(self._serving[1].version)
            except RegistryError as e:
                if self._serving is None:
                    raise
                self._registry_error = e
                # retry after another period, at least a second: a failing read is not free
                ttl = self.config.registry_cache_ttl_seconds
                self._serving = (now + max(0.0, 1.0 - ttl), self._serving[1])
                return self._serving[1]
            if self._serving is None or self._serving[1].version != snap.version:
                self._online_plans.clear()
            self._serving = (now, snap)
            self._registry_error = None
            self._registry_read_at = time.time()
        return self._serving[1]

    def _registry_lost(self, held: int) -> RegistryError:
        """A registry that reads as empty (version 0) after version ``held`` was read: no apply
        can do that, the file was deleted, moved or replaced (a missing file reads as empty)."""
        where = getattr(self.registry, "path", self.config.registry)
        return RegistryError(
            f"registry {where} holds nothing for project '{self.project}' any more (version 0; "
            f"version {held} was read before): the file was deleted, moved or replaced",
            hint=f"put the registry file back (or apply the definitions again); serving keeps "
            f"the definitions of version {held} meanwhile (docs/server.md#get-ready-and-get-health)")

    def registry_health(self) -> RegistryHealth:
        """How the serving definitions stand: read at ``read_at`` (Unix seconds; None before
        the first read), and ``error``, the RegistryError of the last read if it failed (then
        serving uses the last good snapshot, ``stale``)."""
        version = self._serving[1].version if self._serving is not None else None
        return RegistryHealth(self._registry_read_at, self._registry_error, version)

    # --- definitions -------------------------------------------------------------------------
    def plan(self, objects: Iterable[Any], partial: bool = True,
             objects_to_delete: Iterable[Any] = ()) -> apply_svc.PlanResult:
        """What ``apply(objects)`` would change, after checking every definition (nothing is
        written). Raises PlanError listing every problem at once."""
        return apply_svc.plan(self.registry, self.project, self.repo_path, _definitions(objects),
                              partial, _definitions(objects_to_delete))

    def apply(self, objects: Any, partial: bool = True, objects_to_delete: Iterable[Any] = (),
              force: bool = False) -> apply_svc.PlanResult:
        """Register definitions. ``partial=False`` makes the registry hold exactly ``objects``.
        Breaking schema changes are refused unless ``force``; a concurrent apply raises
        RegistryConflictError. Either way, a refused apply writes nothing. Sources may be listed
        too, as Feast users do: each is registered with the views that read it. A deleted view's
        online table and materialization state are dropped, and a re-created or force-changed
        view starts with an empty online table (docs/online.md); a table that could not be
        dropped is listed in ``cleanup_errors`` and dropped by a later apply."""
        if not isinstance(objects, (list, tuple, set)):
            objects = [objects]
        if self._serving is not None:   # re-read on the next request (kept if unreadable)
            self._serving = (float("-inf"), self._serving[1])
        result = apply_svc.apply(self.registry, self.project, self.repo_path, _definitions(objects),
                                 partial, _definitions(objects_to_delete), force,
                                 online_store=lambda: self.online_store)
        if result.dropped_tables:
            self.cache.clear()   # records of retired tables are never read again
        return result

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
        as_of: TimeLike | None = None,
        feature_service: FeatureService | str | None = None,
    ) -> RetrievalJob:
        """Point-in-time correct features for each row of ``entity_df`` (docs/point-in-time.md).

        ``entity_df``: pandas, Arrow or a SQL query, with the join keys and the timestamp column.
        ``features``: ``["view:feature", ...]``, or ``feature_service=`` a FeatureService (or its
        name); one of the two.
        ``as_of``: only rows created by then count, so a training set can be rebuilt exactly (a
        datetime, a date or an ISO string; naive means UTC).
        """
        request = _features_or_service(features, feature_service)
        return retrieve.get_historical_features(
            self.engine, self.snapshot(), self.repo_path, entity_df, request,
            self.config.entity_timestamp_column, full_feature_names,
            to_utc(as_of, "as_of") if as_of is not None else None)

    # --- online ------------------------------------------------------------------------------
    def materialize(self, start_date: TimeLike | None, end_date: TimeLike,
                    views: Sequence[str] | None = None,
                    on_rows: Callable[[str, int], None] | None = None,
                    batch_rows: int = 100_000) -> list[materialize_svc.ViewReport]:
        """Write the latest row per entity with ``start_date <= event_ts <= end_date`` to the
        online store, only where newer than what is stored, ``batch_rows`` entities per write.
        Idempotent and resumable. Times: datetimes, dates or ISO strings such as
        ``"2025-01-01"`` or ``"now"`` (naive means UTC)."""
        start = to_utc(start_date, "start_date", self.clock) if start_date is not None else None
        end = to_utc(end_date, "end_date", self.clock)
        return self._after_write(materialize_svc.materialize(
            self.engine, self.online_store, self.registry, self.snapshot(), self.repo_path, views,
            start, end, self.clock(), incremental=False, on_rows=on_rows,
            batch_rows=batch_rows, created_tolerance=self._created_tolerance))

    def materialize_incremental(self, end_date: TimeLike | None = None,
                                views: Sequence[str] | None = None,
                                on_rows: Callable[[str, int], None] | None = None,
                                batch_rows: int = 100_000) -> list[materialize_svc.ViewReport]:
        """Materialize what arrived since each view's watermark, up to ``end_date`` (default:
        now; a datetime, a date or an ISO string, naive means UTC), including late rows whose
        created timestamp is newer than the last run's."""
        end = to_utc(end_date, "end_date", self.clock) if end_date is not None else self.clock()
        return self._after_write(materialize_svc.materialize(
            self.engine, self.online_store, self.registry, self.snapshot(), self.repo_path, views,
            None, end, self.clock(), incremental=True, on_rows=on_rows,
            batch_rows=batch_rows, created_tolerance=self._created_tolerance))

    def rebuild_online(self, views: Sequence[str] | None = None,
                       on_rows: Callable[[str, int], None] | None = None,
                       batch_rows: int = 100_000) -> list[rebuild_svc.RebuildReport]:
        """Disaster recovery: rebuild each online view's table from the offline store up to now
        in a staging table, swap it in (serving never sees a gap), set the watermark to now, catch
        up with what reached the offline store meanwhile and verify counts and a sample of values
        against the offline join. Holds each view's lease: raises LeaseHeldError, naming the
        holder, if another rebuild of one of them is running (docs/online.md, "Leases")."""
        return self._after_write(rebuild_svc.rebuild_online(
            self.engine, self.online_store, self.registry, self.snapshot(), self.repo_path, views,
            self.clock(), on_rows, self.config.entity_timestamp_column, batch_rows=batch_rows,
            clock=self.clock, created_tolerance=self._created_tolerance))

    @property
    def _created_tolerance(self) -> timedelta:
        """How far a created timestamp may be ahead of the clock (``created_timestamp_tolerance_seconds``)."""
        return timedelta(seconds=self.config.created_timestamp_tolerance_seconds)

    def _after_write(self, result: _T) -> _T:
        """Writes through this store are read back at once, hot-key cache or not (the services
        write to the wrapped store, around the cache: it forgets its hot keys here)."""
        self.cache.forget_hot()
        return result

    def online_status(self) -> list[status_svc.ViewStatus]:
        """Per online view: entities stored, watermark and its age, last run."""
        return status_svc.online_status(self.online_store, self.registry, self.snapshot(),
                                        self.clock())

    def push(self, source_name: str, df: Any, to: str = "online_and_offline",
             batch_id: str | None = None) -> push_svc.PushReport:
        """Write rows (pandas, Arrow or a dict of columns) to the PushSource ``source_name``:
        the whole batch is validated first (a bad one is rejected with nothing written), then
        written offline (a new file in the batch source) and online (only if newer). ``to``:
        "online_and_offline", "offline", or "online" (not rebuildable from offline).

        Idempotent: ``batch_id`` (letters, digits, ``._-``; default: a digest of the rows)
        names the offline file, so a retry of the same batch (after a timeout or a crash) is
        written offline once; ``report.duplicate`` says so, and the online write is redone.
        A ``batch_id`` reused for other rows raises InvalidRequestError, nothing written.

        A push writes the offline store, the source of truth, so it is checked against the
        registry as it is now, never against the serving cache (``registry_cache_ttl_seconds``):
        a batch shaped for a definition that was changed meanwhile is refused, not written
        (docs/online.md#push). Re-reading the registry costs about 0.5 ms."""
        return self._after_write(push_svc.push(
            self._fresh_serving_snapshot(), lambda: self.online_store, self.repo_path, source_name,
            df, to, self.clock(), batch_id, self._created_tolerance))

    def get_online_features(self, features: Sequence[str] | FeatureService | str | None = None,
                            entity_rows: Sequence[dict[str, Any]] | None = None,
                            full_feature_names: bool = False,
                            feature_service: FeatureService | str | None = None,
                            ) -> online_svc.OnlineResponse:
        """Latest values for ``entity_rows`` (a list of dicts of join keys), with per-value
        status and event timestamp; TTL and defaults as in the offline join. ``features``:
        ``["view:feature", ...]``, or ``feature_service=`` a FeatureService (or its name).
        More than ``serving.max_entities_per_request`` rows (100,000 by default) raise
        RequestTooLargeError before any work."""
        request = _features_or_service(features, feature_service)
        if entity_rows is None:
            raise InvalidRequestError("pass entity_rows=[{join key: value, ...}, ...]",
                                      hint='e.g. entity_rows=[{"driver_id": 1001}]')
        if hasattr(entity_rows, "__len__"):   # a bad type is named by the service
            online_svc.check_entity_count(len(entity_rows), self.config.serving.max_entities_per_request)
        return online_svc.get_online_features(self.cache, self._online_plan(request, full_feature_names),
                                              entity_rows, self.clock())

    def get_online_features_many(
            self, requests: Sequence[tuple[Sequence[str] | FeatureService | str, Sequence[dict[str, Any]], bool]]
    ) -> list[online_svc.OnlineResponse | SkewlessError]:
        """Several ``get_online_features(features, entity_rows, full_feature_names)`` requests
        answered with one online store round trip (the feature server combines the requests that
        arrive together this way). Each answer is what ``get_online_features`` would return; a
        request's error (unknown feature, bad key, fail-closed view) is returned in its place."""
        items: list[tuple[OnlinePlan, Sequence[dict[str, Any]]] | SkewlessError] = []
        limit = self.config.serving.max_entities_per_request
        for features, entity_rows, full_feature_names in requests:
            try:
                if hasattr(entity_rows, "__len__"):
                    online_svc.check_entity_count(len(entity_rows), limit)
                items.append((self._online_plan(features, full_feature_names), entity_rows))
            except SkewlessError as e:
                items.append(e)
        return online_svc.get_online_features_many(self.cache, items, self.clock())

    def _online_plan(self, features: Sequence[str] | FeatureService | str,
                     full_feature_names: bool) -> OnlinePlan:
        snap = self._serving_snapshot()
        key = (features.name if isinstance(features, FeatureService) else
               features if isinstance(features, str) else tuple(features), full_feature_names)
        plan = self._online_plans.get(key)
        if plan is None:
            plan = build_online_plan(snap, features, full_feature_names, self.repo_path)
            self._online_plans[key] = plan
        return plan


def _definitions(objects: Iterable[Any]) -> list[Any]:
    """The definitions to register: a source in the list (Feast registers data sources on their
    own) is left out, since it is registered with the views that read it."""
    from skewless.define import FileSource, PushSource

    return [o for o in objects if not isinstance(o, (FileSource, PushSource))]


def _features_or_service(features: Sequence[str] | FeatureService | str | None,
                         feature_service: FeatureService | str | None
                         ) -> Sequence[str] | FeatureService | str:
    """The one request of ``features=`` or ``feature_service=``, read as FeatureClient reads
    them: a string with a ``:`` in ``features`` is one feature reference, without one it names a
    feature service."""
    if feature_service is None:
        if features is None:
            raise InvalidRequestError("pass features=[...] or feature_service=...")
        return [features] if isinstance(features, str) and ":" in features else features
    if features is not None:
        raise InvalidRequestError("pass either features or feature_service, not both")
    return feature_service
