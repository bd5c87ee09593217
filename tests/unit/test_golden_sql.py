"""The DuckDB engine's compiled SQL, pinned in golden files so a semantic change shows in review.

Regenerate after an intended change: SKEWLESS_UPDATE_GOLDEN=1 pytest tests/unit/test_golden_sql.py
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from skewless import types as T
from skewless.engines.sql import compile_latest, compile_plan
from skewless.kernels.source import ResolvedSource
from skewless.plan.historical import FeatureColumn, HistoricalPlan, ViewRequest
from skewless.plan.materialize import MaterializeRequest

GOLDEN = Path(__file__).parent.parent / "golden"


def _view(name, created, ttl, default, keys=("user_id",), is_dir=False, delay=None):
    loc = f"/repo/data/{name}" + ("" if is_dir else ".parquet")
    src = ResolvedSource(loc, () if is_dir else (loc,), is_dir, False)
    return ViewRequest(
        view=name, source=src, timestamp_column="event_ts", created_column=created,
        join_keys=keys, source_keys=tuple(f"src_{k}" for k in keys), ttl=ttl,
        use_default=default is not None,
        features=(FeatureColumn("amount", "amount", "amount", T.Float64, default),
                  FeatureColumn("n", "n_raw", f"{name}__n", T.Int64, None)),
        availability_delay=delay)


CASES = {
    "one_view_no_ttl": HistoricalPlan((_view("spend", None, None, None),), "event_timestamp"),
    "created_ttl_default": HistoricalPlan((_view("spend", "created_ts", timedelta(days=7, microseconds=1), 0.5),),
                                          "event_timestamp"),
    "two_views_composite_as_of": HistoricalPlan(
        (_view("spend", "created_ts", timedelta(hours=1), None),
         _view("pair", None, None, None, keys=("user_id", "merchant_id"), is_dir=True)),
        "event_timestamp", as_of=datetime(2024, 3, 1, tzinfo=timezone.utc)),
    # availability delay: the probe is the label's time less the delay; the ttl bound is not
    "delayed_created_ttl": HistoricalPlan(
        (_view("daily", "created_ts", timedelta(days=2), None, delay=timedelta(hours=6)),),
        "event_timestamp"),
    "delayed_no_created_as_of": HistoricalPlan(
        (_view("daily", None, None, 0.5, delay=timedelta(hours=6, microseconds=1)),),
        "event_timestamp", as_of=datetime(2024, 3, 1, tzinfo=timezone.utc)),
}

_T0 = datetime(2024, 1, 1, tzinfo=timezone.utc)
_T1 = datetime(2024, 3, 1, tzinfo=timezone.utc)
_FEATS = (FeatureColumn("amount", "amount_raw", "amount", T.Float64, None),
          FeatureColumn("tags", "tags", "tags", T.Array(T.String), None))
LATEST = {
    "latest_whole_file": MaterializeRequest(
        "spend", ResolvedSource("/repo/data/spend.parquet", ("/repo/data/spend.parquet",), False, False),
        "event_ts", None, ("user_id",), ("src_user_id",), _FEATS, _T1),
    "latest_incremental_folder": MaterializeRequest(
        "pair", ResolvedSource("/repo/data/pair", ("/repo/data/pair/d=1/a.parquet", "/repo/data/pair/d=2/b.parquet"),
                               True, False),
        "event_ts", "created_ts", ("user_id", "merchant_id"), ("user_id", "mid"), _FEATS, _T1,
        start=_T0, created_after=_T0),
    "latest_window_files": MaterializeRequest(
        "spend", ResolvedSource("/repo/data/*.parquet", ("/repo/data/a.parquet", "/repo/data/b'.parquet"),
                                False, False),
        "event_ts", "created_ts", ("user_id",), ("user_id",), _FEATS, _T1, start=_T0),
}


def _check(name: str, text: str) -> None:
    path = GOLDEN / f"duckdb_{name}.sql"
    if os.environ.get("SKEWLESS_UPDATE_GOLDEN"):
        path.write_text(text)
    assert text == path.read_text(), f"compiled SQL changed; review and regenerate {path.name}"


@pytest.mark.parametrize("case", sorted(CASES))
def test_compiled_sql_matches_golden(case):
    _check(case, compile_plan(CASES[case], "__skewless_entity", with_entity_columns=False).text())


@pytest.mark.parametrize("case", sorted(LATEST))
def test_latest_per_key_sql_matches_golden(case):
    sql, params = compile_latest(LATEST[case])
    _check(case, f"{sql};\n-- params: {params!r}\n")
