"""The visibility rule (plan/visibility.py): the bounds every path reads."""

from __future__ import annotations

from datetime import timedelta

from skewless.plan.visibility import Visibility, duration_micros, known_column

H = 3_600_000_000


def test_ttl_is_an_inclusive_lower_bound_and_none_means_no_bound():
    v = Visibility.of(timedelta(hours=1))
    assert v.ttl_us == H and v.oldest_us(10 * H) == 9 * H
    assert v.visible(9 * H, 10 * H) and not v.visible(9 * H - 1, 10 * H)
    assert Visibility.of(None).oldest_us(10 * H) is None and Visibility.of(None).visible(0, 10 * H)


def test_a_row_counts_once_it_has_landed():
    v = Visibility.of(None, availability_delay=timedelta(hours=6))
    assert v.newest_us(10 * H) == 4 * H
    assert v.visible(4 * H, 10 * H) and not v.visible(4 * H + 1, 10 * H)
    assert Visibility.of(None).newest_us(10 * H) == 10 * H   # no delay: usable at once
    # the ttl stays relative to t, not to t - delay
    both = Visibility.of(timedelta(hours=1), timedelta(hours=6))
    assert not both.visible(4 * H, 10 * H) and both.oldest_us(10 * H) == 9 * H


def test_as_of_cuts_on_the_created_time_else_the_event_time():
    assert known_column("ts", "created") == "created" and known_column("ts", None) == "ts"


def test_durations_in_microseconds():
    assert duration_micros(timedelta(days=1, seconds=2, microseconds=3)) == 86_402_000_003
    assert duration_micros(None) is None


def test_the_datetime_forms_and_a_views_bounds():
    from datetime import datetime, timezone

    from skewless import Entity, FeatureView, Field, FileSource, PushSource
    from skewless.plan.visibility import view_visibility
    from skewless.types import Float64

    t = datetime(2024, 1, 3, 6, tzinfo=timezone.utc)
    v = Visibility.of(None, timedelta(hours=6))
    assert v.available_until(t) == datetime(2024, 1, 3, tzinfo=timezone.utc)
    assert v.available_at(datetime(2024, 1, 3, tzinfo=timezone.utc)) == t
    assert Visibility.of(None).available_until(t) == t
    user = Entity("user")
    batch = FileSource("data/events", "ts", availability_delay=timedelta(hours=6))
    for source in (batch, PushSource("p", batch_source=batch)):   # a push source: its batch source's
        view = FeatureView("v", [user], [Field("x", Float64)], source, ttl=timedelta(days=1))
        assert view_visibility(view) == Visibility.of(timedelta(days=1), timedelta(hours=6))


def test_a_window_from_year_one_less_a_delay_stays_representable():
    from datetime import datetime, timezone

    start = datetime(1, 1, 1, 3, tzinfo=timezone.utc)
    assert Visibility.of(None, timedelta(hours=6)).available_until(start) == \
        datetime.min.replace(tzinfo=timezone.utc)
