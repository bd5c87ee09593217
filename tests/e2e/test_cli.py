"""End to end: the `skewless` CLI on the example repo that `skewless init` creates.

Most tests drive the app in-process (typer's CliRunner); a few run the real entry point in a
subprocess, as a user would, to check exit codes and that no traceback ever reaches the user.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from skewless.cli import app
from skewless.store import FeatureStore

ROOT = Path(__file__).resolve().parents[2]
COMMANDS = ["init", "plan", "apply", "ls", "describe", "history", "historical"]
SERVICE_FEATURES = ["amount_sum_7d", "txn_count_7d", "avg_amount_7d", "max_amount_7d",
                    "risk_score", "chargeback_rate", "pair_txn_count", "pair_avg_amount"]
# The example data ends near the current day by default (tests/e2e/test_init_data.py); these
# tests name dates, so they pin where it ends.
DATA_END = "2024-04-01"
runner = CliRunner()


def run(repo: Path | None, *args: str, env: dict[str, str] | None = None):  # noqa: ANN201
    argv = (["--repo", str(repo)] if repo is not None else []) + list(args)
    result = runner.invoke(app, argv, env=env)
    # An unexpected exception is a bug whatever the exit code: CliRunner would hide it.
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    assert "Traceback" not in result.output
    return result


def version(repo: Path) -> int:
    return FeatureStore(repo).snapshot().version


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("template") / "fraud"
    result = run(None, "init", str(base), "--data-end", DATA_END)  # the dates these tests name
    assert result.exit_code == 0, result.output
    return base


@pytest.fixture
def repo(template: Path, tmp_path: Path) -> Path:
    """A fresh copy of the initialised example repo (nothing applied yet)."""
    return Path(shutil.copytree(template, tmp_path / "repo"))


@pytest.fixture
def applied(repo: Path) -> Path:
    result = run(repo, "apply")
    assert result.exit_code == 0, result.output
    return repo


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


# --- help and init ---------------------------------------------------------------------------
def test_help_lists_every_command_and_each_has_help() -> None:
    result = run(None, "--help")
    assert result.exit_code == 0
    for cmd in COMMANDS:
        assert cmd in result.output
        sub = run(None, cmd, "--help")
        assert sub.exit_code == 0, (cmd, sub.output)
        assert "Usage" in sub.output
    assert "--repo" in result.output and "SKEWLESS_REPO" in result.output


def test_init_creates_a_runnable_example_repo(template: Path) -> None:
    for name in ("feature_store.yaml", "features.py", "README.md"):
        assert (template / name).is_file()
    config = (template / "feature_store.yaml").read_text()
    assert re.search(r"^project: fraud$", config, re.M)
    assert re.search(r"^registry: data/registry.db$", config, re.M)
    partitions = sorted(p.name for p in (template / "data" / "merchant_risk").iterdir())
    assert partitions[:3] == ["month=2024-01", "month=2024-02", "month=2024-03"]
    labels = pq.read_table(template / "data" / "labels.parquet")
    assert labels.column_names == ["user_id", "merchant_id", "event_timestamp", "label"]
    assert labels.num_rows == 50_000
    assert 0 < labels.column("label").to_numpy().mean() < 0.1      # fraud is rare, but present
    assert not (template / "data" / "registry.db").exists()       # init registers nothing


def test_init_data_is_deterministic(template: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    assert run(None, "init", str(again), "--data-end", DATA_END).exit_code == 0
    files = sorted(p.relative_to(template) for p in (template / "data").rglob("*.parquet"))
    assert len(files) >= 6
    for rel in files:
        assert (template / rel).read_bytes() == (again / rel).read_bytes(), rel


def test_init_refuses_a_non_empty_directory_without_force(tmp_path: Path) -> None:
    target = tmp_path / "mine"
    target.mkdir()
    (target / "notes.txt").write_text("keep me")
    result = run(None, "init", str(target))
    assert result.exit_code == 1
    assert "error:" in result.output and "not empty" in result.output
    assert "--force" in result.output
    assert sorted(p.name for p in target.iterdir()) == ["notes.txt"]

    forced = run(None, "init", str(target), "--force")
    assert forced.exit_code == 0, forced.output
    assert (target / "feature_store.yaml").is_file()
    assert (target / "notes.txt").read_text() == "keep me"   # other files are left alone


def test_init_force_starts_the_example_afresh(applied: Path) -> None:
    assert version(applied) == 1
    result = run(None, "init", str(applied), "--force")
    assert result.exit_code == 0, result.output
    assert "data/registry.db" in result.output
    assert version(applied) == 0


# --- plan / apply ----------------------------------------------------------------------------
def test_plan_shows_the_diff_and_writes_nothing(repo: Path) -> None:
    result = run(repo, "plan")
    assert result.exit_code == 0, result.output
    for line in ("+ entity user", "+ entity merchant", "+ feature view user_spend",
                 "+ feature view merchant_risk", "+ feature view user_merchant",
                 "+ feature service fraud_model_v1"):
        assert line in result.output
    assert "6 to create, 0 to update, 0 to delete" in result.output
    assert not (repo / "data" / "registry.db").exists()


def test_apply_registers_the_repo_then_is_idempotent(repo: Path) -> None:
    result = run(repo, "apply")
    assert result.exit_code == 0, result.output
    assert "version 1" in result.output
    snap = FeatureStore(repo).snapshot()
    assert snap.version == 1
    assert sorted(snap.feature_views) == ["merchant_risk", "user_merchant", "user_spend"]
    assert sorted(snap.entities) == ["merchant", "user"]
    assert list(snap.feature_services) == ["fraud_model_v1"]

    again = run(repo, "apply")
    assert again.exit_code == 0
    assert "No changes" in again.output and "version 1" in again.output
    assert version(repo) == 1


def test_a_definition_deleted_from_the_repo_is_deleted_on_apply(applied: Path) -> None:
    features = applied / "features.py"
    text = features.read_text()
    start = text.index("# --- what the fraud model consumes")
    features.write_text(text[:start])
    plan = run(applied, "plan")
    assert plan.exit_code == 0, plan.output
    assert "- feature service fraud_model_v1" in plan.output
    assert run(applied, "apply").exit_code == 0
    assert FeatureStore(applied).snapshot().feature_services == {}


def test_apply_of_a_repo_without_definitions_does_not_wipe_the_registry(applied: Path) -> None:
    (applied / "features.py").unlink()
    plan = run(applied, "plan")
    assert plan.exit_code == 0
    assert "- feature view user_spend" in plan.output and "warning: no definitions found" in plan.output
    refused = run(applied, "apply")
    assert refused.exit_code == 1
    assert "would delete all 6 registered objects" in refused.output
    assert version(applied) == 1
    assert run(applied, "apply", "--force").exit_code == 0
    assert FeatureStore(applied).snapshot().objects() == []


def test_breaking_change_is_refused_then_forced(applied: Path) -> None:
    edit(applied / "features.py",
         '        Field("max_amount_7d", Float64, description="Largest transaction over the last 7 days."),\n',
         "")
    plan = run(applied, "plan")
    assert plan.exit_code == 0
    assert "~ feature view user_spend  BREAKING" in plan.output
    assert "field 'max_amount_7d' removed" in plan.output

    refused = run(applied, "apply")
    assert refused.exit_code == 1
    assert "error:" in refused.output and "hint:" in refused.output
    assert "user_spend_v2" in refused.output
    assert "--force" in refused.output
    snap = FeatureStore(applied).snapshot()
    assert snap.version == 1
    assert "max_amount_7d" in snap.feature_views["user_spend"].field_names

    forced = run(applied, "apply", "--force")
    assert forced.exit_code == 0, forced.output
    assert "version 2" in forced.output
    snap = FeatureStore(applied).snapshot()
    assert snap.version == 2
    assert "max_amount_7d" not in snap.feature_views["user_spend"].field_names

    history = run(applied, "history")
    assert history.exit_code == 0
    assert "BREAKING" in history.output and "max_amount_7d" in history.output


def test_a_field_missing_from_the_source_fails_the_plan(applied: Path) -> None:
    edit(applied / "features.py",
         '        Field("max_amount_7d", Float64,',
         '        Field("min_amount_7d", Float64),\n        Field("max_amount_7d", Float64,')
    result = run(applied, "plan")
    assert result.exit_code == 1
    assert "user_spend" in result.output and "min_amount_7d" in result.output
    assert version(applied) == 1


def test_definition_errors_are_gathered_with_file_and_line(repo: Path) -> None:
    features = repo / "features.py"
    edit(features, 'Field("txn_count_7d", Int64,', 'Field("txn_count_7d", "int64",')
    line = next(i for i, text in enumerate(features.read_text().splitlines(), 1)
                if '"int64"' in text)
    (repo / "more.py").write_text(
        "from skewless import FeatureView, Field, FileSource\n"
        "from skewless.types import Float64\n\n"
        "payday = FeatureView(name='payday', entities=['usr'],\n"
        "                     schema=[Field('days_to_payday', Float64)],\n"
        "                     source=FileSource(path='data/payday.parquet', timestamp_field='ts'))\n")
    (repo / "broken.py").write_text("x = = 1\n")

    for cmd in ("plan", "apply"):
        result = run(repo, cmd)
        assert result.exit_code == 1, result.output
        out = result.output
        assert "error: 4 problem(s) found" in out
        assert "data/payday.parquet does not exist" in out
        assert f"features.py:{line}:" in out and "'int64' is not a skewless type" in out
        assert "broken.py:1:" in out and "SyntaxError" in out
        assert "entity 'usr' is unknown" in out
        assert "hint:" in out
    assert not (repo / "data" / "registry.db").exists()


# --- config errors ---------------------------------------------------------------------------
def test_malformed_yaml_reports_the_line(repo: Path) -> None:
    (repo / "feature_store.yaml").write_text("project: fraud\nregistry: data/registry.db\n"
                                             "  offline_store: {type: duckdb}\n")
    for cmd in (["plan"], ["apply"], ["ls"]):
        result = run(repo, *cmd)
        assert result.exit_code == 1
        assert "error:" in result.output and "malformed YAML at line 3" in result.output
        assert "hint:" in result.output


def test_unknown_config_key_is_named(repo: Path) -> None:
    (repo / "feature_store.yaml").write_text("project: fraud\nregistry_path: data/registry.db\n")
    result = run(repo, "plan")
    assert result.exit_code == 1
    assert "unknown key 'registry_path'" in result.output


def test_missing_repo_says_how_to_create_one(tmp_path: Path) -> None:
    result = run(tmp_path / "nowhere", "ls")
    assert result.exit_code == 1
    assert "no feature_store.yaml" in result.output and "skewless init" in result.output


def test_repo_from_environment_variable(applied: Path) -> None:
    result = run(None, "ls", "entities", env={"SKEWLESS_REPO": str(applied)})
    assert result.exit_code == 0, result.output
    assert "user_id" in result.output and "merchant_id" in result.output


# --- ls / describe / history -----------------------------------------------------------------
def test_ls_lists_every_kind_with_metadata(applied: Path) -> None:
    result = run(applied, "ls")
    assert result.exit_code == 0, result.output
    out = result.output
    for name in ("user", "merchant", "user_spend", "merchant_risk", "user_merchant", "fraud_model_v1",
                 "risk-team@example.com", "ml-platform@example.com", "tier=gold", "A card holder.",
                 "data/user_spend.parquet", "30d", "merchant_risk[risk_score, chargeback_rate]"):
        assert name in out, name

    views = run(applied, "ls", "views")
    assert views.exit_code == 0
    assert "user_spend" in views.output and "fraud_model_v1" not in views.output
    assert "A card holder." not in views.output

    bad = run(applied, "ls", "widgets")
    assert bad.exit_code == 2   # a usage error, reported by the argument parser


def test_ls_on_an_empty_registry(repo: Path) -> None:
    result = run(repo, "ls")
    assert result.exit_code == 0
    assert "nothing registered yet" in result.output


def test_describe_every_kind(applied: Path) -> None:
    view = run(applied, "describe", "merchant_risk")
    assert view.exit_code == 0, view.output
    out = view.output
    for text in ("Feature view merchant_risk", "merchant_id", "risk_score", "Float32", "0.1",
                 "chargeback_rate", "Float64", "txn_volume_7d", "Int64", "14d", "default",
                 "data/merchant_risk", "fraud_model_v1", "join key"):
        assert text in out, text

    service = run(applied, "describe", "fraud_model_v1")
    assert service.exit_code == 0
    assert "pair_avg_amount" in service.output and "max_amount_7d" in service.output
    assert "txn_volume_7d" not in service.output            # not in the projection
    assert "pair_amount_sum" not in service.output

    entity = run(applied, "describe", "user")
    assert entity.exit_code == 0
    assert "user_id" in entity.output and "user_spend" in entity.output

    unknown = run(applied, "describe", "usr_spend")
    assert unknown.exit_code == 1
    assert "did you mean 'user_spend'" in unknown.output


def test_history_lists_applies_newest_first(applied: Path) -> None:
    edit(applied / "features.py", 'ttl=timedelta(days=14)', 'ttl=timedelta(days=21)')
    assert run(applied, "apply").exit_code == 0
    result = run(applied, "history")
    assert result.exit_code == 0
    out = result.output
    assert out.index("~ feature view merchant_risk") < out.index("+ feature view user_spend")
    assert out.index("version 2") < out.index("version 1")
    assert "ttl: 14 days -> 21 days" in " ".join(out.split())


# --- historical ------------------------------------------------------------------------------
def _brute_force_user_spend(source: pd.DataFrame, user_id: int, ts: pd.Timestamp) -> float | None:
    """docs/point-in-time.md#the-rule as a loop: latest row with ts - 30d <= f.ts <= ts, ties by created."""
    rows = source[(source.user_id == user_id) & (source.event_timestamp <= ts)
                  & (source.event_timestamp >= ts - pd.Timedelta(days=30))]
    if rows.empty:
        return None
    return float(rows.sort_values(["event_timestamp", "created_at"]).iloc[-1].amount_sum_7d)


def test_historical_with_a_service_writes_every_label_row(applied: Path, tmp_path: Path) -> None:
    out = tmp_path / "out" / "training.parquet"
    result = run(applied, "historical", "--entities", str(applied / "data" / "labels.parquet"),
                 "--service", "fraud_model_v1", "--output", str(out))
    assert result.exit_code == 0, result.output
    labels = pq.read_table(applied / "data" / "labels.parquet")
    table = pq.read_table(out)
    assert table.num_rows == labels.num_rows
    assert table.column_names == labels.column_names + SERVICE_FEATURES
    assert table.select(labels.column_names).cast(labels.schema).equals(labels)    # pass-through, in input order
    assert "50,000 rows" in result.output and "12 columns" in result.output
    for feature in SERVICE_FEATURES:
        nulls = table.column(feature).null_count
        assert re.search(rf"{feature}\s.*\s{nulls:,}\s", result.output), feature
    assert table.column("risk_score").null_count == 0          # on_missing="default"
    assert 0 < table.column("pair_txn_count").null_count < labels.num_rows

    frame = table.to_pandas()
    source = pd.read_parquet(applied / "data" / "user_spend.parquet")
    for i in np.random.default_rng(0).choice(len(frame), 40, replace=False):
        row = frame.iloc[i]
        want = _brute_force_user_spend(source, row.user_id, row.event_timestamp)
        got = row.amount_sum_7d
        assert (want is None and pd.isna(got)) or want == pytest.approx(got), (i, want, got)


def test_historical_with_features_csv_and_full_names(applied: Path, tmp_path: Path) -> None:
    labels = pd.read_parquet(applied / "data" / "labels.parquet").iloc[20_000:20_100]
    csv = tmp_path / "labels.csv"
    labels.assign(event_timestamp=labels.event_timestamp.dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")) \
        .to_csv(csv, index=False)
    out = tmp_path / "small.parquet"
    result = run(applied, "historical", "-e", str(csv), "-o", str(out), "--full-feature-names",
                 "--features", "user_spend:amount_sum_7d,merchant_risk:risk_score",
                 "--features", "user_merchant:pair_txn_count")
    assert result.exit_code == 0, result.output
    table = pq.read_table(out)
    assert table.num_rows == 100
    assert table.column_names[-3:] == ["user_spend__amount_sum_7d", "merchant_risk__risk_score",
                                       "user_merchant__pair_txn_count"]
    reference = pq.read_table(applied / "data" / "labels.parquet").slice(20_000, 100)
    direct = FeatureStore(applied).get_historical_features(
        reference, features=["user_spend:amount_sum_7d"], full_feature_names=True).to_arrow()
    assert table.column("user_spend__amount_sum_7d").to_pylist() == \
        direct.column("user_spend__amount_sum_7d").to_pylist()


def test_historical_as_of_hides_later_corrections(applied: Path, tmp_path: Path) -> None:
    labels = str(applied / "data" / "labels.parquet")
    early = tmp_path / "early.parquet"
    result = run(applied, "historical", "-e", labels, "-o", str(early), "-f", "user_spend:txn_count_7d",
                 "--as-of", "2024-02-01T00:00:00Z")
    assert result.exit_code == 0, result.output
    table = pq.read_table(early).to_pandas()
    after = table[table.event_timestamp >= pd.Timestamp("2024-03-05", tz="UTC")]
    assert after.txn_count_7d.isna().all()   # everything known by Feb 1 is past its 30-day ttl


@pytest.mark.parametrize("args, message", [
    (["--service", "fraud_model_v1", "--features", "user_spend:txn_count_7d"], "exactly one of"),
    ([], "exactly one of"),
    (["--features", "user_spend:amount_sum_7"], "did you mean 'amount_sum_7d'"),
    (["--service", "fraud_model_v2"], "did you mean 'fraud_model_v1'"),
    (["--service", "fraud_model_v1", "--as-of", "last tuesday"], "--as-of 'last tuesday' is not an ISO date"),
])
def test_historical_errors(applied: Path, tmp_path: Path, args: list[str], message: str) -> None:
    out = tmp_path / "x.parquet"
    result = run(applied, "historical", "-e", str(applied / "data" / "labels.parquet"),
                 "-o", str(out), *args)
    assert result.exit_code == 1, result.output
    assert "error:" in result.output and message in result.output
    assert not out.exists()


def test_historical_missing_entities_file(applied: Path, tmp_path: Path) -> None:
    result = run(applied, "historical", "-e", str(tmp_path / "nope.parquet"), "-o",
                 str(tmp_path / "x.parquet"), "--service", "fraud_model_v1")
    assert result.exit_code == 1
    assert "does not exist" in result.output


def test_historical_reports_bad_entity_files(applied: Path, tmp_path: Path) -> None:
    csv = tmp_path / "labels.csv"
    csv.write_text("user_id,merchant_id,event_timestamp\n1001,m_0001,2024-02-01T10:00:00Z\n"
                   "1002,m_0002,yesterday\n")
    garbage = tmp_path / "labels.parquet"
    garbage.write_text("not parquet")
    for path, message in ((csv, "row 2 holds 'yesterday', which is not an ISO timestamp"),
                          (garbage, "cannot read entities file")):
        result = run(applied, "historical", "-e", str(path), "-o", str(tmp_path / "x.parquet"),
                     "--service", "fraud_model_v1")
        assert result.exit_code == 1, result.output
        assert message in result.output


# --- the real entry point ----------------------------------------------------------------------
def _skewless() -> list[str]:
    script = Path(sys.executable).with_name("skewless")
    return [str(script)] if script.exists() else [sys.executable, "-m", "skewless.cli"]


def test_entry_point_reports_errors_without_traceback(repo: Path) -> None:
    (repo / "feature_store.yaml").write_text("project: fraud\n  registry: [\n")
    done = subprocess.run([*_skewless(), "--repo", str(repo), "plan"], capture_output=True, text=True)
    assert done.returncode == 1
    assert done.stderr.startswith("error: ")
    assert "line 2" in done.stderr and "hint: " in done.stderr
    assert "Traceback" not in done.stderr + done.stdout


def test_entry_point_runs_a_command(applied: Path) -> None:
    env = {**os.environ, "SKEWLESS_REPO": str(applied)}
    done = subprocess.run([*_skewless(), "ls", "services"], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    assert "fraud_model_v1" in done.stdout


@pytest.mark.slow
def test_quickstart_runs_end_to_end(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, str(ROOT / "examples" / "quickstart.py")], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Every label row kept, in order, with its columns untouched: yes" in done.stdout
    assert "Applied: registry of project 'fraud' is now at version 1" in done.stdout
    assert (tmp_path / "demo_repo" / "data" / "registry.db").exists()
