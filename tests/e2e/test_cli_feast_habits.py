"""The CLI as Feast users drive it: ``--repo`` after the command as well as before, a Feast
``feature_store.yaml`` accepted with one note per mapped key, and bad config values stopped at
load, naming the key or the environment variable (docs/configuration.md, README "CLI")."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from skewless.cli import app
from skewless.store import FeatureStore

runner = CliRunner()

# One run of every command, each of which reads the repo (init writes it instead).
RUNS = {
    "plan": [], "apply": [], "ls": [], "describe": ["user"], "history": [],
    "historical": ["-e", "{repo}/data/labels.parquet", "-o", "{out}/t.parquet",
                   "--service", "fraud_model_v1"],
    "materialize": ["2024-01-01", "2024-01-02"], "materialize-incremental": ["2024-01-02"],
    "rebuild-online": [], "online-status": [],
}


def invoke(*args: str, env: dict[str, str] | None = None):  # noqa: ANN201
    result = runner.invoke(app, list(args), env=env)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    assert "Traceback" not in result.output
    return result


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("feast-habits") / "fraud"
    assert invoke("init", str(base)).exit_code == 0
    return base


@pytest.fixture
def repo(template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh copy of the example repo; the working directory is elsewhere."""
    copy = Path(shutil.copytree(template, tmp_path / "repo"))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    return copy


# --- --repo after the command -------------------------------------------------------------------
def test_every_command_takes_repo_after_its_name() -> None:
    group = typer.main.get_command(app)
    for name, command in group.commands.items():  # type: ignore[attr-defined]
        opts = [o for p in command.params for o in getattr(p, "opts", [])]
        assert "--repo" in opts and "-r" in opts, name
        assert "--repo" in invoke(name, "--help").output, name


@pytest.mark.parametrize("command", list(RUNS))
def test_repo_after_the_command_equals_repo_before(repo: Path, tmp_path: Path, command: str) -> None:
    assert invoke("apply", "--repo", str(repo)).exit_code == 0
    args = [a.format(repo=repo, out=tmp_path) for a in RUNS[command]]
    after = invoke(command, *args, "--repo", str(repo))
    before = invoke("--repo", str(repo), command, *args)
    assert after.exit_code == before.exit_code == 0, after.output
    assert "no feature_store.yaml" not in after.output


def test_short_repo_after_the_command(repo: Path) -> None:
    result = invoke("plan", "-r", str(repo))
    assert result.exit_code == 0 and "to create" in result.output


def test_repo_after_the_command_wins_over_the_one_before(repo: Path, tmp_path: Path) -> None:
    result = invoke("--repo", str(tmp_path / "nowhere"), "plan", "--repo", str(repo))
    assert result.exit_code == 0, result.output


def test_repo_after_the_command_wins_over_the_environment(repo: Path, tmp_path: Path) -> None:
    result = invoke("plan", "--repo", str(repo), env={"SKEWLESS_REPO": str(tmp_path / "nowhere")})
    assert result.exit_code == 0, result.output


def test_init_takes_repo_after_its_name(tmp_path: Path) -> None:
    target = tmp_path / "new_repo"
    assert invoke("init", "--repo", str(target)).exit_code == 0
    assert (target / "feature_store.yaml").is_file()


def test_without_repo_the_working_directory_is_used(repo: Path) -> None:
    result = invoke("plan")
    assert result.exit_code == 1 and "no feature_store.yaml" in result.output


# --- a Feast feature_store.yaml -----------------------------------------------------------------
FEAST_YAML = """\
project: fraud
registry:
  registry_type: file
  path: data/registry.db
  cache_ttl_seconds: 60
provider: local
offline_store:
  type: file
online_store:
  type: sqlite
  path: data/online.db
entity_key_serialization_version: 3
"""


def test_feast_yaml_runs_with_one_note_per_mapped_key(repo: Path) -> None:
    (repo / "feature_store.yaml").write_text(FEAST_YAML)
    result = invoke("plan", "--repo", str(repo))
    assert result.exit_code == 0, result.output
    notes = [line for line in result.stderr.splitlines() if line.startswith("note: ")]
    assert notes == [
        "note: feature_store.yaml: provider 'local' is what skewless always is (it runs "
        "in-process); the key is ignored",
        "note: feature_store.yaml: entity_key_serialization_version is ignored: skewless has one "
        "entity-key encoding for every online store",
        "note: feature_store.yaml: registry.path maps to registry: data/registry.db; "
        "cache_ttl_seconds to registry_cache_ttl_seconds: 60 (a SQLite file of skewless's own, not "
        "Feast's protobuf registry)",
        "note: feature_store.yaml: offline_store.type 'file' runs on DuckDB (the same Parquet "
        "files, read in one engine); write type: duckdb to silence this note",
    ]
    assert "note:" not in result.stdout


def test_native_yaml_prints_no_note(repo: Path) -> None:
    result = invoke("plan", "--repo", str(repo))
    assert result.exit_code == 0 and "note:" not in result.output


def test_feast_yaml_refusal_says_what_to_write(repo: Path) -> None:
    (repo / "feature_store.yaml").write_text(FEAST_YAML.replace("type: file", "type: bigquery"))
    result = invoke("plan", "--repo", str(repo))
    assert result.exit_code == 1
    assert "'offline_store.type' must be one of" in result.output
    assert "offline_store: {type: duckdb}" in result.output


# --- config values stopped at load ----------------------------------------------------------------
@pytest.mark.parametrize("command", ["apply", "historical"])
def test_memory_limit_lots_is_refused_before_anything_runs(repo: Path, tmp_path: Path, command: str) -> None:
    assert invoke("apply", "--repo", str(repo)).exit_code == 0
    (repo / "feature_store.yaml").write_text(
        (repo / "feature_store.yaml").read_text() + "offline_store:\n  memory_limit: lots\n")
    args = [a.format(repo=repo, out=tmp_path) for a in RUNS.get(command, [])]
    result = invoke(command, *args, "--repo", str(repo))
    assert result.exit_code == 1
    assert "'offline_store.memory_limit': 'lots' is not a size" in result.output
    assert "4GB, 512MiB or 80%" in result.output
    assert "ParserException" not in result.output and "DuckDB" not in result.output
    assert len(result.output.splitlines()) <= 6
    assert not (tmp_path / "t.parquet").exists()


def test_env_typo_is_blamed_on_the_variable(repo: Path) -> None:
    result = invoke("plan", "--repo", str(repo), env={"SKEWLESS_ONLINE_STORE__PTH": "x"})
    assert result.exit_code == 1
    assert "environment variable SKEWLESS_ONLINE_STORE__PTH" in result.output
    assert "did you mean SKEWLESS_ONLINE_STORE__PATH?" in result.output
    assert "feature_store.yaml: invalid" not in result.output


def test_feast_yaml_store_from_the_sdk_has_the_notes(repo: Path) -> None:
    (repo / "feature_store.yaml").write_text(FEAST_YAML)
    store = FeatureStore(repo_path=str(repo))
    assert len(store.config.notes) == 4 and store.config.registry_cache_ttl_seconds == 60
