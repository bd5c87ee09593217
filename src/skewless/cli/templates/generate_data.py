"""Synthetic, deterministic data for the fraud example repo (run by ``skewless init``).

One seeded generator draws card transactions; every source is derived from them the way a
daily batch job would, so the features are consistent with each other and with the labels:

- ``data/user_spend.parquet``: per user, one row at the end of each day with a transaction,
  summarising the last 7 days. A few rows are restated later (same event time, later
  ``created_at``), as late corrections are in real pipelines.
- ``data/merchant_risk/month=YYYY-MM/``: per merchant, a weekly risk score; a hive-partitioned
  directory. Nothing is known in the first week, so early labels get the view's defaults.
- ``data/user_merchant.parquet``: per (user, merchant) pair, lifetime counts at the end of each
  day the pair transacted (a composite key).
- ``data/labels.parquet``: one row per transaction (user_id, merchant_id, event_timestamp,
  label) with label 1 for fraud: the entity_df of a training set.

Feature rows are stamped at the end of the day they summarise, so a label at time t only sees
days that were over by t.

The data covers the ``DAYS`` days before ``end`` (a UTC midnight). By default ``end`` is
``default_end()``: the latest midnight at least a day and an hour ago, so the newest rows are
one to two days old and every row, late corrections included, lies in the past. Served by hand
(``skewless serve`` and ``curl``), the example then shows values, not ``OUTSIDE_TTL`` nulls.
Apart from that anchor the data is deterministic: the same seed and ``end`` give the same
bytes; ``skewless init --data-end 2024-04-01`` reproduces the original 2024 example.

Regenerate by hand with ``python -m skewless.cli.templates.generate_data REPO_DIR [END]``.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

DAYS = 91                      # days of transactions, ending at ``end`` (exclusive)
# A late correction is written up to a day and an hour after the row it corrects.
LATEST_CORRECTION = timedelta(days=1, hours=1)
N_USERS = 1_000
N_MERCHANTS = 200
N_TRANSACTIONS = 50_000
SEED = 20240101

# Relative to the repo; features.py names the same paths.
USER_SPEND = "data/user_spend.parquet"
MERCHANT_RISK = "data/merchant_risk"
USER_MERCHANT = "data/user_merchant.parquet"
LABELS = "data/labels.parquet"
OUTPUTS = (USER_SPEND, MERCHANT_RISK, USER_MERCHANT, LABELS)

_TS = pa.timestamp("us", tz="UTC")
_DAY_US = 86_400 * 1_000_000


@dataclass(frozen=True)
class Generated:
    """What was written: relative path -> number of rows, and the days covered."""

    rows: dict[str, int]
    start: datetime   # the first day's midnight (UTC)
    end: datetime     # the midnight after the last day: the newest feature rows' event time


def default_end(now: datetime | None = None) -> datetime:
    """The latest UTC midnight at least ``LATEST_CORRECTION`` before ``now`` (default: the
    current time): where the example data ends unless told otherwise."""
    now = now if now is not None else datetime.now(timezone.utc)
    if now.tzinfo is None:
        now = now.replace(tzinfo=timezone.utc)
    t = (now - LATEST_CORRECTION).astimezone(timezone.utc)
    return t.replace(hour=0, minute=0, second=0, microsecond=0)


def _midnight(end: datetime) -> datetime:
    """``end`` as an aware UTC datetime, refused unless it is a UTC midnight (feature rows are
    stamped at the end of each day)."""
    end = end.replace(tzinfo=timezone.utc) if end.tzinfo is None else end.astimezone(timezone.utc)
    if end != end.replace(hour=0, minute=0, second=0, microsecond=0):
        raise ValueError(f"the example data must end at a UTC midnight, not {end.isoformat()}")
    return end


def _ts(micros: np.ndarray, start: datetime) -> pa.Array:
    """Microseconds since ``start`` as a UTC timestamp column."""
    base = int(start.timestamp()) * 1_000_000
    return pa.array(micros.astype(np.int64) + base, type=pa.int64()).cast(_TS)


def _transactions(rng: np.random.Generator) -> pd.DataFrame:
    activity = rng.gamma(2.0, 1.0, N_USERS)
    base_amount = rng.lognormal(3.5, 0.6, N_USERS)                  # a user's typical ticket
    popularity = 1.0 / np.arange(1, N_MERCHANTS + 1) ** 0.8
    popularity /= popularity.sum()
    merchant_risk = rng.beta(1.0, 12.0, N_MERCHANTS)
    merchant_risk[rng.choice(N_MERCHANTS, 8, replace=False)] += 0.5  # a few bad apples
    favourites = np.stack([rng.choice(N_MERCHANTS, 6, replace=False, p=popularity)
                           for _ in range(N_USERS)])

    user = rng.choice(N_USERS, N_TRANSACTIONS, p=activity / activity.sum())
    at_favourite = rng.random(N_TRANSACTIONS) < 0.8
    merchant = np.where(at_favourite, favourites[user, rng.integers(0, 6, N_TRANSACTIONS)],
                        rng.choice(N_MERCHANTS, N_TRANSACTIONS, p=popularity))
    t_us = np.sort(rng.integers(0, DAYS * _DAY_US, N_TRANSACTIONS))
    logit = -5.2 + 7.0 * merchant_risk[merchant] + 1.5 * ~at_favourite
    fraud = rng.random(N_TRANSACTIONS) < 1.0 / (1.0 + np.exp(-logit))
    amount = base_amount[user] * rng.lognormal(0.0, 0.5, N_TRANSACTIONS) * np.where(fraud, 4.0, 1.0)
    return pd.DataFrame({
        "user": user, "merchant": merchant, "t_us": t_us, "day": t_us // _DAY_US,
        "amount": np.round(amount, 2), "fraud": fraud.astype(np.int64),
        "merchant_risk": merchant_risk[merchant],
    })


def _user_ids(user: np.ndarray) -> np.ndarray:
    return user.astype(np.int64) + 1001


def _merchant_ids(merchant: np.ndarray) -> list[str]:
    return [f"m_{m + 1:04d}" for m in merchant]


def _user_spend(tx: pd.DataFrame, rng: np.random.Generator, start: datetime) -> pa.Table:
    count = np.zeros((N_USERS, DAYS), np.int64)
    total = np.zeros((N_USERS, DAYS))
    peak = np.zeros((N_USERS, DAYS))
    np.add.at(count, (tx.user, tx.day), 1)
    np.add.at(total, (tx.user, tx.day), tx.amount)
    np.maximum.at(peak, (tx.user, tx.day), tx.amount)

    def last7(m: np.ndarray) -> np.ndarray:
        c = np.cumsum(m, axis=1)
        return c - np.pad(c, ((0, 0), (7, 0)))[:, :-7]

    count7, total7 = last7(count), last7(total)
    peak7 = np.lib.stride_tricks.sliding_window_view(np.pad(peak, ((0, 0), (6, 0))), 7, axis=1).max(axis=2)
    u, d = np.nonzero(count)                       # a row for each (user, day) with activity
    event_us = (d + 1) * _DAY_US                   # end of the day summarised
    created_us = event_us + rng.integers(10, 60, len(u)) * 60_000_000
    amount_sum = np.round(total7[u, d], 2)
    txn_count = count7[u, d]
    max_amount = peak7[u, d]
    # Late corrections: ~1% of rows restated a day later (a refund lowers the 7-day spend).
    fix = np.flatnonzero(rng.random(len(u)) < 0.01)
    refund = np.round(amount_sum[fix] * rng.uniform(0.05, 0.3, len(fix)), 2)
    u, d = np.concatenate([u, u[fix]]), np.concatenate([d, d[fix]])
    event_us = np.concatenate([event_us, event_us[fix]])
    created_us = np.concatenate([created_us, created_us[fix] + _DAY_US])
    amount_sum = np.concatenate([amount_sum, amount_sum[fix] - refund])
    txn_count = np.concatenate([txn_count, txn_count[fix]])
    max_amount = np.concatenate([max_amount, max_amount[fix]])
    order = np.lexsort((created_us, event_us))
    return pa.table({
        "user_id": pa.array(_user_ids(u[order])),
        "event_timestamp": _ts(event_us[order], start),
        "created_at": _ts(created_us[order], start),
        "amount_sum_7d": pa.array(amount_sum[order]),
        "txn_count_7d": pa.array(txn_count[order]),
        "avg_amount_7d": pa.array(np.round(amount_sum[order] / txn_count[order], 2)),
        "max_amount_7d": pa.array(max_amount[order]),
    })


def _merchant_risk(tx: pd.DataFrame, rng: np.random.Generator, start: datetime) -> pa.Table:
    rows = []
    for week_end in range(7, DAYS + 1, 7):         # weekly, each covering the days before
        last30 = tx[(tx.day < week_end) & (tx.day >= week_end - 30)]
        last7 = last30[last30.day >= week_end - 7]
        stats = last30.groupby("merchant").agg(n=("fraud", "size"), frauds=("fraud", "sum"),
                                               risk=("merchant_risk", "first"))
        volume = last7.groupby("merchant").size()
        for m, s in stats.iterrows():
            rows.append((m, week_end, float(s.risk), s.frauds / s.n, int(volume.get(m, 0))))
    m, week, risk, chargeback, volume = (np.array(c) for c in zip(*rows))
    score = np.clip(risk + rng.normal(0.0, 0.03, len(risk)), 0.0, 1.0).astype(np.float32)
    months = pa.array([datetime.fromtimestamp(start.timestamp() + int(w) * 86_400, timezone.utc)
                       .strftime("%Y-%m") for w in week])
    return pa.table({
        "merchant_id": pa.array(_merchant_ids(m)),
        "event_timestamp": _ts(week * _DAY_US, start),
        "risk_score": pa.array(score),
        "chargeback_rate": pa.array(np.round(chargeback.astype(np.float64), 4)),
        "txn_volume_7d": pa.array(volume.astype(np.int64)),
        "month": months,
    })


def _user_merchant(tx: pd.DataFrame, start: datetime) -> pa.Table:
    daily = (tx.groupby(["user", "merchant", "day"], sort=True)
             .agg(n=("amount", "size"), total=("amount", "sum")).reset_index())
    pair = daily.groupby(["user", "merchant"], sort=False)
    count = pair.n.cumsum().to_numpy(np.int64)
    total = np.round(pair.total.cumsum().to_numpy(), 2)
    return pa.table({
        "user_id": pa.array(_user_ids(daily.user.to_numpy())),
        "merchant_id": pa.array(_merchant_ids(daily.merchant.to_numpy())),
        "event_timestamp": _ts((daily.day.to_numpy() + 1) * _DAY_US, start),
        "pair_txn_count": pa.array(count),
        "pair_amount_sum": pa.array(total),
        "pair_avg_amount": pa.array(np.round(total / count, 2)),
    })


def _labels(tx: pd.DataFrame, start: datetime) -> pa.Table:
    return pa.table({
        "user_id": pa.array(_user_ids(tx.user.to_numpy())),
        "merchant_id": pa.array(_merchant_ids(tx.merchant.to_numpy())),
        "event_timestamp": _ts(tx.t_us.to_numpy(), start),
        "label": pa.array(tx.fraud.to_numpy(np.int64)),
    })


def generate(repo: str | Path, seed: int = SEED, end: datetime | None = None) -> Generated:
    """Write every source and the labels under ``repo/data`` (overwriting them), covering the
    ``DAYS`` days before ``end`` (a UTC midnight; default: ``default_end()``)."""
    start = _midnight(end if end is not None else default_end()) - timedelta(days=DAYS)
    root = Path(repo)
    (root / "data").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    tx = _transactions(rng)
    rows: dict[str, int] = {}

    spend = _user_spend(tx, rng, start)
    pq.write_table(spend, root / USER_SPEND)
    rows[USER_SPEND] = spend.num_rows

    risk = _merchant_risk(tx, rng, start)
    ds.write_dataset(risk, root / MERCHANT_RISK, format="parquet",
                     partitioning=ds.partitioning(pa.schema([("month", pa.string())]), flavor="hive"),
                     basename_template="part-{i}.parquet", existing_data_behavior="delete_matching")
    rows[MERCHANT_RISK] = risk.num_rows

    pairs = _user_merchant(tx, start)
    pq.write_table(pairs, root / USER_MERCHANT)
    rows[USER_MERCHANT] = pairs.num_rows

    labels = _labels(tx, start)
    pq.write_table(labels, root / LABELS)
    rows[LABELS] = labels.num_rows
    return Generated(rows, start, start + timedelta(days=DAYS))


if __name__ == "__main__":
    target = sys.argv[1] if len(sys.argv) > 1 else "."
    until = datetime.fromisoformat(sys.argv[2]) if len(sys.argv) > 2 else None
    for path, n in generate(target, end=until).rows.items():
        print(f"{path}: {n:,} rows")
