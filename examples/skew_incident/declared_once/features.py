"""The fraud model's features with ``merchant_category_risk_score`` declared once.

The category's 90-day fraud rate is an ``Aggregation`` over the transactions
(docs/aggregations.md): training computes it from the events as of each transaction, serving
from the same events as they are pushed (each transaction after it is scored), with the same
library of partial aggregates. There is no second table to drift. The other features are the
same daily batches as in the skewed repo.
"""

from datetime import timedelta

from skewless import (Aggregation, Entity, FeatureService, FeatureView, Field, FileSource, LoggingConfig,
                      PushSource)
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

# The transactions: the history in data/transactions, each new one pushed as it happens.
transactions = PushSource(
    name="transactions",
    batch_source=FileSource("data/transactions", timestamp_field="event_timestamp",
                            event_id_column="transaction_id"),
)

merchant_category_risk = FeatureView(
    name="merchant_category_risk",
    entities=[category],
    schema=[Field("merchant_category", String), Field("is_fraud", Int64)],
    source=transactions,
    aggregations=[Aggregation("is_fraud", "mean", timedelta(days=90), name="merchant_category_risk_score")],
    description="the category's fraud rate over 90 days, one definition for training and serving",
)

fraud_model = FeatureService(
    name="fraud_model",
    features=[customer_stats, merchant_stats, merchant_category_risk],
    logging_config=LoggingConfig(sample_rate=1.0),
)
