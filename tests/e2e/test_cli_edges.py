"""Errors at the edge of the CLI: duplicate definition names across repo files, the output
format of ``historical``, its progress report. Each says what, where and what next."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from skewless.store import FeatureStore

from .test_cli import run

LABELS = "data/labels.parquet"


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("edges") / "fraud"
    result = run(None, "init", str(base))
    assert result.exit_code == 0, result.output
    return base


@pytest.fixture
def repo(template: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(template, tmp_path / "repo"))


@pytest.fixture(scope="module")
def applied(template: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    repo = Path(shutil.copytree(template, tmp_path_factory.mktemp("applied") / "repo"))
    result = run(repo, "apply")
    assert result.exit_code == 0, result.output
    return repo


# --- duplicate names across the repo's files ---------------------------------------------------
COPY_OF_VIEW = """
from datetime import timedelta
from skewless import Entity, FeatureView, FeatureService, Field, FileSource
from skewless.types import Float64, Int64

spend_again = FeatureView(
    name="user_spend", entities=[Entity("user", join_keys=["user_id"])],
    schema=[Field("amount_sum_7d", Float64)],
    source=FileSource(path="data/user_spend.parquet", timestamp_field="event_timestamp"),
    ttl=timedelta(days=30))
"""


@pytest.mark.parametrize("cmd", ["plan", "apply"])
def test_a_view_defined_in_two_files_names_both(repo: Path, cmd: str) -> None:
    (repo / "more_features.py").write_text(COPY_OF_VIEW)
    result = run(repo, cmd)
    assert result.exit_code == 1, result.output
    out = " ".join(result.output.split())
    assert "two different feature views are named 'user_spend'" in out
    assert "features.py (variable `user_spend`)" in out
    assert "more_features.py (variable `spend_again`)" in out
    assert not (repo / "data" / "registry.db").exists() or FeatureStore(repo).snapshot().version == 0


def test_an_entity_and_a_service_defined_twice_name_both_files(repo: Path) -> None:
    (repo / "extra.py").write_text(
        "from skewless import Entity, FeatureService\n"
        "from features import user_spend\n"
        "user2 = Entity('user', join_keys=['uid'])\n"
        "svc = FeatureService('fraud_model_v1', features=[user_spend])\n")
    out = " ".join(run(repo, "plan").output.split())
    assert "two different entitys are named 'user'" not in out  # spelled right
    # files load in name order: extra.py first
    assert "two different entities are named 'user': one in extra.py (variable `user2`), " \
           "another in features.py (variable `user`)" in out
    assert "two different feature services are named 'fraud_model_v1'" in out
    assert "extra.py (variable `svc`)" in out


def test_the_same_name_twice_in_one_file_names_both_variables(repo: Path) -> None:
    features = repo / "features.py"
    features.write_text(features.read_text() + "\nshop = Entity('merchant', join_keys=['shop_id'])\n")
    out = " ".join(run(repo, "plan").output.split())
    assert "one in features.py (variable `merchant`), another in features.py (variable `shop`)" in out


def test_a_definition_imported_by_another_file_is_not_a_duplicate(repo: Path) -> None:
    (repo / "services.py").write_text(
        "from skewless import FeatureService\n"
        "from features import user, user_spend, merchant_risk\n"
        "spend_only = FeatureService('spend_only', features=[user_spend])\n")
    result = run(repo, "plan")
    assert result.exit_code == 0, result.output
    assert "spend_only" in result.output and "two different" not in result.output


# --- historical --output: Parquet or CSV by extension -------------------------------------------
def historical(repo: Path, out: Path, *extra: str):  # noqa: ANN201
    return run(repo, "historical", "-e", str(repo / LABELS), "--service", "fraud_model_v1",
               "-o", str(out), *extra)


def test_a_csv_output_is_csv(applied: Path, tmp_path: Path) -> None:
    out = tmp_path / "training.csv"
    result = historical(applied, out)
    assert result.exit_code == 0, result.output
    assert out.read_bytes()[:4] != b"PAR1"
    frame = pd.read_csv(out)
    labels = pq.read_table(applied / LABELS)
    assert len(frame) == labels.num_rows
    assert list(frame.columns)[:len(labels.column_names)] == labels.column_names
    assert "amount_sum_7d" in frame.columns and "risk_score" in frame.columns
    same = pq.read_table(historical_parquet(applied, tmp_path)).to_pandas()
    assert frame["risk_score"].astype("float32").tolist() == same["risk_score"].tolist()   # Float32
    assert frame["txn_count_7d"].isna().sum() == same["txn_count_7d"].isna().sum()
    assert f"to {out}" in " ".join(result.output.split())
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []   # no temp left
    # the CSV reads back as --entities (timestamps in ISO 8601, UTC)
    again = run(applied, "historical", "-e", str(out), "-f", "user_spend:txn_count_7d",
                "--full-feature-names", "-o", str(tmp_path / "again.parquet"))
    assert again.exit_code == 0, again.output
    back = pq.read_table(tmp_path / "again.parquet").to_pandas()
    assert back["user_spend__txn_count_7d"].isna().sum() == same["txn_count_7d"].isna().sum()


def historical_parquet(repo: Path, tmp_path: Path) -> Path:
    out = tmp_path / "same.parquet"
    assert historical(repo, out).exit_code == 0
    return out


@pytest.mark.parametrize("name, words", [
    ("training.json", ["'.json'", "Parquet (.parquet) or CSV (.csv)"]),
    ("training.txt", ["'.txt'", "Parquet (.parquet) or CSV (.csv)"]),
    ("training", ["no extension", "Parquet (.parquet) or CSV (.csv)"]),
], ids=["json", "txt", "none"])
def test_an_unknown_output_extension_is_refused_before_any_work(applied: Path, tmp_path: Path, name: str,
                                                                words: list[str]) -> None:
    out = tmp_path / name
    result = historical(applied, out)
    assert result.exit_code == 1
    text = " ".join(result.output.split())
    for w in words:
        assert w in text, text
    assert "hint: name the file" in text and "training.parquet" in text and "training.csv" in text
    assert "Point-in-time join" not in text   # refused before the join
    assert list(tmp_path.iterdir()) == []


def test_an_output_that_is_a_directory_is_refused(applied: Path, tmp_path: Path) -> None:
    result = historical(applied, tmp_path)
    assert result.exit_code == 1 and "is a directory" in result.output


@pytest.mark.parametrize("name", ["sub/dir/training.parquet", "sub/dir/training.csv", "UPPER.CSV"])
def test_missing_folders_are_created_and_case_does_not_matter(applied: Path, tmp_path: Path, name: str) -> None:
    out = tmp_path / name
    result = historical(applied, out)
    assert result.exit_code == 0, result.output
    is_parquet = out.read_bytes()[:4] == b"PAR1"
    assert is_parquet == name.endswith(".parquet")


# --- historical's progress report ----------------------------------------------------------------
def test_the_progress_line_ends_with_rows_written_and_elapsed_time(applied: Path, tmp_path: Path) -> None:
    result = historical(applied, tmp_path / "t.parquet")
    assert result.exit_code == 0, result.output
    line = next(l for l in result.output.splitlines() if "Point-in-time join of 50,000 rows" in l)
    assert "50,000 rows written" in line
    assert re.search(r"\d+:\d\d:\d\d", line)   # elapsed
    assert "100%" in line


# --- engine errors through the CLI ------------------------------------------------------------------
def test_a_bad_daily_file_is_named_by_historical_and_materialize(repo: Path, tmp_path: Path) -> None:
    """A later file of merchant_risk holds risk_score as strings, one of them 'abc': both
    commands end with an error line naming the view, the file and the column; no traceback."""
    assert run(repo, "apply").exit_code == 0
    month = sorted((repo / "data" / "merchant_risk").iterdir())[-1]
    first = pq.read_table(next(month.glob("*.parquet")))
    bad = month / "part-9.parquet"
    scores = ["abc"] + [str(v) for v in first.column("risk_score").to_pylist()[1:]]
    i = first.schema.get_field_index("risk_score")
    pq.write_table(first.set_column(i, "risk_score", pa.array(scores)), bad)
    for args in (["historical", "-e", str(repo / LABELS), "--service", "fraud_model_v1",
                  "-o", str(tmp_path / "t.parquet")],
                 ["materialize", "2024-01-01T00:00:00Z", "2024-06-01T00:00:00Z"]):
        result = run(repo, *args)
        assert result.exit_code == 1, result.output
        out = " ".join(result.output.split())
        assert "error:" in out and "'merchant_risk'" in out and str(bad) in result.output
        assert "risk_score" in out and "hint:" in out
        assert "Conversion Error" not in out and "point-in-time query failed" not in out
    assert not (tmp_path / "t.parquet").exists()
