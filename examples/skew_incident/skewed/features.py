"""The fraud model's features as the team of the seed's incident had them.

``merchant_category_risk_score`` has two sources of truth: training reads a daily batch table
(at 00:00 of each day, the category's fraud rate over the 90 days before: the value as of each
transaction), while serving reads a table a weekly job pushes straight into the online store
(``store.push("category_risk_weekly", df, to=PushMode.ONLINE)``), never materialized from the
daily one. The two agree on the day of a refresh and drift apart until the next; after a fraud
spike in one category they differ by far more than noise. The other features are daily batches
materialized the ordinary way.
"""

from datetime import timedelta

from skewless import Entity, FeatureService, FeatureView, Field, FileSource, LoggingConfig, PushSource
from skewless.types import Float64, Int64, String

customer = Entity(name="customer", join_keys=["customer_id"])
merchant = Entity(name="merchant", join_keys=["merchant_id"])
category = Entity(name="merchant_category", join_keys=["merchant_category"])

customer_stats = FeatureView(
    name="customer_stats",
    entities=[customer],
    schema=[Field("customer_id", Int64), Field("customer_avg_amount", Float64)],
    source=FileSource("data/customer_stats.parquet", timestamp_field="event_timestamp"),
    ttl=timedelta(days=365),
    description="daily batch: the mean amount of the customer's transactions so far",
)

merchant_stats = FeatureView(
    name="merchant_stats",
    entities=[merchant],
    schema=[Field("merchant_id", Int64), Field("merchant_txn_count", Int64)],
    source=FileSource("data/merchant_stats.parquet", timestamp_field="event_timestamp"),
    ttl=timedelta(days=2),
    description="daily batch: the merchant's transactions over the 7 days before",
)

# Training reads the daily table (the batch source); serving gets what the weekly job pushes.
category_risk_weekly = PushSource(
    name="category_risk_weekly",
    batch_source=FileSource("data/category_risk_daily", timestamp_field="event_timestamp"),
)

merchant_category_risk = FeatureView(
    name="merchant_category_risk",
    entities=[category],
    schema=[Field("merchant_category", String), Field("merchant_category_risk_score", Float64)],
    source=category_risk_weekly,
    ttl=timedelta(days=8),   # long enough for the weekly table to be served all week
    description="the category's fraud rate over 90 days (offline: daily; online: a weekly push)",
)

fraud_model = FeatureService(
    name="fraud_model",
    features=[customer_stats, merchant_stats, merchant_category_risk],
    logging_config=LoggingConfig(sample_rate=1.0),
)
