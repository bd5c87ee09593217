"""skewless: a feature store with no training-serving skew by construction."""

from skewless.define import (Aggregation, Entity, FeatureService, FeatureView, Field, FileLoggingDestination,
                             FileSource, LoggingConfig, OnDemandFeatureView, PushSource, RequestSource,
                             on_demand_feature_view)
from skewless.client import FeatureClient
from skewless.errors import SkewlessError
from skewless.store import FeatureStore

__version__ = "0.1.0"

__all__ = ["Aggregation", "Entity", "FeatureClient", "FeatureService", "FeatureStore", "FeatureView", "Field",
           "FileLoggingDestination", "FileSource", "LoggingConfig", "OnDemandFeatureView", "PushSource", "RequestSource", "SkewlessError",
           "__version__", "on_demand_feature_view"]
