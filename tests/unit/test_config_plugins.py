"""A backend named in ``feature_store.yaml`` is found through its entry point, plugins included
(docs/backends.md): its section is validated by its own settings model, with the errors of the
built-ins; an uninstalled type lists the installed ones; a registry URL reaches the registry
store of its scheme. ``skewless-dictstore`` (tests/plugins/) is installed by ``make install-dev``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from skewless import FeatureStore, backends
from skewless.config import config_from_dict, load_config
from skewless.errors import ConfigError
from skewless.registry import SqliteRegistryStore, open_registry


def _refused(tmp_path: Path, text: str, environ: dict[str, str] | None = None) -> ConfigError:
    (tmp_path / "feature_store.yaml").write_text("project: p\n" + text)
    with pytest.raises(ConfigError) as e:
        load_config(tmp_path, environ=environ or {})
    return e.value


def test_a_plugin_is_named_in_feature_store_yaml(tmp_path: Path) -> None:
    (tmp_path / "feature_store.yaml").write_text(
        "project: p\nonline_store: {type: dictstore, path: data/o.dict}\n")
    cfg = load_config(tmp_path, environ={})
    assert type(cfg.online_store).__name__ == "DictStoreConfig"
    store = FeatureStore(tmp_path).online_store
    assert type(store).__name__ == "DictStore" and store.name == "dictstore"
    assert Path(store.path) == tmp_path.resolve() / "data/o.dict"  # type: ignore[attr-defined]


def test_a_plugins_unknown_key_lists_its_own_keys(tmp_path: Path) -> None:
    e = _refused(tmp_path, "online_store: {type: dictstore, paht: x.dict}\n")
    assert "unknown key 'online_store.paht'; valid keys here: path, type" in e.message


def test_a_plugins_bad_value_names_the_key_and_the_variable(tmp_path: Path) -> None:
    e = _refused(tmp_path, "online_store: {type: dictstore, path: [1, 2]}\n")
    assert "'online_store.path': Input should be a valid string" in e.message
    e = _refused(tmp_path, "online_store: {type: dictstore}\n", {"SKEWLESS_ONLINE_STORE__PAHT": "x"})
    assert "environment variable SKEWLESS_ONLINE_STORE__PAHT" in e.message
    assert "did you mean SKEWLESS_ONLINE_STORE__PATH?" in e.message


def test_a_plugins_settings_check_the_repo(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    e = _refused(tmp_path, "online_store: {type: dictstore, path: data}\n")
    assert "'online_store.path' is a directory" in e.message


def test_an_uninstalled_type_names_every_installed_backend(tmp_path: Path) -> None:
    """Every installed one: this repository's, and any other plugin installed in the same
    environment (a developer trying their own backend)."""
    online, offline = backends.names("online_store"), backends.names("offline_engine")
    assert {"dictstore", "memory", "redis", "sqlite"} <= set(online)
    assert {"duckdb", "reference"} <= set(offline)
    e = _refused(tmp_path, "online_store: {type: dynamo}\n")
    assert f"'online_store.type' must be one of {online}, got 'dynamo'" in e.message
    e = _refused(tmp_path, "offline_store: {type: spark}\n")
    assert f"must be one of {offline}" in e.message


def test_a_registry_url_reaches_the_store_of_its_scheme(tmp_path: Path) -> None:
    cfg = config_from_dict({"project": "p", "registry": "dictfile://data/reg.db"}, tmp_path, environ={})
    registry = open_registry(cfg)
    assert isinstance(registry, SqliteRegistryStore)
    assert registry.path == tmp_path.resolve() / "data/reg.db"


@pytest.mark.parametrize("url", ["postgresql://u@h/db", "postgresql+psycopg://u:p@h:5432/db"])
def test_postgresql_is_not_implemented_yet(tmp_path: Path, url: str) -> None:
    """Also in the SQLAlchemy spelling Feast's SQL registry documents (driver after a +)."""
    cfg = config_from_dict({"project": "p", "registry": url}, tmp_path, environ={})
    with pytest.raises(ConfigError) as e:
        open_registry(cfg)
    assert "PostgreSQL registry store is not implemented yet" in e.value.message
    assert "file path" in (e.value.hint or "")


def test_an_unknown_registry_scheme_lists_the_known_ones(tmp_path: Path) -> None:
    cfg = config_from_dict({"project": "p", "registry": "mongo://h/db"}, tmp_path, environ={})
    with pytest.raises(ConfigError) as e:
        open_registry(cfg)
    assert "registry scheme 'mongo://' is unknown; known schemes: dictfile://" in e.value.message


def test_only_the_named_backend_is_imported() -> None:
    """A SQLite config imports neither Redis, nor DuckDB (until a query), nor a plugin."""
    code = ("import sys; from skewless.config import config_from_dict; "
            "from skewless import FeatureStore; "
            "cfg = config_from_dict({'project': 'p'}, environ={}); "
            "loaded = [m for m in ('redis', 'skewless_dictstore', 'skewless.online.redis') if m in sys.modules]; "
            "import importlib.util; "
            "duck = sys.modules.get('duckdb'); "
            "assert not loaded, loaded; "
            "assert duck is None or type(duck).__name__ == '_LazyModule', 'duckdb imported'")
    subprocess.run([sys.executable, "-c", code], check=True)
