"""Feast habits the SDK accepts (docs/configuration.md, "Coming from Feast"): time arguments as
ISO strings and dates, ``get_online_features(feature_service=...)``; and what it refuses, with
an error naming the argument and saying what to write."""

from __future__ import annotations

from datetime import date, datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from skewless import FeatureService, FeatureStore
from skewless.errors import InvalidRequestError

from .conftest import pair, pair_view, spend_view, user

UTC = timezone.utc
NOW = datetime(2024, 3, 1, tzinfo=UTC)


@pytest.fixture
def fs(repo: Path) -> FeatureStore:
    store = FeatureStore(repo, config={"project": "fraud", "registry": "data/registry.db"},
                         clock=lambda: NOW)
    store.apply([user, pair, spend_view(), pair_view(),
                 FeatureService("fraud_v1", [spend_view()[["amount"]]])])
    return store


def _amount(store: FeatureStore, **kw: object) -> list[object]:
    return store.get_online_features(["user_spend:amount"], [{"user_id": "u1"}, {"user_id": "u2"}],
                                     **kw).to_dict()["amount"]


# --- time arguments -----------------------------------------------------------------------------
@pytest.mark.parametrize("start, end", [
    ("2024-01-01", "2024-01-18"),
    ("2024-01-01T00:00:00Z", "2024-01-18T00:00:00Z"),
    ("2024-01-01 01:00:00+01:00", "2024-01-18T00:00:00"),
    (date(2024, 1, 1), date(2024, 1, 18)),
    (pd.Timestamp("2024-01-01"), pd.Timestamp("2024-01-18", tz="UTC")),
    (np.datetime64("2024-01-01T00:00"), np.datetime64("2024-01-18")),
], ids=["date-str", "iso-Z", "offset-and-naive", "date", "pd.Timestamp", "datetime64"])
def test_materialize_accepts_iso_strings_and_dates(fs: FeatureStore, start: object, end: object) -> None:
    reports = fs.materialize(start, end)  # type: ignore[arg-type]
    assert {r.view for r in reports} == {"user_spend", "pair_stats"}
    # up to Jan 18 00:00: u1's Jan 10 row (120.0), u2's Jan 14 row (89.0)
    assert _amount(fs) == [120.0, 89.0]


def test_materialize_now_string_means_the_store_clock(fs: FeatureStore) -> None:
    fs.materialize("2024-01-01", "now")
    assert _amount(fs) == [140.0, 89.0]


def test_materialize_incremental_accepts_an_iso_end_date(fs: FeatureStore) -> None:
    fs.materialize_incremental(end_date="2024-01-18")
    assert _amount(fs) == [120.0, 89.0]
    fs.materialize_incremental(end_date=date(2024, 2, 6))
    assert _amount(fs) == [140.0, 89.0]


def test_historical_as_of_accepts_an_iso_string(fs: FeatureStore, labels: pd.DataFrame) -> None:
    want = fs.get_historical_features(labels, ["user_spend:amount"],
                                      as_of=datetime(2024, 1, 19, 12, tzinfo=UTC)).to_df()
    for as_of in ("2024-01-19T12:00:00Z", "2024-01-19 12:00", pd.Timestamp("2024-01-19 12:00")):
        got = fs.get_historical_features(labels, ["user_spend:amount"], as_of=as_of).to_df()
        pd.testing.assert_frame_equal(got, want)
    # the Jan 19 write of the Jan 20 row (999.0) is known at as_of, the Jan 20 write is not
    assert want.loc[12, "amount"] == 999.0


@pytest.mark.parametrize("call, argument", [
    (lambda s: s.materialize("last week", "2024-01-18"), "start_date 'last week'"),
    (lambda s: s.materialize("2024-01-01", "2024-13-45"), "end_date '2024-13-45'"),
    (lambda s: s.materialize("2024-01-01", 1704067200), "end_date must be a datetime, a date or an ISO string, got int"),
    (lambda s: s.materialize_incremental(end_date="soon"), "end_date 'soon'"),
    (lambda s: s.materialize_incremental(end_date=pd.NaT), "end_date is NaT"),
    (lambda s: s.get_historical_features(pd.DataFrame({"user_id": ["u1"], "event_timestamp": [NOW]}),
                                         ["user_spend:amount"], as_of="yesterday"), "as_of 'yesterday'"),
], ids=["start", "end", "epoch-int", "incremental", "NaT", "as_of"])
def test_a_bad_time_argument_is_named(fs: FeatureStore, call: object, argument: str) -> None:
    with pytest.raises(InvalidRequestError) as e:
        call(fs)  # type: ignore[operator]
    assert argument in e.value.message
    assert "2025-01-01T06:00:00Z" in (e.value.hint or "")  # says what to write


# --- get_online_features(feature_service=...) ---------------------------------------------------
def test_online_feature_service_keyword(fs: FeatureStore) -> None:
    fs.materialize("2024-01-01", "2024-03-01")
    rows = [{"user_id": "u1"}, {"user_id": "u2"}]
    by_name = fs.get_online_features(feature_service="fraud_v1", entity_rows=rows).to_dict()
    by_object = fs.get_online_features(feature_service=fs.get_feature_service("fraud_v1"),
                                       entity_rows=rows).to_dict()
    positional = fs.get_online_features(fs.get_feature_service("fraud_v1"), rows).to_dict()
    assert by_name == by_object == positional
    assert by_name["amount"] == [140.0, 89.0]


@pytest.mark.parametrize("kw, message", [
    ({"features": ["user_spend:amount"], "feature_service": "fraud_v1"}, "not both"),
    ({}, "pass features=[...] or feature_service=..."),
    ({"feature_service": "fraud_v1"}, "pass entity_rows="),
], ids=["both", "neither", "no-entity-rows"])
def test_online_request_shape_errors(fs: FeatureStore, kw: dict[str, object], message: str) -> None:
    if "feature_service" not in kw or "features" in kw:
        kw = {**kw, "entity_rows": [{"user_id": "u1"}]}
    with pytest.raises(InvalidRequestError, match=message.replace("[", r"\[").replace("]", r"\]")
                       .replace(".", r"\.")):
        fs.get_online_features(**kw)  # type: ignore[arg-type]


def test_historical_refuses_features_and_feature_service_together(fs: FeatureStore,
                                                                  labels: pd.DataFrame) -> None:
    """As FeatureClient and get_online_features: one or the other, never a silent choice."""
    with pytest.raises(InvalidRequestError, match="not both"):
        fs.get_historical_features(labels, features=["user_spend:amount"], feature_service="fraud_v1")


def test_unknown_feature_service_keyword_suggests(fs: FeatureStore) -> None:
    with pytest.raises(Exception) as e:
        fs.get_online_features(feature_service="fraud_v2", entity_rows=[{"user_id": "u1"}])
    assert "fraud_v1" in str(e.value)


# --- store.apply([... sources ...]) as Feast users write it ----------------------------------------
def test_apply_accepts_sources_in_the_list(repo: Path) -> None:
    store = FeatureStore(repo, config={"project": "fraud", "registry": "data/registry.db"})
    view = spend_view()
    store.plan([user, view.source, view])
    store.apply([user, view.source, view])
    assert [v.name for v in store.list_feature_views()] == ["user_spend"]
    assert store.get_feature_view("user_spend").source == view.source


def test_a_single_feature_reference_string_reads_as_the_client_reads_it(fs: FeatureStore,
                                                                         labels: pd.DataFrame) -> None:
    fs.materialize("2024-01-01", "2024-03-01")
    rows = [{"user_id": "u1"}, {"user_id": "u2"}]
    assert fs.get_online_features("user_spend:amount", rows).to_dict() == \
        fs.get_online_features(["user_spend:amount"], rows).to_dict()
    pd.testing.assert_frame_equal(fs.get_historical_features(labels, "user_spend:amount").to_df(),
                                  fs.get_historical_features(labels, ["user_spend:amount"]).to_df())


def test_a_feast_protobuf_registry_is_named_with_what_to_write(repo: Path) -> None:
    """A Feast repo's data/registry.db (protobuf) where skewless expects its SQLite registry."""
    from skewless.errors import RegistryError

    (repo / "data" / "registry.db").write_bytes(b"\n\x0bmy_project\x12\x04\x08\x01\x10\x02" * 40)
    store = FeatureStore(repo, config={"project": "fraud", "registry": "data/registry.db"})
    with pytest.raises(RegistryError) as e:
        store.list_feature_views()
    assert "is not a skewless registry" in e.value.message and "Feast" in e.value.message
    assert "data/skewless_registry.db" in (e.value.hint or "")
    # the same header is what a skewless registry whose first page was overwritten shows
    assert "restore it from a backup" in (e.value.hint or "")
