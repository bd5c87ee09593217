"""The DuckDB engine's compiled SQL, pinned in golden files so a semantic change shows in review.

Regenerate after an intended change: SKEWLESS_UPDATE_GOLDEN=1 pytest tests/unit/test_golden_sql.py
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from skewless import types as T
from skewless.engines.sql import compile_aggregate, compile_latest, compile_plan
from skewless.kernels.source import ResolvedSource
from skewless.plan.aggregate import AggregateColumn, AggregateRequest
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


def _aggregate(event_id: str | None, columns: tuple[AggregateColumn, ...], delay_us: int = 0) -> AggregateRequest:
    loc = "/repo/data/tx"
    return AggregateRequest(
        view="tx", source=ResolvedSource(loc, (f"{loc}/a.parquet",), True, False), timestamp_column="event_ts",
        created_column="created_ts" if event_id else None, event_id_column=event_id,
        join_keys=("user_id",), source_keys=("src_user_id",), columns=columns,
        value_columns=(("amount", T.Float64), ("merchant", T.String)), use_default=True, delay_us=delay_us)


_M5, _H = 300_000_000, 3_600_000_000
AGGREGATE = {
    "aggregate_sum_count_default": (_aggregate(None, (
        AggregateColumn("amount_sum_1h", "amount_sum_1h", "sum", "amount", T.Float64, T.Float64, _H, _M5, 0.0),
        AggregateColumn("amount_count_1h", "tx__amount_count_1h", "count", "amount", T.Float64, T.Int64, _H,
                        _M5, None))), None),
    "aggregate_event_id_stddev_last_as_of": (_aggregate("tx_id", (
        AggregateColumn("amount_stddev_samp_7d", "amount_stddev_samp_7d", "stddev_samp", "amount", T.Float64,
                        T.Float64, 168 * _H, _H, None),
        AggregateColumn("merchant_last_1h", "merchant_last_1h", "last", "merchant", T.String, T.String, _H, _M5,
                        None),
        AggregateColumn("amount_max_1d", "amount_max_1d", "max", "amount", T.Float64, T.Float64, 24 * _H, _H,
                        None))), _T1),
    # a source with availability_delay=6h: a label counts the window's events usable by then
    "aggregate_delayed_sum_mean": (_aggregate(None, (
        AggregateColumn("amount_sum_1d", "amount_sum_1d", "sum", "amount", T.Float64, T.Float64, 24 * _H, _H,
                        None),
        AggregateColumn("amount_mean_1h", "amount_mean_1h", "mean", "amount", T.Float64, T.Float64, _H, _M5,
                        None)), delay_us=6 * _H), None),
}


@pytest.mark.parametrize("case", sorted(AGGREGATE))
def test_aggregate_sql_matches_golden(case):
    request, as_of = AGGREGATE[case]
    _check(case, compile_aggregate(request, "__skewless_entity", "event_timestamp", as_of).text())
