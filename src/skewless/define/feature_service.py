"""FeatureService: a named, versionable set of features a model consumes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from skewless.define._common import FrozenMixin, check_name, check_str, check_tags
from skewless.define._fields import IDENTITY, Spec, as_dict, specs_of
from skewless.define.feature_logging import LoggingConfig
from skewless.define.feature_view import FeatureView, FeatureViewProjection
from skewless.define.on_demand import OnDemandFeatureView
from skewless.errors import DefinitionError


def _logging_spec(config: LoggingConfig | None) -> dict[str, Any] | None:
    return None if config is None else config.to_spec()


def _logging_load(spec: dict[str, Any] | None) -> LoggingConfig | None:
    return None if spec is None else LoggingConfig.from_spec(spec)


def _projections(specs: list[dict[str, Any]]) -> list[FeatureViewProjection]:
    return [FeatureViewProjection(p["view"], p["features"]) for p in specs]


class FeatureService(FrozenMixin):
    """The features of one model: whole views (feature views and on-demand feature views)
    and projections ``view[["a", "b"]]``. ``logging_config``: log its online reads
    (docs/feature-logging.md; None: the global ``logging`` of feature_store.yaml)."""

    name: str
    projections: tuple[FeatureViewProjection, ...]
    description: str
    owner: str
    tags: dict[str, str]
    logging_config: LoggingConfig | None

    KIND = "feature service"
    FIELDS = (
        Spec("name", diff=IDENTITY, ls=(0, "name")),
        Spec("projections", key="features", param="features", dump=specs_of, load=_projections,
             ls=(1, "features")),
        Spec("description", describe=(0, "description"), ls=(2, "description")),
        Spec("owner", describe=(1, "owner"), ls=(3, "owner")),
        Spec("tags", dump=as_dict, describe=(2, "tags"), ls=(4, "tags")),
        # absent from the stored spec when None: services without it keep their stored form
        Spec("logging_config", dump=_logging_spec, load=_logging_load, describe=(3, "logging"),
             ls=(5, "logging"), omit=None),
    )

    def __init__(
        self,
        name: str,
        features: Sequence[FeatureView | OnDemandFeatureView | FeatureViewProjection],
        description: str = "",
        owner: str = "",
        tags: dict[str, str] | None = None,
        logging_config: LoggingConfig | None = None,
    ) -> None:
        self._set("name", check_name("feature service", name))
        projs: list[FeatureViewProjection] = []
        for item in features or []:
            if isinstance(item, FeatureView):
                projs.append(FeatureViewProjection(item, None))
            elif isinstance(item, OnDemandFeatureView):
                projs.append(FeatureViewProjection(item.name, None))
            elif isinstance(item, FeatureViewProjection):
                projs.append(item)
            else:
                raise DefinitionError(
                    f"feature service '{name}': features must be views or view[[...]] projections, got {item!r}"
                )
        if not projs:
            raise DefinitionError(f"feature service '{name}': features is empty")
        seen = [p.view_name for p in projs]
        dup = sorted({v for v in seen if seen.count(v) > 1})
        if dup:
            raise DefinitionError(
                f"feature service '{name}': view(s) {dup} listed twice",
                hint="list each view once, projecting all the features you need: view[['a', 'b']]",
            )
        self._set("projections", tuple(projs))
        self._set("description", check_str("feature service", name, "description", description))
        self._set("owner", check_str("feature service", name, "owner", owner))
        self._set("tags", check_tags("feature service", name, tags))
        if logging_config is not None and not isinstance(logging_config, LoggingConfig):
            raise DefinitionError(
                f"feature service '{name}': logging_config must be a LoggingConfig, got {logging_config!r}",
                hint="logging_config=LoggingConfig(sample_rate=1.0) (docs/feature-logging.md)")
        self._set("logging_config", logging_config)

    def __repr__(self) -> str:
        return f"FeatureService(name={self.name!r}, features={list(self.projections)!r})"
