"""Feast's driver-stats quickstart (the repo ``feast init`` creates, and its test workflow),
written as a Feast user writes it: this file is Feast code.

It runs on skewless with only the import lines changed:

    from feast import ...        ->  from skewless import ...
    from feast.types import ...  ->  from skewless.types import ...

``tests/e2e/test_feast_quickstart.py`` makes exactly that substitution and runs it; to try it
by hand::

    sed -e 's/^from feast import/from skewless import/' \
        -e 's/^from feast.types import/from skewless.types import/' \
        examples/feast_quickstart.py > /tmp/quickstart.py && python /tmp/quickstart.py [REPO_DIR]

Left out here: Feast's on-demand feature views (``transformed_conv_rate``), the services that
use them and the push source (``driver_stats_push_source``), since this file keeps Feast's
single Parquet file, into which Feast pushes, while a skewless PushSource needs a directory to
add one file per push (docs/online.md). ``examples/feast_template/`` is the whole template with
all of them (docs/feast-template.md).
The data is generated with pandas as Feast users do: float64 columns declared Float32, int64
declared Int64 (docs/configuration.md, "Coming from Feast").
"""

import os
import sys
import tempfile
from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from feast import Entity, FeatureService, FeatureStore, FeatureView, Field, FileSource
from feast.types import Float32, Int64

REPO = sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="feast_quickstart_")
DATA = os.path.join(REPO, "data", "driver_stats.parquet")
os.makedirs(os.path.dirname(DATA), exist_ok=True)

# --- feature_store.yaml, as `feast init` writes it (plus the file offline store) ---------------
with open(os.path.join(REPO, "feature_store.yaml"), "w") as f:
    f.write(
        "project: my_project\n"
        "# By default, the registry is a file\n"
        "registry: data/registry.db\n"
        "provider: local\n"
        "offline_store:\n"
        "    type: file\n"
        "online_store:\n"
        "    type: sqlite\n"
        "    path: data/online_store.db\n"
        "entity_key_serialization_version: 3\n"
        "auth:\n"
        "    type: no_auth\n"
    )

# --- the driver hourly stats: a week of hourly rows per driver, ending an hour ago ------------
drivers = [1001, 1002, 1003, 1004, 1005]
last_hour = pd.Timestamp.now(tz="UTC").floor("h") - pd.Timedelta(hours=1)
hours = pd.date_range(end=last_hour, periods=7 * 24, freq="h")
rng = np.random.default_rng(42)
driver_stats = pd.DataFrame(
    [(ts, driver) for driver in drivers for ts in hours], columns=["event_timestamp", "driver_id"]
)
driver_stats["conv_rate"] = rng.random(len(driver_stats))
driver_stats["acc_rate"] = rng.random(len(driver_stats))
driver_stats["avg_daily_trips"] = rng.integers(0, 1000, len(driver_stats))
driver_stats["created"] = pd.Timestamp.now(tz="UTC").round("ms")
driver_stats.to_parquet(DATA)

# --- example_repo.py ---------------------------------------------------------------------------
# Define an entity for the driver. You can think of an entity as a primary key used to
# fetch features.
driver = Entity(name="driver", join_keys=["driver_id"])

# Read data from parquet files.
driver_stats_source = FileSource(
    name="driver_hourly_stats_source",
    path=DATA,
    timestamp_field="event_timestamp",
    created_timestamp_column="created",
)

driver_stats_fv = FeatureView(
    name="driver_hourly_stats",
    entities=[driver],
    ttl=timedelta(days=1),
    schema=[
        Field(name="conv_rate", dtype=Float32),
        Field(name="acc_rate", dtype=Float32),
        Field(name="avg_daily_trips", dtype=Int64),
    ],
    online=True,
    source=driver_stats_source,
    tags={"team": "driver_performance"},
)

# This groups features into a model version
driver_activity_v1 = FeatureService(
    name="driver_activity_v1",
    features=[driver_stats_fv[["conv_rate"]]],  # Sub-selects a feature from a feature view
)
driver_activity_v2 = FeatureService(name="driver_activity_v2", features=[driver_stats_fv])

# --- test_workflow.py ----------------------------------------------------------------------------
store = FeatureStore(repo_path=REPO)
print("\n--- Apply ---")
store.apply([driver, driver_stats_source, driver_stats_fv, driver_activity_v1, driver_activity_v2])

print("\n--- Historical features for training ---")
entity_df = pd.DataFrame.from_dict(
    {
        "driver_id": [1001, 1002, 1003],
        "event_timestamp": [
            (last_hour - pd.Timedelta(hours=30, minutes=17)).to_pydatetime(),
            (last_hour - pd.Timedelta(hours=5, minutes=48)).to_pydatetime(),
            (last_hour - pd.Timedelta(hours=50, minutes=20)).to_pydatetime(),
        ],
        "label_driver_reported_satisfaction": [1, 5, 3],
    }
)
training_df = store.get_historical_features(
    entity_df=entity_df,
    features=[
        "driver_hourly_stats:conv_rate",
        "driver_hourly_stats:acc_rate",
        "driver_hourly_stats:avg_daily_trips",
    ],
).to_df()
print(training_df.head())

print("\n--- Historical features for batch scoring ---")
entity_df["event_timestamp"] = pd.to_datetime("now", utc=True)
scoring_df = store.get_historical_features(
    entity_df=entity_df, features=store.get_feature_service("driver_activity_v2")
).to_df()
print(scoring_df.head())

print("\n--- Load features into online store ---")
store.materialize_incremental(end_date=datetime.now())

print("\n--- Online features ---")
online_features = store.get_online_features(
    features=[
        "driver_hourly_stats:conv_rate",
        "driver_hourly_stats:acc_rate",
        "driver_hourly_stats:avg_daily_trips",
    ],
    entity_rows=[{"driver_id": 1001}, {"driver_id": 1002}],
).to_dict()
for key, value in sorted(online_features.items()):
    print(key, " : ", value)

print("\n--- Online features retrieved (instead) through a feature service ---")
service_features = store.get_online_features(
    features=store.get_feature_service("driver_activity_v1"),
    entity_rows=[{"driver_id": 1001}, {"driver_id": 1002}],
).to_dict()
for key, value in sorted(service_features.items()):
    print(key, " : ", value)
