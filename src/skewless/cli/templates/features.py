"""Feature definitions of the fraud example (created by `skewless init`).

`skewless plan` checks them against the data and shows what would change;
`skewless apply` registers them. Every module-level Entity, FeatureView and FeatureService
in this repo's .py files is part of the repo: deleting one here deletes it on the next apply.
"""

from datetime import timedelta

from skewless import Entity, FeatureService, FeatureView, Field, FileSource
from skewless.types import Float32, Float64, Int64, String

# --- entities: what features describe ------------------------------------------------------
user = Entity(
    "user",
    join_keys=["user_id"],
    description="A card holder.",
    owner="risk-team@example.com",
)
merchant = Entity(
    "merchant",
    join_keys=["merchant_id"],
    description="A shop accepting card payments.",
    owner="risk-team@example.com",
)

# --- a user's recent spending: one row per user at the end of each active day --------------
user_spend = FeatureView(
    name="user_spend",
    entities=[user],
    schema=[
        Field("user_id", Int64, description="Join key."),
        Field("amount_sum_7d", Float64, description="Total card spend over the last 7 days."),
        Field("txn_count_7d", Int64, description="Number of transactions over the last 7 days."),
        Field("avg_amount_7d", Float64, description="Mean transaction amount over the last 7 days."),
        Field("max_amount_7d", Float64, description="Largest transaction over the last 7 days."),
    ],
    source=FileSource(
        path="data/user_spend.parquet",
        timestamp_field="event_timestamp",
        created_timestamp_column="created_at",  # a late correction wins over the first write
    ),
    ttl=timedelta(days=30),  # older than 30 days at label time counts as unknown
    description="Rolling 7-day spending of a card holder, computed by the nightly batch job.",
    owner="risk-team@example.com",
    tags={"team": "risk", "tier": "gold"},
)

# --- a merchant's risk: weekly, in a hive-partitioned directory (month=YYYY-MM) -------------
merchant_risk = FeatureView(
    name="merchant_risk",
    entities=[merchant],
    schema=[
        Field("merchant_id", String, description="Join key."),
        Field("risk_score", Float32, default=0.1,
              description="Model-estimated probability that a payment here is fraudulent."),
        Field("chargeback_rate", Float64, default=0.0,
              description="Share of the last 30 days' payments charged back as fraud."),
        Field("txn_volume_7d", Int64, default=0, description="Payments over the last 7 days."),
    ],
    source=FileSource(path="data/merchant_risk", timestamp_field="event_timestamp"),
    ttl=timedelta(days=14),
    on_missing="default",  # a merchant never scored gets the field defaults, not nulls
    description="Weekly merchant risk scores from the risk team's scoring job.",
    owner="risk-team@example.com",
    tags={"team": "risk"},
)

# --- a user x merchant pair: a composite key (user_id, merchant_id) ------------------------
user_merchant = FeatureView(
    name="user_merchant",
    entities=[user, merchant],
    schema=[
        Field("user_id", Int64),
        Field("merchant_id", String),
        Field("pair_txn_count", Int64, description="Payments by this user at this merchant so far."),
        Field("pair_amount_sum", Float64, description="Total paid by this user at this merchant so far."),
        Field("pair_avg_amount", Float64, description="Mean payment of this user at this merchant."),
    ],
    source=FileSource(path="data/user_merchant.parquet", timestamp_field="event_timestamp"),
    ttl=None,  # lifetime features never expire
    description="How well a card holder knows a merchant; a first visit has no row (null).",
    owner="risk-team@example.com",
    tags={"team": "risk"},
)

# --- what the fraud model consumes: whole views and projections -----------------------------
fraud_model_v1 = FeatureService(
    name="fraud_model_v1",
    features=[
        user_spend,
        merchant_risk[["risk_score", "chargeback_rate"]],
        user_merchant[["pair_txn_count", "pair_avg_amount"]],
    ],
    description="Features of the card-fraud classifier, version 1.",
    owner="ml-platform@example.com",
    tags={"model": "fraud", "stage": "production"},
)
