"""``dictstore``: a skewless online store over one file holding a pickled dict, as a plugin.

The example of docs/backends.md: one module holds the settings model, the store, its
capabilities, its factory, how the conformance suites run it, and ``BACKEND``, which the
package's ``pyproject.toml`` registers in the entry point group ``skewless.online_stores``::

    online_store: {type: dictstore, path: data/online.dict}

The whole store is rewritten on every change (a temp file renamed over it, under an exclusive
``flock`` on ``<path>.lock``), so readers in any process see a whole state; fine for tests and
small demos, not for production sizes.
"""

from __future__ import annotations

import fcntl
import os
import pickle
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

from skewless.backends import Backend, BackendSettings, RegistryTarget, notyet
from skewless.errors import OnlineStoreError
from skewless.online.base import LEGACY, OnlineCapabilities, StoreIdentity
from skewless.online.codec import Record
from skewless.testing.backends import BackendTesting


class DictStoreConfig(BackendSettings):
    type: Literal["dictstore"] = "dictstore"
    path: str = "data/online.dict"

    def problems(self, config: Any) -> list[tuple[str, str]]:
        if config.resolve(self.path).is_dir():
            return [("path", "is a directory; write the path of the store's file")]
        return []


class DictStore:
    """State: ``{"tables": {table: {key: Record}}, "identity": str | None, "writes": int}``."""

    name = "dictstore"
    capabilities = OnlineCapabilities(
        atomic_swap=True, persistent=True, shared=True,
        # a declared gap: skewless refuses aggregated views on this store (UnsupportedError),
        # and the conformance suites expect its aggregation tests to fail (strict xfail)
        aggregations=notyet("the example store has no update_batch (read-modify-write)",
                            "use online_store: {type: sqlite} or redis for aggregated views"))

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def _load(self) -> dict[str, Any]:
        try:
            with open(self.path, "rb") as f:
                return pickle.load(f)  # type: ignore[no-any-return]
        except FileNotFoundError:
            return {"tables": {}, "identity": None, "writes": 0}
        except (OSError, pickle.UnpicklingError, EOFError) as e:
            raise OnlineStoreError(f"dictstore {self.path}: cannot read: {e}") from None

    @contextmanager
    def _changing(self) -> Iterator[dict[str, Any]]:
        """The state, locked against other writers, written back whole when the block ends."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            lock = open(f"{self.path}.lock", "a")
        except OSError as e:
            raise OnlineStoreError(f"dictstore {self.path}: cannot open: {e}") from None
        with lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            state = self._load()
            yield state
            tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}")
            with open(tmp, "wb") as f:
                pickle.dump(state, f)
            os.replace(tmp, self.path)

    def ping(self) -> None:
        if self.path.parent.exists() and not self.path.parent.is_dir():
            raise OnlineStoreError(f"dictstore {self.path}: its folder is a file")
        self._load()

    def identity(self) -> StoreIdentity | None:
        state = self._load()
        if state["identity"] is None:
            return LEGACY if state["tables"] else None
        return StoreIdentity(state["identity"], state.get("adopted", False), state["writes"])

    def set_aside_if_unreadable(self) -> str | None:
        return None

    def create(self, tables: Sequence[str]) -> None:
        with self._changing() as state:
            if state["identity"] is None:
                new = StoreIdentity.new(adopted=bool(state["tables"]))
                state["identity"], state["adopted"] = new.id, new.adopted
            for t in tables:
                state["tables"].setdefault(t, {})

    def drop(self, tables: Sequence[str]) -> None:
        with self._changing() as state:
            for t in tables:
                state["tables"].pop(t, None)

    def write_batch(self, rows: Mapping[str, Sequence[tuple[bytes, Record]]]) -> int:
        n = 0
        with self._changing() as state:
            for table, items in rows.items():
                data = state["tables"].setdefault(table, {})
                for key, rec in items:
                    if rec.newer_than(data.get(key)):
                        data[key] = rec
                    n += 1
            state["writes"] += 1 if n else 0
        return n

    def read_batch(self, keys: Mapping[str, Sequence[bytes]]) -> dict[str, list[Record | None]]:
        tables = self._load()["tables"]
        return {t: [tables.get(t, {}).get(k) for k in ks] for t, ks in keys.items()}

    def count(self, table: str) -> int:
        return len(self._load()["tables"].get(table, {}))

    def scan_keys(self, table: str, limit: int) -> list[bytes]:
        return list(self._load()["tables"].get(table, {}))[:limit]

    def swap(self, table: str, staging: str) -> None:
        with self._changing() as state:
            state["tables"][table] = state["tables"].pop(staging, {})

    def close(self) -> None:
        pass


# --- how the conformance suites run it -----------------------------------------------------------
def _lose(fs: Any, handle: Any) -> None:
    Path(fs.online_store.path).unlink(missing_ok=True)


def _forget(fs: Any) -> None:
    with fs.online_store._changing() as state:
        state["identity"] = None


def _unreachable(tmp: Path) -> dict[str, Any]:
    (tmp / "not-a-folder").write_text("")
    return {"path": str(tmp / "not-a-folder" / "online.dict")}


TESTING = BackendTesting(settings=lambda: {"path": "data/online.dict"},
                         shared=lambda root: {"path": str(root / "shared.dict")},
                         unreachable=_unreachable, lose_data=_lose, forget_identity=_forget)

BACKEND = Backend("online_store", "dictstore", DictStoreConfig,
                  lambda config, settings: DictStore(config.resolve(settings.path)),
                  DictStore.capabilities, testing="skewless_dictstore:TESTING",
                  description="one pickled dict file (the plugin example of docs/backends.md)")


# --- a registry store for the scheme dictfile:// (the SQLite file store under another scheme:
# enough to show that a registry URL reaches the plugin registered for its scheme) -------------
def _registry(config: Any, settings: RegistryTarget) -> Any:
    from skewless.registry import SqliteRegistryStore

    return SqliteRegistryStore(config.resolve(settings.target.split("://", 1)[1]))


REGISTRY = Backend("registry_store", "dictfile", RegistryTarget, _registry,
                   description="registry: dictfile://PATH (a SQLite registry file at PATH)")
