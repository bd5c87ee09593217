"""``FileSource(availability_delay=...)``: the definition field, its plan reading and the
materialization window it shifts (docs/point-in-time.md, "Availability delay")."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pandas as pd
import pytest

from skewless import Entity, FeatureStore, FeatureView, Field, FileSource, PushSource
from skewless.cli import catalog
from skewless.cli._common import console
from skewless.errors import DefinitionError
from skewless.plan.materialize import materialize_request
from skewless.registry import Snapshot, diff
from skewless.registry.diff import materialization_signature
from skewless.types import Float64

UTC = timezone.utc
SIX = timedelta(hours=6)
user = Entity("user", join_keys=["user_id"])


@pytest.mark.parametrize(("given", "expected"), [
    (SIX, SIX), (21_600, SIX), (21_600.0, SIX), (0.5, timedelta(milliseconds=500)),
    (None, None), (0, None), (timedelta(0), None)])
def test_a_delay_is_a_timedelta_or_seconds_and_zero_means_none(given, expected) -> None:
    assert FileSource("data/d.parquet", "ts", availability_delay=given).availability_delay == expected


@pytest.mark.parametrize(("given", "says"), [
    (-1, r"-1 is negative"),
    (timedelta(hours=-6), r"-6:00:00 is negative; a row cannot land before "),
    ("6h", r"must be a timedelta \(or seconds\), got '6h'"),
    (True, r"must be a timedelta \(or seconds\), got True"),
    (float("inf"), r"inf is not a finite number of seconds"),
    (float("nan"), r"nan is not a finite number of seconds"),
    (10 ** 20, r"100000000000000000000 is not a finite number of seconds within"),   # OverflowError
    (timedelta.max, r"999999999 days, 23:59:59.999999 is longer than 36,525,000 days"),
])
def test_a_bad_delay_is_an_error_naming_the_source(given, says) -> None:
    with pytest.raises(DefinitionError, match=r"^FileSource 'daily': availability_delay " + says) as e:
        FileSource("data/daily.parquet", "ts", availability_delay=given)
    assert e.value.hint


@pytest.mark.parametrize("given", [10 ** 20, timedelta.max, timedelta(days=999_999_999)])
def test_a_ttl_beyond_what_times_compare_with_is_an_error_naming_the_view(given) -> None:
    """The ttl's neighbour: both durations are compared in 64-bit microseconds on every path
    (a ttl of timedelta.max reached DuckDB as a literal it cannot take, blamed on the source)."""
    with pytest.raises(DefinitionError, match=r"^feature view 'v': ttl ") as e:
        FeatureView("v", [user], [Field("x", Float64)], FileSource("data/d.parquet", "ts"), ttl=given)
    assert e.value.hint


def test_a_delay_of_a_thousand_years_still_runs() -> None:
    assert FileSource("d", "ts", availability_delay=timedelta(days=365_250)).availability_delay == \
        timedelta(days=365_250)


def test_the_spec_holds_the_delay_only_when_there_is_one() -> None:
    """A source without a delay is stored, compared and digested as before the field existed."""
    plain = FileSource("data/d.parquet", "ts")
    assert "availability_delay_seconds" not in plain.to_spec()
    delayed = FileSource("data/d.parquet", "ts", availability_delay=SIX)
    stored = json.loads(json.dumps(delayed.to_spec()))
    assert stored["availability_delay_seconds"] == 21_600.0
    assert FileSource.from_spec(stored) == delayed != plain
    assert "6h" not in repr(plain) and "availability_delay" in repr(delayed)


def _snap(delay: timedelta | None, push: bool = False) -> Snapshot:
    src = FileSource("data/events", "ts", availability_delay=delay)
    view = FeatureView("v", [user], [Field("x", Float64)],
                       PushSource("p", batch_source=src) if push else src)
    return Snapshot("proj", 1, {"user": user}, {"v": view}, {})


@pytest.mark.parametrize("push", [False, True])
def test_changing_the_delay_is_breaking_and_starts_the_online_table_over(push: bool) -> None:
    old, new = _snap(None, push), _snap(SIX, push)
    (change,) = diff(old, new)
    assert change.breaking == ["source.availability_delay changed none -> 6:00:00"]
    assert change.destructive and "(availability delay none -> 6:00:00: records chosen under the " \
        "old delay)" in change.destructive[0]
    sig = materialization_signature
    assert sig(old, old.feature_views["v"]) != sig(new, new.feature_views["v"])
    (back,) = diff(new, _snap(timedelta(hours=3), push))
    assert back.breaking == ["source.availability_delay changed 6:00:00 -> 3:00:00"]


def test_apply_refuses_a_delay_change_unless_forced(tmp_path: Path) -> None:
    (tmp_path / "data" / "events").mkdir(parents=True)
    pd.DataFrame({"user_id": [1], "ts": [pd.Timestamp("2024-01-01", tz="UTC")], "x": [1.0]}).to_parquet(
        tmp_path / "data" / "events" / "a.parquet")
    fs = FeatureStore(tmp_path, config={"project": "proj", "registry": "data/registry.db"})
    view = _snap(None).feature_views["v"]
    fs.apply([user, view])
    delayed = _snap(SIX).feature_views["v"]
    with pytest.raises(Exception, match="availability_delay changed none -> 6:00:00"):
        fs.apply([user, delayed])
    fs.apply([user, delayed], force=True)
    assert fs.get_feature_view("v").batch_source.availability_delay == SIX


def test_describe_and_ls_show_the_delay() -> None:
    snap = _snap(SIX)
    with console.capture() as out:
        catalog.describe_view(snap, snap.feature_views["v"])
    assert "availability delay" in out.get() and "6h" in out.get()
    with console.capture() as out:
        catalog.show_views(snap)
    assert "data/events (+6h)" in out.get()


def test_a_materialization_window_is_of_landing_times(tmp_path: Path) -> None:
    """Rows landing in [start, end]: event times in [start - delay, end - delay]."""
    (tmp_path / "data" / "events").mkdir(parents=True)
    pd.DataFrame({"user_id": [1], "ts": [pd.Timestamp("2024-01-01", tz="UTC")], "x": [1.0]}).to_parquet(
        tmp_path / "data" / "events" / "a.parquet")
    snap = _snap(SIX)
    end, start = datetime(2024, 1, 3, 6, tzinfo=UTC), datetime(2024, 1, 2, 6, tzinfo=UTC)
    req = materialize_request(snap, snap.feature_views["v"], tmp_path, end, start)
    assert (req.start, req.end) == (start - SIX, end - SIX)
    plain = _snap(None)
    req = materialize_request(plain, plain.feature_views["v"], tmp_path, end, None)
    assert (req.start, req.end) == (None, end)


def test_online_status_counts_the_delay_in_staleness() -> None:
    """The newest row a watermark covers is at most ``watermark - delay`` old: every record is
    outside the ttl once age + delay passes it."""
    from skewless.services.online_status import ViewStatus

    def status(age: timedelta, delay: timedelta | None) -> ViewStatus:
        return ViewStatus("v", "t", 1, True, datetime(2024, 1, 1, tzinfo=UTC), age, None, None,
                          timedelta(days=1), availability_delay=delay)
    assert not status(timedelta(hours=20), None).all_outside_ttl
    assert status(timedelta(hours=20), SIX).all_outside_ttl
    assert not status(timedelta(hours=18), SIX).all_outside_ttl
