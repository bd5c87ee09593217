"""Online conformance: once materialized up to t, serving at t equals the offline join at t.

``docs/online.md#the-invariant``: for every entity, ``get_online_features`` at t returns what
``get_historical_features`` returns for an entity_df of all entities at timestamp t -- values,
nulls and defaults -- and the status agrees with the rows: ``PRESENT`` exactly when a row within
the TTL exists (its event time is served with it), ``NOT_FOUND`` / ``OUTSIDE_TTL`` exactly when
the offline join gives null or the default. Shipped so any online store (and any offline engine
feeding it) can prove itself. ``{"type": "my_store"}`` names a store installed through the
``skewless.online_stores`` entry point group (docs/backends.md: a plugin is named in config
like a built-in, and an installed one also joins skewless's own conformance suites)::

    from hypothesis import given, settings
    from skewless.testing.online import check_scenario, online_scenarios

    @settings(max_examples=40, deadline=None)
    @given(online_scenarios())
    def test_my_store(scenario):
        with tempfile.TemporaryDirectory() as repo:
            check_scenario(scenario, repo, {"type": "duckdb"}, {"type": "my_store"}, "proj_x")

``online_scenarios()`` reuses the point-in-time generator (``skewless.testing.pit``: late and
duplicate rows, created-time ties, null values and keys, int, string and composite keys, several
views, every source layout) and adds the online side: a serving time t anchored on the edges
(an event time, 1us either side, ``ts + ttl`` and 1us either side, ``ts + availability_delay``
and 1us either side), and for every view with a TTL two entities placed on its edge -- latest row
exactly at ``t - ttl`` (``PRESENT``) and one microsecond earlier (``OUTSIDE_TTL``) -- and for
every view whose source declares an availability delay two entities on the landing edge: a row
that lands exactly at t (``PRESENT``) and one that lands 1us after t (not served: its entity's
earlier row, or ``NOT_FOUND``). ``sequence=True`` draws two runs of
``materialize_incremental``: the rows known at t1 are materialized, then the rest land -- new rows,
and late rows (an older event time, a created time after t1) -- and a second run at t2 must
again equal the offline join at t2 (rows in the source at t1 whose availability delay makes them
usable only between the runs come online with the second).

What a row "known at t1" is follows the created-timestamp contract: a row whose created time is
after t1 was written after t1. Rows without a created time (or views without a created column)
are known at t1 when their event time is; late rows of such views cannot be told apart from
old ones, so none are generated.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pyarrow as pa

try:
    from hypothesis import strategies as st
except ImportError:  # pragma: no cover - depends on the environment
    raise ImportError('skewless.testing needs hypothesis: pip install "skewless[dev]"') from None

from skewless import FeatureStore
from skewless.testing.pit import (
    BASE,
    KEY_KINDS,
    KNOWN_KEYS,
    UNKNOWN_KEYS,
    Scenario,
    SourceRow,
    ViewSpec,
    scenarios,
)

__all__ = [
    "StreamEvent", "StreamScenario", "aggregation_streams", "brute_force_aggregate",
    "check_aggregation_stream", "check_materialized_aggregations",
    "InvariantMismatch", "OnlineScenario", "check_invariant", "check_scenario", "expected_status",
    "online_scenarios", "open_store", "store_contents", "on_demand_definitions", "check_on_demand",
]

UTC = timezone.utc
US = timedelta(microseconds=1)
HOUR = timedelta(hours=1)
_OLDEST = datetime.min.replace(tzinfo=UTC)
PRESENT, NOT_FOUND, OUTSIDE_TTL = "PRESENT", "NOT_FOUND", "OUTSIDE_TTL"
TIMESTAMP_COLUMN = "event_timestamp"
MODES = ("incremental", "full", "twice", "two_windows")

# Keys only the injected TTL-edge entities use (never drawn by the point-in-time generator).
EDGE_KEYS: dict[str, tuple[Any, Any]] = {"int": (100, 101), "str": ("ttl_in", "ttl_out")}
# Keys of the injected landing-edge entities (availability delay): landed at t, 1us too late.
LANDING_KEYS: dict[str, tuple[Any, Any]] = {"int": (102, 103), "str": ("landed", "not_landed")}


class InvariantMismatch(AssertionError):
    """Online serving disagrees with the offline join; the message names the entity, the
    column, both values, the status and the view's rows for that entity."""


@dataclass(frozen=True)
class OnlineScenario:
    """A generated feature repo and the times at which online must equal offline.

    ``rows_at_t1``: per view, the rows known at ``t1`` (``views`` hold every row). Without
    ``t2`` (single run), every row is known at ``t1``."""

    base: Scenario                    # views (all rows) and full_feature_names
    t1: datetime
    t2: datetime | None               # second run (sequence) or None
    rows_at_t1: tuple[tuple[SourceRow, ...], ...]
    entity_rows: tuple[tuple[Any, ...], ...]   # one value per base.entity_keys column
    mode: str                         # how the (first) run materializes; see MODES
    split: datetime | None            # "two_windows": materialize [split, t1] then [None, split)
    injected: frozenset[str]          # what the data holds ("ttl_edge", "late_row", ...)

    @property
    def views(self) -> tuple[ViewSpec, ...]:
        return self.base.views

    @property
    def entity_keys(self) -> tuple[str, ...]:
        return self.base.entity_keys

    @property
    def refs(self) -> list[str]:
        return [f"{v.name}:{f.name}" for v in self.views for f in v.features]

    def output_name(self, view: ViewSpec, feature: str) -> str:
        return self.base.output_name(view, feature)

    def scenario_at(self, stage: int) -> Scenario:
        """The point-in-time scenario whose sources hold the rows known at run ``stage``."""
        if stage == 2:
            return self.base
        views = tuple(dataclasses.replace(v, rows=rows) for v, rows in zip(self.views, self.rows_at_t1))
        return dataclasses.replace(self.base, views=views)

    def config(self, offline_store: dict[str, Any], online_store: dict[str, Any],
               project: str) -> dict[str, Any]:
        # The point-in-time generator draws created times regardless of the run's clock (a
        # single run at t1 holds every row, some created after t1): accept them all here, as
        # the created-time contract is exercised by the two-run scenarios.
        return {"project": project, "offline_store": dict(offline_store),
                "online_store": dict(online_store), "registry_cache_ttl_seconds": 0,
                "created_timestamp_tolerance_seconds": 100 * 365 * 86_400}


# --- the rules, restated over the in-memory rows ---------------------------------------------------

def expected_status(view: ViewSpec, rows: Sequence[SourceRow], keys: tuple[Any, ...], t: datetime
                    ) -> tuple[str, SourceRow | None]:
    """The status online must report for entity ``keys`` of ``view`` at ``t`` once every row of
    ``rows`` usable at t (``ts + availability_delay <= t``) is materialized, and the row that
    decides it (None when NOT_FOUND)."""
    delay = view.availability_delay or timedelta(0)
    mine = [r for r in rows if r.keys == keys and r.ts is not None and r.ts + delay <= t]
    if any(k is None for k in keys) or not mine:
        return NOT_FOUND, None
    latest = max(mine, key=lambda r: (r.ts, r.created or _OLDEST))
    assert latest.ts is not None
    if view.ttl is not None and latest.ts < t - view.ttl:
        return OUTSIDE_TTL, latest
    return PRESENT, latest


def _same(a: Any, b: Any) -> bool:
    """Equality where NaN equals NaN (also inside lists) and Python types must agree."""
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


def _as_served(value: Any, dtype: Any) -> Any:
    return None if value is None else pa.array([value], type=dtype.to_arrow()).to_pylist()[0]


def _explain(view: ViewSpec, rows: Sequence[SourceRow], keys: tuple[Any, ...], feature: str) -> str:
    j = [f.name for f in view.features].index(feature)
    lines = [f"  view '{view.name}' ttl={view.ttl} availability_delay={view.availability_delay} "
             f"on_missing={view.on_missing} "
             f"created_column={view.created_column}; its rows for {dict(zip(view.join_keys, keys))}:"]
    mine = sorted((r for r in rows if r.keys == keys), key=lambda r: (r.ts or _OLDEST, r.created or _OLDEST))
    for r in mine:
        lines.append(f"    ts={r.ts} created={r.created} {feature}={r.values[j]!r}")
    return "\n".join(lines)


def check_invariant(store: FeatureStore, scenario: OnlineScenario, t: datetime,
                    rows: Sequence[Sequence[SourceRow]], label: str = "") -> set[str]:
    """Assert online at ``t`` == offline at ``t`` for every entity row of ``scenario``, with
    statuses and event timestamps as the rules over ``rows`` (per view) say. ``store``'s clock
    must read ``t``. Returns the traits the check exercised."""
    entity_rows = [dict(zip(scenario.entity_keys, e)) for e in scenario.entity_rows]
    full = scenario.base.full_feature_names
    online = store.get_online_features(scenario.refs, entity_rows, full_feature_names=full)
    got = online.to_dict()
    entity_df = pa.table({
        **{k: pa.array([e[i] for e in scenario.entity_rows],
                       pa.int64() if KEY_KINDS[k] == "int" else pa.string())
           for i, k in enumerate(scenario.entity_keys)},
        TIMESTAMP_COLUMN: pa.array([t] * len(entity_rows), pa.timestamp("us", "UTC")),
    })
    offline = store.get_historical_features(entity_df, scenario.refs, full_feature_names=full).to_arrow()
    features = [c for c in offline.column_names if c not in entity_df.column_names]
    where = f"{label} at t={t.isoformat()}"
    names, n_keys = list(got), len(scenario.entity_keys)
    if set(names[:n_keys]) != set(scenario.entity_keys) or names[n_keys:] != features:
        raise InvariantMismatch(f"{where}: online columns {names}, expected the join keys "
                                f"{list(scenario.entity_keys)} then the features {features}")
    traits: set[str] = set()
    problems: list[str] = []
    for view, view_rows in zip(scenario.views, rows):
        for i, e in enumerate(entity_rows):
            keys = tuple(e[k] for k in view.join_keys)
            status, row = expected_status(view, view_rows, keys, t)
            traits.add(f"status:{status}")
            traits |= _traits(view, view_rows, keys, t, status, row)
            for spec in view.features:
                col = scenario.output_name(view, spec.name)
                off, on = offline.column(col)[i].as_py(), got[col][i]
                st_, ts_ = online.statuses[col][i], online.event_timestamps[col][i]
                want_ts = row.ts if row is not None else None
                fault = None
                if not _same(off, on):
                    fault = f"offline={off!r}, online={on!r}"
                elif st_ != status:
                    fault = f"status {st_}, expected {status}"
                elif ts_ != want_ts:
                    fault = f"event timestamp {ts_}, expected {want_ts}"
                elif status != PRESENT:
                    missing = (_as_served(spec.default, spec.value_type)
                               if view.on_missing == "default" else None)
                    if not _same(off, missing):
                        fault = f"status {status} but offline gives {off!r}, not {missing!r}"
                    elif missing is not None:
                        traits.add("default_served")
                elif on is None:
                    traits.add("null_value_present")
                if fault:
                    problems.append(f"entity {e} column '{col}': {fault} (online status {st_}, "
                                    f"event ts {ts_})\n{_explain(view, view_rows, keys, spec.name)}")
    if problems:
        shown = "\n".join(problems[:6])
        more = f"\n... and {len(problems) - 6} more" if len(problems) > 6 else ""
        raise InvariantMismatch(f"{where}: online differs from offline in {len(problems)} cell(s):\n"
                                f"{shown}{more}")
    if scenario.views and ECHO_PYTHON in store.snapshot().on_demand_feature_views:
        traits |= check_on_demand(store, scenario, t, entity_df, where)
    return traits


# --- on-demand views: the function sees the same values on both paths ---------------------------

ECHO_PYTHON, ECHO_PANDAS, ECHO_REQUEST = "conformance_echo_py", "conformance_echo_pd", "conformance_request"


def echo_python(inputs: dict[str, list[Any]]) -> dict[str, list[Any]]:
    """Every input of a row (and the request value), as text: equal texts online and offline
    mean the function saw equal values of equal Python types. A float zero is shown unsigned,
    as the plain invariant compares values with ``==`` (DuckDB's materialization drops the
    sign of -0.0: tests/integration/test_on_demand.py, the strict xfail)."""
    def unsigned(v: Any) -> Any:
        if type(v) is float:
            return v + 0.0
        return [unsigned(x) for x in v] if type(v) is list else v

    names = sorted(inputs)
    rows = len(inputs[names[0]]) if names else 0
    return {"echo": [repr(tuple((k, unsigned(inputs[k][i])) for k in names)) for i in range(rows)],
            "bumped": [None if inputs["bump"][i] is None else inputs["bump"][i] + 1 for i in range(rows)]}


def echo_pandas(inputs: Any) -> Any:
    """``echo_python`` in pandas mode: each row's values with the frame's dtypes."""
    import numpy as np
    import pandas as pd

    def unsigned(v: Any) -> Any:   # zeros unsigned, as in echo_python
        if isinstance(v, (float, np.floating)):
            return v + 0.0
        if isinstance(v, np.ndarray):
            return v + 0.0 if v.dtype.kind == "f" else [unsigned(x) for x in v]
        return [unsigned(x) for x in v] if isinstance(v, (list, tuple)) else v

    cols = sorted(inputs.columns)
    text = [repr(tuple(zip(cols, (repr(unsigned(v)) for v in row))))
            for row in inputs[cols].itertuples(index=False)]
    return pd.DataFrame({"echo": text, "dtypes": [repr([str(inputs[c].dtype) for c in cols])] * len(inputs)})


def on_demand_definitions(scenario: OnlineScenario) -> list[Any]:
    """Two on-demand views over every generated view's features (a feature name used by two
    views is read from the first only) and a request field ``bump``: ``echo_python`` and
    ``echo_pandas``. ``open_store`` applies them; ``check_invariant`` reads them."""
    from skewless import Field, OnDemandFeatureView, RequestSource
    from skewless.define import FeatureViewProjection
    from skewless.types import Int64, String

    seen: set[str] = set()
    sources: list[Any] = []
    for v in scenario.views:
        mine = [f.name for f in v.features if f.name not in seen and f.name != "bump"]
        seen.update(mine)
        if mine:
            sources.append(FeatureViewProjection(v.name, mine))
    request = RequestSource(ECHO_REQUEST, [Field("bump", Int64)])
    return [
        OnDemandFeatureView(ECHO_PYTHON, [*sources, request],
                            [Field("echo", String), Field("bumped", Int64)], echo_python, mode="python"),
        OnDemandFeatureView(ECHO_PANDAS, [*sources, request],
                            [Field("echo", String), Field("dtypes", String)], echo_pandas, mode="pandas"),
    ]


def check_on_demand(store: FeatureStore, scenario: OnlineScenario, t: datetime, entity_df: pa.Table,
                    where: str) -> set[str]:
    """Online at ``t`` == offline at ``t`` for the on-demand views of ``on_demand_definitions``:
    the text of every input the function saw, in python and pandas mode, and the request value
    (``bump``, with a null) read from the entity rows online and from entity_df offline."""
    refs = [f"{ECHO_PYTHON}:echo", f"{ECHO_PYTHON}:bumped", f"{ECHO_PANDAS}:echo", f"{ECHO_PANDAS}:dtypes"]
    n = entity_df.num_rows
    bumps = [None if i % 3 == 2 else i * 7 - 5 for i in range(n)]
    rows = [{**{k: entity_df.column(k)[i].as_py() for k in scenario.entity_keys}, "bump": b}
            for i, b in enumerate(bumps)]
    got = store.get_online_features(refs, rows, full_feature_names=True).to_dict()
    offline = store.get_historical_features(entity_df.append_column("bump", pa.array(bumps, pa.int64())),
                                            refs, full_feature_names=True).to_arrow()
    for ref in refs:
        col = ref.replace(":", "__")
        want = offline.column(col).to_pylist()
        if got[col] != want:
            i = next(j for j, (a, b) in enumerate(zip(got[col], want)) if a != b)
            raise InvariantMismatch(
                f"{where}: on-demand column '{col}' differs online and offline for entity row "
                f"{rows[i]}:\n  online:  {got[col][i]!r}\n  offline: {want[i]!r}")
    return {"on_demand"}


def _traits(view: ViewSpec, rows: Sequence[SourceRow], keys: tuple[Any, ...], t: datetime,
            status: str, row: SourceRow | None) -> set[str]:
    out = {f"key:{KEY_KINDS[k]}" for k in view.join_keys}
    if len(view.join_keys) > 1:
        out.add("composite_key")
    if row is None:
        return out
    assert row.ts is not None
    if view.ttl is not None and status == PRESENT and row.ts == t - view.ttl:
        out.add("ttl_edge_present")
    if view.ttl is not None and status == OUTSIDE_TTL and row.ts == t - view.ttl - US:
        out.add("ttl_outside_by_1us")
    ties = {r.created for r in rows if r.keys == keys and r.ts == row.ts}
    if len(ties) > 1:
        out.add("created_tiebreak")
        if None in ties:
            out.add("null_created_tie")
    if any(r.keys == keys and r.ts is not None and r.ts > t for r in rows):
        out.add("future_row_ignored")
    delay = view.availability_delay
    if delay is not None:
        if status == PRESENT and row.ts + delay == t:
            out.add("landing_edge_present")
        if any(r.keys == keys and r.ts is not None and r.ts <= t < r.ts + delay for r in rows):
            out.add("not_landed_ignored")
    return out


# --- running ---------------------------------------------------------------------------------------

@contextmanager
def open_store(scenario: OnlineScenario, repo: str | Path, offline_store: dict[str, Any],
               online_store: dict[str, Any], project: str,
               clock: Callable[[], datetime]) -> Iterator[FeatureStore]:
    """Write the rows known at t1, apply the definitions and yield a store on ``clock``."""
    defs = scenario.scenario_at(1).definitions(repo)
    store = FeatureStore(repo, config=scenario.config(offline_store, online_store, project), clock=clock)
    store.apply([*defs, *on_demand_definitions(scenario)])
    try:
        yield store
    finally:
        store.online_store.close()


def check_scenario(scenario: OnlineScenario, repo: str | Path, offline_store: dict[str, Any],
                   online_store: dict[str, Any], project: str) -> set[str]:
    """Run ``scenario`` in the empty directory ``repo`` against the given offline engine and
    online store (tables under ``project``) and assert the invariant after each run. Returns the
    traits exercised."""
    now = [scenario.t1]
    label = f"{online_store['type']} store fed by {offline_store['type']}"
    traits = {f"mode:{scenario.mode}", *scenario.injected}
    with open_store(scenario, repo, offline_store, online_store, project, lambda: now[0]) as store:
        t1 = scenario.t1
        if scenario.mode == "incremental":
            store.materialize_incremental(t1)
        elif scenario.mode == "full":
            store.materialize(None, t1)
        elif scenario.mode == "twice":
            store.materialize_incremental(t1)
            store.materialize(None, t1)
        else:
            assert scenario.split is not None
            store.materialize(scenario.split, t1)
            store.materialize(None, scenario.split)
        traits |= check_invariant(store, scenario, t1, scenario.rows_at_t1, label)
        if scenario.t2 is not None:
            scenario.scenario_at(2).definitions(repo)   # the rest of the rows land
            now[0] = scenario.t2
            store.materialize_incremental(scenario.t2)
            traits |= check_invariant(store, scenario, scenario.t2, [v.rows for v in scenario.views],
                                      label + " (second incremental run)")
    return traits


# --- generation ------------------------------------------------------------------------------------

def _quantum(t: pa.DataType) -> timedelta:
    if pa.types.is_date(t):
        return timedelta(days=1)
    return {"s": timedelta(seconds=1), "ms": timedelta(milliseconds=1)}.get(t.unit, US)


def _fits(ts: datetime, t: pa.DataType) -> bool:
    return (ts - BASE) % _quantum(t) == timedelta(0)


def _floor(ts: datetime, t: pa.DataType) -> datetime:
    return ts - (ts - BASE) % _quantum(t)


def _value(t: pa.DataType, dtype: str = "") -> Any:
    """A non-null value of a source column type that fits the declared type (for injected rows)."""
    if pa.types.is_dictionary(t):
        return _value(t.value_type)
    if pa.types.is_integer(t):
        return 7
    if pa.types.is_floating(t):
        return 7.0 if dtype.startswith("Int") else 0.25
    if pa.types.is_boolean(t):
        return True
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return [0.5, None]
    return "edge"


def _anchor(draw: Callable[..., Any], views: Sequence[ViewSpec]) -> datetime:
    """A serving time, usually on an edge of some row: its event time, 1us either side, or
    ``ts + ttl`` and 1us either side."""
    anchored = [(v, r) for v in views for r in v.rows if r.ts is not None]
    mode = draw(st.sampled_from(["edge", "edge", "edge", "free", "after_all", "before_all"]))
    if mode == "edge" and anchored:
        v, r = draw(st.sampled_from(anchored))
        deltas = [timedelta(0), -US, US, timedelta(minutes=30)]
        if v.ttl is not None:
            deltas += [v.ttl, v.ttl, v.ttl + US, v.ttl - US]
        if v.availability_delay is not None:
            d = v.availability_delay
            deltas += [d, d, d + US, d - US]
        return r.ts + draw(st.sampled_from(deltas))  # type: ignore[no-any-return]
    if mode == "after_all":
        return BASE + 13 * HOUR + draw(st.sampled_from([timedelta(0), timedelta(days=2)]))
    if mode == "before_all":
        return BASE - US
    return BASE + draw(st.integers(0, 12 * 3_600_000_000)) * US


def _edge_rows(view: ViewSpec, t: datetime) -> list[SourceRow]:
    """Two entities on the view's TTL edge at ``t``: the latest row exactly at ``t - ttl`` and
    the latest representable instant before it (1us earlier on microsecond columns)."""
    if view.ttl is None:
        return []
    ins = tuple(EDGE_KEYS[KEY_KINDS[k]][0] for k in view.join_keys)
    outs = tuple(EDGE_KEYS[KEY_KINDS[k]][1] for k in view.join_keys)
    values = tuple(_value(f.source_type, f.dtype) for f in view.features)
    edge = t - view.ttl
    rows = []
    if _fits(edge, view.ts_type):
        rows.append(SourceRow(ins, edge, None, values, 0))
    rows.append(SourceRow(outs, _floor(edge - US, view.ts_type), None, values, 0))
    return rows


def _landing_rows(view: ViewSpec, t: datetime) -> list[SourceRow]:
    """Two entities on the view's landing edge at ``t`` (availability delay): each has an old
    row, then one that lands exactly at ``t`` (served) or at the next representable instant
    after ``t`` (not served yet: the old row is)."""
    if view.availability_delay is None:
        return []
    ins = tuple(LANDING_KEYS[KEY_KINDS[k]][0] for k in view.join_keys)
    outs = tuple(LANDING_KEYS[KEY_KINDS[k]][1] for k in view.join_keys)
    values = tuple(_value(f.source_type, f.dtype) for f in view.features)
    old = tuple(None for _ in view.features)
    edge = t - view.availability_delay
    early = _floor(edge - HOUR, view.ts_type)
    rows = [SourceRow(ins, early, None, old, 0), SourceRow(outs, early, None, old, 0)]
    if _fits(edge, view.ts_type):
        rows.append(SourceRow(ins, edge, None, values, 0))
    later = _floor(edge, view.ts_type) + _quantum(view.ts_type)
    rows.append(SourceRow(outs, later, None, values, 0))
    return rows


def _known_at(view: ViewSpec, row: SourceRow, t1: datetime, early: bool) -> bool:
    """Whether ``row`` is in the offline store at the first run (``early``: a row that could
    be either way -- a future event without a created time -- is)."""
    if view.created_column and row.created is not None:
        return row.created <= t1
    if row.ts is not None and row.ts <= t1:
        return True
    return early


def _late_rows(draw: Callable[..., Any], view: ViewSpec, known: Sequence[SourceRow],
               t1: datetime, t2: datetime) -> list[SourceRow]:
    """Rows landing after t1 with an event time at or before t1 (a created time after t1),
    placed to compete with the entity's latest row at t1: the same event time (it wins the
    created-time tie-break), or an hour later or earlier."""
    if not view.created_column or view.created_type is None:
        return []
    latest: dict[tuple[Any, ...], SourceRow] = {}
    for keys in {r.keys for r in known if all(k is not None for k in r.keys)}:
        _, row = expected_status(view, known, keys, t1)
        if row is not None:
            latest[keys] = row
    if not latest:
        return []
    out: list[SourceRow] = []
    taken = {(r.keys, r.ts, r.created) for r in view.rows}
    chosen = st.lists(st.sampled_from(sorted(latest, key=repr)), min_size=1, max_size=3, unique=True)
    for keys in draw(chosen):
        base = latest[keys]
        assert base.ts is not None
        ts = base.ts + draw(st.sampled_from([timedelta(0), timedelta(0), HOUR, -HOUR]))
        ts = min(_floor(ts, view.ts_type), _floor(t1, view.ts_type))
        after = draw(st.sampled_from([US, timedelta(seconds=1), HOUR, timedelta(days=1), t2 - t1]))
        created = _floor(t1 + after, view.created_type)
        if created <= t1 or created > t2 or (keys, ts, created) in taken:
            continue
        taken.add((keys, ts, created))
        values = tuple(None if draw(st.integers(0, 4)) == 0 else _value(f.source_type, f.dtype)
                       for f in view.features)
        out.append(SourceRow(keys, ts, created, values, draw(st.integers(0, view.n_files - 1))))
    return out


@st.composite
def online_scenarios(draw: Callable[..., Any], sequence: bool = False, max_views: int = 3,
                     max_rows: int = 20, modes: Sequence[str] = MODES) -> OnlineScenario:
    """A random feature repo, the serving time(s) and the entities to check (module docstring).
    ``modes``: how the (first) run may materialize (a subset of ``MODES``; a sequence always
    runs incrementally)."""
    base: Scenario = draw(scenarios(max_views=max_views, max_rows=max_rows, max_labels=0))
    t1 = _anchor(draw, base.views)
    t2 = None
    if sequence:
        t2 = max(_anchor(draw, base.views), t1 + draw(st.sampled_from([US, HOUR, 6 * HOUR])))
    final = t2 or t1
    injected: set[str] = set()
    views, rows_at_t1 = [], []
    for v in base.views:
        edge = _edge_rows(v, final)
        if edge:
            injected.add("ttl_edge")
        landing = _landing_rows(v, final)
        if landing:
            injected.add("landing_edge")
        edge += landing
        if t2 is None:
            rows = [*v.rows, *edge]
            known = rows
        else:
            known = [r for r in v.rows if _known_at(v, r, t1, draw(st.booleans()))]
            known += [r for r in edge if r.ts is not None and r.ts <= t1]
            rows = [*v.rows, *edge, *_late_rows(draw, v, known, t1, t2)]
            late = [r for r in rows if r not in known and r.ts is not None and r.ts <= t1]
            if late:
                injected.add("late_row")
            for keys in {r.keys for r in late}:
                status, row = expected_status(v, rows, keys, t2)
                if status == PRESENT and row in late:
                    injected.add("late_row_wins")
            if v.availability_delay is not None:   # in the source at t1, usable only later
                for keys in {r.keys for r in known}:
                    status, row = expected_status(v, rows, keys, t2)
                    if (status == PRESENT and row is not None and row in known and row.ts is not None
                            and t1 < row.ts + v.availability_delay <= t2):
                        injected.add("landed_between_runs")
        views.append(dataclasses.replace(v, rows=tuple(rows)))
        rows_at_t1.append(tuple(known))
    base = dataclasses.replace(base, views=tuple(views))

    entity_rows: list[tuple[Any, ...]] = []
    for v in base.views:
        for keys in dict.fromkeys(r.keys for r in v.rows if all(k is not None for k in r.keys)):
            mine = dict(zip(v.join_keys, keys))
            entity_rows.append(tuple(
                mine[k] if k in mine else draw(st.sampled_from(KNOWN_KEYS[KEY_KINDS[k]]))
                for k in base.entity_keys))
    for _ in range(draw(st.integers(0, 2))):
        entity_rows.append(tuple(draw(st.sampled_from(UNKNOWN_KEYS[KEY_KINDS[k]]))
                                 for k in base.entity_keys))
    mode = "incremental" if sequence else draw(st.sampled_from(tuple(modes)))
    split = None
    if mode == "two_windows":
        split = min(_anchor(draw, base.views), t1)
    return OnlineScenario(base=base, t1=t1, t2=t2, rows_at_t1=tuple(rows_at_t1),
                          entity_rows=tuple(draw(st.permutations(entity_rows))), mode=mode,
                          split=split, injected=frozenset(injected))


# --- inspecting a store ----------------------------------------------------------------------------

def store_contents(store: FeatureStore, views: Sequence[str] | None = None
                   ) -> dict[str, dict[tuple[Any, ...], tuple[int, int, dict[str, Any]]]]:
    """Everything the online store holds for ``views`` (default: every online view): per view,
    entity key -> (event time us, created time us, values). Two stores with equal contents
    serve alike; materialization tests compare runs with it."""
    from skewless.online.codec import decode_key

    snapshot = store.snapshot()
    names = views if views is not None else [v.name for v in snapshot.feature_views.values() if v.online]
    out: dict[str, dict[tuple[Any, ...], tuple[int, int, dict[str, Any]]]] = {}
    for name in names:
        table = snapshot.online_table(name)
        keys = store.online_store.scan_keys(table, 1 << 40)
        records = store.online_store.read_batch({table: keys})[table]
        out[name] = {decode_key(k): (r.event_ts, r.created_ts, r.values)
                     for k, r in zip(keys, records) if r is not None}
    return out


# --- windowed aggregations (docs/aggregations.md, "Online") ---------------------------------------
#
# For every key and every aggregation: online at t == offline at t == a brute-force scan of the
# events, for tiles built by materialization ("materialize"), by pushes ("push": the events
# arrive in any order, late ones too, some delivered twice) and by both ("mixed": a batch is
# materialized, then the rest is pushed). The brute force is restated here from the rule, not
# taken from skewless.aggregate.

MINUTE = timedelta(minutes=1)
AGG_BASE = datetime(2024, 3, 4, tzinfo=UTC)          # a Monday, 00:00 UTC: every tile starts here
AGG_FUNCTIONS = ("count", "sum", "mean", "min", "max", "last", "stddev_samp", "stddev_pop")
AGG_MODES = ("materialize", "push", "mixed")
AGG_KEYS = (1, 2, 3, 4)                              # keys events use; 9 never has any
# (aggregation_tile, windows it divides): the default tiles (5m under 12h, 1h under 12d) or one
AGG_TILINGS: tuple[tuple[timedelta | None, tuple[timedelta, ...]], ...] = (
    (None, (timedelta(minutes=30), timedelta(hours=1), timedelta(hours=13), timedelta(days=1))),
    (timedelta(minutes=10), (timedelta(minutes=10), timedelta(minutes=30), timedelta(hours=2))),
)


@dataclass(frozen=True)
class StreamEvent:
    """One source row: key, event time, created time (or None), ``x`` (Float64 or None), ``n``
    (Int64 or None), event id (or None), and when it reaches skewless (``arrival`` >= ``ts``:
    a late event arrives long after its event time)."""

    key: int
    ts: datetime
    created: datetime | None
    x: float | None
    n: int | None
    event_id: str | None
    arrival: datetime


@dataclass(frozen=True)
class StreamScenario:
    """An aggregated view over generated events, the times to check and how tiles are built."""

    aggregations: tuple[tuple[str, str, timedelta], ...]   # (column, function, window)
    tile: timedelta | None
    events: tuple[StreamEvent, ...]
    checks: tuple[datetime, ...]        # increasing check times
    mode: str                           # AGG_MODES
    event_ids: bool                     # the source declares event_id_column
    created: bool                       # the source has a created timestamp column
    on_missing: str
    defaults: tuple[float | None, int | None]   # the fields' defaults (x, n)
    full_feature_names: bool
    batch_until: datetime | None        # "mixed": events before it are offline from the start
    delay: timedelta | None = None      # the batch source's availability_delay

    @property
    def tile_of(self) -> dict[timedelta, timedelta]:
        if self.tile is not None:
            return {w: self.tile for _, _, w in self.aggregations}
        return {w: timedelta(minutes=5) if w < timedelta(hours=12) else HOUR
                for _, _, w in self.aggregations}


def _stdev(vals: list[float], ddof: int) -> float | None:
    if len(vals) <= ddof:
        return None
    mean = sum(vals) / len(vals)
    return math.sqrt(sum((v - mean) ** 2 for v in vals) / (len(vals) - ddof))


def brute_force_aggregate(events: Sequence[StreamEvent], key: int, column: str, function: str,
                          window: timedelta, tile: timedelta, t: datetime,
                          event_ids: bool, delay: timedelta | None = None
                          ) -> tuple[Any, int, datetime | None]:
    """DESIGN section 4 by brute force: the events of ``key`` with ``floor_tile(t - window) <=
    ts < t`` and usable by t, ``ts + delay <= t`` (duplicates of an event id, exact copies here,
    count once when ``event_ids``), nulls skipped. Returns (value, number of values, event time
    of the latest value)."""
    step = tile // US
    lo_us = ((t - window) - _EPOCH) // US
    lo = _EPOCH + timedelta(microseconds=lo_us - lo_us % step)
    seen: set[str] = set()
    inside = []
    for e in events:
        if e.key != key or not lo <= e.ts < t or (delay is not None and e.ts + delay > t):
            continue
        if event_ids and e.event_id is not None:
            if e.event_id in seen:
                continue
            seen.add(e.event_id)
        inside.append(e)
    pairs = [(e, getattr(e, column)) for e in inside if getattr(e, column) is not None]
    vals = [v for _, v in pairs]
    # NaN orders above every number (min, max, ties of last), as DuckDB orders
    order = lambda v: (1, 0.0) if v != v else (0, v)  # noqa: E731
    latest = max(pairs, key=lambda p: (p[0].ts, p[0].created or _OLDEST, order(p[1])), default=None)
    top = latest[0].ts if latest is not None else None
    if function == "count":
        return len(vals), len(vals), top
    if not vals:
        return None, 0, None
    value: Any
    if function == "sum":
        value = float(sum(vals))
    elif function == "mean":
        value = float(sum(vals)) / len(vals)
    elif function == "min":
        value = min(vals, key=order)
    elif function == "max":
        value = max(vals, key=order)
    elif function == "last":
        value = latest[1] if latest is not None else None
    else:
        value = _stdev([float(v) for v in vals], 1 if function == "stddev_samp" else 0)
    return value, len(vals), top


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@st.composite
def aggregation_streams(draw: Callable[..., Any], modes: Sequence[str] = AGG_MODES,
                          max_events: int = 30) -> StreamScenario:
    """A random aggregated view and events: bursts on one key, events exactly on tile and window
    edges (and 1us either side), late events, exact duplicates (with and without an event id),
    null values, keys with empty windows; check times on tile edges and between them; sometimes
    a source availability delay, with events landing exactly at a check time (and 1us either
    side) and pushed rows pending at their push time (then every check materializes first)."""
    tile, windows = draw(st.sampled_from(AGG_TILINGS))
    chosen = draw(st.lists(st.tuples(st.sampled_from(("x", "n")), st.sampled_from(AGG_FUNCTIONS),
                                     st.sampled_from(windows)), min_size=1, max_size=6, unique=True))
    aggs = tuple(chosen)
    span = max(w for _, _, w in aggs) + 2 * HOUR
    checks = sorted(set(draw(st.lists(st.sampled_from(_edges(span, windows)), min_size=1, max_size=3))))
    checks = [AGG_BASE + span + c for c in checks]
    # event times: on the grid of tile and window edges around the checks, 1us either side
    # a batch source availability_delay, sometimes; then events also land on the check times
    delay = draw(st.sampled_from([None, None, None, US, 7 * MINUTE, HOUR]))
    anchors = [c - w for c in checks for w in windows] + list(checks)
    if delay is not None:
        anchors += [c - delay for c in checks]
    step = tile or timedelta(minutes=5)
    times = st.one_of(
        st.sampled_from([a + d for a in anchors for d in (-US, timedelta(0), US)]),
        st.builds(lambda m, d: AGG_BASE + m * step + d, st.integers(0, int(span / step) + 4),
                  st.sampled_from([timedelta(0), US, -US, step / 2])))
    event_ids = draw(st.booleans())
    created = draw(st.booleans())
    mode = draw(st.sampled_from(list(modes)))
    events: list[StreamEvent] = []
    n_events = draw(st.integers(0, max_events))
    burst_key = draw(st.sampled_from(AGG_KEYS))
    for i in range(n_events):
        key = burst_key if draw(st.booleans()) else draw(st.sampled_from(AGG_KEYS))
        ts = draw(times)
        late = draw(st.sampled_from([timedelta(0), timedelta(0), US, 7 * MINUTE, 3 * HOUR]))
        events.append(StreamEvent(
            key, ts, (ts + draw(st.sampled_from([timedelta(0), MINUTE]))) if created and draw(st.booleans()) else None,
            draw(st.one_of(st.none(), st.sampled_from([0.0, 1.5, -2.25, 1e6, 0.1]),
                           st.sampled_from(ODD_FLOATS))),
            draw(st.one_of(st.none(), st.integers(-3, 3), st.sampled_from(WIDE_INTS))),
            f"e{i}" if event_ids and draw(st.integers(0, 4)) else None, ts + late))
    # exact duplicates: a redelivery (same id when ids are declared) arriving later
    for e in list(events):
        if draw(st.integers(0, 5)) == 0:
            events.append(dataclasses.replace(e, arrival=e.arrival + draw(st.sampled_from([US, HOUR]))))
    batch_until = None
    if mode == "mixed":
        batch_until = checks[0] - draw(st.sampled_from([timedelta(0), HOUR, 3 * HOUR]))
    return StreamScenario(aggs, tile, tuple(events), tuple(checks), mode, event_ids, created,
                       draw(st.sampled_from(["null", "default"])),
                       (draw(st.sampled_from([None, -1.0])), draw(st.sampled_from([None, 7]))),
                       draw(st.booleans()), batch_until, delay)


# Float64 values every path must order and propagate alike (docs/aggregations.md, "Floats")
ODD_FLOATS = (math.nan, math.inf, -math.inf, -0.0)

# Int64 values whose sums leave 64 bits within a few events: the tiles keep exact integer sums
# (msgpack's WIDE_INT extension online; HUGEINT in DuckDB), so sum and mean still agree
WIDE_INTS = (2**63 - 1, 2**62 + 3, -(2**63))


def _edges(span: timedelta, windows: Sequence[timedelta]) -> list[timedelta]:
    """Offsets of check times: on tile edges, 1us after, in the middle of a tile."""
    return [timedelta(0), US, timedelta(minutes=2), timedelta(minutes=5), timedelta(minutes=5) + US,
            HOUR, HOUR + US, timedelta(minutes=37)]


def _agg_table(events: Sequence[StreamEvent], scenario: StreamScenario) -> pa.Table:
    ts = pa.timestamp("us", "UTC")
    cols: dict[str, Any] = {
        "user_id": pa.array([e.key for e in events], pa.int64()),
        "ts": pa.array([e.ts for e in events], ts),
        "x": pa.array([e.x for e in events], pa.float64()),
        "n": pa.array([e.n for e in events], pa.int64()),
    }
    if scenario.created:
        cols["created"] = pa.array([e.created for e in events], ts)
    if scenario.event_ids:
        cols["eid"] = pa.array([e.event_id for e in events], pa.string())
    return pa.table(cols)


def check_aggregation_stream(scenario: StreamScenario, repo: str | Path, offline_store: dict[str, Any],
                               online_store: dict[str, Any], project: str,
                               offline: bool = True) -> set[str]:
    """Run ``scenario`` in the empty directory ``repo``: build the tiles as its mode says, and at
    every check time t assert, for every key and aggregation, online at t == brute force at t
    (values within ``skewless.aggregate.same_value``, statuses, event times) and, with
    ``offline``, == ``get_historical_features`` at t. Returns the traits exercised."""

    import pyarrow.parquet as pq

    from skewless import Aggregation, Entity, FeatureView, Field, FileSource, PushSource
    from skewless.aggregate import same_value
    from skewless.types import Float64, Int64

    repo = Path(repo)
    data = repo / "data" / "events"
    data.mkdir(parents=True, exist_ok=True)
    events = list(scenario.events)
    if scenario.mode == "materialize":
        batch, pushed = events, []
    elif scenario.mode == "push":
        batch, pushed = [], events
    else:
        assert scenario.batch_until is not None
        batch = [e for e in events if e.arrival < scenario.batch_until]
        pushed = [e for e in events if e.arrival >= scenario.batch_until]
    pq.write_table(_agg_table(batch, scenario), data / "batch.parquet")
    now = [scenario.checks[0]]
    config = {"project": project, "offline_store": dict(offline_store),
              "online_store": dict(online_store), "registry_cache_ttl_seconds": 0,
              "created_timestamp_tolerance_seconds": 100 * 365 * 86_400}
    store = FeatureStore(repo, config=config, clock=lambda: now[0])
    user = Entity("user", join_keys=["user_id"])
    src = FileSource("data/events", "ts", created_timestamp_column="created" if scenario.created else None,
                     event_id_column="eid" if scenario.event_ids else None,
                     availability_delay=scenario.delay)
    x_default, n_default = scenario.defaults
    view = FeatureView(
        "agg", entities=[user], on_missing=scenario.on_missing,
        schema=[Field("user_id", Int64), Field("x", Float64, default=x_default),
                Field("n", Int64, default=n_default)],
        source=PushSource("events_push", batch_source=src) if scenario.mode != "materialize" else src,
        aggregations=[Aggregation(c, f, w) for c, f, w in scenario.aggregations],
        aggregation_tile=scenario.tile)
    store.apply([user, view])
    names = [a.feature_name for a in view.aggregations]
    refs = [f"agg:{n}" for n in names]
    outputs = [f"agg__{n}" if scenario.full_feature_names else n for n in names]
    keys = [*AGG_KEYS, 9]
    traits = {f"agg_mode:{scenario.mode}"}
    tiles = scenario.tile_of
    todo = sorted(pushed, key=lambda e: e.arrival)
    arrived: list[StreamEvent] = list(batch)
    sent: set[tuple[Any, ...]] = set()   # pushes of equal rows are one batch (services/push.py)
    try:
        if scenario.mode == "mixed":
            assert scenario.batch_until is not None   # (<= the first check: the clock)
            store.materialize_incremental(scenario.batch_until)
            traits.add("materialized_then_pushed")
        for t in scenario.checks:
            # everything that arrived before t lands (pushed in arrival order, one batch per
            # arrival time; a redelivered event is pushed again)
            while todo and todo[0].arrival < t:
                at = todo[0].arrival
                group = [e for e in todo if e.arrival == at]
                todo = todo[len(group):]
                now[0] = max(now[0], at)
                # as Arrow, as `skewless ingest` does: pandas would take a NaN of x for a
                # missing value (docs/types.md) and round the 64-bit ints of WIDE_INTS
                store.push("events_push", _agg_table(group, scenario))
                content = tuple((e.key, e.ts, e.created, e.x, e.n, e.event_id) for e in group)
                if content in sent:
                    traits.add("push_retried")
                else:
                    sent.add(content)
                    arrived += group
                if any(e.arrival > e.ts for e in group):
                    traits.add("late_event_pushed")
            now[0] = max(now[0], t)
            if scenario.mode != "push" or scenario.delay is not None:
                # (with a delay, a pushed row not usable yet at its push time is pending: the
                # materialization whose end is at or after its landing brings it online)
                store.materialize_incremental(t)
            if scenario.delay is not None:
                traits.add("agg_delay")
                if any(t - scenario.delay - US <= e.ts <= t - scenario.delay + US for e in arrived):
                    traits.add("agg_landing_edge")
                if any(e.arrival < e.ts + scenario.delay <= t for e in arrived
                       if e not in batch):
                    traits.add("agg_pending_pushed")
            got = store.get_online_features(refs, [{"user_id": k} for k in keys],
                                            full_feature_names=scenario.full_feature_names)
            values = got.to_dict()
            off = None
            if offline:
                entity_df = pa.table({"user_id": pa.array(keys, pa.int64()),
                                      TIMESTAMP_COLUMN: pa.array([t] * len(keys), pa.timestamp("us", "UTC"))})
                off = store.get_historical_features(
                    entity_df, refs, full_feature_names=scenario.full_feature_names).to_arrow()
            problems = []
            for (column, function, window), out in zip(scenario.aggregations, outputs):
                for i, k in enumerate(keys):
                    want, count, top = brute_force_aggregate(arrived, k, column, function, window,
                                                             tiles[window], t, scenario.event_ids,
                                                             scenario.delay)
                    if want is None and scenario.on_missing == "default" and function != "count":
                        want = scenario.defaults[0 if column == "x" else 1]
                        if want is not None and function in ("sum", "mean", "stddev_samp", "stddev_pop"):
                            want = float(want)
                    status = PRESENT if count else NOT_FOUND
                    traits.add(f"agg_status:{status}")
                    on = values[out][i]
                    fault = None
                    if not same_value(on, want) or type(on) is not type(want):
                        fault = f"online {on!r}, brute force {want!r}"
                    elif got.statuses[out][i] != status:
                        fault = f"status {got.statuses[out][i]}, expected {status}"
                    elif got.event_timestamps[out][i] != top:
                        fault = f"event time {got.event_timestamps[out][i]}, expected {top}"
                    elif off is not None and not same_value(off.column(out)[i].as_py(), want):
                        fault = f"offline {off.column(out)[i].as_py()!r}, brute force {want!r}"
                    if fault:
                        mine = sorted((e for e in arrived if e.key == k), key=lambda e: e.ts)
                        problems.append(
                            f"key {k} {out} ({function} of {column} over {window}, tile "
                            f"{tiles[window]}) at t={t.isoformat()}: {fault}; events: "
                            + "; ".join(f"ts={e.ts.isoformat()} {column}={getattr(e, column)!r} "
                                        f"id={e.event_id} created={e.created}" for e in mine))
            if problems:
                raise InvariantMismatch(
                    f"{online_store['type']} store, mode {scenario.mode}: {len(problems)} "
                    f"mismatch(es):\n" + "\n".join(problems[:6]))
        for e in events:
            if any(o is not e and o.ts == e.ts and o.key == e.key for o in events):
                traits.add("burst_same_time")
            if e.event_id is not None and sum(o.event_id == e.event_id for o in events) > 1:
                traits.add("duplicate_event_id")
        for k in {e.key for e in events}:
            total = sum(e.n for e in events if e.key == k and e.n is not None)
            if not -(2**63) <= total < 2**63 and any(a[0] == "n" for a in scenario.aggregations):
                traits.add("int_sum_past_64_bits")
    finally:
        store.online_store.close()
    return traits


def check_materialized_aggregations(scenario: Any, repo: str | Path, offline_store: dict[str, Any],
                                    online_store: dict[str, Any], project: str,
                                    max_times: int = 4) -> set[str]:
    """Online == offline for the training-data scenarios of ``skewless.testing.aggregations``
    (every column type: Int64, Float64, Float32, String, Bool, UnixTimestamp; composite keys;
    corrected redeliveries; a FeatureService with a plain view): at each of up to ``max_times``
    label times t, in order, ``materialize_incremental(t)`` then ``get_online_features`` of that
    time's labels must equal ``get_historical_features`` of the same rows (floats within
    ``skewless.aggregate.same_value``). An ``as_of`` request (created times) is asked without
    it: serving has none. Returns the traits exercised."""
    from skewless.aggregate import same_value
    from skewless.testing.aggregations import COLUMNS

    scenario.write(repo)
    now = [datetime(1970, 1, 1, tzinfo=UTC)]
    config = {"project": project, "offline_store": dict(offline_store),
              "online_store": dict(online_store), "registry_cache_ttl_seconds": 0,
              "created_timestamp_tolerance_seconds": 100 * 365 * 86_400}
    store = FeatureStore(repo, config=config, clock=lambda: now[0])
    store.apply(list(scenario.view(repo)))
    request = scenario.request(repo)
    entity_df = request.pop("entity_df")
    request.pop("as_of", None)
    offline = store.get_historical_features(entity_df, **request).to_arrow()
    keys = ["user_id", "region"] if scenario.composite else ["user_id"]
    features = [c for c in offline.column_names if c not in ("user_id", "region", "event_timestamp")]
    close = set(scenario.close_columns())
    times = sorted({t for _, _, t in scenario.labels if t is not None})[:max_times]
    traits = {f"composite:{scenario.composite}", f"created:{scenario.with_created}"}
    try:
        for t_us in times:
            now[0] = _EPOCH + timedelta(microseconds=t_us)
            store.materialize_incremental(now[0])
            rows = [i for i, (_, _, t) in enumerate(scenario.labels) if t == t_us]
            entity_rows = [{"user_id": scenario.labels[i][0],
                            **({"region": scenario.labels[i][1]} if scenario.composite else {})}
                           for i in rows]
            got = store.get_online_features(request["features"], entity_rows,
                                            full_feature_names=scenario.full_feature_names).to_dict()
            problems = []
            for col in features:
                for j, i in enumerate(rows):
                    off, on = offline.column(col)[i].as_py(), got[col][j]
                    ok = same_value(off, on) if col in close else _same(off, on)
                    if not ok:
                        problems.append(f"{col} for {entity_rows[j]} at t={now[0].isoformat()}: "
                                        f"online {on!r}, offline {off!r}")
                    elif on is not None and col in close:
                        traits.add("float_compared")
            if problems:
                raise InvariantMismatch(f"{online_store['type']} store: {len(problems)} mismatch(es):\n"
                                        + "\n".join(problems[:6]))
        traits.update(f"column:{c}" for c, _, _, _ in scenario.aggregations if c in COLUMNS)
    finally:
        store.online_store.close()
    return traits
