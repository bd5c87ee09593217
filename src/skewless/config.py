"""``feature_store.yaml``: a strict model (unknown keys are errors) with environment overrides.

Every field can be overridden by an environment variable: ``SKEWLESS_`` + the path in upper case,
nested keys joined by ``__``: ``SKEWLESS_PROJECT``, ``SKEWLESS_REGISTRY``,
``SKEWLESS_OFFLINE_STORE__MEMORY_LIMIT=4GB``, ``SKEWLESS_ONLINE_STORE__PATH=/tmp/online.db``.
Values are parsed as YAML scalars (``8`` is an int, ``true`` a bool). A bad value or an unknown
key set by a variable is reported naming the variable, not the file.

Feast's ``feature_store.yaml`` keys are accepted where they mean the same thing, each with a
one-line note of what maps to what (``RepoConfig.notes``: logged once by the SDK, printed by the
CLI), or refused saying what to write instead: see docs/configuration.md, "Coming from Feast".

``offline_store`` and ``online_store`` name a backend by their ``type``: each section is
validated by that backend's own settings model, found through its entry point, built-ins and
plugins alike (``skewless.backends``, docs/backends.md).

Values that would only fail deep inside a library later (a DuckDB ``memory_limit`` of ``lots``,
a ``temp_directory`` that is a file, a malformed Redis ``connection_string``) are refused here.
"""

from __future__ import annotations

import difflib
import importlib
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import yaml
from pydantic import (BaseModel, ConfigDict, Field, PrivateAttr, SerializeAsAny, ValidationError,
                      ValidationInfo, field_validator)

from skewless import backends
from skewless.backends import BackendSettings, Kind
from skewless.errors import ConfigError

CONFIG_FILE = "feature_store.yaml"
ENV_PREFIX = "SKEWLESS_"
log = logging.getLogger("skewless.config")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# section -> the kind of backend its ``type`` names, and the type when the section omits it
SECTIONS: dict[str, tuple[Kind, str]] = {
    "offline_store": ("offline_engine", "duckdb"),
    "online_store": ("online_store", "sqlite"),
}

# The built-in settings models live in their backends' modules; these names stay importable
# from here (loaded on first use, so importing the config never imports a backend).
_MOVED = {
    "DuckDBOfflineConfig": "skewless.engines.duckdb",
    "ReferenceOfflineConfig": "skewless.engines.reference",
    "SqliteOnlineConfig": "skewless.online.sqlite",
    "MemoryOnlineConfig": "skewless.online.memory",
    "RedisOnlineConfig": "skewless.online.redis",
}


def __getattr__(name: str) -> Any:
    if name in _MOVED:
        return getattr(importlib.import_module(_MOVED[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def section_settings(section: str, value: Any) -> Any:
    """The settings model of the backend a config section names (by its ``type``), or None
    when the section does not name an installed backend."""
    kind, default = SECTIONS[section]
    name = value.get("type", default) if isinstance(value, dict) else default
    backend = backends.get(kind, name) if isinstance(name, str) else None
    return backend.settings if backend is not None else None


def _default(section: str) -> Callable[[], BackendSettings]:
    def make() -> BackendSettings:
        kind, name = SECTIONS[section]
        return cast(BackendSettings, backends.lookup(kind, name).settings())
    return make


class CacheConfig(_Strict):
    """The in-process cache of online values (SDK and feature server alike).

    ``ttl_seconds > 0`` turns on the hot-key cache: a value read less than that long ago is
    served without asking the online store. Whatever the TTL, the cache keeps the last values
    read (at most ``max_entries`` per view) for views declared ``fallback="cache"``, to serve
    when the online store does not answer; a cached value is never served past its view's ttl.
    """

    ttl_seconds: float = Field(default=0.0, ge=0)
    max_entries: int = Field(default=10_000, ge=0)


class ServingConfig(_Strict):
    """Online serving, in the SDK and the feature server alike.

    ``max_entities_per_request`` bounds the entity rows of one ``get_online_features`` request
    (``get_online_features_many``: of each request). A request over it is refused before any
    work with ``RequestTooLargeError`` (HTTP 413) naming the limit and the count, so one huge
    request cannot take a worker's memory and time from every other request
    (docs/configuration.md, docs/server.md).
    """

    max_entities_per_request: int = Field(default=100_000, ge=1)


class MonitorThresholds(_Strict):
    """The thresholds of ``skewless monitor`` (docs/monitoring.md), as defaults under
    ``monitoring:`` and as per-view overrides under ``monitoring.views.<view>``.

    Ages are in seconds; shares (completeness) are in [0, 1]; PSI and KS are unitless. A value
    crossing ``*_warn`` is WARN, crossing ``*_alert`` is ALERT (ages and PSI/KS: above;
    completeness: below). ``None`` turns that level off."""

    # freshness: WARN once the newest event is older than the view's ttl (or
    # ``freshness_max_age_seconds`` for a view without ttl, or set for the view itself under
    # ``views:``, which wins over its ttl; no ttl and no max age: skipped), ALERT once older
    # than that plus ``freshness_grace_seconds``
    freshness_grace_seconds: float = Field(default=3600.0, ge=0)
    freshness_max_age_seconds: float | None = Field(default=None, gt=0)
    completeness_warn: float | None = Field(default=0.99, ge=0, le=1)
    completeness_alert: float | None = Field(default=0.95, ge=0, le=1)
    psi_warn: float | None = Field(default=0.1, ge=0)
    psi_alert: float | None = Field(default=0.25, ge=0)
    ks_warn: float | None = Field(default=0.1, ge=0, le=1)
    ks_alert: float | None = Field(default=0.2, ge=0, le=1)
    latency_p99_warn_seconds: float | None = Field(default=0.05, gt=0)
    latency_p99_alert_seconds: float | None = Field(default=0.25, gt=0)
    # materialization: the last run's age (default: the view's ttl, or the freshness max age)
    materialization_max_age_seconds: float | None = Field(default=None, gt=0)
    # True when ``freshness_max_age_seconds`` was set for this view itself (``views:``): it
    # then grades the view even when the view has a ttl
    _max_age_for_view: bool = PrivateAttr(default=False)


class MonitorOverrides(_Strict):
    """Per-view overrides of ``MonitorThresholds`` (only the keys written replace the
    defaults); ``skip``: checks not to run for the view (``freshness``, ``completeness``,
    ``psi``, ``ks``, ``latency``, ``materialization``)."""

    freshness_grace_seconds: float | None = Field(default=None, ge=0)
    freshness_max_age_seconds: float | None = Field(default=None, gt=0)
    completeness_warn: float | None = Field(default=None, ge=0, le=1)
    completeness_alert: float | None = Field(default=None, ge=0, le=1)
    psi_warn: float | None = Field(default=None, ge=0)
    psi_alert: float | None = Field(default=None, ge=0)
    ks_warn: float | None = Field(default=None, ge=0, le=1)
    ks_alert: float | None = Field(default=None, ge=0, le=1)
    latency_p99_warn_seconds: float | None = Field(default=None, gt=0)
    latency_p99_alert_seconds: float | None = Field(default=None, gt=0)
    materialization_max_age_seconds: float | None = Field(default=None, gt=0)
    skip: tuple[str, ...] = ()

    @field_validator("skip")
    @classmethod
    def _checks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        known = ("freshness", "completeness", "psi", "ks", "latency", "materialization")
        for name in value:
            if name not in known:
                raise ValueError(f"unknown check {name!r}; known: {', '.join(known)}")
        return value


class MonitoringConfig(MonitorThresholds):
    """``monitoring:`` in feature_store.yaml: what ``skewless monitor`` checks and where its
    alerts go (docs/monitoring.md). Windows are in days before the store's clock: the current
    window is the last ``current_days``, the baseline the ``baseline_days`` before it; the
    freshness and completeness series cover the last ``period_days``."""

    views: dict[str, MonitorOverrides] = Field(default_factory=dict)
    baseline_days: float = Field(default=7.0, gt=0)
    current_days: float = Field(default=1.0, gt=0)
    period_days: float = Field(default=14.0, gt=0)
    psi_bins: int = Field(default=10, ge=2, le=100)
    psi_epsilon: float = Field(default=1e-4, gt=0, lt=1)
    sample_size: int = Field(default=20_000, ge=100)   # values per window for PSI and KS
    # fewer values in a window: no PSI / KS (a note says so). PSI of two samples of one
    # distribution is about (bins - 1) * (1/n_baseline + 1/n_current) by chance alone: 0.018
    # at 1,000 a side over 10 bins, far under psi_warn
    min_rows: int = Field(default=1000, ge=1)
    online_sample_keys: int = Field(default=1000, ge=0)   # 0: no online checks
    # latency: the feature server's Prometheus endpoint, or its multiprocess metrics directory
    metrics_url: str | None = None
    metrics_dir: str | None = None
    webhook_url: str | None = None
    webhook_timeout_seconds: float = Field(default=5.0, gt=0, le=300)
    webhook_retries: int = Field(default=2, ge=0, le=10)

    def thresholds(self, view: str) -> MonitorThresholds:
        """The thresholds of ``view``: the defaults, with its overrides."""
        override = self.views.get(view)
        base = {k: getattr(self, k) for k in MonitorThresholds.model_fields}
        if override is not None:
            base.update({k: v for k, v in override.model_dump(exclude_unset=True).items()
                         if k in MonitorThresholds.model_fields})
        out = MonitorThresholds(**base)
        out._max_age_for_view = (override is not None and "freshness_max_age_seconds" in override.model_fields_set
                                 and override.freshness_max_age_seconds is not None)
        return out
class FeatureLoggingConfig(_Strict):
    """Feature logging of online reads by feature service (docs/feature-logging.md).

    ``sample_rate``: the share of requests logged (0: none, the default; 1: every request),
    for every feature service without its own ``logging_config``. ``path``: the log root
    (relative to the repo). ``queue_size``: requests held for the background writer; when full,
    a request is not logged (counted as dropped), never delayed. ``flush_interval_seconds`` /
    ``flush_rows``: a partition's buffered rows are written as one Parquet file at least this
    often, or once this many rows are buffered. ``retention_days``: partitions older than this
    many days are deleted by ``skewless logs compact`` (None: kept).
    """

    sample_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    path: str = "data/feature_logs"
    queue_size: int = Field(default=10_000, ge=1)
    flush_interval_seconds: float = Field(default=10.0, gt=0)
    flush_rows: int = Field(default=50_000, ge=1)
    retention_days: int | None = Field(default=None, ge=1)


class AuditConfig(_Strict):
    """Default thresholds of ``skewless audit`` (docs/audit.md); a CLI flag overrides each.

    A feature is ALERT when its ``mismatch_rate``, ``missing_online_rate`` or
    ``missing_offline_rate`` is over the threshold (a share of the compared rows, 0 to 1).
    ``float_tolerance``, ``float_abs_tolerance``: two floats are equal when ``|a - b| <=
    float_tolerance * max(|a|, |b|) + float_abs_tolerance`` (relative, so a feature of tiny
    values is compared at its own scale; the absolute floor absorbs arithmetic noise around
    zero). ``worst``: how many entities with the largest differences are reported per feature.
    """

    mismatch_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    missing_online_rate: float = Field(default=0.01, ge=0.0, le=1.0)
    missing_offline_rate: float = Field(default=0.01, ge=0.0, le=1.0)
    float_tolerance: float = Field(default=1e-6, ge=0.0)
    float_abs_tolerance: float = Field(default=1e-12, ge=0.0)
    worst: int = Field(default=10, ge=0)


class RepoConfig(_Strict):
    """The whole of ``feature_store.yaml``. Only ``project`` is required."""

    project: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    registry: str = "data/registry.db"
    # each validated by its backend's own settings model, looked up by ``type``
    offline_store: SerializeAsAny[BackendSettings] = Field(default_factory=_default("offline_store"))
    online_store: SerializeAsAny[BackendSettings] = Field(default_factory=_default("online_store"))
    entity_timestamp_column: str = "event_timestamp"
    registry_cache_ttl_seconds: float = Field(default=10.0, ge=0)
    # how far a created timestamp may be ahead of the clock (producers' clock skew) before a
    # push or a materialization refuses the rows (docs/online.md#created-times-ahead-of-the-clock)
    created_timestamp_tolerance_seconds: float = Field(default=300.0, ge=0)
    cache: CacheConfig = CacheConfig()
    serving: ServingConfig = ServingConfig()
    monitoring: MonitoringConfig = MonitoringConfig()
    logging: FeatureLoggingConfig = FeatureLoggingConfig()
    audit: AuditConfig = AuditConfig()

    repo_path: Path = Field(default=Path("."), exclude=True)
    _notes: tuple[str, ...] = PrivateAttr(default=())

    @field_validator("offline_store", "online_store", mode="before")
    @classmethod
    def _section(cls, value: Any, info: ValidationInfo) -> Any:
        """A mapping is validated by the settings model of the backend its ``type`` names
        (``config_from_dict`` does it first, to report each problem by key)."""
        if isinstance(value, dict):
            model = section_settings(str(info.field_name), value)
            if model is None:
                kind = SECTIONS[str(info.field_name)][0]
                raise ValueError(f"type {value.get('type')!r} is not installed; installed: "
                                 + ", ".join(backends.names(kind)))
            return model.model_validate(value)
        return value

    @property
    def notes(self) -> tuple[str, ...]:
        """One line per Feast spelling that was mapped (``"feature_store.yaml: offline_store.type
        'file' runs on DuckDB ..."``), in file order; empty for a native config."""
        return self._notes

    def resolve(self, path: str) -> Path:
        """A path from the config, relative to the repo unless absolute."""
        p = Path(path).expanduser()
        return p if p.is_absolute() else self.repo_path / p


def _known_keys(model: Any) -> list[str]:
    return [k for k in getattr(model, "model_fields", {}) if k != "repo_path"]


def _section_models(section: str, data: dict[str, Any] | None = None,
                    path: list[str] | None = None) -> tuple[Any, ...]:
    """The model of a section: its backend's settings model (by the ``type`` in ``data``), or
    the nested model at ``path`` (e.g. ``["monitoring", "views", "v"]``: MonitorOverrides)."""
    if section in SECTIONS:
        settings = section_settings(section, (data or {}).get(section))
        return (settings,) if settings is not None else ()
    model: Any = RepoConfig
    for key in path or [section]:
        fields = getattr(model, "model_fields", {})
        if key in fields:
            ann = fields[key].annotation
            if isinstance(ann, type) and issubclass(ann, BaseModel):
                model = ann
                continue
            args = getattr(ann, "__args__", ())
            if args and isinstance(args[-1], type) and issubclass(args[-1], BaseModel):
                model = ("dict", args[-1])   # a mapping of names to models: the next key is a name
                continue
            return (RepoConfig,)
        if isinstance(model, tuple):
            model = model[1]
            continue
        return (RepoConfig,)
    return (model,) if not isinstance(model, tuple) else (RepoConfig,)


def _type_names(section: str) -> list[str]:
    """Every installed backend's name for a section (none of them is imported)."""
    return backends.names(SECTIONS[section][0])


def _env_var(path: tuple[str, ...] | list[str]) -> str:
    return ENV_PREFIX + "__".join(path).upper()


def _nearest(name: str, choices: list[str]) -> str | None:
    close = difflib.get_close_matches(name, choices, n=1, cutoff=0.5)
    return close[0] if close else None


class _Origins:
    """Where each value of the config came from: the file, or an environment variable."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.env: dict[tuple[str, ...], str] = {}

    def var(self, loc: tuple[str, ...] | list[str]) -> str | None:
        """The variable that set ``loc`` (or a section above it), else None (the file)."""
        loc = tuple(loc)
        for i in range(len(loc), 0, -1):
            if loc[:i] in self.env:
                return self.env[loc[:i]]
        return None

    def short(self, loc: tuple[str, ...]) -> str:
        """Who set ``loc``, for a note: the variable, or the file's name."""
        return self.var(loc) or Path(self.file).name


class _Problems:
    """Every problem of a config, each blamed on the file or on the variable that set it."""

    def __init__(self, origins: _Origins) -> None:
        self.origins = origins
        self.items: list[tuple[str | None, str]] = []

    def add(self, loc: tuple[str, ...] | list[str], text: str) -> None:
        self.items.append((self.origins.var(loc), text))

    def error(self) -> ConfigError:
        in_file = [t for var, t in self.items if var is None]
        from_env = [f"environment variable {var}: {t}" for var, t in self.items if var is not None]
        where = f"{self.origins.file}: invalid configuration" if in_file else \
            "invalid configuration from the environment"
        return ConfigError(f"{where}:\n  - " + "\n  - ".join(in_file + from_env),
                           hint="see docs/configuration.md for every key (and \"Coming from Feast\")")


def _report(errors: list[Any], problems: _Problems, data: dict[str, Any]) -> ConfigError:
    for e in errors:
        loc = [str(x) for x in e["loc"]]
        where = ".".join(loc) or "(top level)"
        var = problems.origins.var(loc)
        if e["type"] == "extra_forbidden":
            parent = loc[:-1]
            models = _section_models(parent[0], data, parent) if parent else (RepoConfig,)
            valid = sorted({k for m in models for k in _known_keys(m)})
            if var is not None:
                near = _nearest(loc[-1], valid)
                fix = f"; did you mean {_env_var(parent + [near])}?" if near else \
                    "; valid: " + ", ".join(_env_var(parent + [k]) for k in valid)
                problems.add(loc, f"unknown key '{where}'{fix}")
            else:
                problems.add(loc, f"unknown key '{where}'; valid keys here: {', '.join(valid)}")
        elif e["type"] == "value_error":
            problems.add(loc, f"'{where}': {e['ctx']['error']}")
        elif e["type"] == "model_type" and loc[0] in SECTIONS and len(loc) == 1:
            # not "instance of BackendSettings": a class name the user never wrote
            problems.add(loc, f"'{where}': Input should be a valid dictionary or object to extract "
                         "fields from" + (f", got {e['input']!r}" if var else ""))
        else:
            problems.add(loc, f"'{where}': {e['msg']}" + (f", got {e['input']!r}" if var else ""))
        section_type = (loc[0], "type")
        if loc[0] in SECTIONS and var is None and problems.origins.var(section_type):
            kind = problems.items[-1]
            problems.items[-1] = (kind[0], kind[1] + f" ({loc[0]}.type is set by "
                                  f"{problems.origins.var(section_type)})")
    return problems.error()


def _validate(data: dict[str, Any], repo_path: Path) -> tuple[RepoConfig | None, list[Any]]:
    """Each backend section by its backend's settings model, then the rest; every error, in
    the order of the fields (as one model would report them), each located from the top."""
    errors: list[Any] = []
    data = dict(data)
    for section in SECTIONS:
        value = data.get(section)
        model = section_settings(section, value) if isinstance(value, dict) else None
        if model is None:
            continue
        try:
            data[section] = model.model_validate(value)
        except ValidationError as e:
            errors.extend({**err, "loc": (section, *err["loc"])} for err in e.errors())
            del data[section]   # the default stands in while the rest is checked
    cfg = None
    try:
        cfg = RepoConfig(**data, repo_path=repo_path)
    except ValidationError as e:
        errors.extend(e.errors())
    order = list(RepoConfig.model_fields)
    errors.sort(key=lambda err: order.index(err["loc"][0]) if err["loc"] and err["loc"][0] in order
                else len(order))
    return (None if errors else cfg), errors


def _apply_env(data: dict[str, Any], environ: dict[str, str], origins: _Origins) -> dict[str, Any]:
    data = {k: (dict(v) if isinstance(v, dict) else v) for k, v in data.items()}
    for var, raw in sorted(environ.items()):
        if not var.startswith(ENV_PREFIX) or var in ("SKEWLESS_REPO",):
            continue
        path = var[len(ENV_PREFIX):].lower().split("__")
        top = path[0]
        if top not in _known_keys(RepoConfig):
            near = _nearest(top, _known_keys(RepoConfig))
            raise ConfigError(
                f"environment variable {var} does not match any config key"
                + (f"; did you mean {_env_var([near] + path[1:])}?" if near else ""),
                hint="valid: " + ", ".join(ENV_PREFIX + k.upper() for k in _known_keys(RepoConfig)),
            )
        try:
            value = yaml.safe_load(raw) if raw.strip() else raw
        except yaml.YAMLError:
            value = raw
        if isinstance(value, (int, float, bool)) and path[-1] in ("project", "registry", "path", "memory_limit",
                                                                   "connection_string", "temp_directory"):
            value = raw
        node = data
        for key in path[:-1]:
            if not isinstance(node.get(key), dict):
                node[key] = {} if node.get(key) is None else dict(node[key]) if isinstance(node[key], dict) else {}
            node = node[key]
        node[path[-1]] = value
        origins.env[tuple(path)] = var
    return data


# --- Feast's spellings ------------------------------------------------------------------------
_FEAST_OFFLINE = {"file": "duckdb", "dask": "duckdb"}   # Feast's local Parquet stores
_REGISTRY_KEYS = ("path", "cache_ttl_seconds", "registry_type", "registry_store_type")
_FEAST_REMOVE = {
    "feature_server": "the feature server is configured on the command line: `skewless serve "
                      "--host --port --workers` (docs/server.md); remove feature_server",
    "flags": "Feast's feature flags have no meaning here; remove flags",
    "go_feature_serving": "the feature server is skewless's own; remove go_feature_serving",
    "go_feature_retrieval": "retrieval is skewless's own; remove go_feature_retrieval",
}


def _feast_shapes(data: dict[str, Any]) -> dict[str, Any]:
    """Feast's short forms, before environment overrides: ``offline_store: file`` is
    ``offline_store: {type: file}`` (same for online_store and batch_engine)."""
    data = dict(data)
    for section in ("offline_store", "online_store"):
        if isinstance(data.get(section), str) and data[section].lower() not in ("none", "null"):
            data[section] = {"type": data[section]}
    return data


def _from_feast(data: dict[str, Any], problems: _Problems) -> tuple[dict[str, Any], list[str]]:
    """Feast's keys mapped to skewless's (a note each), or refused saying what to write."""
    data = {k: (dict(v) if isinstance(v, dict) else v) for k, v in data.items()}
    notes: list[str] = []
    origins = problems.origins

    def note(loc: tuple[str, ...], text: str) -> None:
        notes.append(f"{origins.short(loc)}: {text}")

    if "provider" in data:
        provider = data.pop("provider")
        if provider == "local":
            note(("provider",), "provider 'local' is what skewless always is (it runs in-process); "
                 "the key is ignored")
        else:
            problems.add(("provider",), f"provider {provider!r} is not supported: skewless runs "
                         "in-process (DuckDB offline, SQLite or Redis online); remove provider and "
                         "set offline_store / online_store")
    if "entity_key_serialization_version" in data:
        version = data.pop("entity_key_serialization_version")
        if isinstance(version, int) and not isinstance(version, bool):
            note(("entity_key_serialization_version",), "entity_key_serialization_version is "
                 "ignored: skewless has one entity-key encoding for every online store")
        else:
            problems.add(("entity_key_serialization_version",), "'entity_key_serialization_version'"
                         f" must be an integer (Feast's 2 or 3), got {version!r}; skewless ignores "
                         "it, so you may also remove it")
    if "project_description" in data:
        data.pop("project_description")
        note(("project_description",), "project_description is not stored; the key is ignored")
    if "coerce_tz_aware" in data:
        if data.pop("coerce_tz_aware") is True:
            note(("coerce_tz_aware",), "coerce_tz_aware: naive timestamps always mean UTC in "
                 "skewless; the key is ignored")
        else:
            problems.add(("coerce_tz_aware",), "coerce_tz_aware: false is not supported: naive "
                         "timestamps always mean UTC (docs/point-in-time.md); remove the key")
    for key, fix in _FEAST_REMOVE.items():
        if key in data:
            data.pop(key)
            problems.add((key,), f"'{key}' is a Feast key skewless does not read: {fix}")
    _feast_registry(data, problems, note)
    _feast_auth(data, problems, note)
    _feast_offline(data, problems, note)
    _feast_online(data, problems, note)
    return data, notes


def _feast_registry(data: dict[str, Any], problems: _Problems, note: Any) -> None:
    reg = data.get("registry")
    if not isinstance(reg, dict):
        return
    unknown = sorted(set(reg) - set(_REGISTRY_KEYS))
    for key in unknown:
        problems.add(("registry", key), f"unknown key 'registry.{key}'; valid keys here: "
                     "cache_ttl_seconds, path, registry_type (or write registry: data/registry.db)")
    rtype = reg.get("registry_type", reg.get("registry_store_type", "file"))
    if rtype != "file":
        problems.add(("registry", "registry_type"), f"'registry.registry_type' {rtype!r} is not "
                     "supported: the registry is a local SQLite file; write registry: "
                     "data/registry.db")
    path = reg.get("path")
    if not isinstance(path, str) or not path:
        problems.add(("registry", "path"), "'registry.path' is required (a file path); write "
                     "registry: data/registry.db")
        return
    mapped = [f"registry.path maps to registry: {path}"]
    if "cache_ttl_seconds" in reg:
        ttl = reg["cache_ttl_seconds"]
        top_from_env = problems.origins.var(("registry_cache_ttl_seconds",)) is not None
        if "registry_cache_ttl_seconds" in data and not top_from_env:
            problems.add(("registry", "cache_ttl_seconds"), "both 'registry.cache_ttl_seconds' "
                         "and 'registry_cache_ttl_seconds' are set; keep registry_cache_ttl_seconds")
        elif isinstance(ttl, bool) or not isinstance(ttl, (int, float)) or ttl < 0:
            problems.add(("registry", "cache_ttl_seconds"), "'registry.cache_ttl_seconds' must be "
                         f"a number of seconds >= 0, got {ttl!r}")
        elif ttl == 0:
            problems.add(("registry", "cache_ttl_seconds"), "'registry.cache_ttl_seconds: 0' means "
                         "'never refresh' in Feast but 're-read on every request' in skewless; "
                         "write registry_cache_ttl_seconds: 0 (re-read every time) or a number of "
                         "seconds such as 600, and remove cache_ttl_seconds")
        elif not top_from_env:
            data["registry_cache_ttl_seconds"] = ttl
            mapped.append(f"cache_ttl_seconds to registry_cache_ttl_seconds: {ttl}")
    data["registry"] = path
    note(("registry",), "; ".join(mapped) + " (a SQLite file of skewless's own, not Feast's "
         "protobuf registry)")


def _feast_auth(data: dict[str, Any], problems: _Problems, note: Any) -> None:
    _feast_ignored(data, "auth", "no_auth", problems, note,
                   "auth.type 'no_auth' is skewless's default (nothing is enforced until a "
                   "permission is applied); the key is ignored",
                   "is not read from feature_store.yaml; remove auth (no_auth, Feast's default, is "
                   "what skewless does)")


def _feast_ignored(data: dict[str, Any], key: str, accepted: str, problems: _Problems, note: Any,
                   noted: str, refused: str) -> None:
    """A Feast key skewless has no use for: ignored with a note when it asks for what skewless
    does anyway (``accepted``, as a bare string or ``{type: ...}``), else refused."""
    if key not in data:
        return
    value = data.pop(key)
    kind = value.get("type") if isinstance(value, dict) else value
    if kind == accepted and (not isinstance(value, dict) or set(value) == {"type"}):
        note((key,), noted)
    else:
        problems.add((key,), f"'{key}' {kind!r} {refused}")


def _feast_offline(data: dict[str, Any], problems: _Problems, note: Any) -> None:
    _feast_ignored(data, "batch_engine", "local", problems, note,
                   "batch_engine 'local': skewless materializes in-process; the key is ignored",
                   "is not supported: skewless materializes in-process; remove batch_engine")
    if "offline_store" in data and data["offline_store"] is None:
        problems.add(("offline_store",), "'offline_store' is empty; remove the key for the "
                     "embedded DuckDB engine, or write offline_store: {type: duckdb}")
        return
    off = data.get("offline_store")
    if not isinstance(off, dict) or "type" not in off:
        return
    kind = off["type"]
    if kind in _FEAST_OFFLINE:
        off["type"] = _FEAST_OFFLINE[kind]
        note(("offline_store", "type"), f"offline_store.type {kind!r} runs on DuckDB (the same "
             "Parquet files, read in one engine); write type: duckdb to silence this note")
    elif kind not in _type_names("offline_store"):
        problems.add(("offline_store", "type"), "'offline_store.type' must be one of "
                     f"{_type_names('offline_store')} (or Feast's 'file'), got {kind!r}: skewless "
                     "reads Parquet files (a file, a folder or a glob) with DuckDB; write "
                     "offline_store: {type: duckdb}")


def _feast_online(data: dict[str, Any], problems: _Problems, note: Any) -> None:
    if "online_store" in data and (data["online_store"] is None
                                   or str(data["online_store"]).lower() in ("none", "null")):
        problems.add(("online_store",), "'online_store: null' (no online store) is not supported: "
                     "remove the key for the embedded SQLite store, or write online_store: "
                     "{type: memory}")
        return
    on = data.get("online_store")
    if not isinstance(on, dict) or "type" not in on:
        return
    kind = on["type"]
    if kind not in _type_names("online_store"):
        problems.add(("online_store", "type"), "'online_store.type' must be one of "
                     f"{_type_names('online_store')}, got {kind!r}: write type: sqlite (embedded, "
                     "the default) or redis (connection_string: \"host:port\")")
        return
    if kind != "redis":
        return
    redis_type = on.pop("redis_type", None)
    if redis_type not in (None, "redis"):
        problems.add(("online_store", "redis_type"), f"'online_store.redis_type' {redis_type!r} is "
                     "not supported: skewless talks to one Redis host (no Cluster or Sentinel); "
                     "write connection_string: \"host:port\" and remove redis_type")
    elif redis_type == "redis":
        note(("online_store", "redis_type"), "online_store.redis_type 'redis' is the only kind "
             "there is; the key is ignored")
    for key, why in (("key_ttl_seconds", "a value is served only within its view's ttl, and a "
                      "deleted view's keys are dropped"),
                     ("sentinel_master", "Redis Sentinel is not supported; point "
                      "connection_string at the master")):
        if key in on:
            on.pop(key)
            problems.add(("online_store", key), f"'online_store.{key}' is not supported: {why}; "
                         "remove it")


def _check_paths(cfg: RepoConfig, problems: _Problems) -> None:
    """Paths that exist but are of the wrong kind fail deep inside DuckDB or SQLite later:
    each backend's settings check theirs (``BackendSettings.problems``)."""
    for section in SECTIONS:
        settings: BackendSettings = getattr(cfg, section)
        for key, text in settings.problems(cfg):
            problems.add((section, key), f"'{section}.{key}' {text}")
    if "://" not in cfg.registry and cfg.resolve(cfg.registry).is_dir():
        problems.add(("registry",), f"'registry' {str(cfg.resolve(cfg.registry))!r} is a directory; "
                     "write the path of the registry file (e.g. data/registry.db)")


def load_config(repo_path: str | os.PathLike[str] = ".", environ: dict[str, str] | None = None) -> RepoConfig:
    """Read ``feature_store.yaml`` in ``repo_path``, apply env overrides and validate."""
    repo = Path(repo_path).resolve()
    file = repo / CONFIG_FILE
    if not file.exists():
        raise ConfigError(
            f"no {CONFIG_FILE} in {repo}",
            hint="run `skewless init` to create a feature repo, or pass the right repo path",
        )
    try:
        data = yaml.safe_load(file.read_text()) or {}
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e)
        raise ConfigError(f"{file}: malformed YAML{where}: {problem}",
                          hint="check the indentation and the ':' after each key") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{file}: expected a mapping of keys to values, got {type(data).__name__}")
    return config_from_dict(data, repo, environ, origin=str(file))


_LOGGED: set[tuple[str, str]] = set()  # (config file, note): each note is logged once


def config_from_dict(
    data: dict[str, Any],
    repo_path: str | os.PathLike[str] = ".",
    environ: dict[str, str] | None = None,
    origin: str = CONFIG_FILE,
) -> RepoConfig:
    """Validate a config mapping (with env overrides) as if read from ``feature_store.yaml``.

    Feast's keys are mapped (``RepoConfig.notes`` says what to what; each note is logged once
    per process and file on the ``skewless.config`` logger) or refused saying what to write.
    """
    origins = _Origins(origin)
    problems = _Problems(origins)
    data = _apply_env(_feast_shapes(data), dict(os.environ if environ is None else environ), origins)
    data, notes = _from_feast(data, problems)
    if problems.items:
        raise problems.error()
    for section, (_, default) in SECTIONS.items():
        if isinstance(data.get(section), dict) and "type" not in data[section]:
            data[section] = {**data[section], "type": default}
    try:
        cfg, errors = _validate(data, Path(repo_path).resolve())
    except TypeError as e:
        raise ConfigError(f"{origin}: {e}") from None
    if cfg is None:
        raise _report(errors, problems, data) from None
    _check_paths(cfg, problems)
    if problems.items:
        raise problems.error()
    cfg._notes = tuple(notes)
    for line in notes:
        if (origin, line) not in _LOGGED:
            _LOGGED.add((origin, line))
            log.info("%s", line)
    return cfg
