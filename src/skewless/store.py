"""FeatureStore: the thin facade, and the one front door. It builds a ``RuntimeContext`` from
config and hands each call, with that context, to a use-case module under
``skewless.services``; lifecycle hooks (``skewless.hooks``) fire around the calls.

The CLI, the feature server and ``FeatureClient`` call ``FeatureStore`` only, never
``skewless.services`` (a test walks every module's imports): the result types they need
(``OnlineResponse``, ``ViewReport``, ``PlanResult``...) are importable from here.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable, Sequence
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from skewless import hooks as H
from skewless.config import RepoConfig, config_from_dict, load_config
from skewless.context import RuntimeContext, utc_now
from skewless.define import Entity, FeatureService, FeatureView, OnDemandFeatureView
from skewless.engines import OfflineEngine, RetrievalJob
from skewless.errors import InvalidRequestError, RegistryError, SkewlessError
from skewless.hooks import Hook
from skewless.registry import HistoryEntry, RegistryHealth, RegistryStore, Snapshot, open_registry
from skewless.online import OnlineStore
from skewless.online.cached import CachedStore
from skewless.plan.online import OnlinePlan, build_online_plan
from skewless.services import apply as apply_svc
from skewless.services import compact as compact_svc
from skewless.services import materialize as materialize_svc
from skewless.services import monitor as monitor_svc
from skewless.services import online as online_svc
from skewless.services import online_status as status_svc
from skewless.services import push as push_svc
from skewless.services import readiness as readiness_svc
from skewless.services import report as report_svc
from skewless.services import rebuild as rebuild_svc
from skewless.services import repo as repo_svc
from skewless.services import retrieve
from skewless.times import TimeLike, to_utc

# The use cases' result types, for the front ends (they never import skewless.services).
from skewless.services.apply import PlanResult
from skewless.services.compact import CompactReport
from skewless.services.ingest import BatchDone, Metrics as StreamMetrics, StreamIngest, StreamSpec
from skewless.services.materialize import ViewReport
from skewless.monitoring.monitors import Check as MonitorCheck, MonitorReport
from skewless.services.online import ColumnGroup, OnlineResponse, check_entity_count
from skewless.services.online_status import ViewStatus
from skewless.services.push import PushReport
from skewless.services.readiness import Readiness
from skewless.services.report import ReportFile
from skewless.services.rebuild import Mismatch, RebuildReport
from skewless.services.repo import LoadedRepo


_T = TypeVar("_T")


_F = TypeVar("_F", bound=Callable[..., Any])


def _online_read_event(method: _F) -> _F:
    """``get_online_features`` between the ``online_read`` hook events (docs/hooks.md); with
    no hook registered, one truthiness check."""
    @functools.wraps(method)
    def get_online_features(self: FeatureStore, features: Any = None, entity_rows: Any = None,
                            full_feature_names: bool = False, feature_service: Any = None) -> Any:
        if not self.context.hooks:
            return method(self, features, entity_rows, full_feature_names, feature_service)
        return _hooked_online_read(method, self, features, entity_rows, full_feature_names,
                                   feature_service)
    return get_online_features  # type: ignore[return-value]


def _hooked_online_read(method: Callable[..., Any], self: FeatureStore, features: Any,
                        entity_rows: Any, full_feature_names: bool, feature_service: Any) -> Any:
    """One ``get_online_features`` call between its hook events. Apart from the fast path, so
    that the closure's cells are made only when a hook is registered: cells on every read
    (garbage-collected objects) made the collector run 40% more often under a 100 x 50 read,
    which showed in the p99."""
    ctx = self.context
    event = H.Event(H.ONLINE_READ, ctx.principal, {
        "features": features if feature_service is None else feature_service,
        "entity_rows": entity_rows, "full_feature_names": full_feature_names})
    return H.run(ctx.hooks, event, lambda: method(self, features, entity_rows, full_feature_names,
                                                  feature_service))


def _online_read_events(method: _F) -> _F:
    """``get_online_features_many`` with one ``online_read`` event per request: a request a
    before-hook refuses gets the refusal as its answer and is not read; with no hook
    registered, one truthiness check (the hooked path apart, as for ``_online_read_event``)."""
    @functools.wraps(method)
    def get_online_features_many(self: FeatureStore, requests: Sequence[Any]) -> Any:
        if not self.context.hooks:
            return method(self, requests)
        return _hooked_online_reads(method, self, requests)
    return get_online_features_many  # type: ignore[return-value]


def _hooked_online_reads(method: Callable[..., Any], self: FeatureStore, requests: Sequence[Any]) -> Any:
    ctx = self.context
    events = [H.Event(H.ONLINE_READ, ctx.principal, {
        "features": features, "entity_rows": rows, "full_feature_names": full})
        for features, rows, full in requests]
    return H.run_each(ctx.hooks, events, lambda todo: method(self, [requests[i] for i in todo]))


class FeatureStore:
    """Entry point of the SDK, shaped like Feast's.

    ``FeatureStore(repo_path)`` reads ``feature_store.yaml`` there; ``FeatureStore(config=...)``
    takes a dict or a RepoConfig instead (handy in notebooks and tests). ``clock`` replaces the
    wall clock (tests); ``hooks`` registers lifecycle hooks (docs/hooks.md), as ``add_hook``
    does. Everything a call runs with is in ``context`` (a ``RuntimeContext``).
    """

    def __init__(self, repo_path: str | os.PathLike[str] = ".",
                 config: RepoConfig | dict[str, Any] | None = None,
                 clock: Callable[[], datetime] | None = None,
                 hooks: Iterable[Hook] | None = None) -> None:
        if config is None:
            self.config = load_config(repo_path)
        elif isinstance(config, dict):
            self.config = config_from_dict(config, repo_path)
        else:
            self.config = config
        self.repo_path: Path = self.config.repo_path
        self.project = self.config.project
        self.registry: RegistryStore = open_registry(self.config)
        self.context = RuntimeContext(self.config, self.registry, clock or utc_now, H.hooks_of(hooks))
        self._serving: tuple[float, Snapshot] | None = None
        self._registry_error: RegistryError | None = None
        self._registry_read_at: float | None = None
        self._online_plans: dict[Any, OnlinePlan] = {}
        # the online store as the use cases read and write it: behind the hot-key and
        # fallback cache, which writes, swaps and drops through it keep true
        self.cache: CachedStore = self.context.online_store
        # the feature log (docs/feature-logging.md): a hook registered only when logging is on
        self._feature_logger: Any = None
        if self.config.logging.sample_rate > 0:
            self._start_feature_log()

    @property
    def clock(self) -> Callable[[], datetime]:
        """The store's clock (aware UTC datetimes): the context's."""
        return self.context.clock

    @clock.setter
    def clock(self, clock: Callable[[], datetime]) -> None:
        self.context.clock = clock

    @property
    def engine(self) -> OfflineEngine:
        return self.context.engine

    @property
    def online_store(self) -> OnlineStore:
        """The configured online store itself (the use cases go through ``cache``, its
        cached front)."""
        return self.context.raw_online_store

    @property
    def _online(self) -> OnlineStore | None:
        """The online store if opened (None: opened on next use; tests set it)."""
        return self.context._online

    @_online.setter
    def _online(self, store: OnlineStore | None) -> None:
        self.context.use_online_store(store)

    # --- hooks -------------------------------------------------------------------------------
    @property
    def hooks(self) -> tuple[Hook, ...]:
        """The registered lifecycle hooks, in the order they run (docs/hooks.md)."""
        return self.context.hooks

    def add_hook(self, hook: Hook) -> None:
        """Register ``hook`` (an object with ``before(event)`` and ``after(event, outcome)``,
        docs/hooks.md) after those registered before; InvalidRequestError if it is not one."""
        self.context.hooks = H.with_hook(self.context.hooks, hook)

    def remove_hook(self, hook: Hook) -> None:
        """Unregister ``hook`` (nothing happens if it is not registered)."""
        self.context.hooks = tuple(h for h in self.context.hooks if h is not hook)

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
                # the serving snapshot itself when the registry still holds its version
                snap = self.registry.load(self.project, unchanged=(
                    self._serving[1] if self._serving is not None else None))
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
                if self._feature_logger is None and snap.feature_services and any(
                        s.logging_config is not None for s in snap.feature_services.values()):
                    self._start_feature_log(snap)
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

    def serving_snapshot(self) -> Snapshot:
        """The definitions serving uses: the one registry cache of the serving path, re-read at
        most every ``registry_cache_ttl_seconds`` (the last good snapshot while the registry
        cannot be read; RegistryError before any was read). Caches of the front ends key
        their entries on its ``version``."""
        return self._serving_snapshot()

    def readiness(self, was_ready: bool = False) -> Readiness:
        """Whether this process may get serving traffic (what ``GET /ready`` answers,
        docs/server.md#get-ready-and-get-health): the online store answers and holds every
        online view's materialized data. ``was_ready``: the previous verdict, which keeps a
        process ready on its last good definitions while the registry cannot be read."""
        return readiness_svc.readiness(
            self.context, fresh_snapshot=self._fresh_serving_snapshot,
            serving_snapshot=self._serving_snapshot, health=self.registry_health,
            was_ready=was_ready)

    # --- feature logging and the skew audit ---------------------------------------------------
    def _start_feature_log(self, snap: Snapshot | None = None) -> None:
        """Register the feature log's hook if logging is on for any service (docs/feature-logging.md)."""
        from skewless.monitoring import feature_log

        services = snap.feature_services if snap is not None else {}
        if self._feature_logger is None and feature_log.logging_wanted(self.config, services):
            self._feature_logger = feature_log.FeatureLogger(self)
            self.add_hook(self._feature_logger)

    @property
    def feature_logger(self) -> Any:
        """The feature log's ``FeatureLogger`` (its counters: ``logged``, ``dropped``,
        ``write_errors``...), or None while nothing is logged (docs/feature-logging.md)."""
        return self._feature_logger

    def flush_feature_logs(self, timeout: float = 30.0) -> bool:
        """Write the logged requests queued so far; True once written (True when nothing is
        logged), False if the writer did not finish within ``timeout`` seconds."""
        return True if self._feature_logger is None else bool(self._feature_logger.flush(timeout))

    def close(self) -> None:
        """Write the queued feature logs and stop their writer (the feature server calls it at
        shutdown; interpreter exit does too). The store stays usable: a later read that is
        logged starts a new writer."""
        logger, self._feature_logger = self._feature_logger, None
        if logger is not None:
            self.remove_hook(logger)
            logger.close()

    def read_feature_logs(self, service: str, since: TimeLike | None = None,
                          until: TimeLike | None = None) -> Any:
        """The logged rows of feature service ``service`` with ``since <= __log_timestamp <
        until`` as a pyarrow Table (columns: docs/feature-logging.md); times as for ``audit``:
        a duration before now (``"1d"``), an ISO time or date, a datetime. UnknownObjectError
        for an unknown service, InvalidRequestError for a bad time."""
        from skewless.monitoring import feature_log
        from skewless.monitoring.audit import parse_time

        svc = self.snapshot().get("feature_service", service)
        now = self.clock()
        return feature_log.read_feature_logs(
            self.config, svc.name, parse_time(since, "since", now) if since is not None else None,
            parse_time(until, "until", now) if until is not None else None,
            root=feature_log.log_root(self.config, svc))

    def compact_feature_logs(self, services: Sequence[str] | None = None, **options: Any) -> Any:
        """Merge each feature log partition's small files and apply ``logging.retention_days``
        (``skewless logs compact``; options of ``monitoring.feature_log.compact_logs``). Returns
        one ``LogCompactReport`` per log root."""
        from skewless.monitoring import feature_log

        snap = self.snapshot()
        chosen = [snap.get("feature_service", n) for n in services] if services is not None else None
        roots: dict[Any, list[FeatureService] | None] = {feature_log.log_root(self.config): chosen}
        for svc in (chosen if chosen is not None else snap.feature_services.values()):
            root = feature_log.log_root(self.config, svc)
            if root not in roots:
                roots[root] = [svc]
            elif roots[root] is not None and svc not in roots[root]:   # type: ignore[operator]
                roots[root].append(svc)  # type: ignore[union-attr]
        return [feature_log.compact_logs(self.config, compact_svc.compact_directory, svcs, root=root,
                                         now=self.clock(), **options)
                for root, svcs in roots.items()]

    def audit(self, service: str, since: TimeLike | None = None, until: TimeLike | None = None,
              **thresholds: Any) -> Any:
        """The skew audit of feature service ``service`` (docs/audit.md): the logged requests of
        ``[since, until)`` (default: the last day) replayed through ``get_historical_features``
        at their logged times, compared per feature; an ``AuditReport`` (``failed`` when a
        threshold is crossed), also written to ``data/monitoring/audit/<service>.json``.
        ``thresholds``: ``mismatch_rate``, ``missing_online_rate``, ``missing_offline_rate``,
        ``float_tolerance``, ``float_abs_tolerance``, ``worst`` (defaults: ``audit`` of
        feature_store.yaml)."""
        from skewless.monitoring import audit as audit_mod

        return audit_mod.audit(self, service, since=since, until=until, **thresholds)

    # --- definitions -------------------------------------------------------------------------
    def plan(self, objects: Iterable[Any], partial: bool = True,
             objects_to_delete: Iterable[Any] = ()) -> PlanResult:
        """What ``apply(objects)`` would change, after checking every definition (nothing is
        written). Raises PlanError listing every problem at once."""
        return apply_svc.plan(self.context, _definitions(objects), partial=partial,
                              delete=_definitions(objects_to_delete))

    def apply(self, objects: Any, partial: bool = True, objects_to_delete: Iterable[Any] = (),
              force: bool = False) -> PlanResult:
        """Register definitions. ``partial=False`` makes the registry hold exactly ``objects``.
        Breaking schema changes are refused unless ``force``; a concurrent apply raises
        RegistryConflictError. Either way, a refused apply writes nothing. Sources may be listed
        too, as Feast users do: each is registered with the views that read it. A deleted view's
        online table and materialization state are dropped, and a re-created or force-changed
        view starts with an empty online table (docs/online.md); a table that could not be
        dropped is listed in ``cleanup_errors`` and dropped by a later apply."""
        if not isinstance(objects, (list, tuple, set)):
            objects = [objects]
        return self._apply(_definitions(objects), partial=partial,
                           delete=_definitions(objects_to_delete), force=force)

    def _apply(self, objects: list[Any], *, partial: bool, delete: list[Any], force: bool,
               problems: Sequence[str] = ()) -> PlanResult:
        """The apply use case between its hook events; the serving cache follows it."""
        def run() -> PlanResult:
            if self._serving is not None:   # re-read on the next request (kept if unreadable)
                self._serving = (float("-inf"), self._serving[1])
            result = apply_svc.apply(self.context, objects, partial=partial, delete=delete,
                                     force=force, extra_problems=problems)
            return result
        return self._fire(H.APPLY, {"objects": objects, "objects_to_delete": delete,
                                    "partial": partial, "force": force}, run)

    def load_repo(self) -> LoadedRepo:
        """Every definition of the feature repo's Python files (what ``skewless plan/apply``
        read), with the files that failed to import as ``problems`` (file, line, message);
        docs/repository.md#which-files-plan-and-apply-import."""
        return repo_svc.load_repo(self.repo_path)

    def plan_repo(self, loaded: LoadedRepo) -> PlanResult:
        """``plan`` of the repo as loaded (``load_repo``): the registry would hold exactly its
        definitions; its load problems are reported with the definitions' (PlanError)."""
        return apply_svc.plan(self.context, loaded.objects, partial=False,
                              extra_problems=loaded.problems)

    def apply_repo(self, loaded: LoadedRepo, force: bool = False) -> PlanResult:
        """``apply`` of the repo as loaded (``load_repo``): the registry then holds exactly its
        definitions (a definition deleted from the repo is deleted); refused, with nothing
        written, if any file failed to load."""
        return self._apply(loaded.objects, partial=False, delete=[], force=force,
                           problems=loaded.problems)

    def _fire(self, kind: str, request: dict[str, Any], call: Callable[[], _T]) -> _T:
        """``call()`` between the hook events of ``kind`` (docs/hooks.md), or just ``call()``
        with no hook registered."""
        hooks = self.context.hooks
        if not hooks:
            return call()
        return H.run(hooks, H.Event(kind, self.context.principal, request), call)

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

    def list_on_demand_feature_views(self) -> list[OnDemandFeatureView]:
        return list(self.snapshot().on_demand_feature_views.values())

    def get_on_demand_feature_view(self, name: str) -> OnDemandFeatureView:
        return self.snapshot().get("on_demand_feature_view", name)  # type: ignore[no-any-return]

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
        when = to_utc(as_of, "as_of") if as_of is not None else None
        return self._fire(H.HISTORICAL_RETRIEVAL, {
            "features": request, "entity_df": entity_df, "full_feature_names": full_feature_names,
            "as_of": when}, lambda: retrieve.get_historical_features(
                self.context, self.snapshot(), entity_df, request,
                full_feature_names=full_feature_names, as_of=when))

    # --- online ------------------------------------------------------------------------------
    def materialize(self, start_date: TimeLike | None, end_date: TimeLike,
                    views: Sequence[str] | None = None,
                    on_rows: Callable[[str, int], None] | None = None,
                    batch_rows: int = 100_000) -> list[ViewReport]:
        """Write the latest row per entity with ``start_date <= event_ts <= end_date`` to the
        online store, only where newer than what is stored, ``batch_rows`` entities per write.
        Idempotent and resumable. Times: datetimes, dates or ISO strings such as
        ``"2025-01-01"`` or ``"now"`` (naive means UTC). With a source's
        ``availability_delay`` the window is of landing times (``event_ts + delay``): only rows
        usable by ``end_date`` are written (docs/online.md, "Availability delay")."""
        start = to_utc(start_date, "start_date", self.clock) if start_date is not None else None
        end = to_utc(end_date, "end_date", self.clock)
        return self._materialize(start, end, views, False, on_rows, batch_rows)

    def materialize_incremental(self, end_date: TimeLike | None = None,
                                views: Sequence[str] | None = None,
                                on_rows: Callable[[str, int], None] | None = None,
                                batch_rows: int = 100_000) -> list[ViewReport]:
        """Materialize what arrived since each view's watermark, up to ``end_date`` (default:
        now; a datetime, a date or an ISO string, naive means UTC), including late rows whose
        created timestamp is newer than the last run's. Only rows usable by ``end_date`` (event
        time plus the source's ``availability_delay``) are written."""
        end = to_utc(end_date, "end_date", self.clock) if end_date is not None else self.clock()
        return self._materialize(None, end, views, True, on_rows, batch_rows)

    def _materialize(self, start: datetime | None, end: datetime, views: Sequence[str] | None,
                     incremental: bool, on_rows: Callable[[str, int], None] | None,
                     batch_rows: int) -> list[ViewReport]:
        return self._fire(H.MATERIALIZE, {
            "views": views, "start": start, "end": end, "incremental": incremental},
            lambda: materialize_svc.materialize(
                self.context, self.snapshot(), views=views, start=start, end=end,
                incremental=incremental, on_rows=on_rows, batch_rows=batch_rows))

    def check_materialize_window(self, start: datetime | None, end: datetime) -> None:
        """MaterializationError if ``[start, end]`` cannot be materialized now (``end`` in the
        future, or ``start`` after ``end``): what ``materialize`` checks first, for a caller
        that wants to know before showing progress."""
        materialize_svc.check_window(start, end, self.clock())

    def online_views(self, names: Sequence[str] | None = None) -> list[FeatureView]:
        """The online views named (default: every online view), as ``materialize`` and
        ``rebuild_online`` select them: UnknownObjectError for an unknown name,
        MaterializationError for a view with ``online=False``."""
        return materialize_svc.online_views(self.snapshot(), names)

    def rebuild_online(self, views: Sequence[str] | None = None,
                       on_rows: Callable[[str, int], None] | None = None,
                       batch_rows: int = 100_000) -> list[RebuildReport]:
        """Disaster recovery: rebuild each online view's table from the offline store up to now
        in a staging table, swap it in (serving never sees a gap), set the watermark to now, catch
        up with what reached the offline store meanwhile and verify counts and a sample of values
        against the offline join. Holds each view's lease: raises LeaseHeldError, naming the
        holder, if another rebuild of one of them is running (docs/online.md, "Leases")."""
        return self._fire(H.REBUILD_ONLINE, {"views": views}, lambda: rebuild_svc.rebuild_online(
            self.context, self.snapshot(), views=views, on_rows=on_rows, batch_rows=batch_rows))

    def monitor(self, views: Sequence[str] | None = None, record: bool = True) -> MonitorReport:
        """Freshness, completeness, distribution (PSI, KS), latency and materialization health
        of ``views`` (default: every feature view), graded OK / WARN / ALERT against
        ``monitoring:`` in feature_store.yaml at this store's clock (docs/monitoring.md).
        ``record``: also write ``data/monitoring/last.json`` and a line of
        ``history.jsonl``. Raises ConfigError for a ``monitoring.views`` entry naming no
        view, UnknownObjectError for an unknown view in ``views``."""
        return monitor_svc.monitor(self.context, self.snapshot(), views, record=record)

    def online_status(self) -> list[ViewStatus]:
        """Per online view: entities stored, watermark and its age, last run."""
        return status_svc.online_status(self.context, self.snapshot())

    def push(self, source_name: str, df: Any, to: str = "online_and_offline",
             batch_id: str | None = None) -> PushReport:
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
        (docs/online.md#push). The check is one ``SELECT`` of the registry's version while no
        apply changed it. Feast's ``PushMode`` (``skewless.data_source``) is accepted for ``to``."""
        to = getattr(to, "value", to)
        return self._fire(H.PUSH, {
            "source_name": source_name, "to": to, "batch_id": batch_id, "rows": df},
            lambda: push_svc.push(self.context, self._fresh_serving_snapshot(), source_name, df,
                                  to=to, batch_id=batch_id))

    def compact(self, push_source: str, *, small_bytes: int = compact_svc.SMALL_BYTES,
                target_bytes: int = compact_svc.TARGET_BYTES,
                grace_seconds: float = compact_svc.GRACE_SECONDS) -> CompactReport:
        """Merge the push source's pushed files smaller than ``small_bytes`` into files of up to
        ``target_bytes``, atomically and safely while readers run; replaced files are deleted
        by a run ``grace_seconds`` or more after the switch (docs/streams.md, "Compaction").
        Raises UnknownObjectError, SourceError, LeaseHeldError (another compaction runs)."""
        return compact_svc.compact(self.context, self.snapshot(), push_source,
                                   small_bytes=small_bytes, target_bytes=target_bytes,
                                   grace_seconds=grace_seconds)

    def stream_ingest(self, push_source: str, spec: StreamSpec, *, metrics: StreamMetrics | None = None,
                      log: Callable[[str], None] | None = None,
                      on_batch: Callable[[BatchDone], None] | None = None) -> StreamIngest:
        """A consumer of the Redis Stream ``spec`` into ``push_source`` (``run()`` consumes until
        its ``stop`` event is set or ``max_entries`` were read): each batch offline, online,
        then acknowledged, through this store's ``push`` (docs/streams.md). Raises
        UnknownObjectError for an unknown push source, ConfigError for a bad spec."""
        return StreamIngest(self, push_source, spec, metrics=metrics, log=log, on_batch=on_batch)

    def report(self, path: str | os.PathLike[str], monitor: Any = None, audits: Sequence[Any] | None = None,
               title: str = "skewless monitoring report") -> ReportFile:
        """Write the monitoring report, one self-contained HTML page, to ``path`` (atomically)
        and return what is in it (``ReportFile``: status, counts, plots). ``monitor``: a monitor
        result (``MonitorReport.to_dict()``) or its JSON file; ``audits``: audit results or their
        files. Both None: this repo's ``data/monitoring/last.json``, ``history.jsonl`` and
        ``audit/*.json``. InvalidRequestError names a missing or malformed input (and the
        command that creates it); nothing is written then. docs/report.md."""
        return report_svc.write_report(self.repo_path, path, monitor, audits, title)

    def online_column_types(self, features: Sequence[str] | FeatureService | str,
                            full_feature_names: bool = False) -> dict[str, str | None]:
        """The declared type name (``"Float64"``, ``"Array(String)"``...) of each column of a
        ``get_online_features`` answer, join keys first (None for a key no view declares),
        from the serving plan (the one registry cache); UnknownObjectError or
        InvalidRequestError as ``get_online_features`` would raise them."""
        plan = self._online_plan(features, full_feature_names)
        views = self._serving_snapshot().feature_views
        types: dict[str, str | None] = {}
        for v in plan.views:
            view = views.get(v.view)
            declared = {f.name: f.dtype for f in view.schema} if view is not None else {}
            for k in v.join_keys:
                if types.get(k) is None:
                    types[k] = str(declared[k]) if k in declared else None
        if plan.on_demand is not None:
            types.update({name: str(plan.on_demand.dtypes[name]) for _, name in plan.on_demand.columns})
            return types
        for v in plan.views:
            for f in v.features:
                types[f.output] = str(f.dtype)
        return types

    @_online_read_event
    def get_online_features(self, features: Sequence[str] | FeatureService | str | None = None,
                            entity_rows: Sequence[dict[str, Any]] | None = None,
                            full_feature_names: bool = False,
                            feature_service: FeatureService | str | None = None,
                            ) -> OnlineResponse:
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

    @_online_read_events
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
    from skewless.define import FileSource, PushSource, RequestSource

    return [o for o in objects if not isinstance(o, (FileSource, PushSource, RequestSource))]


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
