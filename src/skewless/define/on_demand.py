"""RequestSource and on-demand feature views: a Python function over request data and other
views' features, run after the offline join and on the online path alike (docs/on-demand.md).

How the function is stored (the registry is read by other processes: the feature server, a
job, the CLI). Feast pickles it with dill, which ties the registry to one Python version and
hides what runs. skewless stores what can be read and reviewed instead:

- ``source``: the function's own text (decorators left out), as written in the repo;
- ``imports``: each global name the function reads that is a module (``pd`` -> ``pandas``) or an
  importable object of an installed module (``sqrt`` -> ``math:sqrt``);
- ``constants``: each global name it reads that holds a JSON value (``int``, ``float``, ``str``,
  ``bool``, ``None``).

Another process compiles the text with those names bound, the same way in every process (the
SDK too: what runs is always the stored function, so a function that would not load elsewhere
fails at definition, not in production). Limits, refused at definition with what to write
instead: a global helper defined in the feature repo (put it inside the function, or in an
installed module), a global holding another object, a closure, a lambda or a function without
source text (typed at an interactive prompt).
"""

from __future__ import annotations

import ast
import builtins
import hashlib
import importlib
import inspect
import linecache
import textwrap
import types
from collections.abc import Callable, Sequence
from typing import Any

from skewless.define._common import FrozenMixin, check_name, check_str, check_tags
from skewless.define._fields import IDENTITY, PART, SCHEMA, Spec, as_dict, specs_of
from skewless.define.feature_view import FeatureView, FeatureViewProjection, _schema_from_specs
from skewless.define.field import Field, check_schema
from skewless.errors import DefinitionError, closest

MODES = ("pandas", "python")


class RequestSource(FrozenMixin):
    """Values that arrive with the request: keys of the entity rows online, columns of
    ``entity_df`` offline. ``schema`` declares their names and types; a request value is
    converted to its declared type by the one conformance table (docs/types.md) on both paths."""

    name: str
    schema: tuple[Field, ...]
    description: str

    KIND = "RequestSource"
    TYPE_TAG = "request"
    FIELDS = (
        Spec("name", diff=IDENTITY),
        Spec("schema", dump=specs_of, load=_schema_from_specs, diff=PART),
        Spec("description", diff=PART),
    )

    def __init__(self, name: str, schema: Sequence[Field], description: str = "") -> None:
        check_name("RequestSource", name)
        label = f"RequestSource '{name}'"
        fields = check_schema(label, schema, "val_to_add", "Int64")
        self._set("name", name)
        self._set("schema", fields)
        self._set("description", check_str("RequestSource", name, "description", description))

    @property
    def field_names(self) -> list[str]:
        return [f.name for f in self.schema]

    @property
    def feature_names(self) -> list[str]:
        """Names a projection may list (a FeatureService's ``odfv[["a"]]``): its outputs."""
        return self.field_names

    def __repr__(self) -> str:
        return f"RequestSource(name={self.name!r}, fields={self.field_names!r})"


# --- the stored function --------------------------------------------------------------------

class UserFunction:
    """An on-demand view's function as the registry stores it (module docstring): ``spec`` is
    ``{"name", "source", "imports", "constants"}``; calling it compiles the text once (with
    those names bound) and runs it."""

    def __init__(self, spec: dict[str, Any]) -> None:
        missing = [k for k in ("name", "source", "imports", "constants") if k not in spec]
        if missing:
            raise DefinitionError(f"stored on-demand function lacks {missing}",
                                  hint="apply the repo again with this version of skewless")
        self.spec = {"name": spec["name"], "source": spec["source"],
                     "imports": dict(spec["imports"]), "constants": dict(spec["constants"])}
        self._fn: Callable[..., Any] | None = None

    @classmethod
    def capture(cls, fn: Callable[..., Any], view: str) -> UserFunction:
        """The stored form of ``fn``; DefinitionError (naming the view and the global) when
        another process could not rebuild it (module docstring)."""
        label = f"on-demand feature view '{view}'"
        if not isinstance(fn, types.FunctionType):
            raise DefinitionError(f"{label}: the transformation must be a Python function, got "
                                  f"{type(fn).__name__}")
        if fn.__name__ == "<lambda>":
            raise DefinitionError(f"{label}: a lambda cannot be stored",
                                  hint="write it as a `def` function in the feature repo")
        if fn.__closure__:
            raise DefinitionError(
                f"{label}: function '{fn.__name__}' reads variables of an enclosing function "
                f"({', '.join(fn.__code__.co_freevars)}), which cannot be stored",
                hint="define the function at module level of the feature repo")
        try:
            text = textwrap.dedent(inspect.getsource(fn))
        except (OSError, TypeError):
            raise DefinitionError(
                f"{label}: the source text of '{fn.__name__}' cannot be read (defined at an "
                "interactive prompt?)", hint="define it in a .py file of the feature repo") from None
        tree = ast.parse(text)
        node = next(n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)))
        source = "\n".join(text.splitlines()[node.lineno - 1:]) + "\n"
        loaded = {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
        imports: dict[str, str] = {}
        constants: dict[str, Any] = {}
        bad: list[str] = []
        for name in sorted(_global_names(fn.__code__) & loaded):
            if name not in fn.__globals__:
                continue   # a builtin, or a name defined later
            value = fn.__globals__[name]
            if isinstance(value, types.ModuleType):
                imports[name] = value.__name__
            elif value is None or type(value) in (int, float, str, bool):
                constants[name] = value
            elif _importable(value):
                imports[name] = f"{value.__module__}:{value.__qualname__}"
            else:
                bad.append(name)
        if bad:
            raise DefinitionError(
                f"{label}: function '{fn.__name__}' reads global(s) {bad} defined in the feature "
                "repo, which another process (the feature server) could not load",
                hint="move them inside the function, or import them from an installed module "
                "(docs/on-demand.md, 'How the function is stored')")
        return cls({"name": fn.__name__, "source": source, "imports": imports, "constants": constants})

    @property
    def name(self) -> str:
        return str(self.spec["name"])

    @property
    def digest(self) -> str:
        """A short hash of what runs: the text and the names bound."""
        body = repr(sorted(self.spec.items()))
        return hashlib.blake2b(body.encode(), digest_size=4).hexdigest()

    def function(self) -> Callable[..., Any]:
        """The compiled function (built on first use)."""
        if self._fn is None:
            self._fn = _compile(self.spec)
        return self._fn

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.function()(*args, **kwargs)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, UserFunction) and self.spec == other.spec

    def __hash__(self) -> int:
        return hash(self.digest)

    def __repr__(self) -> str:
        return f"{self.name} ({self.digest})"


def _global_names(code: types.CodeType) -> set[str]:
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _global_names(const)
    return names


def _importable(value: Any) -> bool:
    module, qualname = getattr(value, "__module__", None), getattr(value, "__qualname__", None)
    if not isinstance(module, str) or not isinstance(qualname, str) or "<" in qualname:
        return False
    if module == "__main__" or module.startswith("_skewless_repo_"):
        return False
    try:
        obj: Any = importlib.import_module(module)
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except Exception:  # noqa: BLE001 - not importable, whatever the reason
        return False
    return obj is value


def _compile(spec: dict[str, Any]) -> Callable[..., Any]:
    name = spec["name"]
    filename = f"<skewless on-demand function {name}>"
    namespace: dict[str, Any] = {"__builtins__": builtins, "__name__": f"skewless_on_demand.{name}"}
    for alias, target in spec["imports"].items():
        module, _, qualname = target.partition(":")
        try:
            obj: Any = importlib.import_module(module)
            for part in filter(None, qualname.split(".")):
                obj = getattr(obj, part)
        except Exception as e:  # noqa: BLE001 - reported with the name it was for
            raise DefinitionError(
                f"on-demand function '{name}' imports {target!r} as '{alias}', which this "
                f"process cannot import: {type(e).__name__}: {e}",
                hint=f"install the package that provides {module!r} where the feature server runs") from None
        namespace[alias] = obj
    namespace.update(spec["constants"])
    source = spec["source"]
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    exec(compile(source, filename, "exec"), namespace)  # noqa: S102 - the repo's own code
    fn = namespace.get(name)
    if not callable(fn):
        raise DefinitionError(f"stored on-demand function '{name}' does not define '{name}'")
    return fn  # type: ignore[no-any-return]


def _dump_function(fn: UserFunction) -> dict[str, Any]:
    return dict(fn.spec)


def _shown_function(spec: dict[str, Any]) -> str:
    return repr(UserFunction(spec))


# --- the view -------------------------------------------------------------------------------

OnDemandSource = FeatureViewProjection | RequestSource


def _dump_sources(sources: tuple[OnDemandSource, ...]) -> list[dict[str, Any]]:
    out = []
    for s in sources:
        if isinstance(s, RequestSource):
            out.append(s.to_spec())
        else:
            out.append({"type": "view", **s.to_spec()})
    return out


def _load_sources(specs: list[dict[str, Any]]) -> list[OnDemandSource]:
    out: list[OnDemandSource] = []
    for spec in specs:
        if spec.get("type") == "request":
            out.append(RequestSource.from_spec(spec))
        elif spec.get("type") == "view":
            out.append(FeatureViewProjection(spec["view"], spec["features"]))
        else:
            raise DefinitionError(f"unknown on-demand source type {spec.get('type')!r} in the registry")
    return out


class OnDemandFeatureView(FrozenMixin):
    """Features computed by ``udf`` from other views' features and request values.

    ``sources``: FeatureViews (all their features), projections ``view[["a"]]``, and
    RequestSources; the function sees each source feature under its own name and each request
    field under its name. ``schema``: the output fields; outputs are referenced
    ``"name:feature"`` and can be listed in a FeatureService. ``mode="pandas"``: the function
    takes a DataFrame and returns one; ``mode="python"``: a dict of lists in, a dict of lists
    out. The same stored function runs after the offline join (in batches) and online (SDK,
    server, FeatureClient); its outputs are converted to the declared types by the one
    conformance table (docs/types.md). See docs/on-demand.md.
    """

    name: str
    sources: tuple[OnDemandSource, ...]
    schema: tuple[Field, ...]
    udf: UserFunction
    mode: str
    description: str
    owner: str
    tags: dict[str, str]

    KIND = "on-demand feature view"
    FIELDS = (
        Spec("name", diff=IDENTITY, ls=(0, "name")),
        Spec("sources", dump=_dump_sources, load=_load_sources, describe=(1, "sources"),
             ls=(1, "sources")),
        Spec("schema", dump=specs_of, load=_schema_from_specs, diff=SCHEMA, ls=(2, "features")),
        Spec("udf", key="function", dump=_dump_function, load=UserFunction, label="function",
             shown=_shown_function, describe=(2, "function"), ls=(3, "function")),
        Spec("mode", describe=(3, "mode"), ls=(4, "mode")),
        Spec("description", describe=(0, "description"), ls=(5, "description")),
        Spec("owner", describe=(4, "owner"), ls=(6, "owner")),
        Spec("tags", dump=as_dict, describe=(5, "tags"), ls=(7, "tags")),
    )

    def __init__(
        self,
        name: str,
        sources: Sequence[FeatureView | FeatureViewProjection | RequestSource],
        schema: Sequence[Field],
        udf: Callable[..., Any] | UserFunction,
        mode: str = "pandas",
        description: str = "",
        owner: str = "",
        tags: dict[str, str] | None = None,
    ) -> None:
        check_name("on-demand feature view", name)
        label = f"on-demand feature view '{name}'"
        self._set("name", name)
        if isinstance(sources, (FeatureView, FeatureViewProjection, RequestSource)):
            sources = [sources]
        srcs: list[OnDemandSource] = []
        inputs: dict[str, str] = {}   # input name -> where it comes from (known ones only)
        for s in sources or []:
            if isinstance(s, FeatureView):
                names = s.feature_names   # an aggregated view: its aggregated features
                keys = {k for e in s.entity_objects.values() for k in e.join_keys}  # type: ignore[attr-defined]
                s_proj = FeatureViewProjection(s, None)
                known: list[str] | None = [n for n in names if n not in keys] if keys else None
            elif isinstance(s, FeatureViewProjection):
                s_proj, known = s, s.features
            elif isinstance(s, RequestSource):
                s_proj, known = s, s.field_names   # type: ignore[assignment]
            else:
                raise DefinitionError(
                    f"{label}: sources must be FeatureViews, view[[...]] projections or "
                    f"RequestSources, got {s!r}",
                    hint="sources=[driver_hourly_stats, RequestSource('vals', schema=[...])]")
            where = f"request source '{s.name}'" if isinstance(s, RequestSource) else \
                f"feature view '{s_proj.view_name}'"  # type: ignore[union-attr]
            for n in known or []:
                if n in inputs and inputs[n] != where:
                    raise DefinitionError(
                        f"{label}: input '{n}' comes from both {inputs[n]} and {where}",
                        hint="project one of them away: view[[...]] with the features you need")
                inputs[n] = where
            srcs.append(s_proj)
        if not srcs:
            raise DefinitionError(f"{label}: sources is empty",
                                  hint="sources=[a_feature_view, a_request_source]")
        seen = [s.name if isinstance(s, RequestSource) else s.view_name for s in srcs]
        dup = sorted({v for v in seen if seen.count(v) > 1})
        if dup:
            raise DefinitionError(f"{label}: source(s) {dup} listed twice")
        self._set("sources", tuple(srcs))
        self._set("schema", check_schema(label, schema, "conv_rate_plus_val1", "Float64"))
        self._set("udf", udf if isinstance(udf, UserFunction) else UserFunction.capture(udf, name))
        if mode not in MODES:
            hint = ("skewless runs the same function offline and online in 'pandas' or 'python' "
                    "mode" if mode == "substrait" else f"use one of {list(MODES)}")
            raise DefinitionError(f"{label}: mode={mode!r} is invalid", hint=hint)
        self._set("mode", mode)
        self._set("description", check_str("on-demand feature view", name, "description", description))
        self._set("owner", check_str("on-demand feature view", name, "owner", owner))
        self._set("tags", check_tags("on-demand feature view", name, tags))

    @property
    def field_names(self) -> list[str]:
        return [f.name for f in self.schema]

    @property
    def feature_names(self) -> list[str]:
        """Names a projection may list (a FeatureService's ``odfv[["a"]]``): its outputs."""
        return self.field_names

    @property
    def request_sources(self) -> tuple[RequestSource, ...]:
        return tuple(s for s in self.sources if isinstance(s, RequestSource))

    @property
    def view_sources(self) -> tuple[FeatureViewProjection, ...]:
        return tuple(s for s in self.sources if isinstance(s, FeatureViewProjection))

    def __call__(self, inputs: Any) -> Any:
        """Run the stored function on ``inputs`` (a DataFrame in pandas mode, a dict of lists
        in python mode): handy to unit-test a transformation."""
        return self.udf(inputs)

    def __getitem__(self, features: Sequence[str] | str) -> FeatureViewProjection:
        """``odfv[["a"]]``: some of its outputs, for a FeatureService."""
        if isinstance(features, str):
            features = [features]
        proj = FeatureViewProjection(self.name, list(features))
        unknown = [f for f in proj.features or [] if f not in self.field_names]
        if unknown:
            raise DefinitionError(f"on-demand feature view '{self.name}' has no feature "
                                  f"{unknown[0]!r}; {closest(unknown[0], self.field_names)}")
        return proj

    def __repr__(self) -> str:
        return f"OnDemandFeatureView(name={self.name!r}, fields={self.field_names!r}, mode={self.mode!r})"


def on_demand_feature_view(
    *,
    sources: Sequence[FeatureView | FeatureViewProjection | RequestSource],
    schema: Sequence[Field],
    mode: str = "pandas",
    name: str | None = None,
    description: str = "",
    owner: str = "",
    tags: dict[str, str] | None = None,
    **feast_only: Any,
) -> Callable[[Callable[..., Any]], OnDemandFeatureView]:
    """Feast's decorator: ``@on_demand_feature_view(sources=[...], schema=[...], mode="pandas")``
    over a function makes an OnDemandFeatureView named after the function (or ``name``).
    Feast's ``entities`` is accepted and ignored (the entities are those of the source views);
    ``write_to_online_store=True`` and ``singleton=True`` are refused with what to write
    instead."""
    feast_only.pop("entities", None)   # Feast lets an ODFV name entities; its source views say them
    if feast_only.get("write_to_online_store"):
        raise DefinitionError("on_demand_feature_view: write_to_online_store=True is not supported",
                              hint="skewless computes on-demand features at read time on both paths; "
                              "to store a computed feature, write it to a PushSource")
    feast_only.pop("write_to_online_store", None)
    if feast_only.pop("singleton", False):
        raise DefinitionError("on_demand_feature_view: singleton=True is not supported",
                              hint="use mode='python', which takes a dict of lists")
    if feast_only:
        raise DefinitionError(f"on_demand_feature_view: unknown argument(s) {sorted(feast_only)}",
                              hint="it takes sources, schema, mode, name, description, owner, tags")

    def wrap(fn: Callable[..., Any]) -> OnDemandFeatureView:
        return OnDemandFeatureView(name or str(getattr(fn, "__name__", "")), sources, schema, fn, mode,
                                   description, owner, tags)
    return wrap
