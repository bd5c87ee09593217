import pytest

from skewless.config import DuckDBOfflineConfig, SqliteOnlineConfig, config_from_dict, load_config
from skewless.errors import ConfigError


def _write(tmp_path, text):
    (tmp_path / "feature_store.yaml").write_text(text)
    return tmp_path


def test_minimal_config_uses_embedded_defaults(tmp_path):
    cfg = load_config(_write(tmp_path, "project: fraud\nregistry: data/registry.db\n"), environ={})
    assert cfg.project == "fraud"
    assert isinstance(cfg.offline_store, DuckDBOfflineConfig)
    assert isinstance(cfg.online_store, SqliteOnlineConfig)
    assert cfg.resolve(cfg.registry) == tmp_path.resolve() / "data/registry.db"


def test_unknown_key_lists_valid_keys(tmp_path):
    with pytest.raises(ConfigError) as e:
        load_config(_write(tmp_path, "project: p\nregistri: x\n"), environ={})
    assert "unknown key 'registri'" in str(e.value)
    assert "registry" in str(e.value) and "offline_store" in str(e.value)


def test_unknown_nested_key(tmp_path):
    with pytest.raises(ConfigError) as e:
        load_config(_write(tmp_path, "project: p\noffline_store: {type: duckdb, memory: 1GB}\n"), environ={})
    assert "offline_store.memory" in str(e.value) and "memory_limit" in str(e.value)


def test_bad_store_type(tmp_path):
    with pytest.raises(ConfigError, match="must be one of"):
        load_config(_write(tmp_path, "project: p\noffline_store: {type: oracle}\n"), environ={})


def test_malformed_yaml_names_the_line(tmp_path):
    with pytest.raises(ConfigError) as e:
        load_config(_write(tmp_path, "project: p\nregistry: [unclosed\noffline_store: {type: duckdb}\n"), environ={})
    assert "line 3" in str(e.value) or "line 2" in str(e.value)
    assert "malformed YAML" in str(e.value)


def test_missing_file_says_how_to_fix(tmp_path):
    with pytest.raises(ConfigError, match="skewless init"):
        load_config(tmp_path, environ={})


def test_env_overrides_every_level(tmp_path):
    cfg = load_config(_write(tmp_path, "project: p\n"), environ={
        "SKEWLESS_PROJECT": "other",
        "SKEWLESS_REGISTRY": "/tmp/r.db",
        "SKEWLESS_OFFLINE_STORE__MEMORY_LIMIT": "2GB",
        "SKEWLESS_OFFLINE_STORE__THREADS": "2",
        "SKEWLESS_ONLINE_STORE__PATH": "/tmp/o.db",
    })
    assert cfg.project == "other" and cfg.registry == "/tmp/r.db"
    assert cfg.offline_store.memory_limit == "2GB" and cfg.offline_store.threads == 2
    assert cfg.online_store.path == "/tmp/o.db"


def test_unknown_env_override_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="SKEWLESS_REGISTY"):
        load_config(_write(tmp_path, "project: p\n"), environ={"SKEWLESS_REGISTY": "x"})


def test_project_name_validated():
    with pytest.raises(ConfigError, match="project"):
        config_from_dict({"project": "has space"}, environ={})


@pytest.mark.parametrize("text, environ, expected", [
    ("project: p\nonline_store: [1]\n", {},
     "'online_store': Input should be a valid dictionary or object to extract fields from"),
    ("project: p\n", {"SKEWLESS_OFFLINE_STORE": "duckdb"},
     "environment variable SKEWLESS_OFFLINE_STORE: 'offline_store': Input should be a valid "
     "dictionary or object to extract fields from, got 'duckdb'"),
])
def test_a_backend_section_that_is_not_a_mapping(tmp_path, text, environ, expected):
    """Said as before backends had settings models of their own: no internal class name."""
    with pytest.raises(ConfigError) as e:
        load_config(_write(tmp_path, text), environ=environ)
    assert expected in e.value.message and "BackendSettings" not in e.value.message
