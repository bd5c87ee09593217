"""Feature logging (docs/feature-logging.md): what is logged is exactly what was served; the
sample rate holds; a full queue or a failing disk never touches a request; a process killed
mid-logging leaves only readable files; compaction and retention. Real SQLite online store,
real Parquet files."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from skewless import FeatureService, FeatureStore, LoggingConfig, FileLoggingDestination
from skewless.errors import ConfigError, DefinitionError, InvalidRequestError
from skewless.monitoring import feature_log as FL

from .conftest import pair, pair_view, spend_view, user, write_data

NOW = datetime(2024, 2, 10, 12, 0, tzinfo=timezone.utc)
ROWS = [{"user_id": "u1", "merchant_id": "m1"}, {"user_id": "u2", "merchant_id": "m1"},
        {"user_id": "u3", "merchant_id": "m2"}, {"user_id": "u9", "merchant_id": "m1"}]


def make_store(repo: Path, logging: dict[str, Any] | None = None, service_logging: Any = None,
               clock: Any = None) -> FeatureStore:
    write_data(repo)
    config: dict[str, Any] = {"project": "fraud", "registry": "data/registry.db"}
    if logging is not None:
        config["logging"] = logging
    fs = FeatureStore(repo, config=config, clock=clock or (lambda: NOW))
    fs.apply([user, pair, spend_view(), pair_view(),
              FeatureService("fraud_v1", [spend_view()[["amount", "n_txn"]], pair_view()],
                             logging_config=service_logging),
              FeatureService("plain", [spend_view()[["amount"]]])])
    fs.materialize("2024-01-01", NOW)
    fs.serving_snapshot()   # the serving path reads the definitions: logging starts
    return fs


def test_logged_rows_are_exactly_what_was_served(tmp_path: Path) -> None:
    fs = make_store(tmp_path, {"sample_rate": 1.0})
    answers = [fs.get_online_features(features="fraud_v1", entity_rows=ROWS),
               fs.get_online_features(feature_service=fs.get_feature_service("fraud_v1"),
                                      entity_rows=ROWS[:2], full_feature_names=True)]
    many = fs.get_online_features_many([("fraud_v1", ROWS[2:], False), (["user_spend:amount"], ROWS, False)])
    answers.append(many[0])
    assert fs.flush_feature_logs()
    logs = fs.read_feature_logs("fraud_v1").to_pylist()
    assert len(logs) == 4 + 2 + 2      # the read by feature references is not logged
    i = 0
    for resp in answers:
        d = resp.to_dict()
        stamps, statuses = resp.event_timestamps, resp.statuses
        n = len(d["user_id"])
        request_ids = {row["__request_id"] for row in logs[i:i + n]}
        assert len(request_ids) == 1
        for j in range(n):
            row = logs[i + j]
            assert row["user_id"] == d["user_id"][j] and row["merchant_id"] == d["merchant_id"][j]
            for out, col in (("amount", "user_spend__amount"), ("n_txn", "user_spend__n_txn"),
                             ("last_country", "pair_stats__last_country")):
                name = out if out in d else col
                assert row[col] == d[name][j]
                assert row[col + "__status"] == statuses[name][j]
                assert row[col + "__timestamp"] == stamps[name][j]
            assert row["__log_timestamp"] == NOW
            assert row["__feature_service"] == "fraud_v1"
        i += n
    statuses_seen = {r["pair_stats__last_country__status"] for r in logs} | {r["user_spend__amount__status"] for r in logs}
    assert {"PRESENT", "NOT_FOUND", "OUTSIDE_TTL"} <= statuses_seen
    # the layout of docs/feature-logging.md
    files = list((tmp_path / "data/feature_logs/feature_service=fraud_v1/log_date=2024-02-10").glob("*.parquet"))
    assert files and all(f.name.startswith("log-") for f in files)
    schema = pq.read_schema(files[0])
    assert str(schema.field("__log_timestamp").type) == "timestamp[us, tz=UTC]"
    assert str(schema.field("user_spend__amount__timestamp").type) == "timestamp[us, tz=UTC]"
    assert str(schema.field("user_spend__n_txn").type) == "int64"
    fs.close()


def test_no_hook_when_logging_is_off(tmp_path: Path) -> None:
    fs = make_store(tmp_path)
    fs.get_online_features(features="fraud_v1", entity_rows=ROWS)
    assert fs.feature_logger is None and fs.hooks == ()
    assert not (tmp_path / "data/feature_logs").exists()


def test_a_service_logging_config_turns_logging_on_for_it_only(tmp_path: Path) -> None:
    fs = make_store(tmp_path, service_logging=LoggingConfig(
        destination=FileLoggingDestination(path="data/fraud_logs"), sample_rate=1.0))
    assert fs.feature_logger is not None
    fs.get_online_features(features="fraud_v1", entity_rows=ROWS)
    fs.get_online_features(features="plain", entity_rows=ROWS)   # global rate 0: not logged
    assert fs.flush_feature_logs()
    assert fs.read_feature_logs("fraud_v1").num_rows == 4
    assert fs.read_feature_logs("plain").num_rows == 0
    assert (tmp_path / "data/fraud_logs/feature_service=fraud_v1").is_dir()
    fs.close()


def test_the_sample_rate_is_honoured(tmp_path: Path) -> None:
    fs = make_store(tmp_path, {"sample_rate": 0.25, "queue_size": 5000})
    for _ in range(2000):
        fs.get_online_features(features="plain", entity_rows=ROWS[:1])
    assert fs.flush_feature_logs()
    n = fs.read_feature_logs("plain").num_rows
    assert 350 <= n <= 650      # expected 500, sd ~19: far beyond any chance failure
    assert fs.feature_logger.logged == n and fs.feature_logger.dropped == 0
    fs.close()


def test_a_full_queue_drops_and_counts_never_blocks(tmp_path: Path) -> None:
    fs = make_store(tmp_path, {"sample_rate": 1.0, "queue_size": 5})
    logger = fs.feature_logger
    before = FL.DROPPED.labels("fraud_v1")._value.get()
    logger.pause()                      # the writer takes nothing from the queue meanwhile
    try:
        want = fs.get_online_features(features="fraud_v1", entity_rows=ROWS).to_dict()
        for _ in range(19):
            assert fs.get_online_features(features="fraud_v1", entity_rows=ROWS).to_dict() == want
        assert logger.dropped == 15 and logger.logged == 5
        assert FL.DROPPED.labels("fraud_v1")._value.get() - before == 15
    finally:
        logger.resume()
    assert fs.flush_feature_logs()
    assert fs.read_feature_logs("fraud_v1").num_rows == 5 * len(ROWS)
    fs.close()


def test_a_failing_write_never_fails_a_request(tmp_path: Path) -> None:
    fs = make_store(tmp_path, {"sample_rate": 1.0})
    fs.close()

    def broken(directory: Path, table: Any) -> None:
        raise OSError(28, "No space left on device")

    logger = FL.FeatureLogger(fs, writer=broken)
    fs._feature_logger = logger
    fs.add_hook(logger)
    want = fs.get_online_features(features="fraud_v1", entity_rows=ROWS).to_dict()
    assert logger.flush()
    assert logger.write_errors == 1 and logger.lost_rows == 4 and logger.files == 0
    assert fs.get_online_features(features="fraud_v1", entity_rows=ROWS).to_dict() == want
    fs.close()


def test_a_bad_log_path_never_fails_a_request(tmp_path: Path) -> None:
    (tmp_path / "blocker").write_text("a file, not a folder")
    fs = make_store(tmp_path, {"sample_rate": 1.0, "path": "blocker/logs"})
    assert fs.get_online_features(features="fraud_v1", entity_rows=ROWS).to_dict()["user_id"] == ["u1", "u2", "u3", "u9"]
    assert fs.flush_feature_logs()
    assert fs.feature_logger.write_errors == 1
    fs.close()


def test_close_flushes_what_is_queued(tmp_path: Path) -> None:
    fs = make_store(tmp_path, {"sample_rate": 1.0, "flush_interval_seconds": 3600})
    fs.get_online_features(features="fraud_v1", entity_rows=ROWS)
    fs.close()
    assert FeatureStore(tmp_path, config={"project": "fraud", "registry": "data/registry.db"}
                        ).read_feature_logs("fraud_v1").num_rows == 4


CRASHER = textwrap.dedent("""
    import sys
    sys.path.insert(0, {src!r})
    from skewless import FeatureStore
    fs = FeatureStore({repo!r}, config={{"project": "fraud", "registry": "data/registry.db",
        "logging": {{"sample_rate": 1.0, "flush_rows": 40, "flush_interval_seconds": 0.05}}}})
    fs.serving_snapshot()
    rows = [{{"user_id": "u1", "merchant_id": "m1"}}, {{"user_id": "u2", "merchant_id": "m1"}}]
    i = 0
    while True:
        fs.get_online_features(features="fraud_v1", entity_rows=rows)
        i += 1
        if i == 200:
            print("running", flush=True)
""")


def test_a_process_killed_mid_logging_leaves_only_readable_files(tmp_path: Path) -> None:
    make_store(tmp_path).close()
    src = str(Path(__file__).resolve().parents[2] / "src")
    proc = subprocess.Popen([sys.executable, "-c", CRASHER.format(src=src, repo=str(tmp_path))],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == b"running", proc.stderr.read() if proc.stderr else ""
        part = tmp_path / "data/feature_logs/feature_service=fraud_v1"
        deadline = time.monotonic() + 60
        while len(list(part.rglob("log-*.parquet"))) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait(10)
    files = list(part.rglob("log-*.parquet"))
    assert len(files) >= 3
    for f in files:                      # every visible file is whole
        assert pq.read_table(f).num_rows > 0
    fs = FeatureStore(tmp_path, config={"project": "fraud", "registry": "data/registry.db"})
    assert fs.read_feature_logs("fraud_v1").num_rows == sum(pq.read_metadata(f).num_rows for f in files)


def test_compaction_merges_a_partition_and_retention_deletes_old_ones(tmp_path: Path) -> None:
    clock = [NOW]
    fs = make_store(tmp_path, {"sample_rate": 1.0, "retention_days": 7}, clock=lambda: clock[0])
    for _ in range(3):
        fs.get_online_features(features="fraud_v1", entity_rows=ROWS)
        assert fs.flush_feature_logs()         # one file per flush
    clock[0] = NOW - timedelta(days=30)
    fs.get_online_features(features="fraud_v1", entity_rows=ROWS)
    assert fs.flush_feature_logs()
    clock[0] = NOW
    root = tmp_path / "data/feature_logs/feature_service=fraud_v1"
    part = root / "log_date=2024-02-10"
    before = fs.read_feature_logs("fraud_v1", since=NOW - timedelta(days=1)).sort_by("__request_id")
    assert len(list(part.glob("log-*.parquet"))) == 3
    [report] = fs.compact_feature_logs(grace_seconds=0)
    assert list(report.merged.values()) == [3]
    assert report.expired == [str(root / "log_date=2024-01-11")]
    assert not (root / "log_date=2024-01-11").exists()
    visible = [p for p in part.iterdir() if p.suffix == ".parquet" and not p.name.startswith((".", "_"))]
    assert len(visible) == 1 and visible[0].name.startswith("compact-")
    after = fs.read_feature_logs("fraud_v1", since=NOW - timedelta(days=1)).sort_by("__request_id")
    assert after.equals(before)
    fs.close()


def test_a_compaction_before_the_grace_period_is_read_once(tmp_path: Path) -> None:
    fs = make_store(tmp_path, {"sample_rate": 1.0})
    for _ in range(2):
        fs.get_online_features(features="fraud_v1", entity_rows=ROWS)
        assert fs.flush_feature_logs()
    fs.compact_feature_logs()           # replaced files stay for the grace period
    part = tmp_path / "data/feature_logs/feature_service=fraud_v1/log_date=2024-02-10"
    assert len(list(part.glob("*.parquet"))) == 3
    assert fs.read_feature_logs("fraud_v1").num_rows == 8   # never twice
    fs.close()


def test_bad_logging_config_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="logging.sample_rate"):
        FeatureStore(tmp_path, config={"project": "p", "logging": {"sample_rate": 2}})
    with pytest.raises(ConfigError, match="logging.queue_sise"):
        FeatureStore(tmp_path, config={"project": "p", "logging": {"queue_sise": 2}})
    with pytest.raises(DefinitionError, match="sample_rate"):
        LoggingConfig(sample_rate=1.5)
    with pytest.raises(DefinitionError, match="logging_config"):
        FeatureService("s", [spend_view()], logging_config={"sample_rate": 1.0})


def test_a_service_without_logging_config_keeps_its_stored_form() -> None:
    plain = FeatureService("s", [spend_view()])
    assert "logging_config" not in plain.to_spec()
    logged = FeatureService("s", [spend_view()], logging_config=LoggingConfig(sample_rate=0.5))
    assert logged.to_spec()["logging_config"] == {"sample_rate": 0.5}
    assert FeatureService.from_spec(logged.to_spec()) == logged
    assert logged != plain


def test_request_columns_are_logged_and_missing_ones_are_null(tmp_path: Path) -> None:
    fs = make_store(tmp_path, {"sample_rate": 1.0})
    assert fs.feature_logger._thread is None          # no writer thread before a logged read
    fs.get_online_features(features="plain", entity_rows=[{"user_id": "u1", "channel": "web"}])
    fs.get_online_features(features="plain", entity_rows=[{"user_id": "u2"}, {"user_id": "u3"}])
    fs.get_online_features(features="plain", entity_rows=[{"user_id": "u9", "channel": "app"}])
    assert fs.flush_feature_logs()
    logs = fs.read_feature_logs("plain")
    assert logs["user_id"].to_pylist() == ["u1", "u2", "u3", "u9"]
    assert logs["channel"].to_pylist() == ["web", None, None, "app"]
    assert logs["user_spend__amount"].to_pylist() == [140.0, 89.0, 2100.0, None]
    fs.close()


def test_read_feature_logs_takes_times_as_the_audit_does(tmp_path: Path) -> None:
    # a duration before now ("1d"), as `skewless audit --since`, besides ISO times
    fs = make_store(tmp_path, {"sample_rate": 1.0})
    fs.get_online_features(features="fraud_v1", entity_rows=ROWS)
    assert fs.flush_feature_logs()
    everything = fs.read_feature_logs("fraud_v1")
    assert everything.num_rows == len(ROWS)
    assert fs.read_feature_logs("fraud_v1", since="1d").num_rows == len(ROWS)
    assert fs.read_feature_logs("fraud_v1", until="1d").num_rows == 0
    with pytest.raises(InvalidRequestError, match="since '1x' is not a duration"):
        fs.read_feature_logs("fraud_v1", since="1x")
