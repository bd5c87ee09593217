"""skewless quickstart: the fraud example, end to end, on the embedded defaults.

Run by `make demo` (or `python examples/quickstart.py`). It
  1. creates the example feature repo in ./demo_repo (afresh each run) with `skewless init`,
  2. checks and registers its definitions with `skewless plan` and `skewless apply`,
  3. builds a point-in-time correct training set in Python with FeatureStore,
  4. replays the worked example of docs/point-in-time.md#a-worked-example and checks the answer,
  5. materializes the online store (SQLite) and checks that online serving now shows values
     and equals the offline join at the same moment (the example data ends a day or two ago).
Nothing outside ./demo_repo (and a temporary directory) is written; no server is needed.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from skewless import Entity, FeatureStore, FeatureView, Field, FileSource
from skewless.types import Float64, String

REPO = Path("demo_repo")
SERVICE = "fraud_model_v1"


def step(title: str) -> None:
    print(f"\n=== {title} " + "=" * max(0, 74 - len(title)))


def skewless(*args: str) -> None:
    """Run the CLI as a user would (same interpreter, so the same install)."""
    print(f"$ skewless {' '.join(args)}", flush=True)
    done = subprocess.run([sys.executable, "-m", "skewless.cli", *args])
    if done.returncode != 0:
        sys.exit(f"quickstart: `skewless {' '.join(args)}` failed (exit {done.returncode})")


def training_set() -> None:
    store = FeatureStore(REPO)
    labels = pd.read_parquet(REPO / "data" / "labels.parquet")
    print(f'store = FeatureStore("{REPO}")')
    print(f'labels = pd.read_parquet("{REPO}/data/labels.parquet")   # {len(labels):,} rows: '
          f"{', '.join(labels.columns)}")
    print(f'training = store.get_historical_features(labels, feature_service="{SERVICE}").to_df()')
    started = time.perf_counter()
    training = store.get_historical_features(labels, feature_service=SERVICE).to_df()
    elapsed = time.perf_counter() - started

    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print("\nHead of the training frame (on the first day nothing is known yet: nulls, and the "
              "merchant_risk defaults):")
        print(training.head(5).to_string(index=False))
        print("\nThe first fraud labels after a month of history:")
        month_in = training.event_timestamp.min() + pd.Timedelta(days=31)
        later = training[(training.label == 1) & (training.event_timestamp >= month_in)]
        print(later.head(5).to_string(index=False))
    features = [c for c in training.columns if c not in labels.columns]
    nulls = training[features].isna().sum()
    print("\nNull counts per feature (a null is 'nothing known yet at that moment'):")
    for name, n in nulls.items():
        print(f"  {name:<18} {n:>7,}  ({100 * n / len(training):4.1f}%)")
    print(f"\n{len(training):,} label rows x {len(features)} features in {elapsed:.2f}s")

    same_rows = len(training) == len(labels) and training[labels.columns].equals(labels)
    print("Every label row kept, in order, with its columns untouched:", "yes" if same_rows else "NO")
    if not same_rows:
        sys.exit("quickstart: the training frame does not match the labels row for row")


def worked_example() -> None:
    """docs/point-in-time.md#a-worked-example: u1 at Jan 10, Jan 20, Feb 5; u2 at Jan 14; u3 at
    Feb 8 (no ttl)."""
    with tempfile.TemporaryDirectory() as tmp:
        pd.DataFrame({
            "user_id": ["u1", "u1", "u1", "u2", "u3"],
            "event_timestamp": pd.to_datetime(["2024-01-10", "2024-01-20", "2024-02-05",
                                               "2024-01-14", "2024-02-08"], utc=True),
            "amount": [120.0, 135.0, 140.0, 89.0, 2100.0],
        }).to_parquet(Path(tmp) / "spend.parquet")
        user = Entity("user", join_keys=["user_id"])
        spend = FeatureView(
            name="spend", entities=[user],
            schema=[Field("user_id", String), Field("amount", Float64)],
            source=FileSource(path="spend.parquet", timestamp_field="event_timestamp"))
        store = FeatureStore(tmp, config={"project": "worked_example"})
        store.apply([user, spend])
        labels = pd.DataFrame({
            "user_id": ["u1", "u2", "u1", "u3"],
            "event_timestamp": [datetime(2024, 1, 15, 10), datetime(2024, 1, 15, 14),
                                datetime(2024, 2, 1, 9), datetime(2024, 2, 10, 11)],
        })
        got = store.get_historical_features(labels, features=["spend:amount"]).to_df()
    expected = [120.0, 89.0, 135.0, 2100.0]
    got["expected"] = expected
    print(got.to_string(index=False))
    if got["amount"].tolist() != expected:
        sys.exit("quickstart: the worked example of docs/point-in-time.md gave a different answer")
    print("As docs/point-in-time.md says: u1 on Feb 1 gets 135.0 (Jan 20), never 140.0 from its "
          "future (Feb 5).")


def online_serving() -> None:
    """Materialize, serve, and check the invariant: online at t == offline at t."""
    # The example data ends a day or two ago (skewless init anchors it near the current day), so
    # values are within their TTLs now. The clock is read once, so that serving and the offline
    # join below look at the very same moment.
    now = datetime.now(timezone.utc)
    store = FeatureStore(REPO, clock=lambda: now)
    print(f"store = FeatureStore(\"{REPO}\", clock=lambda: {now.isoformat()!r})   # now, read once")
    print("store.materialize_incremental()")
    started = time.perf_counter()
    reports = store.materialize_incremental()
    for r in reports:
        print(f"  {r.view:<14} {r.rows:>7,} entities written in {r.seconds:.2f}s")
    print(f"  total {time.perf_counter() - started:.2f}s")
    labels = pd.read_parquet(REPO / "data" / "labels.parquet")
    rows = labels[["user_id", "merchant_id"]].drop_duplicates().head(5)
    entity_rows = [{"user_id": int(u), "merchant_id": m} for u, m in rows.itertuples(index=False)]
    print(f'\nresp = store.get_online_features(feature_service="{SERVICE}", entity_rows=[...5 rows])')
    t0 = time.perf_counter()
    resp = store.get_online_features(SERVICE, entity_rows)
    served_us = (time.perf_counter() - t0) * 1e6
    online = resp.to_df()
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(online.to_string(index=False))
    print("statuses of amount_sum_7d:", resp.statuses["amount_sum_7d"], f"({served_us:.0f} us)")
    if "PRESENT" not in resp.statuses["amount_sum_7d"]:
        sys.exit("quickstart: online serving shows no value (is the example data older than its TTL?)")
    offline = store.get_historical_features(
        rows.assign(event_timestamp=now), feature_service=SERVICE).to_df()
    same = all(
        online[c].astype(object).where(online[c].notna(), None).tolist()
        == offline[c].astype(object).where(offline[c].notna(), None).tolist()
        for c in online.columns if c not in ("user_id", "merchant_id"))
    print("Online values equal the offline join at the same moment:", "yes" if same else "NO")
    if not same:
        sys.exit("quickstart: online serving disagrees with the offline join")


def main() -> None:
    started = time.perf_counter()
    step("1. Create the example feature repo")
    skewless("init", str(REPO), "--force")
    step("2. Check the definitions, then register them")
    skewless("--repo", str(REPO), "plan")
    skewless("--repo", str(REPO), "apply")
    step("3. Point-in-time correct training data, from Python")
    training_set()
    step("4. The worked example of docs/point-in-time.md")
    worked_example()
    step("5. Serve online: materialize, read, compare with the offline join")
    online_serving()
    step(f"Done in {time.perf_counter() - started:.1f}s")
    print(f"Explore further:  cd {REPO} && skewless ls && skewless describe user_spend")
    print("                  skewless historical --entities data/labels.parquet "
          f"--service {SERVICE} --output training.parquet")


if __name__ == "__main__":
    main()
