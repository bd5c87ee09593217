"""``feature_store.yaml``: a strict model (unknown keys are errors) with environment overrides.

Every field can be overridden by an environment variable: ``SKEWLESS_`` + the path in upper case,
nested keys joined by ``__``: ``SKEWLESS_PROJECT``, ``SKEWLESS_REGISTRY``,
``SKEWLESS_OFFLINE_STORE__MEMORY_LIMIT=4GB``, ``SKEWLESS_ONLINE_STORE__PATH=/tmp/online.db``.
Values are parsed as YAML scalars (``8`` is an int, ``true`` a bool).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from skewless.errors import ConfigError

CONFIG_FILE = "feature_store.yaml"
ENV_PREFIX = "SKEWLESS_"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DuckDBOfflineConfig(_Strict):
    """Embedded DuckDB engine. ``memory_limit`` bounds its memory; beyond it, it spills to
    ``temp_directory`` so larger-than-memory retrievals complete."""

    type: Literal["duckdb"] = "duckdb"
    memory_limit: str | None = None
    temp_directory: str | None = None
    threads: int | None = Field(default=None, ge=1)


class ReferenceOfflineConfig(_Strict):
    """The brute-force reference engine: the oracle the other engines are tested against."""

    type: Literal["reference"]


OfflineConfig = Annotated[DuckDBOfflineConfig | ReferenceOfflineConfig, Field(discriminator="type")]


class SqliteOnlineConfig(_Strict):
    type: Literal["sqlite"] = "sqlite"
    path: str = "data/online.db"


class MemoryOnlineConfig(_Strict):
    type: Literal["memory"]


class RedisOnlineConfig(_Strict):
    """Redis (or a Redis-compatible server). ``connection_string`` as Feast writes it:
    ``host:port[,db=1,password=...,ssl=true]``, or a ``redis://`` / ``rediss://`` URL."""

    type: Literal["redis"]
    connection_string: str = "localhost:6379"
    connect_timeout_seconds: float = Field(default=1.0, gt=0)
    timeout_seconds: float = Field(default=1.0, gt=0)
    max_connections: int | None = Field(default=None, ge=1)
    retry_after_seconds: float = Field(default=1.0, ge=0)


OnlineConfig = Annotated[
    SqliteOnlineConfig | MemoryOnlineConfig | RedisOnlineConfig, Field(discriminator="type")
]


class CacheConfig(_Strict):
    """The in-process cache of online values (SDK and feature server alike).

    ``ttl_seconds > 0`` turns on the hot-key cache: a value read less than that long ago is
    served without asking the online store. Whatever the TTL, the cache keeps the last values
    read (at most ``max_entries`` per view) for views declared ``fallback="cache"``, to serve
    when the online store does not answer; a cached value is never served past its view's ttl.
    """

    ttl_seconds: float = Field(default=0.0, ge=0)
    max_entries: int = Field(default=10_000, ge=0)


class RepoConfig(_Strict):
    """The whole of ``feature_store.yaml``. Only ``project`` is required."""

    project: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    registry: str = "data/registry.db"
    offline_store: OfflineConfig = DuckDBOfflineConfig()
    online_store: OnlineConfig = SqliteOnlineConfig()
    entity_timestamp_column: str = "event_timestamp"
    registry_cache_ttl_seconds: float = Field(default=10.0, ge=0)
    cache: CacheConfig = CacheConfig()

    repo_path: Path = Field(default=Path("."), exclude=True)

    def resolve(self, path: str) -> Path:
        """A path from the config, relative to the repo unless absolute."""
        p = Path(path).expanduser()
        return p if p.is_absolute() else self.repo_path / p


def _known_keys(model: Any) -> list[str]:
    return [k for k in getattr(model, "model_fields", {}) if k != "repo_path"]


def _format_errors(err: ValidationError, origin: str) -> ConfigError:
    problems = []
    for e in err.errors():
        loc = [str(x) for x in e["loc"]]
        if len(loc) >= 2 and loc[0] in ("offline_store", "online_store"):
            del loc[1]  # the discriminator tag pydantic inserts ("duckdb", "sqlite", ...)
        where = ".".join(loc) or "(top level)"
        if e["type"] == "extra_forbidden":
            parent = loc[:-1]
            models = _section_models(parent[0]) if parent else (RepoConfig,)
            valid = sorted({k for m in models for k in _known_keys(m)})
            problems.append(f"unknown key '{where}'; valid keys here: {', '.join(valid)}")
        elif e["type"] == "union_tag_invalid":
            valid = sorted({m.model_fields["type"].annotation.__args__[0] for m in _section_models(loc[0])})  # type: ignore[union-attr]
            problems.append(f"'{where}.type' must be one of {valid}, got {e['input'].get('type')!r}")
        else:
            problems.append(f"'{where}': {e['msg']}")
    return ConfigError(f"{origin}: invalid configuration:\n  - " + "\n  - ".join(problems),
                       hint="see docs/configuration.md for every key")


def _section_models(section: str) -> tuple[Any, ...]:
    if section == "offline_store":
        return (DuckDBOfflineConfig, ReferenceOfflineConfig)
    if section == "online_store":
        return (SqliteOnlineConfig, MemoryOnlineConfig, RedisOnlineConfig)
    return (RepoConfig,)


def _apply_env(data: dict[str, Any], environ: dict[str, str]) -> dict[str, Any]:
    data = {k: (dict(v) if isinstance(v, dict) else v) for k, v in data.items()}
    for var, raw in sorted(environ.items()):
        if not var.startswith(ENV_PREFIX) or var in ("SKEWLESS_REPO",):
            continue
        path = var[len(ENV_PREFIX):].lower().split("__")
        top = path[0]
        if top not in _known_keys(RepoConfig):
            raise ConfigError(
                f"environment variable {var} does not match any config key",
                hint="valid: " + ", ".join(ENV_PREFIX + k.upper() for k in _known_keys(RepoConfig)),
            )
        try:
            value = yaml.safe_load(raw) if raw.strip() else raw
        except yaml.YAMLError:
            value = raw
        if isinstance(value, (int, float, bool)) and path[-1] in ("project", "registry", "path", "memory_limit",
                                                                   "connection_string"):
            value = raw
        node = data
        for key in path[:-1]:
            if not isinstance(node.get(key), dict):
                node[key] = {} if node.get(key) is None else dict(node[key]) if isinstance(node[key], dict) else {}
            node = node[key]
        node[path[-1]] = value
    return data


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


def config_from_dict(
    data: dict[str, Any],
    repo_path: str | os.PathLike[str] = ".",
    environ: dict[str, str] | None = None,
    origin: str = CONFIG_FILE,
) -> RepoConfig:
    """Validate a config mapping (with env overrides) as if read from ``feature_store.yaml``."""
    data = _apply_env(data, dict(os.environ if environ is None else environ))
    for section in ("offline_store", "online_store"):
        if isinstance(data.get(section), dict) and "type" not in data[section]:
            data[section] = {**data[section], "type": "duckdb" if section == "offline_store" else "sqlite"}
    try:
        return RepoConfig(**data, repo_path=Path(repo_path).resolve())
    except ValidationError as e:
        raise _format_errors(e, origin) from None
    except TypeError as e:
        raise ConfigError(f"{origin}: {e}") from None
