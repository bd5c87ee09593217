"""Online table names are injective over every name the registry accepts (docs/online-stores.md,
"Table names"): no two projects, views, generations or rebuild staging tables share a table.

Names are generated from a small alphabet (``a``, ``b``, ``_``) so that the tricky shapes
(trailing ``_``, ``__`` inside a project, a view starting with ``_``) come up often, and each
one is kept only if the real validators accept it: ``RepoConfig`` for a project,
``check_name`` for a definition, ``Snapshot.online_key`` for a generation.
"""

from __future__ import annotations

import itertools
import sqlite3

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from skewless.config import RepoConfig
from skewless.define._common import check_name
from skewless.errors import DefinitionError
from skewless.online import legacy_table_names, staging_table, table_name
from skewless.online.redis import _TABLE_NAME
from skewless.registry import Snapshot
from skewless.registry.lease import new_token

_RAW = st.text(alphabet="a_1", min_size=1, max_size=4)


def _project_ok(name: str) -> bool:
    try:
        RepoConfig(project=name)
    except ValidationError:
        return False
    return True


def _view_ok(name: str) -> bool:
    try:
        check_name("feature view", name)
    except DefinitionError:
        return False
    return True


projects = _RAW.filter(_project_ok)
views = _RAW.filter(_view_ok)
tokens = st.builds(new_token) | st.text(alphabet="0123456789abcdef", min_size=1, max_size=12)


@st.composite
def tables(draw: st.DrawFn) -> tuple[tuple[str, ...], str]:
    """(what the name stands for, the table name): a live table of any generation, or a
    rebuild's staging table."""
    project, view = draw(projects), draw(views)
    generation = draw(st.sampled_from([0, 0, 1, 2, 12, 21]))
    key = Snapshot(project, generations={view: generation}).online_key(view)
    if draw(st.booleans()):
        return ("live", project, key), table_name(project, key)
    token = draw(tokens)
    return ("staging", project, key, token), staging_table(project, key, token)


@settings(max_examples=3000, deadline=None)
@given(st.lists(tables(), min_size=2, max_size=40))
def test_no_two_distinct_names_share_a_table(items: list[tuple[tuple[str, ...], str]]) -> None:
    owner: dict[str, tuple[str, ...]] = {}
    for what, name in items:
        assert owner.setdefault(name, what) == what, f"{what} and {owner[name]} share table {name!r}"


def test_no_two_names_of_a_small_universe_share_a_table() -> None:
    """Every project and view name of up to 3 characters over ``a``, ``_``, ``1`` that the
    validators accept, in 4 generations, live and staging: all distinct (exhaustive)."""
    words = ["".join(w) for n in (1, 2, 3) for w in itertools.product("a_1", repeat=n)]
    owner: dict[str, tuple[object, ...]] = {}
    for project in filter(_project_ok, words):
        for view in filter(_view_ok, words):
            for generation in (0, 1, 2, 12):
                key = Snapshot(project, generations={view: generation}).online_key(view)
                named = [(("live", project, key), table_name(project, key))]
                named += [(("staging", project, key, t), staging_table(project, key, t))
                          for t in ("1", "a1", new_token())]
                for what, name in named:
                    assert owner.setdefault(name, what) == what, f"{what} and {owner[name]} share {name!r}"


_SQLITE = sqlite3.connect(":memory:")


@settings(max_examples=300, deadline=None)
@given(tables())
def test_every_table_name_is_valid_in_every_store(item: tuple[tuple[str, ...], str]) -> None:
    _, name = item
    assert _TABLE_NAME.match(name), name                   # a Redis key part
    quoted = '"t_' + name.replace('"', '""') + '"'          # as the SQLite store quotes it
    _SQLITE.execute(f"CREATE TABLE IF NOT EXISTS {quoted} (k BLOB PRIMARY KEY)")
    _SQLITE.execute(f"DROP TABLE {quoted}")


def test_the_reported_case() -> None:
    assert table_name("relx", "_s") != table_name("relx_", "s")
    assert set(legacy_table_names("relx", "_s")) & set(legacy_table_names("relx_", "s"))


@pytest.mark.parametrize("project", ["relx", "relx_", "a__b", "_"])
def test_a_legacy_name_is_never_a_live_or_staging_name(project: str) -> None:
    for old in legacy_table_names(project, "s"):
        assert "." not in old
    assert "." in table_name(project, "s") and "." in staging_table(project, "s", "ab12")
