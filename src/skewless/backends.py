"""The registry of backends: offline engines, online stores and registry stores.

Each backend is one ``Backend`` value, found through an ``importlib.metadata`` entry point of
its kind's group, under the name ``feature_store.yaml`` gives it (docs/backends.md)::

    [project.entry-points."skewless.online_stores"]
    my_store = "my_package.store:BACKEND"

The built-ins register the same way (skewless's own ``pyproject.toml``). Only the entry point
that is named is loaded, so ``import skewless`` with a SQLite config never imports Redis, and a
plugin's dependencies load only when a config names it. A backend's module holds its settings
model (a ``BackendSettings`` subclass: the keys of its config section), its factory (config,
settings -> the engine or store) and its capabilities; a capability is ``True`` or a declared
``Gap`` ("not implemented yet" or "never", with the reason), read by ``require`` before a call
runs.

Registry stores are named by the URL scheme of ``registry:`` (``postgresql://...``); a plain
path opens the ``sqlite`` registry store. Their settings model is ``RegistryTarget`` (the path or
URL as written).
"""

from __future__ import annotations

import functools
import importlib.util
import sys
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from types import ModuleType
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError

from skewless.errors import ConfigError, SkewlessError, UnsupportedError

if TYPE_CHECKING:
    from skewless.config import RepoConfig

T = TypeVar("T")
Kind = Literal["offline_engine", "online_store", "registry_store"]

# kind -> (entry-point group, the config section that names it, what a user calls it)
GROUPS: dict[str, tuple[str, str, str]] = {
    "offline_engine": ("skewless.offline_engines", "offline_store", "offline engine"),
    "online_store": ("skewless.online_stores", "online_store", "online store"),
    "registry_store": ("skewless.registry_stores", "registry", "registry store"),
}
DEFAULT_REGISTRY = "sqlite"   # the registry store of a plain path (data/registry.db)

# registry URL schemes whose store is planned but not written yet: scheme -> what to do meanwhile
PLANNED_REGISTRIES = {
    "postgresql": "PostgreSQL",
    "postgres": "PostgreSQL",
}


class BackendSettings(BaseModel):
    """Base of every backend's settings model: the keys of its ``feature_store.yaml`` section.

    Strict like the rest of the config (unknown keys are errors, values are frozen). A subclass
    declares ``type: Literal["my_store"] = "my_store"`` and its own keys, with pydantic
    validators whose ``ValueError`` messages become config errors naming the key
    (docs/backends.md). ``problems`` may check what depends on the repo (paths)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: str

    def problems(self, config: RepoConfig) -> list[tuple[str, str]]:
        """(key, message) for each value that is wrong given the repo (a path that is a file
        where a directory is needed...); empty when all is well. Called once per config load."""
        return []


class RegistryTarget(BaseModel):
    """The settings of a registry store: ``registry:`` as written (a path or a URL)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    target: str


@dataclass(frozen=True)
class Gap:
    """A capability a backend does not have: ``notyet`` (not implemented yet: it may come) or
    ``never`` (it cannot, by design), with the reason and what to do ``instead``."""

    kind: Literal["notyet", "never"]
    reason: str
    instead: str = ""

    def __bool__(self) -> bool:
        return False

    @property
    def label(self) -> str:
        return "not implemented yet" if self.kind == "notyet" else "not supported, by design"


def notyet(reason: str, instead: str = "") -> Gap:
    return Gap("notyet", reason, instead)


def never(reason: str, instead: str = "") -> Gap:
    return Gap("never", reason, instead)


# A capability: True (available) or a declared Gap.
Capability = Literal[True] | Gap
UNDECLARED = notyet("the backend does not declare it")


def capability(capabilities: Any, name: str) -> Capability:
    """The value of capability ``name`` in a capabilities value (a field left ``False`` by an
    older plugin counts as ``UNDECLARED``)."""
    value = getattr(capabilities, name, None)   # no capabilities value: none declared
    if value is True:
        return True
    return value if isinstance(value, Gap) else UNDECLARED


def require(kind: Kind, name: str, capabilities: Any, needed: str, asked: str) -> None:
    """Check, before a call runs, that backend ``name`` of ``kind`` has capability ``needed``.

    ``asked`` says what the caller asked for ("entity_df as a SQL query"). Raises
    ``UnsupportedError`` naming the backend, what was asked, the gap's kind and reason, and
    what to do instead. Cheap (one attribute read): call it once per call, never per row."""
    gap = capability(capabilities, needed)
    if gap is True:
        return
    what = GROUPS[kind][2]
    raise UnsupportedError(
        f"{what} '{name}' cannot take {asked}: {needed} is {gap.label} ({gap.reason})",
        hint=gap.instead or f"use another {what}; what each one supports: docs/backends.md")


def require_of(kind: Kind, name: str, needed: str, asked: str) -> None:
    """``require`` for the installed backend ``name``, without building it (a command checks
    what it will ask of the backend before it starts anything)."""
    require(kind, name, lookup(kind, name).capabilities, needed, asked)


@dataclass(frozen=True)
class Backend(Generic[T]):
    """One backend, as its module declares it (``BACKEND = Backend(...)``).

    - ``kind``: ``offline_engine``, ``online_store`` or ``registry_store``;
    - ``name``: the ``type`` of its config section (for a registry store, its URL scheme);
    - ``settings``: its settings model (``BackendSettings`` subclass; ``RegistryTarget`` for a
      registry store);
    - ``factory``: ``(config, settings) -> engine or store``, called once per ``FeatureStore``;
    - ``capabilities``: ``engines.Capabilities`` / ``online.OnlineCapabilities`` (None for a
      registry store);
    - ``testing``: ``"module:attribute"`` of the object telling the conformance suites how to
      run it (``skewless.testing.backends.BackendTesting``; imported by the tests only).
    """

    kind: Kind
    name: str
    settings: type[BaseModel]
    factory: Callable[[RepoConfig, Any], T]
    capabilities: Any = None
    testing: str | None = None
    description: str = ""

    def make(self, config: RepoConfig, settings: Any) -> T:
        """The engine or store, from its factory. A factory failing with anything but a
        SkewlessError (a plugin's bug, or a library error it let through) is a ConfigError
        naming the backend, so the user knows which package to look at."""
        try:
            return self.factory(config, settings)
        except SkewlessError:
            raise
        except Exception as e:  # noqa: BLE001 - name the backend that failed, keep the cause
            raise ConfigError(
                f"{GROUPS[self.kind][2]} '{self.name}' failed to start: {type(e).__name__}: {e}",
                hint=f"its factory ({getattr(self.factory, '__module__', '?')}) raised; check "
                "its settings, or report it to that package (docs/backends.md)") from e


_LOADED: dict[tuple[str, str], Backend[Any]] = {}


@functools.lru_cache(maxsize=None)
def _entry_points(kind: Kind) -> Any:
    """The group's entry points, read once per process (installing a plugin needs a restart)."""
    return entry_points(group=GROUPS[kind][0])


def names(kind: Kind) -> list[str]:
    """The names of every installed backend of ``kind``, sorted; loads none of them."""
    return sorted(set(_entry_points(kind).names))


def _load(kind: Kind, point: EntryPoint) -> Backend[Any]:
    where = f"entry point '{point.name} = {point.value}' of group {GROUPS[kind][0]}"
    dist = getattr(point, "dist", None)
    if dist is not None:
        where += f" (package {dist.name})"
    try:
        value = point.load()
    except SkewlessError:
        raise   # a missing extra says which one to install
    except ImportError as e:
        raise ConfigError(f"{GROUPS[kind][2]} '{point.name}' cannot be loaded: {e}",
                          hint=f"check the {where} and that its dependencies are installed") from None
    except Exception as e:  # noqa: BLE001 - a bug in the plugin (or a wrong attribute): name it
        raise ConfigError(f"{GROUPS[kind][2]} '{point.name}' cannot be loaded: "
                          f"{type(e).__name__}: {e}",
                          hint=f"the {where} failed to import; fix that package or uninstall "
                          "it") from e
    if not isinstance(value, Backend) or value.kind != kind or value.name != point.name:
        got = (f"Backend of kind {value.kind} named {value.name!r}" if isinstance(value, Backend)
               else type(value).__name__)
        raise ConfigError(f"{GROUPS[kind][2]} '{point.name}': {where} is not a skewless "
                          f"Backend of kind {kind} named {point.name!r} (it is a {got})",
                          hint="it must point at a skewless.backends.Backend value "
                          "(docs/backends.md)")
    if kind != "registry_store":
        _check_settings(kind, point.name, value.settings, where)
    return value


def _check_settings(kind: Kind, name: str, settings: Any, where: str) -> None:
    """A backend's settings model must be a ``BackendSettings`` whose ``type`` takes the
    backend's name: otherwise every config naming it would be refused as the user's mistake."""
    problem = None
    if not (isinstance(settings, type) and issubclass(settings, BackendSettings)):
        problem = f"its settings model {settings!r} is not a skewless.backends.BackendSettings"
    else:
        try:
            annotation: Any = settings.model_fields["type"].annotation
            TypeAdapter(annotation).validate_python(name)
        except ValidationError:
            problem = (f"its settings model {settings.__name__}'s type does not take "
                       f"{name!r} (declare type: Literal[{name!r}] = {name!r})")
    if problem is not None:
        raise ConfigError(f"{GROUPS[kind][2]} '{name}': {where}: {problem}",
                          hint="a bug in that package (docs/backends.md, \"Adding a backend\")")


def get(kind: Kind, name: str) -> Backend[Any] | None:
    """The installed backend of ``kind`` named ``name`` (None: none is installed). Imports its
    module only, once per process."""
    key = (kind, name)
    if key in _LOADED:
        return _LOADED[key]
    points = [p for p in _entry_points(kind) if p.name == name]
    if not points:
        return None
    if len({p.value for p in points}) > 1:
        raise ConfigError(f"{GROUPS[kind][2]} '{name}' is registered by several packages: "
                          + ", ".join(sorted({p.value for p in points})),
                          hint="uninstall all but one of them")
    backend = _LOADED[key] = _load(kind, points[0])
    return backend


def lookup(kind: Kind, name: str) -> Backend[Any]:
    """The installed backend ``name`` of ``kind``; ``ConfigError`` listing the installed ones
    if there is none."""
    backend = get(kind, name)
    if backend is None:
        raise ConfigError(f"{GROUPS[kind][2]} '{name}' is not installed; installed: "
                          f"{', '.join(names(kind)) or 'none'}", hint=_install_hint(kind))
    return backend


def _install_hint(kind: Kind) -> str:
    if not names(kind):
        return ("skewless's own entry points are missing: install skewless (pip install -e . "
                "in a source tree) rather than running it from a bare path")
    return "install the package that provides it, or fix the name (docs/backends.md)"


def registry_backend(target: str) -> Backend[Any]:
    """The registry store for ``registry:`` as written: a plain path is the SQLite file store;
    ``scheme://...`` is the installed registry store of that scheme."""
    if "://" not in target:
        return lookup("registry_store", DEFAULT_REGISTRY)
    scheme = target.split("://", 1)[0].lower()
    backend = get("registry_store", scheme)
    if backend is not None:
        return backend
    known = [n for n in names("registry_store") if n != DEFAULT_REGISTRY]
    planned = scheme.split("+", 1)[0]   # SQLAlchemy's driver suffix: postgresql+psycopg (Feast's)
    if planned in PLANNED_REGISTRIES:
        raise ConfigError(f"registry '{scheme}://...': the {PLANNED_REGISTRIES[planned]} registry "
                          "store is not implemented yet",
                          hint="use a file path meanwhile, such as registry: data/registry.db")
    raise ConfigError(f"registry scheme '{scheme}://' is unknown; known schemes: "
                      f"{', '.join(s + '://' for s in known) or 'none'} (or a file path)",
                      hint="write a file path such as registry: data/registry.db, or install the "
                      "registry store plugin for that scheme (docs/backends.md)")


def lazy_module(name: str) -> ModuleType:
    """Module ``name``, imported on first attribute access (``importlib.util.LazyLoader``), so a
    backend module can name a heavy driver at its top and still cost nothing until used."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None:
        raise ImportError(f"No module named {name!r}")
    loader = importlib.util.LazyLoader(spec.loader)
    spec.loader = loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    loader.exec_module(module)
    return module


__all__ = ["Backend", "BackendSettings", "Capability", "GROUPS", "Gap", "RegistryTarget",
           "capability", "get", "lazy_module", "lookup", "names", "never", "notyet",
           "registry_backend", "require", "require_of"]

