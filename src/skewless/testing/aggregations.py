"""Windowed-aggregation conformance: generated event streams, and engine-against-oracle
comparison (docs/aggregations.md).

Shipped beside ``skewless.testing.pit`` so that any offline engine (and, through the same
scenarios, any online path) can prove itself against the reference engine::

    from hypothesis import given, settings
    from skewless.testing.aggregations import aggregation_scenarios, assert_aggregations_agree

    @settings(max_examples=100, deadline=None)
    @given(aggregation_scenarios())
    def test_my_engine(scenario):
        with tempfile.TemporaryDirectory() as repo:
            assert_aggregations_agree(scenario, repo, {"type": "my_engine"})

``aggregation_scenarios()`` draws one aggregated view (one to six aggregations over an integer,
a float, a string and a timestamp column; a declared tile or the default ones; defaults or
nulls for empty windows; an event id column or none; a source availability delay or none),
its events and a set of labels. Events
sit exactly on tile edges and one microsecond either side, come in bursts at one time on one
key, arrive late (created long after their event time), are redelivered (the same event id,
identical or corrected with a newer created time), hold nulls; labels sit exactly at event
times (the event is excluded), exactly one window after an event and a microsecond either side
(the rounded-down tail), when an event lands (its time plus the delay) and a microsecond
either side, on tile edges, before a key's first event, far after its last (empty
windows), on unknown keys and null keys. The request mixes in a plain view's feature through a
FeatureService, and sometimes asks for full feature names or an ``as_of``.

``AggScenario.expected()`` restates the rule over the in-memory events (it never reads
Parquet), with the reference engine's functions (``engines/reference_aggregate.py``); it checks
the reference engine itself.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import strategies as st

from skewless import Aggregation, Entity, FeatureService, FeatureStore, FeatureView, Field, FileSource
from skewless import types as T
from skewless.aggregate.functions import NUMERIC_FUNCTIONS
from skewless.aggregate.windows import MINUTE, HOUR, default_tile, floor_tile, format_window
from skewless.engines.reference_aggregate import aggregate, dedup
from skewless.testing.compare import TableMismatch, assert_tables_equal

__all__ = ["AggScenario", "AggEvent", "aggregation_scenarios", "assert_aggregations_agree",
           "retrieve_aggregations", "setup_aggregation_repo"]

UTC = timezone.utc
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
BASE_US = 1_709_942_400_000_000        # 2024-03-09 00:00 UTC: a day (and tile) start
COLUMNS = {"n": "Int64", "amount": "Float64", "merchant": "String", "seen": "UnixTimestamp",
           "ratio": "Float32", "flag": "Bool"}
FUNCTIONS_OF = {
    "n": ("count", "sum", "mean", "min", "max", "last", "stddev_samp", "stddev_pop"),
    "amount": ("count", "sum", "mean", "min", "max", "last", "stddev_samp", "stddev_pop"),
    "merchant": ("count", "min", "max", "last"),
    "seen": ("min", "max", "last"),
    "ratio": ("sum", "mean", "min", "max", "last", "stddev_pop"),
    "flag": ("count", "last"),
}
REGIONS = ("eu", "us")
KEYS = (1, 2, 3)
UNKNOWN_KEY = 99


@dataclass(frozen=True)
class AggEvent:
    key: int
    region: str                     # the second join key of a composite-key scenario
    ts_us: int
    created_us: int | None
    event_id: str | None
    values: dict[str, Any]          # column -> value (None: null); "seen" as microseconds


@dataclass(frozen=True)
class AggScenario:
    aggregations: tuple[tuple[str, str, int, str | None], ...]   # (column, function, window us, name)
    tile_us: int | None             # the view's aggregation_tile, or None (default tiles)
    on_missing: str
    defaults: dict[str, Any]        # column -> field default
    event_ids: bool
    with_created: bool
    events: tuple[AggEvent, ...]
    labels: tuple[tuple[int | None, str, int | None], ...]   # (key, region, time us)
    full_feature_names: bool
    with_plain: bool
    as_of_us: int | None
    files: int
    composite: bool                 # the view's entity is (user_id, region)
    delay_us: int = 0               # the source's availability_delay (0: none)

    # --- definitions ------------------------------------------------------------------------
    def view(self, repo: str | Path) -> tuple[Entity, Entity, FeatureView, FeatureView]:
        user = Entity("user", join_keys=["user_id"])
        pair = Entity("user_region", join_keys=["user_id", "region"])
        source = FileSource("data/events", timestamp_field="ts",
                            created_timestamp_column="created" if self.with_created else None,
                            event_id_column="event_id" if self.event_ids else None,
                            availability_delay=timedelta(microseconds=self.delay_us) if self.delay_us else None)
        schema = [Field("user_id", T.Int64), Field("region", T.String)] + [
            Field(c, T.from_name(t), default=self.defaults.get(c)) for c, t in COLUMNS.items()]
        aggs = [Aggregation(c, f, timedelta(microseconds=w), name=n) for c, f, w, n in self.aggregations]
        view = FeatureView("activity", [pair if self.composite else user], schema, source, aggregations=aggs,
                           aggregation_tile=timedelta(microseconds=self.tile_us) if self.tile_us else None,
                           on_missing=self.on_missing)
        plain = FeatureView("profile", [user], [Field("user_id", T.Int64), Field("tier", T.Int64)],
                            FileSource("data/profile.parquet", timestamp_field="ts"))
        return user, pair, view, plain

    def feature_names(self) -> list[str]:
        return [n or f"{c}_{f}_{format_window(w)}" for c, f, w, n in self.aggregations]

    def request(self, repo: str | Path) -> dict[str, Any]:
        _, _, view, plain = self.view(repo)
        features: Any = [f"activity:{n}" for n in self.feature_names()]
        if self.with_plain:
            features = FeatureService("model", [view, plain[["tier"]]])
        as_of = datetime.fromtimestamp(self.as_of_us / 1e6, UTC) if self.as_of_us is not None else None
        return {"entity_df": self.entity_df(), "features": features,
                "full_feature_names": self.full_feature_names, "as_of": as_of}

    def output_name(self, view: str, feature: str) -> str:
        return f"{view}__{feature}" if self.full_feature_names else feature

    def entity_df(self) -> pd.DataFrame:
        return pd.DataFrame({
            "user_id": pd.array([k for k, _, _ in self.labels], dtype="Int64"),
            "region": pd.array([r for _, r, _ in self.labels], dtype="string"),
            "event_timestamp": pd.to_datetime(
                pd.array([t for _, _, t in self.labels], dtype="Int64"), unit="us", utc=True),
        })

    # --- data --------------------------------------------------------------------------------
    def source_table(self, events: tuple[AggEvent, ...]) -> pa.Table:
        ts = pa.timestamp("us", "UTC")
        return pa.table({
            "user_id": pa.array([e.key for e in events], pa.int64()),
            "region": pa.array([e.region for e in events], pa.string()),
            "ts": pa.array([e.ts_us for e in events], pa.int64()).cast(ts),
            "created": pa.array([e.created_us for e in events], pa.int64()).cast(ts),
            "event_id": pa.array([e.event_id for e in events], pa.string()),
            "n": pa.array([e.values["n"] for e in events], pa.int64()),
            "amount": pa.array([e.values["amount"] for e in events], pa.float64()),
            "merchant": pa.array([e.values["merchant"] for e in events], pa.string()),
            "seen": pa.array([e.values["seen"] for e in events], pa.int64()).cast(ts),
            "ratio": pa.array([e.values["ratio"] for e in events], pa.float32()),
            "flag": pa.array([e.values["flag"] for e in events], pa.bool_()),
        })

    def write(self, repo: str | Path) -> None:
        folder = Path(repo) / "data" / "events"
        folder.mkdir(parents=True, exist_ok=True)
        parts = [self.events[i::self.files] for i in range(self.files)]
        for i, part in enumerate(parts):
            pq.write_table(self.source_table(tuple(part)), folder / f"part-{i}.parquet")
        pq.write_table(pa.table({  # the plain view's rows: one per key, long before every label
            "user_id": pa.array(KEYS, pa.int64()),
            "ts": pa.array([BASE_US - 30 * 86_400_000_000] * len(KEYS), pa.int64()).cast(
                pa.timestamp("us", "UTC")),
            "tier": pa.array([10 * k for k in KEYS], pa.int64())}), Path(repo) / "data" / "profile.parquet")

    # --- the rule, restated ------------------------------------------------------------------
    def tile_of(self, window_us: int) -> int:
        return self.tile_us or default_tile(window_us)

    def expected_columns(self) -> dict[str, list[Any]]:
        """Each aggregated feature for each label, from the in-memory events."""
        rows: list[dict[str, Any]] = []
        for e in self.events:
            known = e.created_us if self.with_created else e.ts_us
            if self.as_of_us is not None and (known is None or known > self.as_of_us):
                continue
            ekey: tuple[Any, ...] = (e.key, e.region) if self.composite else (e.key,)
            rows.append({"id": e.event_id if self.event_ids else None, "key": ekey, "ts": e.ts_us,
                         "created": e.created_us if self.with_created else None,
                         "values": dict(e.values)})
        if self.event_ids:   # ties: every aggregated column, in schema order
            rows = dedup(rows, [c for c in COLUMNS if any(a[0] == c for a in self.aggregations)])
        out: dict[str, list[Any]] = {}
        for (c, f, w, _), name in zip(self.aggregations, self.feature_names()):
            col = []
            tile = self.tile_of(w)
            for user, region, t in self.labels:
                key = (user, region) if self.composite else (user,)
                if user is None or t is None:
                    window: list[Any] = []
                else:
                    start = floor_tile(t - w, tile)
                    window = [(r["ts"], r["created"], _shown(c, r["values"][c])) for r in rows
                              if r["key"] == key and start <= r["ts"] < t
                              and r["ts"] + self.delay_us <= t]   # usable by t
                value = aggregate(window, f)
                default = self.defaults.get(c) if self.on_missing == "default" and f != "count" else None
                if value is None and default is not None:
                    value = float(default) if f in NUMERIC_FUNCTIONS else _shown(c, default)
                col.append(value)
            out[self.output_name("activity", name)] = col
        return out

    def close_columns(self) -> list[str]:
        """The float columns compared within tolerance (docs/aggregations.md, "Floats")."""
        return [self.output_name("activity", name) for (c, f, _, _), name
                in zip(self.aggregations, self.feature_names()) if f in NUMERIC_FUNCTIONS]


def _shown(column: str, value: Any) -> Any:
    """A value as the result table holds it (timestamps as aware datetimes)."""
    if column == "seen" and value is not None:
        return EPOCH + timedelta(microseconds=value)
    return value


# --- the strategy ------------------------------------------------------------------------------

WINDOWS_BY_TILE = {MINUTE: (MINUTE, 2 * MINUTE, 5 * MINUTE, 7 * MINUTE, 30 * MINUTE),
                   5 * MINUTE: (5 * MINUTE, 10 * MINUTE, 15 * MINUTE, HOUR)}
DEFAULT_WINDOWS = (5 * MINUTE, 10 * MINUTE, HOUR, 90 * MINUTE, 12 * HOUR, 24 * HOUR)


def _value(draw: Callable[..., Any], column: str) -> Any:
    if draw(st.integers(0, 5)) == 0:
        return None
    if column == "n":
        return draw(st.integers(-50, 50))
    if column == "amount":
        if draw(st.integers(0, 9)) == 0:   # ordered and propagated alike on every path
            return draw(st.sampled_from([math.nan, math.inf, -math.inf]))
        return draw(st.sampled_from([0.0, 1.5, -2.25, 100.0, 0.1])) if draw(st.booleans()) else \
            round(draw(st.floats(-1000, 1000, allow_nan=False)), 2)
    if column == "merchant":
        return draw(st.sampled_from(["a", "b", "Zürich", "", "b "]))
    if column == "ratio":   # exact in float32; NaN and infinities as in float64 columns
        if draw(st.integers(0, 9)) == 0:
            return draw(st.sampled_from([math.nan, math.inf, -math.inf]))
        return draw(st.sampled_from([0.5, -1.25, 3.0, 1024.0, 0.375]))
    if column == "flag":
        return draw(st.booleans())
    return BASE_US + draw(st.integers(0, 10)) * MINUTE


@st.composite
def aggregation_scenarios(draw: Callable[..., Any], max_events: int = 30,
                          max_labels: int = 14) -> AggScenario:
    """One aggregated view, its generated events and labels (see the module docstring)."""
    tile = draw(st.sampled_from([None, MINUTE, 5 * MINUTE]))
    windows = DEFAULT_WINDOWS if tile is None else WINDOWS_BY_TILE[tile]
    aggs: list[tuple[str, str, int, str | None]] = []
    names: set[str] = set()
    for _ in range(draw(st.integers(1, 6))):
        column = draw(st.sampled_from(sorted(FUNCTIONS_OF)))
        function = draw(st.sampled_from(FUNCTIONS_OF[column]))
        window = draw(st.sampled_from(windows))
        name = f"{column}_{function}_{format_window(window)}"
        if name in names:
            continue
        names.add(name)
        aggs.append((column, function, window, draw(st.sampled_from([None, None, f"f{len(aggs)}"]))))
    span_tile = tile or 5 * MINUTE
    horizon = max(w for _, _, w, _ in aggs) + 2 * span_tile

    def when() -> int:
        kind = draw(st.integers(0, 3))
        if kind == 0:   # exactly on a tile edge, or a microsecond either side
            k = draw(st.integers(0, horizon // span_tile))
            return BASE_US + k * span_tile + draw(st.sampled_from([-1, 0, 0, 1]))
        return BASE_US + draw(st.integers(-span_tile, horizon))

    # a source availability_delay, sometimes: 1us, under a tile, odd, a tile, beyond a window
    delay = draw(st.sampled_from([0, 0, 0, 1, 90_000_000, span_tile - 1, span_tile,
                                  aggs[0][2] + span_tile]))
    with_created = draw(st.booleans())
    event_ids = draw(st.booleans())
    events: list[AggEvent] = []
    for i in range(draw(st.integers(0, max_events))):
        key = draw(st.sampled_from(KEYS))
        region = draw(st.sampled_from(REGIONS))
        ts = when()
        created = None
        if with_created and draw(st.integers(0, 4)):
            late = draw(st.sampled_from([0, 1, span_tile, horizon]))   # late arrivals
            created = ts + late
        values = {c: _value(draw, c) for c in COLUMNS}
        events.append(AggEvent(key, region, ts, created, f"e{i}" if event_ids or draw(st.booleans()) else None,
                               values))
        if draw(st.integers(0, 5)) == 0:   # a burst: several events at one time on one key
            for j in range(draw(st.integers(1, 4))):
                events.append(AggEvent(key, region, ts, created, f"e{i}b{j}",
                                       {c: _value(draw, c) for c in COLUMNS}))
    # redeliveries: the same event id again, identical or corrected (newer created time)
    for e in list(events):
        if e.event_id is not None and draw(st.integers(0, 4)) == 0:
            if draw(st.booleans()) or e.created_us is None:
                events.append(e)
            else:
                events.append(AggEvent(e.key, e.region, e.ts_us, e.created_us + 1, e.event_id,
                                       {c: _value(draw, c) for c in COLUMNS}))
    labels: list[tuple[int | None, str, int | None]] = []
    for _ in range(draw(st.integers(1, max_labels))):
        kind = draw(st.integers(0, 6))
        key = draw(st.sampled_from(KEYS))
        region = draw(st.sampled_from(REGIONS))
        if kind <= 1 and events:     # at an event, or one window (and tile) after it, +-1 us,
            e = draw(st.sampled_from(events))   # or when it lands (ts + delay), +-1 us
            _, _, w, _ = draw(st.sampled_from(aggs))
            t = e.ts_us + draw(st.sampled_from([0, w, w + 1, w - 1, w + span_tile, 1, delay - 1, delay,
                                                delay + 1, delay + w]))
            key, region = e.key, e.region
        elif kind == 2:
            t = BASE_US - 10 * span_tile   # before every event
        elif kind == 3:
            t = BASE_US + horizon + 3 * max(w for _, _, w, _ in aggs)   # after every window
        elif kind == 4:
            key, t = draw(st.sampled_from([(UNKNOWN_KEY, when()), (None, when()), (key, None)]))
        else:
            t = when()
        labels.append((key, region, t))
    defaults = {}
    on_missing = draw(st.sampled_from(["null", "default"]))
    if on_missing == "default":
        defaults = {"n": draw(st.sampled_from([None, 0, -1])), "amount": draw(st.sampled_from([None, 0.0, 2.5])),
                    "merchant": draw(st.sampled_from([None, "none"]))}
    as_of = None
    if with_created and draw(st.integers(0, 3)) == 0:
        as_of = BASE_US + draw(st.integers(0, horizon))
    return AggScenario(tuple(aggs), tile, on_missing, defaults, event_ids, with_created,
                       tuple(events), tuple(labels), draw(st.booleans()), draw(st.booleans()), as_of,
                       draw(st.integers(1, 2)), draw(st.booleans()), delay)


# --- running it --------------------------------------------------------------------------------

def setup_aggregation_repo(scenario: AggScenario, repo: str | Path) -> None:
    """Write the scenario's events under ``repo`` and apply its definitions."""
    scenario.write(repo)
    store = FeatureStore(repo, config=_config({"type": "reference"}))
    store.apply(list(scenario.view(repo)))


def _config(offline_store: dict[str, Any]) -> dict[str, Any]:
    return {"project": "agg", "registry": "data/registry.db", "offline_store": offline_store}


def retrieve_aggregations(scenario: AggScenario, repo: str | Path, offline_store: dict[str, Any]
                          ) -> pa.Table:
    """The scenario's request on the engine configured by ``offline_store``."""
    store = FeatureStore(repo, config=_config(offline_store))
    req = scenario.request(repo)
    return store.get_historical_features(req.pop("entity_df"), **req).to_arrow()


def assert_aggregations_agree(scenario: AggScenario, repo: str | Path, offline_store: dict[str, Any],
                              oracle: dict[str, Any] | None = None) -> pa.Table:
    """Set up ``scenario`` in the empty directory ``repo``, run its request on the engine
    ``offline_store`` and on ``oracle`` (the reference engine by default), and assert the two
    tables are equal (floats of sums, means and deviations within the documented tolerance).
    Returns the oracle's table."""
    oracle = oracle or {"type": "reference"}
    setup_aggregation_repo(scenario, repo)
    want = retrieve_aggregations(scenario, repo, oracle)
    got = retrieve_aggregations(scenario, repo, offline_store)
    try:
        assert_tables_equal(want, got, str(oracle.get("type")), str(offline_store.get("type")),
                            context=["user_id", "region", "event_timestamp"], close=scenario.close_columns())
    except TableMismatch as e:
        raise TableMismatch(f"{e}\n{explain(scenario, e.cells[0][0]) if e.cells else ''}", e.cells) from None
    return want


def explain(scenario: AggScenario, row: int) -> str:
    """The facts behind one label: its key and time, and that key's events."""
    key, region, t = scenario.labels[row]
    lines = [f"row {row}: key {key} (region {region}, composite {scenario.composite}) at {t} us; "
             f"tile {scenario.tile_us}; as_of {scenario.as_of_us}; delay {scenario.delay_us} us; "
             f"aggregations {scenario.aggregations}; its events:"]
    for e in sorted((e for e in scenario.events if e.key == key), key=lambda e: e.ts_us):
        lines.append(f"    region={e.region} ts={e.ts_us} created={e.created_us} id={e.event_id} {e.values}")
    return "\n".join(lines)
