"""The online invariant (docs/online.md#the-invariant) on every online store and offline engine.

Once materialized up to t, ``get_online_features`` at t equals ``get_historical_features`` for
an entity_df of every entity at t: values, nulls, defaults; ``PRESENT`` exactly when a row
within the TTL exists, ``NOT_FOUND`` / ``OUTSIDE_TTL`` exactly when the offline join gives null
or the default. Generated scenarios: skewless.testing.online (late rows, created-time ties,
null values, TTL edges to the microsecond, int, string and composite keys, several views);
the sequence property runs materialize_incremental twice with rows landing in between.

Every installed online store and offline engine joins the suite (ONLINE_STORES, ENGINES: from
skewless.backends); how to configure a store and its known gaps (strict xfail: a gap that
starts passing fails) come from its ``Backend.testing`` (docs/backends.md, "Testing a backend").
ONLINE_EXAMPLES sets the examples per combination (40).
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from skewless import Entity, FeatureStore, FeatureView, Field, FileSource, PushSource
from skewless.errors import InvalidRequestError
from skewless.online import table_name
from skewless.testing.online import (
    MODES,
    NOT_FOUND,
    OUTSIDE_TTL,
    PRESENT,
    StreamScenario,
    OnlineScenario,
    aggregation_streams,
    check_aggregation_stream,
    check_materialized_aggregations,
    check_scenario,
    online_scenarios,
)
from skewless.backends import Backend, capability
from skewless.testing.aggregations import aggregation_scenarios as training_aggregation_scenarios
from skewless.testing.backends import BackendTesting, installed
from skewless.types import Float32, Float64, String

# Every installed online store and offline engine (skewless.backends): store name -> (backend,
# how to test it). A store joins the suite by being installed; how to configure it and its
# known gaps come from its Backend.testing (skewless.testing.backends.BackendTesting).
ONLINE_STORES: dict[str, tuple[Backend[Any], BackendTesting]] = installed("online_store")
ENGINES = sorted(installed("offline_engine"))

EXAMPLES = int(os.environ.get("ONLINE_EXAMPLES", "40"))
PROPERTY = settings(max_examples=EXAMPLES, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
UTC = timezone.utc
US = timedelta(microseconds=1)
HOUR = timedelta(hours=1)


def _available(name: str) -> None:
    """Every store of ONLINE_STORES is installed (kept for the suites that call it)."""
    assert name in ONLINE_STORES


def _params(test: str) -> list[Any]:
    """(store, engine) for every pair; the known gaps are marked by conftest (strict xfail)."""
    return [pytest.param(store, engine, id=f"{store}-{engine}")
            for store in ONLINE_STORES for engine in ENGINES]


def _run_params(test: str) -> list[Any]:
    """_params as one (store, engine) value, for the indirect ``run`` fixture."""
    return [pytest.param(p.values, id=p.id, marks=p.marks) for p in _params(test)]


class Run:
    """One project on one online store: its config, and the cleanup of its keys afterwards."""

    def __init__(self, store: str, engine: str) -> None:
        self.store, self.engine = store, engine
        self.backend, self.testing = ONLINE_STORES[store]
        self.online = {"type": store, **self.testing.settings()}
        self.project = f"oc_{uuid.uuid4().hex[:12]}"
        self.tables: list[str] = []

    def has(self, needed: str) -> bool:
        """Whether the store has capability ``needed`` (OnlineCapabilities)."""
        return capability(self.backend.capabilities, needed) is True

    def require(self, needed: str) -> None:
        """Skip the test unless the store has capability ``needed``, saying the declared gap."""
        gap = capability(self.backend.capabilities, needed)
        if gap is not True:
            pytest.skip(f"online store '{self.store}': {needed} is {gap.label} ({gap.reason})")

    def config(self) -> dict[str, Any]:
        return {"project": self.project, "offline_store": {"type": self.engine},
                "online_store": dict(self.online), "registry_cache_ttl_seconds": 0}

    def scenario(self, scenario: OnlineScenario, repo: str | Path) -> set[str]:
        self.tables = [table_name(self.project, v.name) for v in scenario.views]
        return check_scenario(scenario, repo, {"type": self.engine}, self.online, self.project)

    def close(self) -> None:
        if self.testing.cleanup is not None:
            self.testing.cleanup(self.project)


def _run(store: str, engine: str, workdir: Path, scenario: OnlineScenario) -> None:
    run = Run(store, engine)
    try:
        with tempfile.TemporaryDirectory(dir=workdir) as repo:
            traits = run.scenario(scenario, repo)
    finally:
        run.close()
    for trait in sorted(traits):
        event(trait)


@pytest.mark.parametrize(("store", "engine"), _params("test_online_equals_offline"))
@PROPERTY
@given(scenario=online_scenarios())
def test_online_equals_offline(store: str, engine: str, workdir: Path, scenario: OnlineScenario) -> None:
    _available(store)
    _run(store, engine, workdir, scenario)


@pytest.mark.parametrize(("store", "engine"), _params("test_invariant_through_incremental_runs"))
@PROPERTY
@given(scenario=online_scenarios(sequence=True))
def test_invariant_through_incremental_runs(store: str, engine: str, workdir: Path,
                                            scenario: OnlineScenario) -> None:
    """materialize_incremental at t1, new and late rows land, materialize_incremental at t2:
    online equals offline at t1 and again at t2."""
    _available(store)
    _run(store, engine, workdir, scenario)


# --- windowed aggregations (docs/aggregations.md, "Online") -----------------------------------------
AGG_EXAMPLES = int(os.environ.get("AGGREGATION_EXAMPLES", "25"))


@pytest.mark.needs_online("aggregations")
@pytest.mark.parametrize(("store", "engine"), _params("test_aggregations_online_equal_offline"))
@settings(max_examples=AGG_EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(scenario=aggregation_streams())
def test_aggregations_online_equal_offline(store: str, engine: str, workdir: Path,
                                           scenario: StreamScenario) -> None:
    """For every key and aggregation, at every check time: online == offline == brute force,
    with tiles built by materialize, by push (late events, redeliveries) and by both. A store
    declaring ``aggregations`` as a gap must refuse (strict xfail, UnsupportedError)."""
    run = Run(store, engine)
    try:
        with tempfile.TemporaryDirectory(dir=workdir) as repo:
            traits = check_aggregation_stream(scenario, repo, {"type": engine}, run.online,
                                                run.project)
    finally:
        run.close()
    for trait in sorted(traits):
        event(trait)


@pytest.mark.needs_online("aggregations")
@pytest.mark.parametrize(("store", "engine"), _params("test_materialized_aggregations_equal_offline"))
@settings(max_examples=AGG_EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(scenario=training_aggregation_scenarios())
def test_materialized_aggregations_equal_offline(store: str, engine: str, workdir: Path,
                                                 scenario: Any) -> None:
    """The training-data scenarios (every column type, composite keys, corrected redeliveries,
    a FeatureService with a plain view) served online after materialize-incremental at each
    label time equal the offline join of the same rows."""
    run = Run(store, engine)
    try:
        with tempfile.TemporaryDirectory(dir=workdir) as repo:
            traits = check_materialized_aggregations(scenario, repo, {"type": engine}, run.online,
                                                     run.project)
    finally:
        run.close()
    for trait in sorted(traits):
        event(trait)


AGG_TRAITS = {"agg_mode:materialize", "agg_mode:push", "agg_mode:mixed", "agg_status:PRESENT",
              "agg_status:NOT_FOUND", "late_event_pushed", "push_retried", "burst_same_time",
              "duplicate_event_id", "materialized_then_pushed", "agg_delay", "agg_landing_edge",
              "agg_pending_pushed", "int_sum_past_64_bits"}


def test_aggregation_generator_covers_the_invariant(workdir: Path) -> None:
    """The generated streams exercise every mode and edge the invariant is about (checked on
    the memory store against the brute force: the generator, not a store, is under test)."""
    seen: set[str] = set()

    @settings(max_examples=120, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(scenario=aggregation_streams())
    def collect(scenario: StreamScenario) -> None:
        with tempfile.TemporaryDirectory(dir=workdir) as repo:
            seen.update(check_aggregation_stream(scenario, repo, {"type": "duckdb"},
                                                   {"type": "memory"}, "agg_gen", offline=False))

    collect()
    assert AGG_TRAITS <= seen, f"never generated: {sorted(AGG_TRAITS - seen)}"


REQUIRED_TRAITS = {
    "status:PRESENT", "status:NOT_FOUND", "status:OUTSIDE_TTL", "ttl_edge_present",
    "ttl_outside_by_1us", "created_tiebreak", "null_created_tie", "null_value_present",
    "default_served", "future_row_ignored", "composite_key", "key:int", "key:str", "ttl_edge",
    "late_row", "late_row_wins", "landing_edge", "landing_edge_present", "not_landed_ignored",
    "landed_between_runs", "on_demand",
    *(f"mode:{m}" for m in ("incremental", "full", "twice", "two_windows")),
}


def test_generator_covers_the_invariant(workdir: Path) -> None:
    """The generated scenarios reach every status, edge and key kind the invariant names (run on
    the memory store and the reference engine; a strategy change that stops reaching one fails
    here rather than silently weakening the suite)."""
    seen: dict[str, int] = {}

    def collect(strategy: st.SearchStrategy[OnlineScenario], examples: int) -> None:
        @settings(max_examples=examples, deadline=None, database=None, derandomize=True,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
        @given(scenario=strategy)
        def run(scenario: OnlineScenario) -> None:
            with tempfile.TemporaryDirectory(dir=workdir) as repo:
                for trait in Run("memory", "reference").scenario(scenario, repo):
                    seen[trait] = seen.get(trait, 0) + 1
        run()

    # every materialization mode by construction (a random draw among them missed one under
    # some hypothesis versions), the rest of the traits by the draws within each
    collect(online_scenarios(sequence=True), 20)
    for mode in MODES:
        collect(online_scenarios(modes=(mode,)), 10)
    missing = sorted(REQUIRED_TRAITS - set(seen))
    assert not missing, f"no generated scenario covers {missing}; seen: {sorted(seen.items())}"


# --- the edges by hand, on every store and engine --------------------------------------------------

T = datetime(2024, 3, 9, 12, tzinfo=UTC)
TTL = timedelta(hours=2)


@pytest.fixture
def run(request: pytest.FixtureRequest) -> Iterator[Run]:
    store, engine = request.param
    _available(store)
    r = Run(store, engine)
    yield r
    r.close()


def _hand_store(run: Run, repo: Path, clock: Callable[[], datetime]) -> FeatureStore:
    ts = pa.timestamp("us", "UTC")
    (repo / "data").mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({
        "user_id": pa.array([1, 2, 3, 4, 4, 5, 5, 6], pa.int64()),
        "ts": pa.array([T - TTL, T - TTL - US, T, T - TTL, T - timedelta(hours=1), T, T, T + US], ts),
        "created": pa.array([None, None, None, T, T - timedelta(hours=3), T - US, None, None], ts),
        "x": [1.0, 2.0, 3.0, 4.0, 44.0, None, 55.0, 6.0],
        "y": pa.array([1.5, 2.5, 3.5, 4.5, 44.5, 5.5, 55.5, 6.5], pa.float32()),
    }), repo / "data" / "users.parquet")
    pq.write_table(pa.table({
        "user_id": pa.array([1, 1, 2], pa.int64()), "merchant_id": ["m1", "m2", "m1"],
        "ts": pa.array([T - timedelta(days=3), T - timedelta(hours=5), T], ts),
        "country": ["FR", "DE", "US"],
    }), repo / "data" / "pairs.parquet")
    store = FeatureStore(repo, config=run.config(), clock=clock)
    user = Entity("user", join_keys=["user_id"])
    pair = Entity("user_merchant", join_keys=["user_id", "merchant_id"])
    users = FeatureView("users", entities=[user], ttl=TTL, on_missing="default",
                        schema=[Field("x", Float64, default=-1), Field("y", Float32, default=0.1)],
                        source=FileSource("data/users.parquet", "ts", created_timestamp_column="created"))
    pairs = FeatureView("pairs", entities=[pair], schema=[Field("country", String, default="??")],
                        source=FileSource("data/pairs.parquet", "ts"))
    store.apply([user, pair, users, pairs])
    run.tables = [table_name(run.project, "users"), table_name(run.project, "pairs")]
    return store


@pytest.mark.parametrize("run", _run_params("test_ttl_edges_by_hand"), indirect=True)
def test_ttl_edges_by_hand(run: Run, tmp_path: Path) -> None:
    """Latest row exactly at t - ttl: PRESENT; 1us older: OUTSIDE_TTL (defaults served, as the
    offline join does); the latest event time wins whatever the created times; ties broken by
    created time, a null created time the oldest; a row 1us in the future of t is never served."""
    now = [T]
    store = _hand_store(run, tmp_path, lambda: now[0])
    store.materialize_incremental(T)
    rows = [{"user_id": u} for u in (1, 2, 3, 4, 5, 6, 7)]
    got = store.get_online_features(["users:x", "users:y"], rows)
    assert got.statuses["x"] == [PRESENT, OUTSIDE_TTL, PRESENT, PRESENT, PRESENT, NOT_FOUND, NOT_FOUND]
    assert got.to_dict() == {"user_id": [1, 2, 3, 4, 5, 6, 7],
                             "x": [1.0, -1.0, 3.0, 44.0, None, -1.0, -1.0],
                             "y": [1.5, 0.10000000149011612, 3.5, 44.5, 5.5, 0.10000000149011612,
                                   0.10000000149011612]}
    assert got.event_timestamps["x"][:3] == [T - TTL, T - TTL - US, T]
    offline = store.get_historical_features(
        pa.table({"user_id": [1, 2, 3, 4, 5, 6, 7],
                  "event_timestamp": pa.array([T] * 7, pa.timestamp("us", "UTC"))}),
        ["users:x", "users:y"]).to_arrow()
    assert offline.column("x").to_pylist() == got.to_dict()["x"]
    assert offline.column("y").to_pylist() == got.to_dict()["y"]

    # Composite keys (int, str), no ttl.
    pairs = store.get_online_features(["pairs:country"], [
        {"user_id": 1, "merchant_id": "m1"}, {"user_id": 1, "merchant_id": "m2"},
        {"user_id": 2, "merchant_id": "m1"}, {"user_id": 2, "merchant_id": "m2"}])
    assert pairs.to_dict() == {"user_id": [1, 1, 2, 2], "merchant_id": ["m1", "m2", "m1", "m2"],
                               "country": ["FR", "DE", "US", None]}
    assert pairs.statuses["country"] == [PRESENT, PRESENT, PRESENT, NOT_FOUND]

    # One microsecond later, without a new run: entity 1 falls out of the ttl at read time.
    now[0] = T + US
    later = store.get_online_features(["users:x"], [{"user_id": 1}, {"user_id": 3}])
    assert later.statuses["x"] == [OUTSIDE_TTL, PRESENT]
    assert later.to_dict()["x"] == [-1.0, 3.0]


# --- availability delay: a daily batch, and pushes before rows land (every store and engine) ------

DAY = timedelta(days=1)
D3 = datetime(2024, 1, 3, tzinfo=UTC)      # the third day's batch: events at midnight
LANDS = timedelta(hours=6)                  # ... landing at 06:00


def _day_file(repo: Path, day: datetime, value: float) -> None:
    """The daily batch of ``day``: one row per user, event time midnight."""
    pq.write_table(pa.table({"user_id": pa.array([1, 2], pa.int64()),
                             "ts": pa.array([day, day], pa.timestamp("us", "UTC")),
                             "spend": [value, value + 100]}),
                   repo / "data" / "daily" / f"{day:%Y-%m-%d}.parquet")


def _at(store: FeatureStore, view: str, users: list[int], t: datetime) -> tuple[list[Any], list[Any]]:
    """(served, trained) values of ``view:spend`` for ``users`` at ``t``."""
    served = store.get_online_features([f"{view}:spend"], [{"user_id": u} for u in users],
                                       full_feature_names=True).to_dict()[f"{view}__spend"]
    trained = store.get_historical_features(
        pa.table({"user_id": pa.array(users, pa.int64()),
                  "event_timestamp": pa.array([t] * len(users), pa.timestamp("us", "UTC"))}),
        [f"{view}:spend"], full_feature_names=True).to_arrow().column(f"{view}__spend").to_pylist()
    return served, trained


@pytest.mark.parametrize("run", _run_params("test_daily_batch_availability_delay"), indirect=True)
def test_daily_batch_availability_delay(run: Run, tmp_path: Path) -> None:
    """A daily batch of midnight events lands at 06:00. At 03:00 serving cannot have the day's
    row yet; without the delay, training data for a label at 03:00 takes it anyway (the batch
    looks fresher in training than it was in serving). With ``availability_delay=6h``, training
    and serving agree at every time, on the landing edge to the microsecond, even when a file
    is in the source before its declared landing time."""
    (tmp_path / "data" / "daily").mkdir(parents=True)
    _day_file(tmp_path, D3 - 2 * DAY, 1.0)
    _day_file(tmp_path, D3 - DAY, 2.0)
    now = [D3 + timedelta(hours=3)]
    store = FeatureStore(tmp_path, config=run.config(), clock=lambda: now[0])
    user = Entity("user", join_keys=["user_id"])
    naive = FeatureView("naive", entities=[user], schema=[Field("spend", Float64)],
                        source=FileSource("data/daily", "ts", name="daily_naive"))
    daily = FeatureView("daily", entities=[user], schema=[Field("spend", Float64)],
                        source=FileSource("data/daily", "ts", availability_delay=LANDS))
    store.apply([user, naive, daily])
    run.tables = [table_name(run.project, "naive"), table_name(run.project, "daily")]

    # 03:00 on day 3: what serving had (the day-3 batch has not landed)
    store.materialize_incremental(now[0])
    served_naive_0300, _ = _at(store, "naive", [1, 2], now[0])
    served_daily_0300, _ = _at(store, "daily", [1, 2], now[0])
    assert served_naive_0300 == served_daily_0300 == [2.0, 102.0]

    # 06:00: the batch lands; later, training data is built for a label at 03:00 on day 3
    _day_file(tmp_path, D3, 3.0)
    now[0] = D3 + DAY
    _, trained_naive = _at(store, "naive", [1, 2], D3 + timedelta(hours=3))
    _, trained_daily = _at(store, "daily", [1, 2], D3 + timedelta(hours=3))
    assert trained_naive == [3.0, 103.0] != served_naive_0300    # the skew without the delay
    assert trained_daily == served_daily_0300 == [2.0, 102.0]    # equal with it

    # With the delay, serving at t equals training at t once materialized up to t, even though
    # the day-3 file is in the source before 06:00: on the landing edge, 1us either side.
    fresh = FeatureView("fresh", entities=[user], schema=[Field("spend", Float64)],
                        source=FileSource("data/daily", "ts", availability_delay=LANDS))
    store.apply([user, naive, daily, fresh])
    run.tables.append(table_name(run.project, "fresh"))
    for t in (D3 + timedelta(hours=3), D3 + LANDS - US, D3 + LANDS, D3 + LANDS + US, D3 + DAY):
        now[0] = t
        store.materialize_incremental(t, views=["fresh"])
        served, trained = _at(store, "fresh", [1, 2, 3], t)
        assert served == trained == ([3.0, 103.0, None] if t >= D3 + LANDS else [2.0, 102.0, None]), t
        got = store.get_online_features(["fresh:spend"], [{"user_id": 1}])
        assert got.event_timestamps["spend"] == [D3 if t >= D3 + LANDS else D3 - DAY]
    status = {s.view: s for s in store.online_status()}["fresh"]
    assert status.watermark == D3 + DAY   # every row usable by then is online


@pytest.mark.parametrize("run", _run_params("test_push_before_rows_land"), indirect=True)
def test_push_before_rows_land(run: Run, tmp_path: Path) -> None:
    """A push is the rows' arrival; a row is usable from ``event_ts + availability_delay``. The
    push writes every row offline, online only those usable at the push time; the rest come
    online with the first materialization at or after their landing time. Online equals
    offline at the push time and after that materialization."""
    (tmp_path / "data" / "events").mkdir(parents=True)
    ts = pa.timestamp("us", "UTC")
    pq.write_table(pa.table({"user_id": pa.array([9], pa.int64()), "ts": pa.array([T - DAY], ts),
                             "spend": [9.0]}), tmp_path / "data" / "events" / "seed.parquet")
    now = [T]
    store = FeatureStore(tmp_path, config=run.config(), clock=lambda: now[0])
    user = Entity("user", join_keys=["user_id"])
    push = PushSource("events_push", batch_source=FileSource("data/events", "ts",
                                                              availability_delay=LANDS))
    view = FeatureView("pushed", entities=[user], schema=[Field("spend", Float64)], source=push)
    store.apply([user, view])
    run.tables = [table_name(run.project, "pushed")]
    store.materialize_incremental(T)
    batch = {"user_id": [1, 1, 2], "ts": [T - timedelta(hours=7), T - HOUR, T - 2 * HOUR],
             "spend": [1.0, 11.0, 2.0]}

    # to="online" would write rows not usable yet nowhere: refused, nothing written
    with pytest.raises(InvalidRequestError, match=r"not usable yet .* rows? \[1, 2\]") as err:
        store.push("events_push", pd.DataFrame(batch), to="online")
    assert "online_and_offline" in (err.value.hint or "")
    assert _at(store, "pushed", [1, 2], T)[0] == [None, None]

    report = store.push("events_push", pd.DataFrame(batch))
    assert (report.offline_rows, report.pending_rows, report.online_records) == (3, 2, {"pushed": 1})
    for t in (T, T + 4 * HOUR - US):   # user 1: its 7h-old row; user 2: nothing landed yet
        now[0] = t
        assert _at(store, "pushed", [1, 2, 9], t) == ([1.0, None, 9.0], [1.0, None, 9.0]), t
    now[0] = T + 5 * HOUR                # both pending rows have landed; a run brings them online
    store.materialize_incremental(now[0])
    assert _at(store, "pushed", [1, 2, 9], now[0]) == ([11.0, 2.0, 9.0], [11.0, 2.0, 9.0])


def _agg_store(run: Run, repo: Path, clock: Callable[[], datetime]) -> FeatureStore:
    """user 1: amounts 10 (T-2h), 20 (T-50min), 30 (T-1min, id 'c'), 40 at T exactly; user 2:
    a null amount at T-10min; a plain profile view beside the aggregated one."""
    ts = pa.timestamp("us", "UTC")
    (repo / "data" / "tx").mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({
        "user_id": pa.array([1, 1, 1, 1, 2], pa.int64()),
        "ts": pa.array([T - timedelta(hours=2), T - timedelta(minutes=50), T - timedelta(minutes=1),
                        T, T - timedelta(minutes=10)], ts),
        "amount": [10.0, 20.0, 30.0, 40.0, None],
        "tx_id": ["a", "b", "c", "d", "e"],
    }), repo / "data" / "tx" / "base.parquet")
    pq.write_table(pa.table({"user_id": pa.array([1, 2], pa.int64()),
                             "ts": pa.array([T - timedelta(days=1)] * 2, ts),
                             "country": ["FR", "DE"]}), repo / "data" / "profile.parquet")
    store = FeatureStore(repo, config=run.config(), clock=clock)
    user = Entity("user", join_keys=["user_id"])
    from skewless import Aggregation, FeatureService, PushSource
    from skewless.types import Int64
    spend = FeatureView(
        "spend", entities=[user], on_missing="default",
        schema=[Field("user_id", Int64), Field("amount", Float64, default=0.0)],
        source=PushSource("tx", batch_source=FileSource("data/tx", "ts", event_id_column="tx_id")),
        aggregations=[Aggregation("amount", "sum", timedelta(hours=1)),
                      Aggregation("amount", "count", timedelta(hours=1)),
                      Aggregation("amount", "mean", timedelta(days=1), name="avg_1d")])
    profile = FeatureView("profile", entities=[user], schema=[Field("country", String)],
                          source=FileSource("data/profile.parquet", "ts"))
    service = FeatureService("fraud", features=[spend[["amount_sum_1h", "avg_1d"]], profile])
    store.apply([user, spend, profile, service])
    run.tables = [table_name(run.project, "spend"), table_name(run.project, "profile")]
    return store


@pytest.mark.needs_online("aggregations")
@pytest.mark.parametrize("run", _run_params("test_aggregations_by_hand"), indirect=True)
def test_aggregations_by_hand(run: Run, tmp_path: Path) -> None:
    """Windows at T (the event at T is not counted, the one 2h back is outside the 1h window),
    statuses and defaults of empty windows, event times, a FeatureService mixing aggregated and
    plain features, full feature names; a push is readable at once and counted once however
    often it is delivered; rebuild-online gives the same values; the coverage of an aggregated
    view ends 1us before its end."""
    now = [T]
    store = _agg_store(run, tmp_path, lambda: now[0])
    store.materialize_incremental(T)
    rows = [{"user_id": 1}, {"user_id": 2}, {"user_id": 3}]
    got = store.get_online_features("fraud", rows)
    assert got.to_dict() == {"user_id": [1, 2, 3], "amount_sum_1h": [50.0, 0.0, 0.0],
                             "avg_1d": [20.0, 0.0, 0.0], "country": ["FR", "DE", None]}
    assert got.statuses["amount_sum_1h"] == [PRESENT, NOT_FOUND, NOT_FOUND]
    assert got.statuses["country"] == [PRESENT, PRESENT, NOT_FOUND]
    assert got.event_timestamps["amount_sum_1h"] == [T - timedelta(minutes=1), None, None]
    full = store.get_online_features(["spend:amount_count_1h", "profile:country"], rows[:1],
                                     full_feature_names=True)
    assert full.to_dict() == {"user_id": [1], "spend__amount_count_1h": [2], "profile__country": ["FR"]}
    (status,) = [s for s in store.online_status() if s.view == "spend"]
    assert status.watermark == T - US

    # a push: readable at once; the same event again (another batch) and the same batch again
    # count once
    now[0] = T + timedelta(minutes=2)
    late = {"user_id": [1], "ts": [T + timedelta(minutes=1)], "amount": [5.0], "tx_id": ["f"]}
    store.push("tx", late)
    store.push("tx", late)
    store.push("tx", {**late, "tx_id": ["f"]}, batch_id="redelivered")
    store.push("tx", {"user_id": [1], "ts": [T - timedelta(minutes=30)], "amount": [1.0],
                      "tx_id": ["late"]})
    got = store.get_online_features(["spend:amount_sum_1h", "spend:amount_count_1h"], rows[:1])
    # 20 + 30 + 5 + 1: the event at T (40) comes online with the next run, which covers T
    assert got.to_dict() == {"user_id": [1], "amount_sum_1h": [56.0], "amount_count_1h": [4]}
    store.materialize_incremental(now[0])
    got = store.get_online_features(["spend:amount_sum_1h", "spend:amount_count_1h"], rows[:1])
    assert got.to_dict() == {"user_id": [1], "amount_sum_1h": [96.0], "amount_count_1h": [5]}

    # the window slides at read time: at T + 1h01 it starts at T (40 and 5 are left)
    now[0] = T + timedelta(hours=1, minutes=1)
    slid = store.get_online_features(["spend:amount_sum_1h"], rows[:1])
    assert slid.to_dict()["amount_sum_1h"] == [45.0]

    before = store.get_online_features("fraud", rows).to_dict()
    (report, *_) = [r for r in store.rebuild_online() if r.view == "spend"]
    assert report.mismatches == []
    assert store.get_online_features("fraud", rows).to_dict() == before


@pytest.mark.needs_online("aggregations")
@pytest.mark.parametrize("run", [p for p in _run_params("test_update_batch_is_atomic")
                                 if p.values[0][1] == ENGINES[0]], indirect=True)
def test_update_batch_is_atomic(run: Run, tmp_path: Path) -> None:
    """``update_batch`` (the read-modify-write aggregated views keep their tiles with) loses no
    update: writers on several threads, through two store objects when the store is shared by
    processes, each add one to a counter record of two keys; every addition is there."""
    import threading

    from skewless.online.codec import Record

    (tmp_path / "feature_store.yaml").write_text("")
    from skewless.backends import require

    first = FeatureStore(tmp_path, config=run.config()).online_store
    # as every caller does first (a store declaring the gap raises UnsupportedError here)
    require("online_store", first.name, first.capabilities, "aggregations", "update_batch")
    second = FeatureStore(tmp_path, config=run.config()).online_store if run.has("shared") else first
    table = table_name(run.project, "counter")
    run.tables = [table]
    first.create([table])

    def add(key: bytes, stored: Record | None) -> Record:
        n = 0 if stored is None else stored.vals[0]
        return Record(1, 1, ("n",), (n + 1,))

    def work(store: Any) -> None:
        for _ in range(25):
            store.update_batch(table, [b"a", b"b"], add)

    threads = [threading.Thread(target=work, args=(s,)) for s in (first, second, first, second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    got = first.read_batch({table: [b"a", b"b"]})[table]
    assert [r.vals[0] for r in got if r is not None] == [100, 100]
    first.drop([table])
