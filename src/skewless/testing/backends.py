"""How the conformance suites run a backend: one ``BackendTesting`` value per backend.

A backend names its value in ``Backend.testing`` (``"module:attribute"``, imported by the tests
only); the suites (``tests/conformance``, ``tests/integration``) build their matrices from every
installed backend (``skewless.backends.names``) and read this value for how to configure it and
which tests it is known to fail. A backend whose ``testing`` is None gets ``NO_TESTING``: its
settings model's defaults, no gaps, and none of the optional fields below, so the tests that
need one (``unreachable``, ``lose_data``, ``forget_identity``, ``sql_over_parquet``) are
skipped for it, each with a reason naming what is missing. See docs/backends.md, "Testing a
backend", for which suite reads which field.

Tests that need a capability the backend declares as a gap (``OnlineCapabilities.shared``: a
second process sees the same store) are skipped for it, with the gap's reason; ``gaps`` here are
for the rest: a test expected to fail, as a strict xfail (a gap that starts passing fails the
run until it is removed).
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from skewless import backends
from skewless.backends import Backend, Gap, Kind

if TYPE_CHECKING:
    from skewless.store import FeatureStore

# The Redis the tests use (a developer's or CI's, on this machine).
REDIS_URL = os.environ.get("SKEWLESS_TEST_REDIS", "127.0.0.1:6379")


@dataclass(frozen=True)
class BackendTesting:
    """What the conformance suites need to know to run one backend. Every field has a default
    (``NO_TESTING`` is all defaults); a test that cannot run without ``unreachable``,
    ``lose_data``, ``forget_identity`` or ``sql_over_parquet`` is skipped when it is None, with a
    reason naming the field.

    - ``settings()``: the keys of its config section in tests, besides ``type`` (paths are
      relative to the test's repo);
    - ``gaps``: conformance test function name -> ``Gap`` (strict xfail, "notyet" or "never");
    - ``cleanup(project)``: after each test, remove what the project left in a store that
      outlives the test (a shared server), or None;
    - ``shared(root)``: settings under which several repos (all below ``root``) use one store;
      None when ``settings()`` already does;
    - ``unreachable(tmp)``: settings of this store when it does not answer (None: it always
      answers, and the tests of a store that fails do not apply);
    - ``private()``: a context giving (settings, handle) of an instance of its own that
      ``lose_data`` may destroy (a test-owned server), or None;
    - ``lose_data(fs, handle)``: make the store lose all its data, as a crash would;
    - ``forget_identity(fs)``: remove its identity, as a store written before identities;
    - ``sql_over_parquet``: for an engine that takes entity_df as SQL, a query over the Parquet
      file ``{path}``;
    - ``oracle``: the reference engine itself (the engines are compared with it, not it with
      itself).
    """

    settings: Callable[[], dict[str, Any]] = dict
    gaps: Mapping[str, Gap] = field(default_factory=dict)
    cleanup: Callable[[str], None] | None = None
    shared: Callable[[Path], dict[str, Any]] | None = None
    unreachable: Callable[[Path], dict[str, Any]] | None = None
    private: Callable[[], AbstractContextManager[tuple[dict[str, Any], Any]]] | None = None
    lose_data: Callable[[FeatureStore, Any], None] | None = None
    forget_identity: Callable[[FeatureStore], None] | None = None
    sql_over_parquet: str | None = None
    oracle: bool = False


NO_TESTING = BackendTesting()


def testing_of(backend: Backend[Any]) -> BackendTesting:
    """The ``BackendTesting`` value a backend names (``NO_TESTING`` when it names none)."""
    if backend.testing is None:
        return NO_TESTING
    module, _, attr = backend.testing.partition(":")
    value = getattr(importlib.import_module(module), attr)
    if not isinstance(value, BackendTesting):
        raise TypeError(f"{backend.kind} '{backend.name}': testing {backend.testing!r} is not a "
                        "skewless.testing.backends.BackendTesting")
    return value


def installed(kind: Kind) -> dict[str, tuple[Backend[Any], BackendTesting]]:
    """Every installed backend of ``kind``, by name, with how to test it."""
    out = {}
    for name in backends.names(kind):
        backend = backends.lookup(kind, name)
        out[name] = (backend, testing_of(backend))
    return out


# --- the built-ins ----------------------------------------------------------------------------
def _lose_memory(fs: FeatureStore, handle: Any) -> None:
    fs._online = None   # the process restarted: a new, empty in-memory store


def _forget_memory(fs: FeatureStore) -> None:
    fs.online_store._identity = None  # type: ignore[attr-defined]


def _shared_sqlite(root: Path) -> dict[str, Any]:
    return {"path": str(root / "shared-online.db")}


def _unreachable_sqlite(tmp: Path) -> dict[str, Any]:
    (tmp / "no").write_text("")   # a path whose parent is a file: the store cannot open
    return {"path": str(tmp / "no" / "such")}


def _lose_sqlite(fs: FeatureStore, handle: Any) -> None:
    fs.online_store.close()
    path = Path(fs.online_store.path)  # type: ignore[attr-defined]
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def _forget_sqlite(fs: FeatureStore) -> None:
    fs.online_store._con(check=True).execute('DROP TABLE "skewless_meta"')  # type: ignore[attr-defined]


def _cleanup_redis(project: str) -> None:
    """Delete every key of the project's namespace (its tables are found by their prefix)."""
    from skewless.testing.redis_server import purge_project

    left = purge_project(project, REDIS_URL)
    assert not left, f"keys left behind: {left[:5]}"


@contextmanager
def _private_redis() -> Iterator[tuple[dict[str, Any], Any]]:
    from skewless.testing.redis_server import redis_server, require_redis_server_binary

    require_redis_server_binary()
    with redis_server() as server:
        yield {"connection_string": server.address}, server


def _lose_redis(fs: FeatureStore, server: Any) -> None:
    server.kill()
    server.start()   # the same port, empty


def _forget_redis(fs: FeatureStore) -> None:
    fs.online_store._r.delete("sk:@id")  # type: ignore[attr-defined]


DUCKDB = BackendTesting(sql_over_parquet="SELECT * FROM read_parquet('{path}')")
REFERENCE = BackendTesting(oracle=True)
MEMORY = BackendTesting(lose_data=_lose_memory, forget_identity=_forget_memory)
SQLITE = BackendTesting(settings=lambda: {"path": "data/online.db"}, shared=_shared_sqlite,
                        unreachable=_unreachable_sqlite, lose_data=_lose_sqlite,
                        forget_identity=_forget_sqlite)
REDIS = BackendTesting(settings=lambda: {"connection_string": REDIS_URL}, cleanup=_cleanup_redis,
                       unreachable=lambda tmp: {"connection_string": "127.0.0.1:1",
                                                "connect_timeout_seconds": 0.2},
                       private=_private_redis, lose_data=_lose_redis, forget_identity=_forget_redis)

__all__ = ["BackendTesting", "NO_TESTING", "REDIS_URL", "installed", "testing_of"]
