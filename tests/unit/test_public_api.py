"""The exported surface is deliberate: this test fails when it drifts."""

import skewless
import skewless.types as T


def test_all_is_pinned() -> None:
    assert sorted(skewless.__all__) == sorted([
        "Aggregation", "Entity", "FeatureClient", "FeatureService", "FeatureStore", "FeatureView", "Field",
        "FileLoggingDestination", "FileSource", "LoggingConfig", "OnDemandFeatureView", "PushSource", "RequestSource", "SkewlessError",
        "__version__", "on_demand_feature_view",
    ])
    for name in skewless.__all__:
        assert hasattr(skewless, name)


def test_types_exported() -> None:
    for name in ["Int32", "Int64", "Float32", "Float64", "String", "Bool", "Bytes", "UnixTimestamp", "Array"]:
        assert hasattr(T, name)


def test_import_is_light() -> None:
    import subprocess
    import sys
    code = "import sys, skewless; bad = [m for m in ('redis', 'pyspark', 'duckdb') if m in sys.modules]; print(bad)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
