"""A small feature repo on disk: the worked example of docs/point-in-time.md#a-worked-example plus a composite-key view."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from skewless import backends
from skewless import Entity, FeatureService, FeatureStore, FeatureView, Field, FileSource
from skewless.types import Float64, Int64, String

user = Entity("user", join_keys=["user_id"])
pair = Entity("user_merchant", join_keys=["user_id", "merchant_id"])


def spend_view(**kw) -> FeatureView:
    args = dict(name="user_spend", entities=[user],
                schema=[Field("amount", Float64, default=-1.0), Field("n_txn", Int64, default=0)],
                source=FileSource("data/spend.parquet", "ts", created_timestamp_column="created"),
                ttl=None)
    args.update(kw)
    return FeatureView(**args)


def pair_view(**kw) -> FeatureView:
    args = dict(name="pair_stats", entities=[pair], schema=[Field("last_country", String)],
                source=FileSource("data/pair", "ts"), ttl=timedelta(days=3))
    args.update(kw)
    return FeatureView(**args)


def write_data(repo: Path) -> None:
    (repo / "data").mkdir(exist_ok=True)
    t = pd.Timestamp
    pd.DataFrame({
        "user_id": ["u1", "u1", "u1", "u2", "u3", "u1"],
        "ts": [t("2024-01-10"), t("2024-01-20"), t("2024-02-05"), t("2024-01-14"), t("2024-02-08"),
               t("2024-01-20")],
        "created": [t("2024-01-10"), t("2024-01-20"), t("2024-02-05"), t("2024-01-14"), t("2024-02-08"),
                    t("2024-01-19")],  # an older write of the Jan 20 row: must lose the tie
        "amount": [120.0, 135.0, 140.0, 89.0, 2100.0, 999.0],
        "n_txn": [1, 2, 3, 1, 7, 99],
    }).to_parquet(repo / "data/spend.parquet")
    pair_dir = repo / "data/pair"
    for day, rows in {"2024-01-01": [("u1", "m1", "2024-01-01 10:00", "FR")],
                      "2024-01-05": [("u1", "m1", "2024-01-05 10:00", "DE"), ("u2", "m1", "2024-01-05 11:00", "US")]}.items():
        d = pair_dir / f"day={day}"
        d.mkdir(parents=True, exist_ok=True)
        pd.DataFrame(rows, columns=["user_id", "merchant_id", "ts", "last_country"]).assign(
            ts=lambda df: pd.to_datetime(df.ts)).to_parquet(d / "part-0.parquet")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    (tmp_path / "feature_store.yaml").write_text("project: fraud\nregistry: data/registry.db\n")
    write_data(tmp_path)
    return tmp_path


@pytest.fixture(params=backends.names("offline_engine"))   # every installed engine
def store(repo: Path, request) -> FeatureStore:
    fs = FeatureStore(repo, config={"project": "fraud", "registry": "data/registry.db",
                                    "offline_store": {"type": request.param}})
    fs.apply([user, pair, spend_view(), pair_view(),
              FeatureService("fraud_v1", [spend_view()[["amount"]], pair_view()])])
    return fs


@pytest.fixture
def labels() -> pd.DataFrame:
    t = pd.Timestamp
    return pd.DataFrame({
        "user_id": ["u1", "u2", "u1", "u3", "u9"],
        "merchant_id": ["m1", "m1", "m1", "m2", "m1"],
        "event_timestamp": [t("2024-01-15 10:00"), t("2024-01-15 14:00"), t("2024-02-01 09:00"),
                            t("2024-02-10 11:00"), t("2024-01-01")],
        "label": [1, 0, 1, 0, 1],
    }, index=[10, 11, 12, 13, 14])


def at(s: str) -> datetime:
    return datetime.fromisoformat(s)
