"""Definitions: frozen values that validate themselves. No I/O, no backend imports."""

from skewless.define.aggregation import Aggregation
from skewless.define.entity import Entity
from skewless.define.feature_logging import FileLoggingDestination, LoggingConfig
from skewless.define.feature_service import FeatureService
from skewless.define.feature_view import ON_MISSING, FeatureView, FeatureViewProjection
from skewless.define.field import Field
from skewless.define.on_demand import OnDemandFeatureView, RequestSource, on_demand_feature_view
from skewless.define.source import FileSource, PushSource, Source, offline_source

Definition = Entity | FeatureView | FeatureService | OnDemandFeatureView

__all__ = ["Aggregation", "Entity", "Field", "FileSource", "PushSource", "Source", "offline_source", "FeatureView",
           "FeatureViewProjection", "FeatureService", "FileLoggingDestination", "LoggingConfig", "ON_MISSING", "Definition",
           "OnDemandFeatureView", "RequestSource", "on_demand_feature_view"]
