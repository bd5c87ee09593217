"""End to end: materialize, materialize-incremental, rebuild-online and online-status on the
example repo that `skewless init` creates (SQLite online store, the real clock)."""

from __future__ import annotations

import re
import shutil
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from typer.testing import CliRunner

from skewless.cli import app
from skewless.online import table_name
from skewless.online.codec import Record, encode_key, micros
from skewless.store import FeatureStore

COMMANDS = ["materialize", "materialize-incremental", "rebuild-online", "online-status"]
VIEWS = ["merchant_risk", "user_merchant", "user_spend"]
SEP = r"[\s│]+"   # between two cells of a rich table
runner = CliRunner()


def run(repo: Path | None, *args: str):  # noqa: ANN201
    argv = (["--repo", str(repo)] if repo is not None else []) + list(args)
    result = runner.invoke(app, argv, env={"COLUMNS": "100"})
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    assert "Traceback" not in result.output
    return result


def flat(text: str) -> str:
    return " ".join(text.split())


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("template") / "fraud"
    # the 2024 example: these tests name its dates (the default data ends near the current day)
    assert run(None, "init", str(base), "--data-end", "2024-04-01").exit_code == 0
    return base


@pytest.fixture
def applied(template: Path, tmp_path: Path) -> Path:
    repo = Path(shutil.copytree(template, tmp_path / "repo"))
    result = run(repo, "apply")
    assert result.exit_code == 0, result.output
    return repo


def entity_rows(repo: Path, n: int = 300) -> list[dict[str, Any]]:
    labels = pd.read_parquet(repo / "data" / "labels.parquet").iloc[::97].head(n)
    return [{"user_id": int(u), "merchant_id": m} for u, m in zip(labels.user_id, labels.merchant_id)]


def served(repo: Path, rows: list[dict[str, Any]]) -> dict[str, list[Any]]:
    return FeatureStore(repo).get_online_features("fraud_model_v1", rows).to_dict(
        include_statuses=True, include_event_timestamps=True)


def test_every_command_has_help() -> None:
    result = run(None, "--help")
    for cmd in COMMANDS:
        assert cmd in result.output
        sub = run(None, cmd, "--help")
        assert sub.exit_code == 0 and "Usage" in sub.output, (cmd, sub.output)


def test_materialize_status_and_rebuild(applied: Path) -> None:
    status = run(applied, "online-status")
    assert status.exit_code == 0, status.output
    assert status.output.count("never") == 4   # 3 views, and the advice
    assert "skewless materialize-incremental" in status.output

    result = run(applied, "materialize-incremental")
    assert result.exit_code == 0, result.output
    out = flat(result.output)
    assert "Materialized 14,762 rows of 3 views" in out
    for view, rows in (("merchant_risk", "200"), ("user_merchant", "13,563"), ("user_spend", "999")):
        assert re.search(rf"{view} .* {rows} .* the beginning", out), view
    assert "rows/s" in out

    status = run(applied, "online-status")
    assert status.exit_code == 0, status.output
    out = flat(status.output)
    assert "Online store (sqlite)" in out and "never" not in out
    for view, count in (("merchant_risk", "200"), ("user_merchant", "13,563"), ("user_spend", "999")):
        assert re.search(rf"{view} {count} \d{{4}}-\d\d-\d\d", out), (view, out)

    rows = entity_rows(applied)
    before = served(applied, rows)
    assert "PRESENT" in before["pair_txn_count__status"]

    rebuilt = run(applied, "rebuild-online")
    assert rebuilt.exit_code == 0, rebuilt.output
    out = flat(rebuilt.output)
    assert "Rebuilt 3 views in" in out
    for view, count in (("merchant_risk", "200"), ("user_merchant", "13,563"), ("user_spend", "999")):
        assert re.search(rf"{view}{SEP}{count}{SEP}{count}{SEP}ok{SEP}100{SEP}0{SEP}", out), (view, out)
    assert re.search(r"Verified: 14,762 entities .* Took \d+\.\d\ds", out)
    assert served(applied, rows) == before


def test_rebuild_repairs_a_damaged_store_and_reports_it(applied: Path) -> None:
    assert run(applied, "materialize-incremental").exit_code == 0
    rows = entity_rows(applied)
    before = served(applied, rows)
    fs = FeatureStore(applied)
    pair = table_name("fraud", "user_merchant")
    key = encode_key([rows[0]["user_id"], rows[0]["merchant_id"]])
    newer = micros(datetime(2025, 1, 1, tzinfo=timezone.utc))   # than any example row
    fs.online_store.write_batch({pair: [(key, Record.of(newer, newer, {"pair_txn_count": -1}))]})
    fs.online_store.drop([table_name("fraud", "merchant_risk")])
    assert served(applied, rows) != before

    result = run(applied, "rebuild-online", "--views", "user_merchant,merchant_risk")
    assert result.exit_code == 0, result.output
    assert "user_spend" not in result.output
    assert served(applied, rows) == before


def test_materialize_a_window_of_some_views(applied: Path) -> None:
    result = run(applied, "materialize", "2024-01-01", "2024-02-01T00:00:00Z",
                 "--views", "user_spend", "-v", "merchant_risk")
    assert result.exit_code == 0, result.output
    out = flat(result.output)
    assert "2024-01-01 UTC .. 2024-02-01 UTC" in out
    assert "user_merchant" not in out
    status = {s.view: s for s in FeatureStore(applied).online_status()}
    assert not status["user_merchant"].materialized
    # a window is coverage of that window only: no watermark (rows before 2024-01-01 are not online)
    window = (pd.Timestamp("2024-01-01", tz="UTC").to_pydatetime(), pd.Timestamp("2024-02-01", tz="UTC").to_pydatetime())
    assert status["user_spend"].watermark is None and status["user_spend"].covered == (window,)
    assert 0 < status["user_spend"].entities <= 999


@pytest.mark.parametrize("args, message", [
    (["materialize", "2024-01-01", "2999-01-01"], "end 2999-01-01T00:00:00+00:00 is in the future"),
    (["materialize-incremental", "2999-01-01T10:00:00"], "is in the future"),
    (["materialize", "2024-03-01", "2024-02-01"], "start 2024-03-01T00:00:00+00:00 is after end"),
    (["materialize", "last week", "now"], "START 'last week' is not an ISO date or datetime"),
    (["materialize-incremental", "--views", "user_spnd"], "did you mean 'user_spend'"),
    (["rebuild-online", "--views", "nope"], "feature view 'nope' is unknown"),
])
def test_errors_exit_1_with_a_clear_message(applied: Path, args: list[str], message: str) -> None:
    result = run(applied, *args)
    assert result.exit_code == 1, result.output
    assert result.output.startswith("error: ")
    assert message in flat(result.output)
    assert all(not s.materialized for s in FeatureStore(applied).online_status())


def test_a_failed_rebuild_exits_1_and_keeps_serving(applied: Path) -> None:
    assert run(applied, "materialize-incremental").exit_code == 0
    rows = entity_rows(applied, 50)
    before = served(applied, rows)
    (applied / "data" / "user_merchant.parquet").unlink()
    result = run(applied, "rebuild-online")
    assert result.exit_code == 1
    out = flat(result.output)
    assert "rebuild of feature view 'user_merchant' failed" in out and "left untouched" in out
    assert "Views rebuilt before the failure" in out and "merchant_risk" in out
    assert served(applied, rows) == before


def test_materialize_refuses_a_drifted_daily_file_cleanly(applied: Path) -> None:
    """A daily file of merchant_risk written later with risk_score as strings: materialize exits
    non-zero naming the view, the file and the column (no DuckDB error, no traceback), and
    writes nothing (docs/types.md)."""
    folder = applied / "data" / "merchant_risk"
    some = sorted(folder.rglob("*.parquet"))[-1]
    drifted = some.with_name("zz-drifted.parquet")
    df = pd.read_parquet(some)
    df.assign(risk_score=df["risk_score"].astype(str)).to_parquet(drifted)
    result = run(applied, "materialize-incremental")
    assert result.exit_code != 0
    text = flat(result.output)
    assert "merchant_risk" in text and "zz-drifted.parquet" in text and "'risk_score'" in text
    assert "nothing was written online" in text
    fs = FeatureStore(applied)
    assert fs.registry.list_state(fs.project, "materialization") == {}
    assert fs.online_status() and all(s.watermark is None for s in fs.online_status())


def test_a_store_written_by_an_earlier_version_is_named_and_rebuilt(applied: Path) -> None:
    """Tables under the old `{project}__{view}` names are not read: online-status says so, and
    one rebuild-online moves every view to its new name and drops the old table
    (docs/online-stores.md, "Upgrading from {project}__{view} names")."""
    assert run(applied, "materialize-incremental").exit_code == 0
    rows = entity_rows(applied)
    before = served(applied, rows)
    fs = FeatureStore(applied)
    con = fs.online_store._con()  # type: ignore[attr-defined]
    for view in VIEWS:   # the layout an earlier version left: the same tables, old names
        con.execute(f'ALTER TABLE "t_{table_name("fraud", view)}" RENAME TO "t_fraud__{view}"')
    statuses = {k: set(v) for k, v in served(applied, rows).items() if k.endswith("__status")}
    assert statuses and all(st == {"NOT_FOUND"} for st in statuses.values())

    status = run(applied, "online-status")
    assert status.exit_code == 0
    out = flat(status.output)
    assert "the online table is empty and" in out and "earlier skewless version" in out
    assert "run `skewless rebuild-online` once after the upgrade" in out

    result = run(applied, "rebuild-online")
    assert result.exit_code == 0, result.output
    assert served(applied, rows) == before
    assert all(fs.online_store.count(f"fraud__{view}") == 0 for view in VIEWS)
    assert "earlier skewless version" not in flat(run(applied, "online-status").output)


def test_rebuild_online_while_another_run_holds_the_lease(applied: Path) -> None:
    """The refusal the user sees: the holder, its expiry and what to do; nothing changed."""
    from dataclasses import replace

    from skewless.registry.lease import Lease

    assert run(applied, "materialize-incremental").exit_code == 0
    fs = FeatureStore(applied)
    holder = replace(Lease.new("fraud", "rebuild-online:user_spend", "rebuild-online of feature view "
                               "'user_spend'"), host="etl-7", pid=4242, command="skewless rebuild-online")
    fs.registry.acquire_lease(holder)
    rows = entity_rows(applied)
    before = served(applied, rows)
    result = run(applied, "rebuild-online", "--views", "user_spend")
    assert result.exit_code != 0
    out = flat(result.output)
    assert "rebuild-online of feature view 'user_spend' is already running in project 'fraud'" in out
    assert "pid 4242 on host 'etl-7' (command: 'skewless rebuild-online')" in out
    assert "its lease expires at" in out and "nothing was changed" in out
    assert "lapses at" in out and "Traceback" not in out
    assert served(applied, rows) == before
    fs.registry.release_lease(holder)
    assert run(applied, "rebuild-online", "--views", "user_spend").exit_code == 0
