"""What a retrieval reports while it runs (``RetrievalJob.progress``): the step it is in (one
per view on DuckDB), a share done that never decreases, and a last report with the rows of the
result. Timing is not asserted: only what every run must report."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from skewless import FeatureStore
from skewless.engines.base import JobProgress

VIEWS = {"one_view": ["user_spend:amount"],
         "three_views": ["user_spend:amount", "pair_stats:last_country", "user_spend:n_txn"]}


def run(store: FeatureStore, labels: pd.DataFrame, features: list[str], how: str, tmp: Path
        ) -> list[JobProgress]:
    seen: list[JobProgress] = []
    job = store.get_historical_features(labels, features)
    job.progress = seen.append
    if how == "to_parquet":
        job.to_parquet(tmp / "out.parquet")
    elif how == "to_df":
        job.to_df()
    else:
        job.to_arrow()
    return seen


@pytest.mark.parametrize("how", ["to_df", "to_arrow", "to_parquet"])
@pytest.mark.parametrize("features", list(VIEWS.values()), ids=list(VIEWS))
def test_the_last_report_gives_the_rows(store: FeatureStore, labels: pd.DataFrame, tmp_path: Path,
                                        how: str, features: list[str]) -> None:
    seen = run(store, labels, features, how, tmp_path)
    assert seen and seen[-1].done and seen[-1].rows == len(labels) and seen[-1].percent == 100.0
    assert [p for p in seen if p.done] == [seen[-1]]
    shares = [p.percent for p in seen if p.percent is not None]
    assert shares == sorted(shares) and all(0.0 <= s <= 100.0 for s in shares)


@pytest.mark.parametrize("how", ["to_df", "to_parquet"])
def test_duckdb_reports_each_view_as_a_step(repo: Path, labels: pd.DataFrame, tmp_path: Path, how: str) -> None:
    from .conftest import pair, pair_view, spend_view, user
    fs = FeatureStore(repo)
    fs.apply([user, pair, spend_view(), pair_view()])
    seen = run(fs, labels, VIEWS["three_views"], how, tmp_path)
    steps = list(dict.fromkeys(p.step for p in seen if not p.done))
    assert steps == ["entity rows", "user_spend (1/2)", "pair_stats (2/2)", "result"]
    # each step after the first starts at its share of the job: real progress, not 0% then 100%
    starts = {p.step: p.percent for p in reversed(seen) if not p.done}
    assert starts["user_spend (1/2)"] >= 25.0   # more if DuckDB reported part of the step before
    assert starts["pair_stats (2/2)"] >= 50.0
    assert starts["result"] >= 75.0
    one = run(fs, labels, VIEWS["one_view"], how, tmp_path)
    assert [p.step for p in one if not p.done][:1] == ["user_spend (1/1)"]
    assert one[0].percent is None   # nothing known yet: a spinner, not a bar stuck at 0%
