"""Capabilities are read (docs/backends.md): a call needing one a backend declares as a gap is
refused before it runs, naming the backend, what was asked and the gap."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from skewless import Entity, FeatureStore, FeatureView, Field, FileSource, backends
from skewless.backends import Gap, capability, never, notyet, require
from skewless.engines import Capabilities
from skewless.errors import UnsupportedError
from skewless.types import Int64


def one_view_store(repo: Path, **config: object) -> FeatureStore:
    """A store over ``repo`` with view ``v`` (one Int64 feature ``x`` of entity ``user``)
    applied; ``config``: the backend sections to use."""
    (repo / "data").mkdir()
    pd.DataFrame({"user_id": [1], "ts": [pd.Timestamp("2025-01-01")], "x": [1]}).to_parquet(
        repo / "data/s.parquet")
    fs = FeatureStore(repo, config={"project": "p", **config})
    user = Entity("user", join_keys=["user_id"])
    fs.apply([user, FeatureView("v", entities=[user], schema=[Field("x", Int64)],
                                source=FileSource("data/s.parquet", "ts"))])
    return fs


def test_sql_entity_df_on_an_engine_without_it_is_refused_before_running(tmp_path: Path) -> None:
    fs = one_view_store(tmp_path, offline_store={"type": "reference"})
    with pytest.raises(UnsupportedError) as e:
        fs.get_historical_features("SELECT 1 AS user_id", ["v:x"])
    assert e.value.message.startswith("offline engine 'reference' cannot take entity_df as a SQL "
                                      "query: sql_entity_df is not supported, by design")
    assert "DataFrame" in (e.value.hint or "") and e.value.http_status == 501


def test_every_installed_backend_declares_its_capabilities() -> None:
    for kind in ("offline_engine", "online_store"):
        for name in backends.names(kind):   # type: ignore[arg-type]
            backend = backends.lookup(kind, name)   # type: ignore[arg-type]
            assert backend.name == name and backend.kind == kind
            for field in backend.capabilities.__dataclass_fields__:
                value = capability(backend.capabilities, field)
                assert value is True or isinstance(value, Gap)


def test_memory_declares_it_cannot_be_shared() -> None:
    memory = backends.lookup("online_store", "memory")
    gap = capability(memory.capabilities, "shared")
    assert isinstance(gap, Gap) and gap.kind == "never" and "one process" in gap.reason


def test_a_gap_says_its_kind() -> None:
    caps = Capabilities(sql_entity_df=notyet("coming in 0.3", "use duckdb meanwhile"))
    with pytest.raises(UnsupportedError) as e:
        require("offline_engine", "spark", caps, "sql_entity_df", "entity_df as a SQL query")
    assert "offline engine 'spark'" in e.value.message and "not implemented yet" in e.value.message
    assert e.value.hint == "use duckdb meanwhile"
    require("offline_engine", "duckdb", Capabilities(sql_entity_df=True), "sql_entity_df", "x")
    assert not never("no")


def test_serving_several_workers_needs_a_shared_store(tmp_path: Path) -> None:
    """Each worker process would open its own memory store: refused before any port is taken,
    from the store's declared capability."""
    from typer.testing import CliRunner

    from skewless.cli import app

    (tmp_path / "feature_store.yaml").write_text("project: p\nonline_store: {type: memory}\n")
    result = CliRunner().invoke(app, ["serve", "--repo", str(tmp_path), "--workers", "2", "--port", "0"])
    assert result.exit_code != 0
    assert "online store 'memory' cannot take --workers 2: shared is not supported, by design" \
        in result.output, result.output
    assert "sqlite" in result.output   # what to use instead


def test_a_backend_declaring_no_capabilities_lacks_them_all() -> None:
    """``Backend(...)`` without ``capabilities`` (its default, None) declares none: a call
    needing one is refused with the gap, not an AttributeError."""
    with pytest.raises(UnsupportedError) as e:
        require("online_store", "mine", None, "shared", "--workers 2")
    assert e.value.message == ("online store 'mine' cannot take --workers 2: shared is not "
                               "implemented yet (the backend does not declare it)")


@pytest.mark.parametrize("source, value, error", [
    ("raise RuntimeError('boom at import')\n", "BACKEND", "RuntimeError: boom at import"),
    ("def f(:\n", "BACKEND", "SyntaxError"),
    ("X = 1\n", "NOPE", "AttributeError"),
])
def test_a_plugin_that_fails_to_load_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              source: str, value: str, error: str) -> None:
    """Whatever a plugin's module raises when it is loaded (not only ImportError), the config
    error names the backend and its entry point."""
    from importlib.metadata import EntryPoint, EntryPoints

    from skewless.errors import ConfigError

    (tmp_path / "broken_plugin_mod.py").write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    point = EntryPoint("broken", f"broken_plugin_mod:{value}", "skewless.online_stores")
    monkeypatch.setattr(backends, "_entry_points", lambda kind: EntryPoints(
        [point] if kind == "online_store" else []))
    monkeypatch.setattr(backends, "_LOADED", {})
    monkeypatch.delitem(__import__("sys").modules, "broken_plugin_mod", raising=False)
    with pytest.raises(ConfigError) as e:
        backends.lookup("online_store", "broken")
    assert e.value.message.startswith("online store 'broken' cannot be loaded: ")
    assert error in e.value.message
    assert f"broken = broken_plugin_mod:{value}" in (e.value.hint or "")


def test_rebuild_online_needs_an_atomic_swap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``atomic_swap`` is read: a store declaring it as a gap is refused by rebuild-online
    before anything runs, as docs/backends.md says of every capability a call needs."""
    from skewless.online import OnlineCapabilities

    fs = one_view_store(tmp_path, online_store={"type": "memory"})
    monkeypatch.setattr(type(fs.online_store), "capabilities",
                        OnlineCapabilities(atomic_swap=never("it has no swap")), raising=False)
    with pytest.raises(UnsupportedError) as e:
        fs.rebuild_online()
    assert e.value.message.startswith("online store 'memory' cannot take rebuild-online")
    assert "atomic_swap is not supported, by design (it has no swap)" in e.value.message
    assert fs.online_status()[0].entities == 0


def test_aggregated_views_need_the_aggregations_capability(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """A store declaring ``aggregations`` as a gap is refused, naming the store and the view, by
    materialization, push and serving, before anything is written (no pushed file either)."""
    from datetime import timedelta

    from skewless import Aggregation, PushSource
    from skewless.online import OnlineCapabilities

    (tmp_path / "data" / "tx").mkdir(parents=True)
    pd.DataFrame({"user_id": [1], "ts": [pd.Timestamp("2025-01-01", tz="UTC")], "x": [1]}).to_parquet(
        tmp_path / "data/tx/base.parquet")
    fs = FeatureStore(tmp_path, config={"project": "p", "online_store": {"type": "memory"}})
    user = Entity("user", join_keys=["user_id"])
    fs.apply([user, FeatureView(
        "agg", entities=[user], schema=[Field("user_id", Int64), Field("x", Int64)],
        source=PushSource("tx", batch_source=FileSource("data/tx", "ts")),
        aggregations=[Aggregation("x", "sum", timedelta(hours=1))])])
    monkeypatch.setattr(type(fs.online_store), "capabilities",
                        OnlineCapabilities(atomic_swap=True, aggregations=never("no read-modify-write")),
                        raising=False)
    calls = {
        "materialization": lambda: fs.materialize_incremental(pd.Timestamp("2025-01-02", tz="UTC")),
        "push": lambda: fs.push("tx", {"user_id": [1], "ts": [pd.Timestamp("2025-01-01", tz="UTC")],
                                       "x": [2]}),
        "rebuild-online": lambda: fs.rebuild_online(),
        "aggregated feature view(s) 'agg'": lambda: fs.get_online_features(["agg:x_sum_1h"], [{"user_id": 1}]),
    }
    for what, call in calls.items():
        with pytest.raises(UnsupportedError) as e:
            call()
        assert e.value.message.startswith(f"online store 'memory' cannot take {what}"), e.value.message
        assert "aggregations is not supported, by design (no read-modify-write)" in e.value.message
    assert sorted(p.name for p in (tmp_path / "data" / "tx").iterdir()) == ["base.parquet"]
    assert fs.online_status()[0].entities == 0


_BAD_BACKENDS = '''
from typing import Literal
from pydantic import BaseModel
from skewless.backends import Backend, BackendSettings

class Plain(BaseModel):
    path: str = "x"

class Other(BackendSettings):
    type: Literal["other"] = "other"

PLAIN = Backend("online_store", "bad", Plain, lambda c, s: None)
WRONG_TYPE = Backend("online_store", "bad", Other, lambda c, s: None)
WRONG_NAME = Backend("online_store", "other", Other, lambda c, s: None)
'''


@pytest.mark.parametrize("attr, error", [
    ("PLAIN", "its settings model <class 'bad_backends_mod.Plain'> is not a "
              "skewless.backends.BackendSettings"),
    ("WRONG_TYPE", "its settings model Other's type does not take 'bad' "
                   "(declare type: Literal['bad'] = 'bad')"),
    ("WRONG_NAME", "is not a skewless Backend of kind online_store named 'bad' (it is a Backend "
                   "of kind online_store named 'other')"),
])
def test_a_malformed_plugin_is_blamed_not_the_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     attr: str, error: str) -> None:
    """A plugin's own mistakes are reported as the plugin's when it is loaded, never as a bad
    value in the user's feature_store.yaml ("Input should be 'other'")."""
    from importlib.metadata import EntryPoint, EntryPoints

    from skewless.config import config_from_dict
    from skewless.errors import ConfigError

    (tmp_path / "bad_backends_mod.py").write_text(_BAD_BACKENDS)
    monkeypatch.syspath_prepend(str(tmp_path))
    point = EntryPoint("bad", f"bad_backends_mod:{attr}", "skewless.online_stores")
    real = backends._entry_points
    monkeypatch.setattr(backends, "_entry_points", lambda kind: EntryPoints(
        [*real(kind), point] if kind == "online_store" else list(real(kind))))
    monkeypatch.setattr(backends, "_LOADED", {})
    with pytest.raises(ConfigError) as e:
        config_from_dict({"project": "p", "online_store": {"type": "bad"}}, tmp_path)
    assert error in e.value.message, e.value.message
    assert "bad = bad_backends_mod:" in e.value.message


def test_an_online_store_claims_only_what_it_declares() -> None:
    """As for engines: ``OnlineCapabilities()`` declares nothing, so a plugin that says nothing
    about being shared is not run by several server workers (each would hold its own data)."""
    from skewless.online import OnlineCapabilities

    caps = OnlineCapabilities()
    for name in ("atomic_swap", "persistent", "shared", "aggregations"):
        assert capability(caps, name) == backends.UNDECLARED
    with pytest.raises(UnsupportedError, match="shared is not implemented yet"):
        require("online_store", "mine", caps, "shared", "--workers 2")


_FAILING_FACTORY = '''
from typing import Literal
from skewless.backends import Backend, BackendSettings
from skewless.online import OnlineCapabilities

class Settings(BackendSettings):
    type: Literal["boom"] = "boom"

def _make(config, settings):
    raise RuntimeError("cannot reach the cluster")

BACKEND = Backend("online_store", "boom", Settings, _make, OnlineCapabilities())
'''


def test_a_factory_that_fails_names_its_backend(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A plugin's factory raising a plain exception at first use is a ConfigError naming the
    backend and its module, not a bare traceback."""
    from importlib.metadata import EntryPoint, EntryPoints

    from skewless import FeatureStore
    from skewless.errors import ConfigError

    (tmp_path / "boom_backend_mod.py").write_text(_FAILING_FACTORY)
    monkeypatch.syspath_prepend(str(tmp_path))
    point = EntryPoint("boom", "boom_backend_mod:BACKEND", "skewless.online_stores")
    real = backends._entry_points
    monkeypatch.setattr(backends, "_entry_points", lambda kind: EntryPoints(
        [*real(kind), point] if kind == "online_store" else list(real(kind))))
    monkeypatch.setattr(backends, "_LOADED", {})
    fs = FeatureStore(tmp_path, config={"project": "p", "online_store": {"type": "boom"}})
    with pytest.raises(ConfigError) as e:
        fs.online_store
    assert e.value.message == ("online store 'boom' failed to start: RuntimeError: cannot reach "
                               "the cluster")
    assert "boom_backend_mod" in (e.value.hint or "")
    assert isinstance(e.value.__cause__, RuntimeError)
