"""Coverage, the meaning of a watermark (docs/online.md): intervals, holes, the created mark."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from skewless.online.base import LEGACY, StoreIdentity
from skewless.services.materialize import Coverage

US = timedelta(microseconds=1)


def d(day: int, hour: int = 0) -> datetime:
    return datetime(2025, 1, day, hour, tzinfo=timezone.utc)


def test_nothing_covered_is_one_hole_from_the_beginning() -> None:
    c = Coverage("sig")
    assert c.watermark is None and c.holes(d(5)) == [(None, d(5))]


def test_a_window_leaves_holes_before_and_after_it() -> None:
    c = Coverage("sig").cover(d(2), d(3), None, incremental=False)
    assert c.watermark is None
    assert c.holes(d(5)) == [(None, d(2) - US), (d(3) + US, d(5))]
    assert c.holes(d(2, 12)) == [(None, d(2) - US)]          # the end falls inside the window
    assert c.holes(d(1)) == [(None, d(1))]


def test_windows_join_when_they_touch_and_move_the_watermark_only_from_the_beginning() -> None:
    c = Coverage("sig").cover(None, d(2), None, False).cover(d(4), d(5), None, False)
    assert c.watermark == d(2) and c.holes(d(6)) == [(d(2) + US, d(4) - US), (d(5) + US, d(6))]
    c = c.cover(d(2) + US, d(4) - US, None, False)            # adjacent on both sides
    assert c.intervals == ((None, d(5)),) and c.watermark == d(5) and c.holes(d(5)) == []


def test_incremental_run_covers_everything_up_to_its_end() -> None:
    c = Coverage("sig").cover(d(2), d(3), None, False).cover(None, d(4), None, incremental=True)
    assert c.intervals == ((None, d(4)),) and c.holes(d(4)) == []


def test_the_created_mark_never_skips_a_late_row() -> None:
    first = Coverage("sig").cover(None, d(2), d(2), incremental=True)
    assert first.created_high == d(2)
    # an explicit window that saw newer created times keeps the mark: rows of the first
    # interval written meanwhile (created after d(2)) are still late for the next run
    window = first.cover(d(4), d(5), d(9), incremental=False)
    assert window.created_high == d(2)
    # an incremental run that read every row up to its end (late rows included) moves it on
    assert window.cover(None, d(6), d(9), incremental=True).created_high == d(9)
    # ... unless a window beyond its end was covered with the older mark
    assert window.cover(None, d(3), d(9), incremental=True).created_high == d(2)
    # concurrent runs: the earlier mark holds, unknown (None) the earliest
    assert first.union(window.cover(None, d(6), d(9), True)).created_high == d(2)
    assert first.union(Coverage("sig", ((None, d(1)),), None)).created_high is None


def test_state_round_trip_and_another_signature_does_not_count() -> None:
    mine = StoreIdentity("abc")
    c = Coverage("sig", store="abc").cover(None, d(2), d(1), True).cover(d(4), d(5), None, False)
    state = c.to_state(rows=3, total_rows=7)
    assert state["end"] == d(2).isoformat()
    assert Coverage.of(state, "sig", mine) == c
    assert Coverage.of(state, "other", mine) == Coverage("other", store="abc")
    assert Coverage.of(state, "sig", StoreIdentity("xyz")) == Coverage("sig", store="xyz")  # another store
    # recorded before store ids (by a version whose tables are no longer read): never counts
    legacy = {k: v for k, v in state.items() if k != "store"}
    assert Coverage.of(legacy, "sig", LEGACY) == Coverage("sig")
    assert Coverage.of(legacy, "sig", mine) == Coverage("sig", store="abc")
    assert Coverage.of({"end": d(2).isoformat()}, "sig", mine) == Coverage("sig", store="abc")
