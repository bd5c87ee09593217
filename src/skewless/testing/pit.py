"""Point-in-time conformance: generated feature repos, and engine-against-oracle comparison.

Shipped so that any offline engine can prove itself against the reference engine
(``docs/point-in-time.md#engines``). A backend's test only says how to configure it;
``{"type": "my_engine"}`` names an engine installed through the ``skewless.offline_engines``
entry point group (docs/backends.md)::

    from hypothesis import given, settings
    from skewless.testing import assert_engines_agree, scenarios

    @settings(max_examples=200, deadline=None)
    @given(scenarios())
    def test_my_engine(scenario):
        with tempfile.TemporaryDirectory() as repo:
            assert_engines_agree(scenario, repo, {"type": "my_engine"})

``scenarios()`` draws a whole feature repo: one to three feature views over int, string and
composite keys, their source Parquet files (single file, multi-file glob, plain or
hive-partitioned directory), and an entity_df whose labels sit on the edges that matter --
exactly at a feature's event time, exactly at ``ts + ttl`` and one microsecond past it, exactly
when a row lands (``ts + availability_delay``, for sources that declare one) and one microsecond
either side, before an entity's first row, on unknown entities. Sources hold duplicate event
times resolved by the created timestamp, null created timestamps, full duplicates (always exact copies: the contract
leaves the winner among conflicting full duplicates unspecified), null values, and event times
in naive (= UTC) and zoned columns.

``Scenario.expected()`` is an independent statement of the rules over the in-memory rows (it
never reads Parquet); it checks the reference engine itself, and the traits it records show
which rules a run really exercised.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

try:
    from hypothesis import strategies as st
except ImportError:  # pragma: no cover - depends on the environment
    raise ImportError('skewless.testing needs hypothesis: pip install "skewless[dev]"') from None

from skewless import Entity, FeatureStore, FeatureView, Field, FileSource
from skewless import types as T
from skewless.testing.compare import TableMismatch, assert_tables_equal

__all__ = [
    "Expectation", "FeatureSpec", "Label", "Scenario", "SourceRow", "TableMismatch", "ViewSpec",
    "assert_engines_agree", "assert_tables_equal", "large_scenario", "retrieve", "scenarios",
    "setup_repo",
]

UTC = timezone.utc
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
BASE = datetime(2024, 3, 9, tzinfo=UTC)  # the US moves to summer time the next morning
US = timedelta(microseconds=1)
HOUR = timedelta(hours=1)
_OLDEST = datetime.min.replace(tzinfo=UTC)

KEY_KINDS = {"user_id": "int", "merchant_id": "str"}
ENTITY_KEYS = {"user": ("user_id",), "merchant": ("merchant_id",),
               "user_merchant": ("user_id", "merchant_id")}
KNOWN_KEYS: dict[str, tuple[Any, ...]] = {"int": (0, 1, 2, 3, -7, 2**40),
                                          "str": ("a", "b", "c", "", "Zürich", "a b")}
UNKNOWN_KEYS: dict[str, tuple[Any, ...]] = {"int": (4, 2**40 + 1), "str": ("zz", "A")}
SMALL_INT_KEYS = (0, 1, 2, 3, -7)  # fit int32 (and hive partition type inference)

# Declared feature type -> Arrow types a source column may have: the same, a lossless widening,
# or a type accepted when its values fit (docs/types.md; the values drawn then fit: int64 within
# Int32, whole float64 numbers over integer fields, float64 within the float32 range).
SOURCE_TYPES: dict[str, tuple[pa.DataType, ...]] = {
    "Int32": (pa.int32(), pa.int8(), pa.int64(), pa.float64()),
    "Int64": (pa.int64(), pa.int32(), pa.float64()),
    "Float32": (pa.float32(), pa.float64()),
    "Float64": (pa.float64(), pa.float32(), pa.int32()),
    "String": (pa.string(), pa.large_string(), pa.dictionary(pa.int32(), pa.string())),
    "Bool": (pa.bool_(),),
    "Array(Float64)": (pa.list_(pa.float64()), pa.large_list(pa.float64()), pa.list_(pa.float32())),
}
SOURCE_TIME_TYPES = (
    pa.timestamp("us"), pa.timestamp("us", tz="UTC"), pa.timestamp("ns"),
    pa.timestamp("ns", tz="UTC"), pa.timestamp("us", tz="America/New_York"),
    pa.timestamp("ms", tz="Asia/Kolkata"), pa.timestamp("s"), pa.date32(),
)
ENTITY_TIME_TYPES = (
    pa.timestamp("us"), pa.timestamp("ns"), pa.timestamp("us", tz="UTC"),
    pa.timestamp("ns", tz="UTC"), pa.timestamp("us", tz="America/Los_Angeles"),
    pa.timestamp("ns", tz="Asia/Kolkata"), pa.timestamp("us", tz="Pacific/Chatham"),
    pa.timestamp("ms"), pa.date32(),
)
AS_OF_ZONES = (None, "UTC", "Europe/Paris", "Asia/Kolkata")  # None: a naive datetime (= UTC)
TTLS = (HOUR, timedelta(minutes=90), timedelta(days=1), 3 * HOUR + 7 * US, US)
# availability delays: as long as a ttl (then nothing is ever visible), shorter, longer, odd
DELAYS = (HOUR, timedelta(minutes=90), 6 * HOUR, 2 * HOUR + 3 * US, US)


# --- the scenario ------------------------------------------------------------------------------

@dataclass(frozen=True)
class FeatureSpec:
    name: str
    dtype: str                 # skewless type name: "Float64", "Array(Float64)", ...
    source_column: str
    source_type: pa.DataType
    default: Any = None

    @property
    def value_type(self) -> T.ValueType:
        return T.from_name(self.dtype)


@dataclass(frozen=True)
class SourceRow:
    keys: tuple[Any, ...]      # one value per join key of the view's entity
    ts: datetime | None        # aware UTC
    created: datetime | None   # aware UTC; always None when the source has no created column
    values: tuple[Any, ...]    # one value per feature
    file: int = 0              # file (glob, dir) or bucket (hive) the row is written to


@dataclass(frozen=True)
class ViewSpec:
    name: str
    entity: str
    features: tuple[FeatureSpec, ...]
    ttl: timedelta | None
    on_missing: str            # "null" | "default"
    ts_column: str
    ts_type: pa.DataType
    created_column: str | None
    created_type: pa.DataType | None
    key_columns: tuple[str, ...]     # source column of each join key (field_mapping if renamed)
    key_types: tuple[pa.DataType, ...]
    declare_keys: bool         # the schema also lists Fields for the join keys
    layout: str                # "file" | "glob" | "dir" | "hive"
    partition_by: str | None   # hive only: "bucket" or a key's source column
    n_files: int
    column_orders: tuple[tuple[str, ...], ...]  # one column order per file
    extra_column: bool         # an unrelated column in the files
    absolute_path: bool
    flavour: str               # Parquet writer: "arrow", "int96" (Spark's legacy timestamps) or
                               # "plain" (no stored Arrow schema: no zones, no dictionaries)
    rows: tuple[SourceRow, ...]
    availability_delay: timedelta | None = None   # the source's: a row counts from ts + delay

    @property
    def join_keys(self) -> tuple[str, ...]:
        return ENTITY_KEYS[self.entity]

    def feature(self, name: str) -> FeatureSpec:
        return next(f for f in self.features if f.name == name)

    def known(self, row: SourceRow, as_of: datetime | None) -> bool:
        """Whether ``row`` counts for a retrieval ``as_of``: created <= as_of, or the event time
        when the source has no created column; a null created time is unknown
        (``docs/point-in-time.md#as_of-reproducible-training-sets``)."""
        if as_of is None:
            return True
        when = row.created if self.created_column else row.ts
        return when is not None and when <= as_of


@dataclass(frozen=True)
class Label:
    keys: tuple[Any, ...]      # one value per Scenario.entity_keys column
    ts: datetime | None        # aware UTC
    label: int | None


@dataclass(frozen=True)
class Scenario:
    views: tuple[ViewSpec, ...]
    entity_keys: tuple[str, ...]          # join-key columns of entity_df
    entity_key_types: tuple[pa.DataType, ...]
    timestamp_column: str
    timestamp_type: pa.DataType
    column_order: tuple[str, ...]         # entity_df column order
    passthrough: str | None               # kind of an extra pass-through column "extra"
    labels: tuple[Label, ...]
    form: str                             # "pandas" | "arrow" | "arrow_chunked"
    refs: tuple[str, ...]                 # "view:feature" / "view:*" as requested
    full_feature_names: bool
    as_of: datetime | None                # aware UTC
    as_of_zone: str | None                # how as_of is passed: None = naive

    # -- repo ------------------------------------------------------------------------------
    def config(self, offline_store: dict[str, Any]) -> dict[str, Any]:
        return {"project": "pit", "offline_store": dict(offline_store),
                "entity_timestamp_column": self.timestamp_column}

    def definitions(self, repo: str | Path) -> list[Any]:
        """Write every view's source files under ``repo`` and return the definitions to apply."""
        repo = Path(repo)
        entities = {name: Entity(name, join_keys=list(keys)) for name, keys in ENTITY_KEYS.items()}
        objects: list[Any] = []
        for v in self.views:
            path = _write_source(v, repo)
            mapping = {src: k for src, k in zip(v.key_columns, v.join_keys) if src != k}
            mapping.update({f.source_column: f.name for f in v.features if f.source_column != f.name})
            schema = [Field(k, T.Int64 if KEY_KINDS[k] == "int" else T.String)
                      for k in v.join_keys] if v.declare_keys else []
            schema += [Field(f.name, f.value_type, default=f.default) for f in v.features]
            objects.append(FeatureView(
                v.name, entities=[entities[v.entity]], schema=schema, ttl=v.ttl,
                on_missing=v.on_missing,
                source=FileSource(path, timestamp_field=v.ts_column,
                                  created_timestamp_column=v.created_column,
                                  field_mapping=mapping or None, name=f"{v.name}_source",
                                  availability_delay=v.availability_delay)))
        return objects

    def entity_table(self) -> pa.Table:
        cols: dict[str, pa.Array] = {}
        for name in self.column_order:
            if name == self.timestamp_column:
                cols[name] = _time_array([lb.ts for lb in self.labels], self.timestamp_type)
            elif name == "label":
                cols[name] = pa.array([lb.label for lb in self.labels], pa.int64())
            elif name == "extra":
                cols[name] = _passthrough(self.passthrough, len(self.labels))
            else:
                i = self.entity_keys.index(name)
                cols[name] = pa.array([lb.keys[i] for lb in self.labels], self.entity_key_types[i])
        return pa.table(cols)

    def entity_df(self) -> pd.DataFrame | pa.Table:
        """entity_df in the scenario's form (a fresh object on every call)."""
        table = self.entity_table()
        if self.form == "pandas":
            return table.to_pandas(types_mapper=_nullable)
        if self.form == "arrow_chunked" and table.num_rows > 1:
            half = table.num_rows // 2
            return pa.concat_tables([table.slice(0, half), table.slice(half)])
        return table

    def as_of_argument(self) -> datetime | None:
        if self.as_of is None:
            return None
        if self.as_of_zone is None:
            return self.as_of.replace(tzinfo=None)
        return self.as_of.astimezone(ZoneInfo(self.as_of_zone))

    def request(self) -> dict[str, Any]:
        """Keyword arguments of ``FeatureStore.get_historical_features`` (entity_df included)."""
        return {"entity_df": self.entity_df(), "features": list(self.refs),
                "full_feature_names": self.full_feature_names, "as_of": self.as_of_argument()}

    # -- the rules, stated again over the in-memory rows -------------------------------------
    def requested(self) -> list[tuple[ViewSpec, list[str]]]:
        """Views and features in output order: views by first mention, features by mention
        (``*`` = every feature in schema order), without repeats."""
        groups: dict[str, list[str]] = {}
        by_name = {v.name: v for v in self.views}
        for ref in self.refs:
            vname, fname = ref.split(":")
            names = [f.name for f in by_name[vname].features] if fname == "*" else [fname]
            group = groups.setdefault(vname, [])
            group.extend(n for n in names if n not in group)
        return [(by_name[v], feats) for v, feats in groups.items()]

    def output_name(self, view: ViewSpec, feature: str) -> str:
        return f"{view.name}__{feature}" if self.full_feature_names else feature

    def pick(self, view: ViewSpec, label: Label) -> tuple[SourceRow | None, set[str]]:
        """The source row that serves ``label`` for ``view`` and the rules that decided it."""
        traits: set[str] = set()
        keys = tuple(label.keys[self.entity_keys.index(k)] for k in view.join_keys)
        if any(k is None for k in keys):
            return None, {"null_label_key"}
        if label.ts is None:
            return None, {"null_label_ts"}
        t = label.ts
        mine = [r for r in view.rows if r.keys == keys and r.ts is not None]
        if not mine:
            return None, {"unknown_entity"}
        if t < min(r.ts for r in mine if r.ts is not None):
            traits.add("label_before_first_row")
        in_window = []
        delay = view.availability_delay or timedelta(0)
        for r in mine:
            assert r.ts is not None
            if r.ts > t:
                traits.add("future_row_ignored" if r.ts > t + US else "future_by_1us_ignored")
            elif r.ts + delay > t:   # not landed yet at t
                traits.add("not_landed_by_1us_ignored" if r.ts + delay == t + US
                           else "not_landed_ignored")
            elif view.ttl is not None and r.ts < t - view.ttl:
                traits.add("ttl_expired_by_1us" if r.ts == t - view.ttl - US else "ttl_expired")
            else:
                in_window.append(r)
        candidates = [r for r in in_window if view.known(r, self.as_of)]
        if len(candidates) < len(in_window):
            traits.add("as_of_dropped_row")
        if not candidates:
            return None, traits | {"no_row_in_window"}
        best = max(candidates, key=lambda r: (r.ts, r.created or _OLDEST))
        ties = [r for r in candidates if r.ts == best.ts]
        if best.ts == t:
            traits.add("label_at_event_ts")
        if delay and best.ts is not None and best.ts + delay == t:
            traits.add("label_at_landing_time")
        if view.ttl is not None and best.ts == t - view.ttl:
            traits.add("ttl_edge_inclusive")
        if len({r.created for r in ties}) > 1:
            traits.add("created_tiebreak")
            if any(r.created is None for r in ties):
                traits.add("null_created_is_oldest")
        if sum(r.created == best.created for r in ties) > 1:
            traits.add("full_duplicate")
        return best, traits | {"matched"}

    def expected(self) -> Expectation:
        """The result table the rules give, and the rules the labels exercised."""
        traits = self.traits()
        table = _from_entity_df(self.entity_df())
        for view, feats in self.requested():
            cols: dict[str, list[Any]] = {f: [] for f in feats}
            for label in self.labels:
                row, why = self.pick(view, label)
                traits |= why
                for f in feats:
                    spec = view.feature(f)
                    if row is not None:
                        value = declared_value(row.values[view.features.index(spec)],
                                               spec.source_type, spec.dtype)
                        traits.add("null_value" if value is None else "value")
                    else:
                        value = spec.default if view.on_missing == "default" else None
                        if value is not None:
                            traits.add("default_served")
                    cols[f].append(value)
            for f in feats:
                t = view.feature(f).value_type.to_arrow()
                table = table.append_column(pa.field(self.output_name(view, f), t),
                                            pa.array(cols[f], type=t))
        return Expectation(table, frozenset(traits))

    def traits(self) -> set[str]:
        """What the data and the request cover (independent of how labels resolve)."""
        out = {f"form:{self.form}", f"entity_ts:{_zone(self.timestamp_type)}",
               f"passthrough:{self.passthrough}"}
        out |= {f"layout:{v.layout}" + {None: "", "bucket": "/bucket"}.get(v.partition_by, "/key")
                for v in self.views}
        out |= {f"source_ts:{_zone(t)}" for v in self.views for t in (v.ts_type, v.created_type)
                if t is not None}
        out |= {f"dtype:{f.dtype}" for v in self.views for f in v.features}
        out |= {f"key:{KEY_KINDS[k]}" for k in self.entity_keys}
        if any(len(v.join_keys) > 1 for v in self.views):
            out.add("composite_key")
        if len({v.entity for v in self.views}) > 1:
            out.add("views_with_different_entities")
        if len(self.views) > 1:
            out.add("several_views")
        if self.full_feature_names:
            out.add("full_feature_names")
        if self.as_of is not None:
            out.add(f"as_of:{'naive' if self.as_of_zone is None else 'aware'}")
            out.add("as_of_with_created" if any(v.created_column for v in self.views)
                    else "as_of_without_created")
        for v in self.views:
            if v.availability_delay is not None:
                out.add("availability_delay")
            if v.on_missing == "default" and any(f.default is not None for f in v.features):
                out.add("field_defaults")
            if v.created_column and any(r.created is None and r.ts is not None for r in v.rows):
                out.add("null_created_ts")
            if any(r.ts is None for r in v.rows):
                out.add("null_event_ts")
            out.add(f"parquet:{v.flavour}")
            if any(src != k for src, k in zip(v.key_columns, v.join_keys)) or any(
                    f.source_column != f.name for f in v.features):
                out.add("field_mapping")
        return out


@dataclass(frozen=True)
class Expectation:
    table: pa.Table
    traits: frozenset[str]


# --- generation --------------------------------------------------------------------------------

def _values(t: pa.DataType) -> st.SearchStrategy[Any]:
    """Non-null values that an Arrow column of type ``t`` holds exactly."""
    if pa.types.is_dictionary(t):
        return _values(t.value_type)
    if pa.types.is_integer(t):
        return st.integers(-(2 ** (t.bit_width - 1)), 2 ** (t.bit_width - 1) - 1)
    if pa.types.is_floating(t):
        return st.floats(width=t.bit_width)
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return st.text(max_size=5)
    if pa.types.is_boolean(t):
        return st.booleans()
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return st.lists(st.none() | _values(t.value_type), max_size=3)
    raise TypeError(f"no value strategy for {t}")


def feature_values(source_type: pa.DataType, dtype: str) -> st.SearchStrategy[Any]:
    """Non-null values of a source column of ``source_type`` that fit the declared ``dtype``
    (the conformance table accepts the column; docs/types.md)."""
    declared = T.from_name(dtype).to_arrow()
    if pa.types.is_integer(declared) and pa.types.is_floating(source_type):
        lo, hi = -(2 ** (declared.bit_width - 1)), 2 ** (declared.bit_width - 1) - 1
        return st.integers(max(lo, -(2**53)), min(hi, 2**53)).map(float)
    if pa.types.is_integer(declared) and pa.types.is_integer(source_type):
        bits = min(declared.bit_width, source_type.bit_width)
        return st.integers(-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
    if pa.types.is_float32(declared) and pa.types.is_float64(source_type):
        return st.floats(width=32) | st.floats(-3e38, 3e38)   # rounded to float32 on both paths
    return _values(source_type)


def declared_value(value: Any, source_type: pa.DataType, dtype: str) -> Any:
    """A source value as the declared type holds it (float64 rounded to float32, whole floats
    as ints), by the one conformance table."""
    if value is None:
        return None
    return T.convert(pa.array([value], source_type), T.from_name(dtype)).to_pylist()[0]


def _defaults(dtype: str) -> st.SearchStrategy[Any]:
    """Field defaults: valid values of the declared type. Float32 defaults may be doubles that
    float32 cannot hold exactly (both engines must round them the same way)."""
    t = T.from_name(dtype)
    if dtype == "Float32":  # doubles within float32 range, rounded on the way in
        return st.floats(width=32) | st.floats(-3e38, 3e38)
    return _values(t.to_arrow())


def _quantum(t: pa.DataType) -> int:
    """The resolution, in microseconds, of an Arrow time type (finer than 1us counts as 1us)."""
    if pa.types.is_date(t):
        return 86_400_000_000
    return {"s": 1_000_000, "ms": 1_000}.get(t.unit, 1)


def _quantise(ts: datetime | None, t: pa.DataType) -> datetime | None:
    if ts is None:
        return None
    q = _quantum(t)
    return EPOCH + ((ts - EPOCH) // US // q * q) * US


_times = st.one_of(
    st.integers(0, 12).map(lambda h: BASE + h * HOUR),           # a coarse grid: many ties
    st.integers(0, 12 * 3_600_000_000).map(lambda u: BASE + u * US),
)


def _sometimes_none(draw: Callable[..., Any], strategy: st.SearchStrategy[Any], one_in: int) -> Any:
    return None if draw(st.integers(0, one_in - 1)) == 0 else draw(strategy)


def _view(draw: Callable[..., Any], i: int, full_feature_names: bool, max_rows: int) -> ViewSpec:
    name = f"fv{i}"
    entity = draw(st.sampled_from(sorted(ENTITY_KEYS)))
    join_keys = ENTITY_KEYS[entity]
    pool = ("value", "score", "f0", "f1")
    fnames = draw(st.lists(st.sampled_from(pool), min_size=1, max_size=4, unique=True))
    if not full_feature_names:  # names must not clash across views
        fnames = [f"{n}_{i}" for n in fnames]
    on_missing = draw(st.sampled_from(["null", "default"]))
    features = []
    for fname in fnames:
        dtype = draw(st.sampled_from(sorted(SOURCE_TYPES)))
        default = draw(st.none() | _defaults(dtype)) if on_missing == "default" else None
        features.append(FeatureSpec(
            fname, dtype, f"col_{fname}" if draw(st.booleans()) else fname,
            draw(st.sampled_from(SOURCE_TYPES[dtype])), default))

    layout = draw(st.sampled_from(["file", "glob", "dir", "hive"]))
    key_columns = tuple(f"src_{k}" if draw(st.booleans()) else k for k in join_keys)
    partition_by = None
    if layout == "hive":
        int_keys = [c for c, k in zip(key_columns, join_keys) if KEY_KINDS[k] == "int"]
        partition_by = draw(st.sampled_from(["bucket", *int_keys]))
    key_types, key_pools = [], []
    for col, k in zip(key_columns, join_keys):
        if KEY_KINDS[k] == "int":
            narrow = draw(st.booleans()) or col == partition_by
            key_types.append(pa.int32() if narrow else pa.int64())
            pool = SMALL_INT_KEYS if narrow else KNOWN_KEYS["int"]
        else:
            key_types.append(draw(st.sampled_from(
                [pa.string(), pa.large_string(), pa.dictionary(pa.int32(), pa.string())])))
            pool = KNOWN_KEYS["str"]
        key_pools.append(pool if col == partition_by else (*pool, None))

    ts_column = draw(st.sampled_from(["event_ts", "event_timestamp", "ts"]))
    ts_type = draw(st.sampled_from(SOURCE_TIME_TYPES))
    created_column = draw(st.sampled_from([None, "created", "created_at", "created"]))
    created_type = draw(st.sampled_from(SOURCE_TIME_TYPES)) if created_column else None
    n_files = 1 if layout == "file" else draw(st.integers(1, 3))

    rows: list[SourceRow] = []
    for _ in range(draw(st.integers(0, max_rows))):
        kind = draw(st.sampled_from(["new", "new", "new", "copy", "restatement"])) if rows else "new"
        if kind == "copy":  # a full duplicate: an exact copy
            rows.append(draw(st.sampled_from(rows)))
            continue
        if kind == "restatement":  # a later write for the same entity and event time
            earlier = draw(st.sampled_from(rows))
            keys, ts = earlier.keys, earlier.ts
        else:
            keys = tuple(draw(st.sampled_from(p)) for p in key_pools)
            ts = _quantise(_sometimes_none(draw, _times, 25), ts_type)
        created = (_quantise(_sometimes_none(draw, _times, 4), created_type)
                   if created_type is not None else None)
        values = tuple(_sometimes_none(draw, feature_values(f.source_type, f.dtype), 5)
                       for f in features)
        rows.append(SourceRow(keys, ts, created, values, draw(st.integers(0, n_files - 1))))
    rows = _resolve_conflicts(rows)

    columns = [*key_columns, ts_column, *([created_column] if created_column else []),
               *(f.source_column for f in features)]
    extra_column = draw(st.booleans())
    if extra_column:
        columns.append("ingest_batch")
    if partition_by and partition_by != "bucket":
        columns.remove(partition_by)
    orders = tuple(tuple(draw(st.permutations(columns))) for _ in range(n_files))
    return ViewSpec(
        name=name, entity=entity, features=tuple(features),
        ttl=draw(st.none() | st.sampled_from(TTLS)), on_missing=on_missing,
        ts_column=ts_column, ts_type=ts_type, created_column=created_column,
        created_type=created_type, key_columns=key_columns, key_types=tuple(key_types),
        declare_keys=draw(st.booleans()), layout=layout, partition_by=partition_by,
        n_files=n_files, column_orders=orders, extra_column=extra_column,
        absolute_path=draw(st.integers(0, 4)) == 0,
        flavour=draw(st.sampled_from(["arrow", "arrow", "int96", "plain"])), rows=tuple(rows),
        availability_delay=draw(st.sampled_from([None, None, *DELAYS])))


def _resolve_conflicts(rows: list[SourceRow]) -> list[SourceRow]:
    """Rows equal in keys, event time and created time carry the values of the first of them:
    which of two conflicting full duplicates wins is unspecified, so none are generated."""
    first: dict[tuple[Any, ...], tuple[Any, ...]] = {}
    out = []
    for r in rows:
        values = first.setdefault((r.keys, r.ts, r.created), r.values)
        out.append(SourceRow(r.keys, r.ts, r.created, values, r.file))
    return out


def _label(draw: Callable[..., Any], views: Sequence[ViewSpec], entity_keys: Sequence[str],
           ts_type: pa.DataType) -> Label:
    """A label, usually on an edge of some source row (its keys; its event time, 1us either
    side, ``ts + ttl`` and 1us either side), preferably one written several times; else
    anywhere, before every row, or without a time. Keys not taken from a row are known, unknown
    or null."""
    anchored = [(i, r) for i, v in enumerate(views) for r in v.rows if r.ts is not None]
    restated = [(i, r) for i, r in anchored if len({x.created for x in views[i].rows
                                                     if (x.keys, x.ts) == (r.keys, r.ts)}) > 1]
    mode = draw(st.sampled_from(["edge", "edge", "tie", "tie", "free", "before_all", "null"]))
    keys: dict[str, Any] = {}
    ts: datetime | None
    if mode == "tie" and restated:  # on rows written more than once: the created-time tie-break
        anchored = restated
    if mode in ("edge", "tie") and anchored:
        i, row = draw(st.sampled_from(anchored))
        assert row.ts is not None
        deltas = [timedelta(0), -US, US, timedelta(minutes=30)]
        ttl = views[i].ttl
        if ttl is not None:
            deltas += [ttl, ttl, ttl + US, ttl + US, ttl - US]
        delay = views[i].availability_delay
        if delay is not None:   # when the row lands, and 1us either side
            deltas += [delay, delay, delay - US, delay + US]
        ts = row.ts + draw(st.sampled_from(deltas))
        keys = dict(zip(views[i].join_keys, row.keys))
    elif mode == "before_all":
        ts = BASE - draw(st.sampled_from([US, timedelta(days=1)]))
    elif mode == "null":
        ts = None
    else:
        ts = draw(_times)
    for k in entity_keys:
        if k not in keys:
            kind = KEY_KINDS[k]
            keys[k] = draw(st.sampled_from((*KNOWN_KEYS[kind], *UNKNOWN_KEYS[kind], None)))
    return Label(tuple(keys[k] for k in entity_keys), _quantise(ts, ts_type),
                 draw(st.none() | st.integers(0, 1)))


@st.composite
def scenarios(draw: Callable[..., Any], max_views: int = 3, max_rows: int = 24,
              max_labels: int = 16) -> Scenario:
    """A random feature repo and point-in-time request (see the module docstring)."""
    full = draw(st.booleans())
    views = tuple(_view(draw, i, full, max_rows) for i in range(draw(st.integers(1, max_views))))
    entity_keys = tuple(k for k in KEY_KINDS if any(k in v.join_keys for v in views))
    ts_type = draw(st.sampled_from(ENTITY_TIME_TYPES))

    labels = [_label(draw, views, entity_keys, ts_type)
              for _ in range(draw(st.integers(0, max_labels)))]

    key_types = []
    for i, k in enumerate(entity_keys):
        if KEY_KINDS[k] == "int":
            fits = all(lb.keys[i] is None or abs(lb.keys[i]) < 2**31 for lb in labels)
            key_types.append(pa.int32() if fits and draw(st.booleans()) else pa.int64())
        else:
            # (pandas turns an all-missing categorical into dictionary<null>, which no key matches)
            some = any(lb.keys[i] is not None for lb in labels)
            key_types.append(draw(st.sampled_from([pa.string(), pa.large_string()] + (
                [pa.dictionary(pa.int32(), pa.string())] if some else []))))
    ts_column = draw(st.sampled_from(["event_timestamp", "label_time"]))

    refs: list[str] = []
    for v in views:
        if draw(st.integers(0, 4)) == 0:
            refs.append(f"{v.name}:*")
        else:
            names = draw(st.lists(st.sampled_from([f.name for f in v.features]), min_size=1,
                                  unique=True))
            refs += [f"{v.name}:{n}" for n in names]
    as_of = None
    if draw(st.integers(0, 2)) == 0:  # often exactly a row's created (or event) time
        known = [t for v in views for r in v.rows for t in (r.created or r.ts,) if t is not None]
        as_of = draw(st.sampled_from(known)) if known and draw(st.integers(0, 2)) else draw(_times)
    passthrough = draw(st.sampled_from([None, None, "float16", "struct", "list", "decimal",
                                        "dictionary"]))
    # pandas holds dates as objects, which Arrow cannot type when all are missing
    forms = ["arrow", "arrow_chunked"] + ([] if pa.types.is_date(ts_type) else ["pandas"])
    return Scenario(
        views=views, entity_keys=entity_keys, entity_key_types=tuple(key_types),
        timestamp_column=ts_column, timestamp_type=ts_type,
        column_order=tuple(draw(st.permutations(
            [*entity_keys, ts_column, "label", *(["extra"] if passthrough else [])]))),
        passthrough=passthrough,
        labels=tuple(labels), form=draw(st.sampled_from(forms)),
        refs=tuple(draw(st.permutations(refs))), full_feature_names=full,
        as_of=as_of, as_of_zone=draw(st.sampled_from(AS_OF_ZONES)))


def large_scenario(seed: int = 0, rows: int = 600, labels: int = 3000) -> Scenario:
    """A seeded scenario larger than hypothesis draws (thousands of entity rows, several
    vectors, chunks and files), for what only shows at scale: order, parallelism. Two views:
    composite keys with created times, restatements and a ttl over a multi-file glob; string keys
    without created times, with defaults, in one file."""
    rng = random.Random(seed)

    def when() -> datetime:
        return BASE + (rng.randrange(13) * HOUR if rng.random() < 0.5 else
                       rng.randrange(12 * 3_600_000_000) * US)

    def source_rows(keys: Callable[[], tuple[Any, ...]], created: bool, n_files: int,
                    values: Callable[[], tuple[Any, ...]]) -> tuple[SourceRow, ...]:
        out: list[SourceRow] = []
        for _ in range(rows):
            if out and rng.random() < 0.2:  # a restatement of an earlier row
                old = rng.choice(out)
                k, ts = old.keys, old.ts
            else:
                k, ts = keys(), when()
            c = (None if rng.random() < 0.2 else when()) if created else None
            out.append(SourceRow(k, ts, c, values(), rng.randrange(n_files)))
        return tuple(_resolve_conflicts(out))

    users, merchants = KNOWN_KEYS["int"], KNOWN_KEYS["str"]
    ts_type = pa.timestamp("us", tz="UTC")
    pair = ViewSpec(
        name="pair", entity="user_merchant",
        features=(FeatureSpec("amount", "Float64", "amount", pa.float64()),
                  FeatureSpec("count", "Int64", "count", pa.int64())),
        ttl=2 * HOUR, on_missing="null", ts_column="ts", ts_type=ts_type,
        created_column="created", created_type=ts_type, key_columns=("user_id", "merchant_id"),
        key_types=(pa.int64(), pa.string()), declare_keys=False, layout="glob",
        partition_by=None, n_files=3,
        column_orders=(("user_id", "merchant_id", "ts", "created", "amount", "count"),) * 3,
        extra_column=False, absolute_path=False, flavour="arrow",
        rows=source_rows(lambda: (rng.choice(users), rng.choice(merchants)), True, 3,
                         lambda: (rng.choice([None, rng.random()]), rng.randrange(9))))
    shop = ViewSpec(
        name="shop", entity="merchant",
        features=(FeatureSpec("risk", "Float64", "risk", pa.float64(), default=-1.0),
                  FeatureSpec("tier", "String", "tier", pa.string(), default="none")),
        ttl=None, on_missing="default", ts_column="ts", ts_type=pa.timestamp("ns"),
        created_column=None, created_type=None, key_columns=("merchant_id",),
        key_types=(pa.string(),), declare_keys=True, layout="file", partition_by=None,
        n_files=1, column_orders=(("merchant_id", "ts", "risk", "tier"),), extra_column=False,
        absolute_path=False, flavour="int96",
        rows=source_rows(lambda: (rng.choice(merchants),), False, 1,
                         lambda: (rng.random(), rng.choice([None, "x", "y"]))))
    views = (pair, shop)
    all_rows = [(v, r) for v in views for r in v.rows]
    out: list[Label] = []
    for _ in range(labels):
        v, r = rng.choice(all_rows)
        keys = {"user_id": rng.choice(users + UNKNOWN_KEYS["int"]),
                "merchant_id": rng.choice(merchants + UNKNOWN_KEYS["str"])}
        keys.update(zip(v.join_keys, r.keys))
        assert r.ts is not None
        ts = r.ts + rng.choice([timedelta(0), US, -US, 2 * HOUR, 2 * HOUR + US, HOUR])
        out.append(Label((keys["user_id"], keys["merchant_id"]), ts, rng.randrange(2)))
    return Scenario(
        views=views, entity_keys=("user_id", "merchant_id"),
        entity_key_types=(pa.int64(), pa.string()), timestamp_column="event_timestamp",
        timestamp_type=pa.timestamp("us", tz="Asia/Kolkata"),
        column_order=("label", "user_id", "merchant_id", "event_timestamp"), passthrough=None,
        labels=tuple(out), form="arrow_chunked",
        refs=("shop:tier", "pair:*", "shop:risk"), full_feature_names=True,
        as_of=None, as_of_zone=None)


# --- writing sources ---------------------------------------------------------------------------

def _time_array(values: Sequence[datetime | None], t: pa.DataType) -> pa.Array:
    """Aware UTC datetimes as an Arrow column of type ``t`` (naive columns hold UTC)."""
    if pa.types.is_date(t):
        return pa.array([None if v is None else v.date() for v in values], t)
    if t.tz is None:
        return pa.array([None if v is None else v.replace(tzinfo=None) for v in values], t)
    return pa.array(values, t)


def _source_table(v: ViewSpec, rows: Sequence[SourceRow], order: Sequence[str]) -> pa.Table:
    cols: dict[str, pa.Array] = {}
    for j, (col, t) in enumerate(zip(v.key_columns, v.key_types)):
        cols[col] = pa.array([r.keys[j] for r in rows], t)
    cols[v.ts_column] = _time_array([r.ts for r in rows], v.ts_type)
    if v.created_column and v.created_type is not None:
        cols[v.created_column] = _time_array([r.created for r in rows], v.created_type)
    for j, f in enumerate(v.features):
        cols[f.source_column] = pa.array([r.values[j] for r in rows], f.source_type)
    cols["ingest_batch"] = pa.array([7] * len(rows), pa.int64())
    return pa.table({c: cols[c] for c in order})


def _write(v: ViewSpec, rows: Sequence[SourceRow], order: Sequence[str], file: Path) -> None:
    pq.write_table(_source_table(v, rows, order), file,
                   use_deprecated_int96_timestamps=v.flavour == "int96",
                   store_schema=v.flavour != "plain")


def _write_source(v: ViewSpec, repo: Path) -> str:
    """Write ``v``'s rows in its layout; return the FileSource path."""
    root = repo / "data" / v.name
    if v.layout == "file":
        file = repo / "data" / f"{v.name}.parquet"
        file.parent.mkdir(parents=True, exist_ok=True)
        _write(v, v.rows, v.column_orders[0], file)
        rel = f"data/{v.name}.parquet"
    elif v.layout in ("glob", "dir"):
        root.mkdir(parents=True, exist_ok=True)
        for i in range(v.n_files):
            rows = [r for r in v.rows if r.file == i]
            _write(v, rows, v.column_orders[i], root / f"part-{i}.parquet")
        rel = f"data/{v.name}/part-*.parquet" if v.layout == "glob" else f"data/{v.name}"
    else:
        assert v.partition_by is not None
        parts: dict[Any, list[SourceRow]] = {}
        for r in v.rows:
            value = r.file if v.partition_by == "bucket" else r.keys[v.key_columns.index(v.partition_by)]
            parts.setdefault(value, []).append(r)
        if not parts:
            parts[0] = []
        for i, (value, rows) in enumerate(sorted(parts.items())):
            d = root / f"{v.partition_by}={value}"
            d.mkdir(parents=True, exist_ok=True)
            _write(v, rows, v.column_orders[i % v.n_files], d / "part-0.parquet")
        rel = f"data/{v.name}"
    return str(repo / rel) if v.absolute_path else rel


def _passthrough(kind: str | None, n: int) -> pa.Array:
    """A pass-through column of a type an engine may not handle itself (it must not have to)."""
    values = [None if i % 3 == 2 else i for i in range(n)]
    if kind == "float16":
        return pa.array(np.array([i or 0 for i in values], dtype=np.float16), pa.float16())
    if kind == "struct":
        return pa.array([None if v is None else {"a": v, "b": str(v)} for v in values])
    if kind == "list":
        return pa.array([None if v is None else [str(v)] * (v % 3) for v in values])
    if kind == "decimal":
        return pa.array([None if v is None else Decimal(v) / 4 for v in values], pa.decimal128(12, 2))
    return pa.array([None if v is None else f"c{v % 2}" for v in values]).dictionary_encode()


def _nullable(t: pa.DataType) -> Any:
    if pa.types.is_integer(t):
        return pd.api.types.pandas_dtype(str(t).replace("int", "Int"))
    return None


def _from_entity_df(entity_df: pd.DataFrame | pa.Table) -> pa.Table:
    if isinstance(entity_df, pd.DataFrame):
        return pa.Table.from_pandas(entity_df, preserve_index=False)
    return entity_df


def _zone(t: pa.DataType) -> str:
    if pa.types.is_date(t):
        return "date"
    return {None: "naive", "UTC": "utc"}.get(t.tz, "zoned")


# --- running and comparing ---------------------------------------------------------------------

def setup_repo(scenario: Scenario, repo: str | Path) -> None:
    """Write the scenario's sources under ``repo`` and apply its definitions."""
    store = FeatureStore(repo, config=scenario.config({"type": "reference"}))
    store.apply(scenario.definitions(repo))


def retrieve(scenario: Scenario, repo: str | Path, offline_store: dict[str, Any]) -> pa.Table:
    """Run the scenario's request on the engine configured by ``offline_store``."""
    store = FeatureStore(repo, config=scenario.config(offline_store))
    req = scenario.request()
    return store.get_historical_features(req.pop("entity_df"), **req).to_arrow()


def explain(scenario: Scenario, row: int, column: str) -> str:
    """The facts behind one output cell: the label, and the view's rows for its entity."""
    label = scenario.labels[row]
    for view, feats in scenario.requested():
        for f in feats:
            if scenario.output_name(view, f) != column:
                continue
            keys = tuple(label.keys[scenario.entity_keys.index(k)] for k in view.join_keys)
            j = view.features.index(view.feature(f))
            lines = [f"row {row}: label keys {dict(zip(view.join_keys, keys))} at {label.ts}; "
                     f"view '{view.name}' ttl={view.ttl} as_of={scenario.as_of} "
                     f"on_missing={view.on_missing} default={view.feature(f).default!r}; "
                     f"its source rows for that entity:"]
            for r in sorted((r for r in view.rows if r.keys == keys),
                            key=lambda r: (r.ts or _OLDEST, r.created or _OLDEST)):
                lines.append(f"    ts={r.ts} created={r.created} {f}={r.values[j]!r}")
            return "\n".join(lines)
    return f"row {row}: column '{column}' is not a requested feature"


def assert_engines_agree(scenario: Scenario, repo: str | Path, offline_store: dict[str, Any],
                         oracle: dict[str, Any] | None = None) -> pa.Table:
    """Set up ``scenario`` in the empty directory ``repo``, run its request on the engine
    ``offline_store`` and on ``oracle`` (the reference engine by default), and assert the two
    tables are equal. Returns the oracle's table."""
    oracle = oracle or {"type": "reference"}
    setup_repo(scenario, repo)
    want = retrieve(scenario, repo, oracle)
    got = retrieve(scenario, repo, offline_store)
    names = (str(oracle.get("type")), str(offline_store.get("type")))
    try:
        assert_tables_equal(want, got, *names, context=[*scenario.entity_keys, scenario.timestamp_column])
    except TableMismatch as e:
        if e.cells:
            i, c, _, _ = e.cells[0]
            raise TableMismatch(f"{e}\nfirst difference:\n{explain(scenario, i, c)}", e.cells) from None
        raise
    return want

