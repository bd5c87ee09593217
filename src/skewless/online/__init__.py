"""Online stores behind one protocol; ``make_online_store`` builds the one the config names,
through the registry of backends (``skewless.backends``; docs/backends.md)."""

from __future__ import annotations

from typing import cast

from skewless import backends
from skewless.config import RepoConfig
from skewless.online.base import OnlineCapabilities, OnlineStore, StoreIdentity
from skewless.online.codec import Record


def table_name(project: str, key: str) -> str:
    """The online table of a view's state ``key`` (``Snapshot.online_key``) in ``project``:
    ``{project}.{key}``, namespaced so projects can share one store.

    The encoding is injective: a project name matches ``[A-Za-z_][A-Za-z0-9_]*`` (never a
    ``.``), so the first ``.`` ends the project, and an online key holds no ``.`` either; two
    distinct (project, key) pairs never share a table, whatever ``_`` or ``__`` their names
    hold (docs/online-stores.md, "Table names"). Letters, digits, ``_`` and ``.`` are valid in
    every store (SQLite quotes table names; Redis keys allow ``[A-Za-z0-9_.-]``)."""
    return f"{project}.{key}"


def staging_table(project: str, key: str, token: str) -> str:
    """The staging table of a ``rebuild-online`` of view state ``key``, private to the run
    holding lease ``token`` (hex digits): ``{project}.{key}.rebuild-{token}``. It holds two
    ``.`` where a live table holds one, so it can never be a live table, and a run that lost
    its lease never writes into its successor's staging table."""
    return f"{table_name(project, key)}.rebuild-{token}"


def legacy_table_names(project: str, key: str) -> list[str]:
    """The names earlier versions of skewless gave view state ``key``'s live table and rebuild
    staging table: they joined project and key with ``__``, which was ambiguous (project ``a_``
    with view ``b`` met project ``a`` with view ``_b``). ``rebuild-online`` drops them once it has rebuilt the
    view under its new name (docs/online-stores.md, "Upgrading")."""
    return [f"{project}__{key}", f"{project}__{key}__rebuild__"]


def make_online_store(config: RepoConfig) -> OnlineStore:
    """The store of ``online_store.type`` (entry point group ``skewless.online_stores``),
    built by its backend's factory from its validated settings."""
    opts = config.online_store
    return cast(OnlineStore, backends.lookup("online_store", opts.type).make(config, opts))


__all__ = ["OnlineCapabilities", "OnlineStore", "Record", "StoreIdentity", "legacy_table_names",
           "make_online_store", "staging_table", "table_name"]
