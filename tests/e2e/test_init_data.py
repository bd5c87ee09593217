"""`skewless init` dates its example data up to a day or two before now, so serving by hand (the
README's `skewless serve` + `curl`) shows values instead of OUTSIDE_TTL nulls; apart from that
anchor the data is deterministic, and `--data-end` pins it (2024-04-01: the original example)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from skewless.cli import app
from skewless.cli.templates import generate_data
from skewless.store import FeatureStore

runner = CliRunner()
UTC = timezone.utc


def init(target: Path, *args: str) -> str:
    result = runner.invoke(app, ["init", str(target), *args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    assert result.exit_code == 0, result.output
    return result.output


def newest(repo: Path) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The newest event time and the newest created time of the example's user_spend rows."""
    spend = pd.read_parquet(repo / "data" / "user_spend.parquet")
    return spend.event_timestamp.max(), spend.created_at.max()


@pytest.fixture(scope="module")
def fresh(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, datetime, datetime]:
    """An init repo with the default anchor, and the time just before and after init ran."""
    repo = tmp_path_factory.mktemp("init") / "fraud"
    before = datetime.now(UTC)
    init(repo)
    return repo, before, datetime.now(UTC)


def test_the_data_ends_a_day_or_two_ago_and_nothing_lies_in_the_future(fresh) -> None:
    repo, before, after = fresh
    event, created = newest(repo)
    assert created < before                               # late corrections included
    assert after - timedelta(hours=49, minutes=1) <= event <= before - timedelta(hours=25)
    assert event == pd.Timestamp(generate_data.default_end(before)) or \
        event == pd.Timestamp(generate_data.default_end(after))   # init ran across the boundary
    labels = pd.read_parquet(repo / "data" / "labels.parquet")
    assert labels.event_timestamp.max() < event
    risk = pd.read_parquet(repo / "data" / "merchant_risk")
    assert risk.event_timestamp.max() == event


def test_served_now_the_readme_users_have_values(fresh, tmp_path: Path) -> None:
    """The README's by-hand serving: users 1001 and 1002 at the real clock are PRESENT, for every
    view of the feature service, and equal to the offline join at the same moment."""
    import shutil
    repo = Path(shutil.copytree(fresh[0], tmp_path / "repo"))
    store = FeatureStore(repo)
    from skewless.services.repo import load_repo
    store.apply(load_repo(repo).objects)
    store.materialize_incremental()
    now = store.clock()
    rows = [{"user_id": 1001}, {"user_id": 1002}]
    resp = store.get_online_features(["user_spend:amount_sum_7d", "user_spend:txn_count_7d"], rows)
    assert resp.statuses["amount_sum_7d"] == ["PRESENT", "PRESENT"], resp.statuses
    assert None not in resp.to_dict()["amount_sum_7d"]
    merchants = pd.read_parquet(repo / "data" / "merchant_risk").merchant_id.unique()[:20]
    risk = store.get_online_features(["merchant_risk:risk_score"], [{"merchant_id": m} for m in merchants])
    assert set(risk.statuses["risk_score"]) == {"PRESENT"}        # 14-day TTL: weekly scores fit
    offline = store.get_historical_features(
        pd.DataFrame({"user_id": [1001, 1002], "event_timestamp": [now, now]}),
        features=["user_spend:amount_sum_7d"]).to_df()
    assert offline["amount_sum_7d"].tolist() == resp.to_dict()["amount_sum_7d"]


def test_data_end_reproduces_the_2024_example(tmp_path: Path) -> None:
    out = init(tmp_path / "r", "--data-end", "2024-04-01")
    assert "data from 2024-01-01 to 2024-04-01 (UTC)" in out
    event, created = newest(tmp_path / "r")
    assert event == pd.Timestamp("2024-04-01", tz="UTC")
    assert created <= pd.Timestamp("2024-04-01", tz="UTC") + generate_data.LATEST_CORRECTION
    spend = pq.read_table(tmp_path / "r" / "data" / "user_spend.parquet")
    assert spend.num_rows == 35_268 and pd.Timestamp(spend.column("event_timestamp")[0].as_py()) \
        == pd.Timestamp("2024-01-02", tz="UTC")
    months = sorted(p.name for p in (tmp_path / "r" / "data" / "merchant_risk").iterdir())
    assert months == ["month=2024-01", "month=2024-02", "month=2024-03", "month=2024-04"]


def test_the_same_anchor_gives_the_same_bytes_and_another_only_shifts_time(tmp_path: Path) -> None:
    a = generate_data.generate(tmp_path / "a", end=datetime(2025, 6, 1, tzinfo=UTC))
    b = generate_data.generate(tmp_path / "b", end=datetime(2025, 6, 1, tzinfo=UTC))
    c = generate_data.generate(tmp_path / "c", end=datetime(2025, 6, 11, tzinfo=UTC))
    assert a.rows == b.rows == c.rows
    for rel in ("data/user_spend.parquet", "data/user_merchant.parquet", "data/labels.parquet"):
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes(), rel
        x, y = pd.read_parquet(tmp_path / "a" / rel), pd.read_parquet(tmp_path / "c" / rel)
        for col in ("event_timestamp", "created_at"):
            if col in x:
                assert ((y[col] - x[col]) == pd.Timedelta(days=10)).all(), (rel, col)
                x, y = x.drop(columns=col), y.drop(columns=col)
        pd.testing.assert_frame_equal(x, y)


@pytest.mark.parametrize(("value", "message"), [
    ("2099-01-01", "would put example rows in the future"),
    ("2024-04-01T06:00:00", "is not a UTC midnight"),
    ("April", "is not an ISO date"),
])
def test_a_bad_data_end_is_refused_before_anything_is_written(tmp_path: Path, value: str,
                                                              message: str) -> None:
    result = runner.invoke(app, ["init", str(tmp_path / "r"), "--data-end", value])
    assert result.exit_code == 1 and message in result.output, result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize(("now", "end"), [
    (datetime(2026, 3, 10, 1, 0, tzinfo=UTC), datetime(2026, 3, 9, tzinfo=UTC)),       # 25 h after
    (datetime(2026, 3, 10, 0, 59, tzinfo=UTC), datetime(2026, 3, 8, tzinfo=UTC)),      # just before
    (datetime(2026, 3, 10, 23, 59, tzinfo=UTC), datetime(2026, 3, 9, tzinfo=UTC)),
    (datetime(2026, 1, 1, 0, 30, tzinfo=UTC), datetime(2025, 12, 30, tzinfo=UTC)),     # a new year
    (datetime(2026, 3, 10, 12, 0), datetime(2026, 3, 9, tzinfo=UTC)),                  # naive is UTC
])
def test_default_end_is_the_last_midnight_at_least_25_hours_ago(now: datetime, end: datetime) -> None:
    assert generate_data.default_end(now) == end
