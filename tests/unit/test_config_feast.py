"""``feature_store.yaml`` as Feast users write it (docs/configuration.md, "Coming from Feast"),
values checked at load rather than deep inside DuckDB or Redis, and environment overrides blamed
on the variable that set them."""

from __future__ import annotations

import logging
from pathlib import Path

import duckdb
import pytest

from skewless.config import (DuckDBOfflineConfig, RedisOnlineConfig, SqliteOnlineConfig,
                             config_from_dict, load_config)
from skewless.errors import ConfigError


def _load(tmp_path: Path, text: str, environ: dict[str, str] | None = None):  # noqa: ANN202
    (tmp_path / "feature_store.yaml").write_text(text)
    return load_config(tmp_path, environ=environ or {})


def _refused(tmp_path: Path, text: str, environ: dict[str, str] | None = None) -> ConfigError:
    with pytest.raises(ConfigError) as e:
        _load(tmp_path, text, environ)
    assert "Traceback" not in str(e.value)
    return e.value


# --- Feast's template, as `feast init` writes it ------------------------------------------------
FEAST_TEMPLATE = """\
project: my_project
# By default, the registry is a file
registry: data/registry.db
provider: local
online_store:
    type: sqlite
    path: data/online_store.db
entity_key_serialization_version: 3
auth:
    type: no_auth
"""


def test_feast_init_template_is_accepted_with_notes(tmp_path: Path) -> None:
    cfg = _load(tmp_path, FEAST_TEMPLATE)
    assert cfg.project == "my_project" and cfg.registry == "data/registry.db"
    assert isinstance(cfg.online_store, SqliteOnlineConfig) and cfg.online_store.path == "data/online_store.db"
    assert isinstance(cfg.offline_store, DuckDBOfflineConfig)
    notes = "\n".join(cfg.notes)
    assert "feature_store.yaml: provider 'local'" in notes
    assert "entity_key_serialization_version is ignored" in notes
    assert "auth.type 'no_auth'" in notes
    assert len(cfg.notes) == 3


def test_offline_store_file_runs_on_duckdb(tmp_path: Path) -> None:
    cfg = _load(tmp_path, "project: p\nprovider: local\noffline_store:\n  type: file\n")
    assert isinstance(cfg.offline_store, DuckDBOfflineConfig)
    assert "feature_store.yaml: offline_store.type 'file' runs on DuckDB" in cfg.notes[-1]


@pytest.mark.parametrize("text", ["offline_store: file\n", "offline_store: {type: dask}\n"],
                         ids=["short-form", "dask"])
def test_offline_store_feast_spellings(tmp_path: Path, text: str) -> None:
    cfg = _load(tmp_path, "project: p\n" + text)
    assert isinstance(cfg.offline_store, DuckDBOfflineConfig)


def test_registry_mapping(tmp_path: Path) -> None:
    cfg = _load(tmp_path, "project: p\nregistry:\n  registry_type: file\n  path: data/reg.db\n"
                          "  cache_ttl_seconds: 60\n")
    assert cfg.registry == "data/reg.db" and cfg.registry_cache_ttl_seconds == 60
    assert cfg.notes == ("feature_store.yaml: registry.path maps to registry: data/reg.db; "
                         "cache_ttl_seconds to registry_cache_ttl_seconds: 60 (a SQLite file of "
                         "skewless's own, not Feast's protobuf registry)",)


def test_redis_online_store_as_feast_writes_it(tmp_path: Path) -> None:
    cfg = _load(tmp_path, "project: p\nonline_store:\n  type: redis\n  redis_type: redis\n"
                          "  connection_string: \"localhost:6379,db=1\"\n")
    assert isinstance(cfg.online_store, RedisOnlineConfig)
    assert cfg.online_store.connection_string == "localhost:6379,db=1"
    assert "redis_type 'redis'" in cfg.notes[0]


def test_native_config_has_no_notes(tmp_path: Path) -> None:
    assert _load(tmp_path, "project: p\nregistry: data/registry.db\noffline_store: {type: duckdb}\n").notes == ()


def test_notes_are_logged_once_per_process(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    text = "project: logged_once\nprovider: local\noffline_store: {type: file}\n"
    with caplog.at_level(logging.INFO, logger="skewless.config"):
        _load(tmp_path, text)
        _load(tmp_path, text)
    lines = [r.getMessage() for r in caplog.records if "runs on DuckDB" in r.getMessage()]
    assert len(lines) == 1


@pytest.mark.parametrize("text, where, what", [
    ("provider: gcp\n", "provider 'gcp' is not supported", "remove provider"),
    ("entity_key_serialization_version: three\n", "'entity_key_serialization_version' must be an integer",
     "remove it"),
    ("offline_store: {type: bigquery}\n", "'offline_store.type' must be one of", "offline_store: {type: duckdb}"),
    ("online_store: {type: dynamodb}\n", "'online_store.type' must be one of", "type: sqlite"),
    ("online_store: null\n", "'online_store: null'", "remove the key"),
    ("online_store: {type: redis, redis_type: redis_cluster}\n", "redis_type' 'redis_cluster'",
     "connection_string"),
    ("online_store: {type: redis, key_ttl_seconds: 60}\n", "online_store.key_ttl_seconds", "remove it"),
    ("registry: {registry_type: sql, path: 'postgresql://x'}\n", "registry.registry_type' 'sql'",
     "registry: data/registry.db"),
    ("registry: {cache_ttl_seconds: 60}\n", "'registry.path' is required", "registry: data/registry.db"),
    ("registry: {path: r.db, cache_ttl_seconds: 0}\n", "means 'never refresh' in Feast",
     "registry_cache_ttl_seconds: 0"),
    ("registry: {path: r.db, cache_ttl_seconds: 5}\nregistry_cache_ttl_seconds: 7\n",
     "both 'registry.cache_ttl_seconds' and 'registry_cache_ttl_seconds'", "keep registry_cache_ttl_seconds"),
    ("registry: {path: r.db, sqlalchemy_config_kwargs: {echo: false}}\n",
     "unknown key 'registry.sqlalchemy_config_kwargs'", "registry: data/registry.db"),
    ("auth: {type: oidc, client_id: x}\n", "'auth' 'oidc'", "remove auth"),
    ("batch_engine: {type: spark.engine}\n", "'batch_engine' 'spark.engine'", "remove batch_engine"),
    ("feature_server: {type: local}\n", "'feature_server' is a Feast key", "skewless serve"),
    ("coerce_tz_aware: false\n", "coerce_tz_aware: false", "remove the key"),
], ids=["provider", "eksv", "offline-type", "online-type", "online-null", "redis-cluster",
        "key-ttl", "registry-sql", "registry-no-path", "registry-ttl-0", "registry-ttl-twice",
        "registry-unknown", "auth", "batch-engine", "feature-server", "coerce-tz"])
def test_feast_keys_refused_say_what_to_write(tmp_path: Path, text: str, where: str, what: str) -> None:
    e = _refused(tmp_path, "project: p\n" + text)
    assert where in e.message and what in e.message
    assert str(tmp_path / "feature_store.yaml") in e.message


def test_every_refusal_is_reported_at_once(tmp_path: Path) -> None:
    e = _refused(tmp_path, "project: p\nprovider: aws\noffline_store: {type: redshift}\n")
    assert "provider 'aws'" in e.message and "'redshift'" in e.message


# --- values that would fail deep inside a library later -------------------------------------------
@pytest.mark.parametrize("value", ["lots", "100", "4 GBs", "200%", "0%", "0GB", "-1GB", "''"])
def test_memory_limit_must_be_a_duckdb_size(tmp_path: Path, value: str) -> None:
    e = _refused(tmp_path, f"project: p\noffline_store: {{type: duckdb, memory_limit: {value}}}\n")
    assert "offline_store.memory_limit" in e.message
    assert "4GB, 512MiB or 80%" in e.message


def test_memory_limit_number_without_unit_says_which_unit(tmp_path: Path) -> None:
    e = _refused(tmp_path, "project: p\noffline_store: {memory_limit: 4096}\n")
    assert "'4096' has no unit" in e.message and "4096MB" in e.message


@pytest.mark.parametrize("value", ["4GB", "4 GB", "512MiB", "80%", "1.5GB", "2gib", "100%", "1TB"])
def test_memory_limit_accepted_values_are_ones_duckdb_takes(tmp_path: Path, value: str) -> None:
    cfg = _load(tmp_path, f"project: p\noffline_store: {{memory_limit: '{value}'}}\n")
    assert isinstance(cfg.offline_store, DuckDBOfflineConfig)
    duckdb.connect().execute(f"SET memory_limit = '{cfg.offline_store.memory_limit}'")


def test_threads_must_be_positive(tmp_path: Path) -> None:
    e = _refused(tmp_path, "project: p\noffline_store: {threads: 0}\n")
    assert "offline_store.threads" in e.message


def test_temp_directory_that_is_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "spill").write_text("not a directory")
    e = _refused(tmp_path, "project: p\noffline_store: {temp_directory: spill}\n")
    assert "offline_store.temp_directory" in e.message and "is a file" in e.message


def test_nested_temp_directory_is_created_when_duckdb_connects(tmp_path: Path) -> None:
    from skewless.engines import make_engine

    cfg = _load(tmp_path, "project: p\noffline_store: {temp_directory: data/spill/duckdb}\n")
    make_engine(cfg).connect()  # type: ignore[attr-defined]
    assert (tmp_path / "data/spill/duckdb").is_dir()


def test_sqlite_path_that_is_a_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    e = _refused(tmp_path, "project: p\nonline_store: {type: sqlite, path: data}\n")
    assert "'online_store.path'" in e.message and "is a directory" in e.message


def test_registry_that_is_a_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    e = _refused(tmp_path, "project: p\nregistry: data\n")
    assert "'registry'" in e.message and "is a directory" in e.message


@pytest.mark.parametrize("conn, what", [
    ("localhost:abc", "port 'abc' is not a number"),
    ("localhost:6379,dbb=1", "unknown option 'dbb'"),
    ("h1:6379,h2:6379", "exactly one host"),
    ("http://localhost:6379", "unknown scheme"),
])
def test_redis_connection_string_checked_at_load(tmp_path: Path, conn: str, what: str) -> None:
    e = _refused(tmp_path, f"project: p\nonline_store: {{type: redis, connection_string: '{conn}'}}\n")
    assert "online_store.connection_string" in e.message and what in e.message


# --- environment variables are named, not the file ------------------------------------------------
def test_unknown_env_key_names_the_variable(tmp_path: Path) -> None:
    e = _refused(tmp_path, "project: p\n", {"SKEWLESS_ONLINE_STORE__PTH": "x"})
    assert "environment variable SKEWLESS_ONLINE_STORE__PTH" in e.message
    assert "did you mean SKEWLESS_ONLINE_STORE__PATH?" in e.message
    assert "feature_store.yaml" not in e.message


def test_bad_env_value_names_the_variable(tmp_path: Path) -> None:
    e = _refused(tmp_path, "project: p\noffline_store: {memory_limit: 4GB}\n",
                 {"SKEWLESS_OFFLINE_STORE__MEMORY_LIMIT": "lots"})
    assert "environment variable SKEWLESS_OFFLINE_STORE__MEMORY_LIMIT" in e.message
    assert "'lots' is not a size" in e.message and "feature_store.yaml" not in e.message


def test_bad_env_number_names_the_variable(tmp_path: Path) -> None:
    e = _refused(tmp_path, "project: p\n", {"SKEWLESS_OFFLINE_STORE__THREADS": "many"})
    assert "environment variable SKEWLESS_OFFLINE_STORE__THREADS" in e.message and "'many'" in e.message


def test_file_and_env_problems_are_each_blamed_on_their_origin(tmp_path: Path) -> None:
    e = _refused(tmp_path, "project: p\noffline_store: {threads: 0}\n",
                 {"SKEWLESS_ONLINE_STORE__PTH": "x"})
    assert str(tmp_path / "feature_store.yaml") in e.message and "offline_store.threads" in e.message
    assert "environment variable SKEWLESS_ONLINE_STORE__PTH" in e.message


def test_key_left_unknown_by_an_env_type_mentions_the_variable(tmp_path: Path) -> None:
    e = _refused(tmp_path, "project: p\nonline_store: {path: data/o.db}\n",
                 {"SKEWLESS_ONLINE_STORE__TYPE": "redis"})
    assert "unknown key 'online_store.path'" in e.message
    assert "online_store.type is set by SKEWLESS_ONLINE_STORE__TYPE" in e.message


def test_unknown_top_level_env_variable_suggests(tmp_path: Path) -> None:
    e = _refused(tmp_path, "project: p\n", {"SKEWLESS_REGISTY": "x"})
    assert "SKEWLESS_REGISTY" in e.message and "did you mean SKEWLESS_REGISTRY?" in e.message


def test_env_feast_spelling_note_names_the_variable(tmp_path: Path) -> None:
    cfg = _load(tmp_path, "project: p\n", {"SKEWLESS_OFFLINE_STORE__TYPE": "file"})
    assert cfg.notes[0].startswith("SKEWLESS_OFFLINE_STORE__TYPE: offline_store.type 'file' runs on DuckDB")


def test_env_override_keeps_a_feast_short_form_section(tmp_path: Path) -> None:
    cfg = _load(tmp_path, "project: p\noffline_store: file\n", {"SKEWLESS_OFFLINE_STORE__THREADS": "2"})
    assert isinstance(cfg.offline_store, DuckDBOfflineConfig) and cfg.offline_store.threads == 2


def test_config_dict_takes_feast_keys_too() -> None:
    cfg = config_from_dict({"project": "p", "provider": "local", "offline_store": {"type": "file"}},
                           environ={})
    assert isinstance(cfg.offline_store, DuckDBOfflineConfig) and len(cfg.notes) == 2
