"""get_online_features: the Feast-shaped response, TTL at read time, defaults, fail-closed views,
bad requests, feature services, full names, composite keys, and definitions applied while
serving."""

from __future__ import annotations

import importlib.util
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from skewless import FeatureService, FeatureStore, FeatureView, Field, FileSource
from skewless.errors import FeatureUnavailableError, InvalidRequestError, UnknownObjectError
from skewless.types import Float64, Int64, String
from skewless.testing.clock import Clock
from skewless.testing.redis_server import purge_project

from .conftest import pair, pair_view, spend_view, user

UTC = timezone.utc
NOW = datetime(2024, 1, 12, tzinfo=UTC)
JAN5_10H = datetime(2024, 1, 5, 10, tzinfo=UTC)  # u1/m1's latest pair row ("DE")
PAIR_TTL = timedelta(days=10)


def pairs(**kw: Any) -> FeatureView:
    """The conftest's pair view with a ttl long enough to overlap the spend rows."""
    return pair_view(**{"ttl": PAIR_TTL, **kw})

ONLINE = {"memory": {"type": "memory"}, "sqlite": {"type": "sqlite", "path": "data/online.db"},
          "redis": {"type": "redis", "connection_string": "127.0.0.1:6379"}}


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


def make_store(repo: Path, clock: Clock, online: str = "sqlite", project: str = "fraud",
               **config: Any) -> FeatureStore:
    return FeatureStore(repo, config={"project": project, "registry": "data/registry.db",
                                      "online_store": ONLINE[online], **config}, clock=clock)


@pytest.fixture(params=["memory", "sqlite", "redis"])
def any_store(request: pytest.FixtureRequest, repo: Path, clock: Clock) -> Iterator[FeatureStore]:
    """A materialized store on each online store (Redis under a project of its own)."""
    name = request.param
    if name == "redis" and importlib.util.find_spec("skewless.online.redis") is None:
        pytest.skip("online store 'redis': module skewless.online.redis does not exist yet")
    project = f"serve_{uuid.uuid4().hex[:12]}" if name == "redis" else "fraud"
    store = make_store(repo, clock, name, project)
    store.apply([user, pair, spend_view(), pairs(),
                 FeatureService("fraud_v1", [spend_view()[["amount"]], pairs()])])
    store.materialize_incremental(NOW)
    yield store
    store.online_store.close()
    if name == "redis":
        left = purge_project(project, ONLINE["redis"]["connection_string"])
        assert not left, f"keys left behind: {left[:5]}"


@pytest.fixture
def fs(repo: Path, clock: Clock) -> FeatureStore:
    store = make_store(repo, clock)
    store.apply([user, pair, spend_view(), pairs(),
                 FeatureService("fraud_v1", [spend_view()[["amount"]], pairs()])])
    store.materialize_incremental(NOW)
    return store


ROWS = [{"user_id": "u1", "merchant_id": "m1"}, {"user_id": "u2", "merchant_id": "m1"},
        {"user_id": "u9", "merchant_id": "m1"}]


# --- the response -----------------------------------------------------------------------------------

def test_response_shape(any_store: FeatureStore) -> None:
    features = ["user_spend:amount", "user_spend:n_txn", "pair_stats:last_country"]
    got = any_store.get_online_features(features, ROWS)
    # Feast's shape: the join keys (in first-use order), then the features in request order.
    assert got.to_dict() == {
        "user_id": ["u1", "u2", "u9"], "merchant_id": ["m1", "m1", "m1"],
        "amount": [120.0, None, None], "n_txn": [1, None, None], "last_country": ["DE", "US", None]}
    assert list(got.to_dict()) == ["user_id", "merchant_id", "amount", "n_txn", "last_country"]
    assert got.statuses == {"amount": ["PRESENT", "NOT_FOUND", "NOT_FOUND"],
                            "n_txn": ["PRESENT", "NOT_FOUND", "NOT_FOUND"],
                            "last_country": ["PRESENT", "PRESENT", "NOT_FOUND"]}
    assert got.event_timestamps["amount"] == [datetime(2024, 1, 10, tzinfo=UTC), None, None]
    assert got.event_timestamps["last_country"] == [JAN5_10H, datetime(2024, 1, 5, 11, tzinfo=UTC), None]

    df = got.to_df()
    assert list(df.columns) == ["user_id", "merchant_id", "amount", "n_txn", "last_country"]
    assert df["amount"].tolist()[0] == 120.0 and pd.isna(df["amount"].tolist()[1])
    full = got.to_dict(include_event_timestamps=True, include_statuses=True)
    assert full["last_country__status"] == ["PRESENT", "PRESENT", "NOT_FOUND"]
    assert full["amount__event_timestamp"][0] == datetime(2024, 1, 10, tzinfo=UTC)
    assert list(got.to_df(include_statuses=True).columns)[-1] == "last_country__status"


def test_u2_has_no_spend_until_its_row(fs: FeatureStore, clock: Clock) -> None:
    # u2's spend row is Jan 14: after NOW, so not materialized and NOT_FOUND (the offline join at
    # NOW agrees). A later run at Jan 15 brings it.
    got = fs.get_online_features(["user_spend:amount"], [{"user_id": "u2"}])
    assert got.statuses["amount"] == ["NOT_FOUND"]
    clock.now = datetime(2024, 1, 15, tzinfo=UTC)
    fs.materialize_incremental(clock.now)
    assert fs.get_online_features(["user_spend:amount"], [{"user_id": "u2"}]).to_dict()["amount"] == [89.0]


def test_numpy_keys_are_accepted(fs: FeatureStore) -> None:
    got = fs.get_online_features(["user_spend:amount"], [{"user_id": np.str_("u1")}])
    assert got.to_dict()["amount"] == [120.0]


# --- TTL at read time --------------------------------------------------------------------------------

def test_ttl_is_enforced_at_read_time(fs: FeatureStore, clock: Clock) -> None:
    def read() -> tuple[list[Any], list[str], list[Any]]:
        got = fs.get_online_features(["pair_stats:last_country"], [ROWS[0]])
        col = "last_country"
        return got.to_dict()[col], got.statuses[col], got.event_timestamps[col]

    assert read() == (["DE"], ["PRESENT"], [JAN5_10H])
    clock.now = JAN5_10H + PAIR_TTL  # exactly ttl old: still valid, as offline
    assert read() == (["DE"], ["PRESENT"], [JAN5_10H])
    clock.now = JAN5_10H + PAIR_TTL + timedelta(microseconds=1)  # no new run: stale at read time
    assert read() == ([None], ["OUTSIDE_TTL"], [JAN5_10H])  # the stale value's time is reported
    df = pd.DataFrame({"user_id": ["u1"], "merchant_id": ["m1"], "event_timestamp": [clock.now]})
    assert fs.get_historical_features(df, ["pair_stats:last_country"]).to_df()["last_country"].isna().all()


def test_outside_ttl_serves_default(repo: Path, clock: Clock) -> None:
    fs = make_store(repo, clock)
    view = pairs(on_missing="default", schema=[Field("last_country", String, default="??")])
    fs.apply([user, pair, view])
    fs.materialize_incremental(NOW)
    clock.now = JAN5_10H + PAIR_TTL + timedelta(microseconds=1)
    got = fs.get_online_features(["pair_stats:last_country"], [ROWS[0], ROWS[2]])
    assert got.to_dict()["last_country"] == ["??", "??"]
    assert got.statuses["last_country"] == ["OUTSIDE_TTL", "NOT_FOUND"]


# --- missing values ----------------------------------------------------------------------------------

def test_default_is_served_like_the_offline_join(repo: Path, clock: Clock) -> None:
    fs = make_store(repo, clock)
    fs.apply([user, spend_view(on_missing="default")])
    fs.materialize_incremental(NOW)
    users = ["u1", "u2", "u9"]
    got = fs.get_online_features(["user_spend:amount", "user_spend:n_txn"], [{"user_id": u} for u in users])
    assert got.to_dict() == {"user_id": users, "amount": [120.0, -1.0, -1.0], "n_txn": [1, 0, 0]}
    assert got.statuses["amount"] == ["PRESENT", "NOT_FOUND", "NOT_FOUND"]
    offline = fs.get_historical_features(
        pd.DataFrame({"user_id": users, "event_timestamp": [NOW] * 3}),
        ["user_spend:amount", "user_spend:n_txn"]).to_arrow()
    assert offline.column("amount").to_pylist() == got.to_dict()["amount"]
    assert offline.column("n_txn").to_pylist() == got.to_dict()["n_txn"]


def test_default_of_a_float_field_given_as_int_is_a_float(repo: Path, clock: Clock) -> None:
    # Regression: online served the default as declared (the int 0) where offline serves 0.0.
    fs = make_store(repo, clock)
    fs.apply([user, spend_view(on_missing="default",
                               schema=[Field("amount", Float64, default=0), Field("n_txn", Int64)])])
    got = fs.get_online_features(["user_spend:amount"], [{"user_id": "u9"}]).to_dict()["amount"]
    assert got == [0.0] and isinstance(got[0], float)


def test_an_array_default_served_is_the_callers_to_change(repo: Path, clock: Clock) -> None:
    """A caller changing a served default list in place (sorting it, appending) must not change
    the default served to later requests, which would then differ from the offline join."""
    from skewless.types import Array

    pd.DataFrame({"user_id": ["u1"], "ts": [pd.Timestamp("2024-01-01")], "tags": [[5, 6]]}).to_parquet(
        repo / "data/tags.parquet")
    fs = make_store(repo, clock, online="memory")
    fs.apply([user, FeatureView("tags", [user], [Field("tags", Array(Int64), default=[3, 1])],
                                FileSource("data/tags.parquet", "ts"), on_missing="default")])
    fs.materialize_incremental(NOW)
    rows = [{"user_id": "u1"}, {"user_id": "u9"}, {"user_id": "u8"}]
    first = fs.get_online_features(["tags:tags"], rows).to_dict()["tags"]
    assert first == [[5, 6], [3, 1], [3, 1]]
    first[1].sort()
    first[2].append(7)
    again = fs.get_online_features(["tags:tags"], rows).to_dict()["tags"]
    offline = fs.get_historical_features(pd.DataFrame({"user_id": ["u1", "u9", "u8"], "event_timestamp": [NOW] * 3}),
                                         ["tags:tags"]).to_arrow()
    assert again == offline.column("tags").to_pylist() == [[5, 6], [3, 1], [3, 1]]


def test_fail_closed_names_view_entity_and_reason(repo: Path, clock: Clock) -> None:
    fs = make_store(repo, clock)
    fs.apply([user, pair, spend_view(on_missing="fail"), pairs(on_missing="fail")])
    fs.materialize_incremental(NOW)
    assert fs.get_online_features(["user_spend:amount"], [{"user_id": "u1"}]).to_dict()["amount"] == [120.0]
    with pytest.raises(FeatureUnavailableError) as err:
        fs.get_online_features(["user_spend:amount"], [{"user_id": "u1"}, {"user_id": "u9"}])
    msg = str(err.value)
    assert "'user_spend'" in msg and "{'user_id': 'u9'}" in msg and "NOT_FOUND" in msg
    assert err.value.http_status == 503
    clock.now = JAN5_10H + PAIR_TTL + timedelta(seconds=1)
    with pytest.raises(FeatureUnavailableError) as err:
        fs.get_online_features(["pair_stats:last_country"], [ROWS[0]])
    msg = str(err.value)
    assert "'pair_stats'" in msg and "'merchant_id': 'm1'" in msg and "OUTSIDE_TTL" in msg
    assert "2024-01-05T10:00:00" in msg  # when the stale value is from


# --- bad requests ------------------------------------------------------------------------------------

def test_missing_join_key_is_named(fs: FeatureStore) -> None:
    with pytest.raises(InvalidRequestError, match="entity row 1 has no join key 'merchant_id'.*'pair_stats'"):
        fs.get_online_features(["pair_stats:last_country"], [ROWS[0], {"user_id": "u1"}])


def test_wrong_key_type_is_named(repo: Path, clock: Clock) -> None:
    fs = make_store(repo, clock)
    fs.apply([user, spend_view(schema=[Field("user_id", String), Field("amount", Float64)])])
    with pytest.raises(InvalidRequestError, match="join key 'user_id' = 1 has type int, but.*declares it String"):
        fs.get_online_features(["user_spend:amount"], [{"user_id": "u1"}, {"user_id": 1}])
    with pytest.raises(InvalidRequestError, match="entity row 0: join key 'user_id' = 1.5 has type float"):
        fs.get_online_features(["user_spend:amount"], [{"user_id": 1.5}])
    with pytest.raises(InvalidRequestError, match="join key 'user_id' = True"):
        fs.get_online_features(["user_spend:amount"], [{"user_id": True}])


def test_entity_rows_must_be_a_list_of_dicts(fs: FeatureStore) -> None:
    with pytest.raises(InvalidRequestError, match="list of dicts"):
        fs.get_online_features(["user_spend:amount"], {"user_id": "u1"})  # type: ignore[arg-type]
    with pytest.raises(InvalidRequestError, match="entity row 0 must be a dict"):
        fs.get_online_features(["user_spend:amount"], ["u1"])  # type: ignore[list-item]


def test_unknown_feature_suggests_the_closest(fs: FeatureStore) -> None:
    with pytest.raises(UnknownObjectError, match="no feature 'amout'; did you mean 'amount'"):
        fs.get_online_features(["user_spend:amout"], [{"user_id": "u1"}])
    with pytest.raises(UnknownObjectError, match="view 'user_spnd'.*did you mean 'user_spend'"):
        fs.get_online_features(["user_spnd:amount"], [{"user_id": "u1"}])
    with pytest.raises(UnknownObjectError, match="feature service 'fraud_v2'.*did you mean 'fraud_v1'"):
        fs.get_online_features("fraud_v2", [{"user_id": "u1"}])


def test_name_clash_needs_full_feature_names(repo: Path, clock: Clock) -> None:
    fs = make_store(repo, clock)
    fs.apply([user, spend_view(), spend_view(name="spend_copy")])
    with pytest.raises(InvalidRequestError, match="full_feature_names=True"):
        fs.get_online_features(["user_spend:amount", "spend_copy:amount"], [{"user_id": "u1"}])


# --- services, names, keys ---------------------------------------------------------------------------

def test_feature_service(fs: FeatureStore) -> None:
    want = {"user_id": ["u1", "u2", "u9"], "merchant_id": ["m1", "m1", "m1"],
            "amount": [120.0, None, None], "last_country": ["DE", "US", None]}
    assert fs.get_online_features("fraud_v1", ROWS).to_dict() == want
    service = fs.get_feature_service("fraud_v1")
    assert fs.get_online_features(service, ROWS).to_dict() == want


def test_full_feature_names(fs: FeatureStore) -> None:
    got = fs.get_online_features(["user_spend:amount", "pair_stats:last_country"], ROWS[:1],
                                 full_feature_names=True)
    assert got.to_dict() == {"user_id": ["u1"], "merchant_id": ["m1"], "user_spend__amount": [120.0],
                             "pair_stats__last_country": ["DE"]}
    assert got.statuses == {"user_spend__amount": ["PRESENT"], "pair_stats__last_country": ["PRESENT"]}
    by_service = fs.get_online_features("fraud_v1", ROWS[:1], full_feature_names=True).to_dict()
    assert list(by_service) == ["user_id", "merchant_id", "user_spend__amount", "pair_stats__last_country"]


def test_composite_keys(fs: FeatureStore) -> None:
    rows = [{"user_id": "u1", "merchant_id": "m1"}, {"user_id": "u2", "merchant_id": "m1"},
            {"user_id": "u1", "merchant_id": "m2"}, {"merchant_id": "m1", "user_id": "u2"}]
    got = fs.get_online_features(["pair_stats:last_country"], rows).to_dict()
    assert got == {"user_id": ["u1", "u2", "u1", "u2"], "merchant_id": ["m1", "m1", "m2", "m1"],
                   "last_country": ["DE", "US", None, "US"]}


# --- definitions change while serving ------------------------------------------------------------------

def test_view_applied_after_a_read_is_visible(fs: FeatureStore, repo: Path) -> None:
    assert fs.get_online_features(["user_spend:amount"], [{"user_id": "u1"}]).to_dict()["amount"] == [120.0]
    profile = FeatureView("user_profile", entities=[user], schema=[Field("amount", Float64)],
                          source=FileSource("data/spend.parquet", "ts"))
    fs.apply([profile])  # the serving snapshot is cached (registry_cache_ttl_seconds: 10 s)
    fs.materialize_incremental(NOW, views=["user_profile"])
    got = fs.get_online_features(["user_profile:amount"], [{"user_id": "u1"}])
    assert got.to_dict()["amount"] == [120.0]


def test_changed_view_takes_effect_after_apply(fs: FeatureStore, clock: Clock) -> None:
    clock.now = JAN5_10H + timedelta(days=2)

    def read() -> list[str]:
        return fs.get_online_features(["pair_stats:last_country"], [ROWS[0]]).statuses["last_country"]

    assert read() == ["PRESENT"]
    fs.apply([pairs(ttl=timedelta(days=1))])  # the cached plan must not keep the old ttl
    assert read() == ["OUTSIDE_TTL"]


def test_view_applied_by_another_process_is_seen_after_the_cache_ttl(repo: Path, clock: Clock) -> None:
    server = make_store(repo, clock, registry_cache_ttl_seconds=0)
    writer = make_store(repo, clock)
    writer.apply([user, spend_view()])
    writer.materialize_incremental(NOW)
    got = server.get_online_features(["user_spend:amount"], [{"user_id": "u1"}])
    assert got.to_dict()["amount"] == [120.0]
    writer.apply([pair, pairs()])
    writer.materialize_incremental(NOW)
    got = server.get_online_features(["pair_stats:last_country"], [ROWS[0]])
    assert got.to_dict()["last_country"] == ["DE"]


def test_many_requests_answer_as_each_alone_in_one_round_trip(any_store: FeatureStore,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """get_online_features_many (how the feature server combines requests that arrive together):
    every answer equals get_online_features of that request alone, errors come back in their
    request's place, and the store is read once for all of them."""
    both = ["user_spend:amount", "user_spend:n_txn", "pair_stats:last_country"]
    requests: list[Any] = [
        (both, ROWS, False),
        ("fraud_v1", ROWS[:1], True),
        (["user_spend:nope"], ROWS, False),                     # unknown feature
        (["user_spend:amount"], [{"user_id": 5}], False),       # key of the wrong type
        (both, list(reversed(ROWS)), False),                    # the same keys again, other order
        (["pair_stats:last_country"], [{"user_id": "u1", "merchant_id": "m1"}], True),
    ]
    alone: list[Any] = []
    for features, rows, full in requests:
        try:
            alone.append(any_store.get_online_features(features, rows, full))
        except Exception as e:  # noqa: BLE001 - compared below
            alone.append(e)
    reads: list[Any] = []
    real = any_store.online_store.read_batch
    monkeypatch.setattr(any_store.online_store, "read_batch", lambda keys: reads.append(keys) or real(keys))
    together = any_store.get_online_features_many(requests)
    assert len(reads) == 1
    assert len(together) == len(requests)
    for one, many in zip(alone, together):
        if isinstance(one, Exception):
            assert type(many) is type(one) and str(many) == str(one)
            continue
        assert many.to_dict() == one.to_dict()
        assert many.statuses == one.statuses
        assert many.event_timestamps == one.event_timestamps
        assert many.store_error is None
    assert isinstance(alone[2], UnknownObjectError) and isinstance(alone[3], InvalidRequestError)
    assert together[0].statuses["amount"] == ["PRESENT", "NOT_FOUND", "NOT_FOUND"]  # only u1 has spend rows


def test_many_requests_keep_a_fail_closed_error_to_its_request(repo: Path, clock: Clock) -> None:
    fs = make_store(repo, clock)
    fs.apply([user, spend_view(on_missing="fail")])
    fs.materialize_incremental(NOW)
    ok, missing = fs.get_online_features_many([(["user_spend:amount"], [{"user_id": "u1"}], False),
                                               (["user_spend:amount"], [{"user_id": "u9"}], False)])
    assert not isinstance(ok, Exception) and ok.to_dict()["amount"] == [120.0]
    assert isinstance(missing, FeatureUnavailableError) and "u9" in str(missing)
