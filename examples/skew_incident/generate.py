"""Generate the fraud data set of the seed's incident (deterministic for a seed and a "now").

About 120 days of card transactions up to ``now``: 2,000 customers, 200 merchants in 8
categories, about 150 transactions a day, a fraud rate of 1-3 % per category, and a fraud spike
(25 %) in ``electronics`` over the last 14 days. From them, the tables a fraud team keeps:

``transactions.parquet``
    transaction_id, merchant_id, merchant_category, customer_id, amount, is_fraud (0/1),
    event_timestamp (UTC, microseconds, unique): every transaction.
``transactions/history.parquet``
    the transactions before the day of traffic (the batch source of the declared-once repo's
    event stream; the day's transactions are pushed one by one as they happen).
``traffic.parquet``
    the transactions of the last ``traffic_hours`` (default 24): the requests to score.
``customer_stats.parquet``
    a daily batch: at 00:00 of each day, for each customer who bought the day before,
    ``customer_avg_amount`` = the mean amount of all the customer's transactions so far.
``merchant_stats.parquet``
    a daily batch: at 00:00 of each day, for every merchant, ``merchant_txn_count`` = its
    transactions over the 7 days before.
``category_risk_daily/daily.parquet``
    the training table: at 00:00 of each day, for every category,
    ``merchant_category_risk_score`` = the fraud rate of its transactions over the 90 days
    before (the value as of each transaction's day, what the model was trained on).
``category_risk_weekly.parquet``
    the serving table of the incident: the same 90-day rate, computed by a weekly job (every 7
    days, the last run 5 days before ``now``'s day), with ``event_timestamp`` = the run's time.

Run: ``python generate.py DATA_DIR [--now 2026-11-30T04:00:00Z] [--seed 14]``.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd

CATEGORIES = ["electronics", "grocery", "travel", "fashion", "restaurants", "fuel", "gaming", "pharmacy"]
BASE_FRAUD = [0.020, 0.005, 0.030, 0.015, 0.008, 0.010, 0.025, 0.006]
SPIKE_CATEGORY = "electronics"
SPIKE_FRAUD = 0.25
SPIKE_DAYS = 14
DAYS = 120
TXN_PER_DAY = 150
CUSTOMERS = 2_000
MERCHANTS = 200
RISK_WINDOW = timedelta(days=90)
REFRESH_EVERY = timedelta(days=7)
LAST_REFRESH_DAYS_AGO = 5


@dataclass(frozen=True)
class Generated:
    """What ``generate`` wrote: the moment the data ends, the traffic window, row counts."""

    now: datetime
    traffic_start: datetime
    refreshes: list[datetime]
    rows: dict[str, int]


def day_floor(t: datetime) -> datetime:
    return t.replace(hour=0, minute=0, second=0, microsecond=0)


def transactions(now: datetime, seed: int) -> pd.DataFrame:
    """Every transaction over the ``DAYS`` days up to ``now`` (exclusive), in event order.

    The days are drawn whole (up to the end of ``now``'s day), then cut at ``now``: the draws
    depend on the seed only, so every run on a given day, whatever its time, sees the same
    transactions up to its ``now``, and the daily tables (at 00:00) are the same all day."""
    rng = np.random.default_rng(seed)
    start = day_floor(now) - timedelta(days=DAYS)
    span_us = (DAYS + 1) * 86_400_000_000
    n = TXN_PER_DAY * (DAYS + 1)
    # unique microsecond offsets, sorted: no two transactions share an event time
    offsets = np.sort(rng.choice(span_us, size=n, replace=False))
    merchant_category = np.arange(MERCHANTS) % len(CATEGORIES)
    merchant = rng.integers(0, MERCHANTS, size=n)
    category = merchant_category[merchant]
    customer = rng.integers(0, CUSTOMERS, size=n)
    amount = np.round(rng.lognormal(mean=3.5, sigma=0.9, size=n), 2)
    rate = np.asarray(BASE_FRAUD)[category]
    ts = pd.to_datetime(start) + pd.to_timedelta(offsets, unit="us")
    spike_start = pd.Timestamp(day_floor(now) - timedelta(days=SPIKE_DAYS))
    spiking = (category == CATEGORIES.index(SPIKE_CATEGORY)) & np.asarray(ts >= spike_start)
    rate = np.where(spiking, SPIKE_FRAUD, rate)
    is_fraud = (rng.random(n) < rate).astype("int64")
    amount = np.where(is_fraud == 1, np.round(amount * 2.5, 2), amount)
    before = np.asarray(ts < pd.Timestamp(now))
    return pd.DataFrame({
        "transaction_id": np.arange(1, n + 1, dtype="int64"),
        "merchant_id": (merchant + 1).astype("int64"),
        "merchant_category": np.asarray(CATEGORIES)[category],
        "customer_id": (customer + 10_001).astype("int64"),
        "amount": amount.astype("float64"),
        "is_fraud": is_fraud,
        "event_timestamp": ts.astype("datetime64[us, UTC]"),
    })[before].reset_index(drop=True)


def _days(now: datetime) -> list[pd.Timestamp]:
    """The 00:00 UTC of every day of the data, the first day's excluded (nothing before it)."""
    first = day_floor(now) - timedelta(days=DAYS - 1)
    return [pd.Timestamp(first + timedelta(days=i)) for i in range(DAYS)]


def customer_stats(tx: pd.DataFrame, now: datetime) -> pd.DataFrame:
    """Daily: the mean amount of each customer's transactions before the day, on the days
    after the customer bought (the value changed)."""
    day = tx["event_timestamp"].dt.floor("D")
    per_day = tx.assign(day=day).groupby(["customer_id", "day"], as_index=False).agg(
        s=("amount", "sum"), c=("amount", "count")).sort_values(["customer_id", "day"])
    per_day["sum"] = per_day.groupby("customer_id")["s"].cumsum()
    per_day["count"] = per_day.groupby("customer_id")["c"].cumsum()
    out = pd.DataFrame({
        "customer_id": per_day["customer_id"].astype("int64"),
        "customer_avg_amount": (per_day["sum"] / per_day["count"]).round(4),
        "event_timestamp": per_day["day"] + pd.Timedelta(days=1),
    })
    return out[out["event_timestamp"] <= pd.Timestamp(now)].reset_index(drop=True)


def merchant_stats(tx: pd.DataFrame, now: datetime) -> pd.DataFrame:
    """Daily, every merchant: its transactions over the 7 days before the day."""
    days = pd.DatetimeIndex(_days(now))
    per_day = (tx.assign(day=tx["event_timestamp"].dt.floor("D"))
               .groupby(["day", "merchant_id"]).size().unstack(fill_value=0)
               .reindex(index=days.union(days - pd.Timedelta(days=1)), columns=range(1, MERCHANTS + 1),
                        fill_value=0))
    # at day d: the days d-7 .. d-1
    last7 = per_day.rolling(7, min_periods=1).sum().shift(1).reindex(days).fillna(0).astype("int64")
    out = last7.stack().rename("merchant_txn_count").reset_index()
    out.columns = ["event_timestamp", "merchant_id", "merchant_txn_count"]
    return out[["merchant_id", "merchant_txn_count", "event_timestamp"]].astype(
        {"merchant_id": "int64", "merchant_txn_count": "int64"})


def category_risk(tx: pd.DataFrame, at: list[pd.Timestamp]) -> pd.DataFrame:
    """For each time in ``at`` and each category: the fraud rate of its transactions over the
    90 days before (``at - 90d <= ts < at``); null when it has none."""
    rows = []
    ts = tx["event_timestamp"]
    for t in at:
        window = tx[(ts >= t - pd.Timedelta(RISK_WINDOW)) & (ts < t)]
        rate = window.groupby("merchant_category")["is_fraud"].mean()
        for c in CATEGORIES:
            rows.append((c, float(rate[c]) if c in rate.index else None, t))
    return pd.DataFrame(rows, columns=["merchant_category", "merchant_category_risk_score", "event_timestamp"])


def _write(df: pd.DataFrame, path: Path) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    for name in df.columns:
        if str(df[name].dtype).startswith("datetime64"):
            df[name] = df[name].astype("datetime64[us, UTC]")
    df.to_parquet(path, index=False)
    return len(df)


def generate(data_dir: str | Path, now: datetime, seed: int = 14, traffic_hours: float = 24) -> Generated:
    """Write the tables above under ``data_dir``; ``now`` is an aware datetime (the data ends
    just before it). The same ``now`` and ``seed`` give the same files."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware (UTC), e.g. datetime.now(timezone.utc)")
    now = now.astimezone(timezone.utc)
    out = Path(data_dir)
    tx = transactions(now, seed)
    traffic_start = now - timedelta(hours=traffic_hours)
    last_refresh = day_floor(now) - timedelta(days=LAST_REFRESH_DAYS_AGO)
    refreshes = [last_refresh - i * REFRESH_EVERY for i in range(2, -1, -1)]
    rows = {
        "transactions.parquet": _write(tx.copy(), out / "transactions.parquet"),
        "transactions/history.parquet": _write(tx[tx["event_timestamp"] < pd.Timestamp(traffic_start)].copy(),
                                               out / "transactions" / "history.parquet"),
        "traffic.parquet": _write(tx[tx["event_timestamp"] >= pd.Timestamp(traffic_start)].copy(),
                                  out / "traffic.parquet"),
        "customer_stats.parquet": _write(customer_stats(tx, now), out / "customer_stats.parquet"),
        "merchant_stats.parquet": _write(merchant_stats(tx, now), out / "merchant_stats.parquet"),
        "category_risk_daily/daily.parquet": _write(category_risk(tx, _days(now)),
                                                    out / "category_risk_daily" / "daily.parquet"),
        "category_risk_weekly.parquet": _write(category_risk(tx, [pd.Timestamp(r) for r in refreshes]),
                                               out / "category_risk_weekly.parquet"),
    }
    return Generated(now=now, traffic_start=traffic_start, refreshes=refreshes, rows=rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data_dir", help="where to write the tables (created)")
    parser.add_argument("--now", help="ISO time the data ends at (default: the current time)")
    parser.add_argument("--seed", type=int, default=14)
    args = parser.parse_args()
    now = (datetime.fromisoformat(args.now.replace("Z", "+00:00")) if args.now
           else datetime.now(timezone.utc))
    if now.tzinfo is None:
        now = now.replace(tzinfo=timezone.utc)
    result = generate(args.data_dir, now, seed=args.seed)
    for name, n in result.rows.items():
        print(f"{n:>8,} rows  {Path(args.data_dir) / name}")


if __name__ == "__main__":
    main()
