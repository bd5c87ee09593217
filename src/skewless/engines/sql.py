"""The one SQL builder: a point-in-time plan, a materialization's latest row per key, and the
windowed aggregations of a retrieval (``compile_aggregate``, translated as described above it),
as SQL.

What the queries compute is fixed by the plan (``plan/historical.py``, ``plan/aggregate.py``,
``plan/materialize.py``)
and by the visibility rule (``plan/visibility.py``); this module only spells it. What differs
between SQL engines is a ``Dialect``: a small value listing the spellings (identifier quoting,
type names, timestamp casts, parameters and infinities, intervals, the (time, created) pair,
file readers, temporary tables, the join and aggregate keywords). A built-in engine picks its
entry of ``DIALECTS``; an engine of another package builds its own ``Dialect`` and passes it to
``compile_plan`` / ``compile_latest`` (docs/architecture.md): never a copy of the builder.

Translation of the rules:

- latest ``f.ts <= r.ts`` per key: an as-of join on the keys and ``r.ts >= f.ts``;
- created-timestamp tie-break: the as-of inequality runs on the pair ``(ts, created)`` (compared
  field by field), probed with ``(r.ts, +infinity)``, so the row with the greatest created time
  among equal event times wins, with no extra pass over the source;
- visibility: the matched row counts only if ``f.ts >= r.ts - ttl`` (if the latest row is too
  old, every other row is older); an availability delay shifts the probe to ``r.ts - delay``;
  ``as_of`` keeps the rows known by then;
- defaults: a ``CASE`` on whether a row matched.

Timestamps are compared as UTC (the engine's session time zone is UTC, so naive means UTC).
Golden files under ``tests/golden`` pin the DuckDB text, so a semantic change shows in review.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from skewless import types as T
from skewless.kernels.source import ResolvedSource
from skewless.plan.aggregate import AggregateColumn, AggregateRequest
from skewless.plan.historical import ROW_ID, HistoricalPlan, ViewRequest
from skewless.plan.materialize import CREATED_TS, EVENT_TS, MaterializeRequest
from skewless.plan.visibility import known_column

_ENTITY_T = "__skewless_e"
_TS = "__skewless_ts"


@dataclass(frozen=True)
class Dialect:
    """What one SQL engine spells its own way. Format strings take the named fields shown."""

    name: str
    quote: str = '"'                               # identifier quote, doubled inside a name
    types: Mapping[str, str] = field(default_factory=dict)   # value type name -> SQL type
    array: str = "{element}[]"                     # an array type
    timestamp: str = "TIMESTAMPTZ"                 # UTC timestamp type, the cast target of times
    timestamp_param: str = "?::TIMESTAMPTZ"        # a timestamp parameter
    neg_infinity: str = "'-infinity'::TIMESTAMPTZ"
    pos_infinity: str = "'infinity'::TIMESTAMPTZ"
    null_timestamp: str = "NULL::TIMESTAMPTZ"
    micros: str = "to_microseconds({n})"           # an interval of n microseconds
    pair: str = "{{'t': {t}, 'c': {c}}}"           # (event, created), compared field by field
    asof_join: str = "ASOF LEFT JOIN"
    semi_join: str = "SEMI JOIN"
    temp_table: str = "CREATE OR REPLACE TEMP TABLE {name} AS "
    all_but: str = "{alias}.* EXCLUDE ({columns})"  # every column but some
    arg_max: str = "arg_max(struct_pack({row}), {key})"   # a whole row at the greatest key
    read_file: str = "read_parquet({files})"       # one file or glob
    read_files: str = "read_parquet([{files}], union_by_name = true)"
    read_folder: str = "read_parquet({files}, hive_partitioning = true, union_by_name = true)"
    file_list: str = "[{files}]"                   # several files given to read_folder
    epoch_us: str = "epoch_us({t})"                # a timestamp as integer microseconds
    floor_mod: str = "((({a}) % {n} + {n}) % {n})"  # a mod n, in [0, n) (times before 1970 too)
    floor_div: str = "(({a} - ((({a}) % {n} + {n}) % {n})) // {n})"   # a // n rounded down

    def ident(self, name: str) -> str:
        q = self.quote
        return q + name.replace(q, q + q) + q

    @staticmethod
    def literal(value: str) -> str:
        return "'" + value.replace("'", "''") + "'"

    def sql_type(self, t: T.ValueType) -> str:
        if isinstance(t, T.Array):
            return self.array.format(element=self.sql_type(t.element))
        return self.types[t.name]

    def cast_ts(self, expr: str) -> str:
        return f"CAST({expr} AS {self.timestamp})"


DUCKDB = Dialect(
    name="duckdb",
    types={"Int32": "INTEGER", "Int64": "BIGINT", "Float32": "FLOAT", "Float64": "DOUBLE",
           "String": "VARCHAR", "Bool": "BOOLEAN", "Bytes": "BLOB", "UnixTimestamp": "TIMESTAMPTZ"},
)

#: The dialect of each SQL engine, by engine name.
DIALECTS: dict[str, Dialect] = {DUCKDB.name: DUCKDB}


@dataclass(frozen=True)
class CompiledPlan:
    """Statements of a point-in-time plan: ``setup`` runs first (temporary tables), then
    ``query`` returns the result."""

    setup: tuple[tuple[str, tuple[Any, ...]], ...]
    query: str
    params: tuple[Any, ...]

    def text(self) -> str:
        parts = [f"{sql};\n-- params: {list(p)!r}" for sql, p in self.setup]
        parts.append(f"{self.query};\n-- params: {list(self.params)!r}")
        return "\n\n".join(parts) + "\n"


def _view_join(d: Dialect, plan: HistoricalPlan, i: int, v: ViewRequest, entity: str
               ) -> tuple[str, str, list[str], list[Any], list[Any]]:
    """For view ``i``: its source CTE, its as-of join clause, its feature expressions, and the
    parameters of the CTE and of the expressions (in text order)."""
    ident = d.ident
    alias = f"v{i}"
    vis = v.visibility
    cols = [f"s.{ident(sk)} AS k{j}" for j, sk in enumerate(v.source_keys)]
    ts = d.cast_ts(f"s.{ident(v.timestamp_column)}")
    cols.append(f"{ts} AS ts")
    if v.created_column:
        created = d.cast_ts(f"s.{ident(v.created_column)}")
        cols.append(f"{d.pair.format(t=ts, c=f'coalesce({created}, {d.neg_infinity})')} AS sk")
    for j, f in enumerate(v.features):
        cols.append(f"CAST(s.{ident(f.source_column)} AS {d.sql_type(f.dtype)}) AS f{j}")
    where = [f"{ts} IS NOT NULL"]
    cte_params: list[Any] = []
    if plan.as_of is not None:
        known = d.cast_ts(f"s.{ident(known_column(v.timestamp_column, v.created_column))}")
        where.append(f"{known} <= {d.timestamp_param}")
        cte_params.append(plan.as_of)
    # Only the entities asked for: a semi-join shrinks what the as-of join must sort.
    wanted = ", ".join(f"{ident(k)} AS k{j}" for j, k in enumerate(v.join_keys))
    semi = " AND ".join(f"s.{ident(sk)} = ek.k{j}" for j, sk in enumerate(v.source_keys))
    cte = (f"{alias} AS (SELECT {', '.join(cols)} FROM {_scan(d, v)} AS s "
           f"{d.semi_join} (SELECT DISTINCT {wanted} FROM {entity}) AS ek ON {semi} "
           f"WHERE {' AND '.join(where)})")
    on = [f"e.{ident(k)} = {alias}.k{j}" for j, k in enumerate(v.join_keys)]
    # the newest visible event time: the label's, less the availability delay
    probe = f"e.{_TS}" if not vis.delay_us else f"e.{_TS} - {d.micros.format(n=vis.delay_us)}"
    if v.created_column:
        on.append(f"{d.pair.format(t=probe, c=d.pos_infinity)} >= {alias}.sk")
    else:
        on.append(f"{probe} >= {alias}.ts")
    join = f"{d.asof_join} {alias} ON {' AND '.join(on)}"
    # A label without a time matches nothing; the pair probe (NULL, +inf) is not NULL
    # itself, so the as-of join alone would match the entity's latest row.
    hit = f"e.{_TS} IS NOT NULL AND {alias}.ts IS NOT NULL"
    if vis.ttl_us is not None:   # the oldest visible event time
        hit += f" AND {alias}.ts >= e.{_TS} - {d.micros.format(n=vis.ttl_us)}"
    exprs, expr_params = [], []
    for j, f in enumerate(v.features):
        if v.use_default and f.default is not None:
            exprs.append(f"CASE WHEN {hit} THEN {alias}.f{j} ELSE CAST(? AS {d.sql_type(f.dtype)}) END "
                         f"AS {ident(f.output)}")
            expr_params.append(f.default)
        else:
            exprs.append(f"CASE WHEN {hit} THEN {alias}.f{j} END AS {ident(f.output)}")
    return cte, join, exprs, cte_params, expr_params


def compile_plan(plan: HistoricalPlan, entity_relation: str, with_entity_columns: bool,
                 dialect: Dialect = DUCKDB) -> CompiledPlan:
    """The SQL of ``plan`` over ``entity_relation`` (which carries ``__skewless_row``, the
    input order). The result has that column (or the entity columns) followed by the feature
    columns, ordered by input row.

    One view: a single as-of join. Several views: one as-of join per view into a temporary
    table, then one final join by row, so the engine holds one view's source at a time instead
    of all of them at once.
    """
    d = dialect
    head = (d.all_but.format(alias="e", columns=f"{ROW_ID}, {_TS}") if with_entity_columns
            else f"e.{ROW_ID}")
    entity_cte = (f"SELECT *, {d.cast_ts(d.ident(plan.timestamp_column))} AS {_TS} "
                  f"FROM {entity_relation}")
    if len(plan.views) == 1:
        cte, join, exprs, p1, p2 = _view_join(d, plan, 0, plan.views[0], "e")
        sql = (f"WITH e AS ({entity_cte}),\n{cte}\nSELECT {head}, {', '.join(exprs)}\nFROM e\n"
               f"{join}\nORDER BY e.{ROW_ID}")
        return CompiledPlan((), sql, tuple(p1 + p2))
    setup: list[tuple[str, tuple[Any, ...]]] = [
        (d.temp_table.format(name=_ENTITY_T) + entity_cte, ())]
    final_cols, final_joins = [], []
    for i, v in enumerate(plan.views):
        cte, join, exprs, p1, p2 = _view_join(d, plan, i, v, _ENTITY_T)
        setup.append((d.temp_table.format(name=f"__skewless_r{i}") + f"WITH {cte}\n"
                      f"SELECT e.{ROW_ID}, {', '.join(exprs)}\nFROM {_ENTITY_T} AS e\n{join}",
                      tuple(p1 + p2)))
        final_cols += [f"r{i}.{d.ident(f.output)}" for f in v.features]
        final_joins.append(f"JOIN __skewless_r{i} AS r{i} ON r{i}.{ROW_ID} = e.{ROW_ID}")
    sql = (f"SELECT {head}, {', '.join(final_cols)}\nFROM {_ENTITY_T} AS e\n"
           + "\n".join(final_joins) + f"\nORDER BY e.{ROW_ID}")
    return CompiledPlan(tuple(setup), sql, ())


def compile_latest(r: MaterializeRequest, dialect: Dialect = DUCKDB) -> tuple[str, list[Any]]:
    """SQL of the latest row per entity in a materialization window (see plan/materialize.py):
    one hash aggregation keeping the whole row at the greatest (event, created) pair."""
    d = dialect
    ident = d.ident
    ts = d.cast_ts(ident(r.timestamp_column))
    cts = d.cast_ts(ident(r.created_column)) if r.created_column else d.null_timestamp
    cols = [f"{ident(sk)} AS k{j}" for j, sk in enumerate(r.source_keys)]
    cols += [f"{ts} AS ts", f"{cts} AS cts"]
    cols += [f"CAST({ident(f.source_column)} AS {d.sql_type(f.dtype)}) AS f{j}" for j, f in enumerate(r.features)]
    where = [f"{ts} IS NOT NULL", f"{ts} <= {d.timestamp_param}"]
    params: list[Any] = [r.end]
    where += [f"{ident(sk)} IS NOT NULL" for sk in r.source_keys]
    if r.start is not None and r.created_after is not None:
        where.append(f"({ts} >= {d.timestamp_param} OR {cts} >= {d.timestamp_param})")
        params += [r.start, r.created_after]
    elif r.start is not None:
        where.append(f"{ts} >= {d.timestamp_param}")
        params.append(r.start)
    row = ", ".join(["ts", "cts"] + [f"f{j}" for j in range(len(r.features))])
    keys = ", ".join(f"k{j}" for j in range(len(r.source_keys)))
    outs = [f"k{j} AS {ident(k)}" for j, k in enumerate(r.join_keys)]
    outs += [f"m.ts AS {EVENT_TS}", f"m.cts AS {CREATED_TS}"]
    outs += [f"m.f{j} AS {ident(f.output)}" for j, f in enumerate(r.features)]
    latest = d.arg_max.format(row=row, key=d.pair.format(t="ts", c=f"coalesce(cts, {d.neg_infinity})"))
    sql = (f"WITH src AS (SELECT {', '.join(cols)} FROM {_scan(d, r)} WHERE {' AND '.join(where)})\n"
           f"SELECT {', '.join(outs)} FROM (SELECT {keys}, {latest} AS m FROM src GROUP BY {keys})")
    return sql, params


def _scan(d: Dialect, v: ViewRequest | MaterializeRequest | AggregateRequest) -> str:
    return scan_source(d, v.source)


def scan_source(d: Dialect, src: ResolvedSource) -> str:
    """The table function reading a resolved source in dialect ``d`` (the engines' reads and
    the monitors' scans alike)."""
    lit = d.literal
    if src.is_dir:
        # the folder's files as resolve_source listed them (hidden ones left out), not a glob:
        # the engine's glob would also read files starting with '.' or '_', which no check saw
        # (each path escaped: DuckDB globs every path it is given, docs/types.md)
        files = (d.file_list.format(files=", ".join(lit(f) for f in src.duckdb_files())) if src.files
                 else lit(src.duckdb_pattern))
        return d.read_folder.format(files=files)
    if src.files and len(src.files) > 1:
        return d.read_files.format(files=", ".join(lit(f) for f in src.duckdb_files()))
    return d.read_file.format(files=lit(src.duckdb_files()[0] if src.files else src.duckdb_pattern))


# --- windowed aggregations (plan/aggregate.py) -----------------------------------------------------
#
# Translation of the rule ``floor_tile(t - w) <= e.ts < t`` without joining labels with events one
# by one (docs/aggregations.md, "Offline"):
#
# - events: the source's rows, deduplicated by event id when the source declares one, with event
#   and created times as integer microseconds (a null created time as the smallest integer);
# - partials per (key, tile) of each tile size: count, sum, mean and M2, min, max, and the latest
#   (time, created, value) as a struct whose maximum is the ``last`` rule; only of the tiles some
#   label reads (a semi-join on the labels' (key, bucket) pairs of the tile's longest window);
# - the head tile of each label (its events before t) as per-event partials, by an equality join
#   on (key, tile) then ``e.ts < t``: each label meets the events of one tile;
# - the full tiles of a window of W tiles, ``[head - W, head)``: a label's range lies in two
#   consecutive buckets of W tiles, so an equality join on (key, bucket) for its two buckets
#   meets at most 2W tiles of its key, then the range filter;
# - merged per label: sums of counts and sums, min of mins, max of maxes and of the ``last``
#   structs; M2 by Chan et al.'s formula around the label's overall mean
#   (``skewless.aggregate.partial``).

_MIN_BIGINT = -(2**63)


def _floor_mod(d: Dialect, expr: str, n: int) -> str:
    return d.floor_mod.format(a=expr, n=n)


def _tile_start(d: Dialect, expr: str, tile_us: int) -> str:
    return f"({expr} - {_floor_mod(d, expr, tile_us)})"


def _states(request: AggregateRequest) -> dict[str, set[str]]:
    """Per value column: the partial states the requested functions read."""
    need: dict[str, set[str]] = {}
    for c in request.columns:
        s = need.setdefault(c.source_column, {"n"})
        s |= {"sum": {"s"}, "mean": {"s"}, "min": {"lo"}, "max": {"hi"}, "last": {"l"},
              "stddev_samp": {"s", "m", "q"}, "stddev_pop": {"s", "m", "q"}}.get(c.function, set())
    return need


def _value_index(request: AggregateRequest) -> dict[str, int]:
    return {name: j for j, (name, _) in enumerate(request.value_columns)}


def compile_aggregate(request: AggregateRequest, entity_relation: str, timestamp_column: str,
                      as_of: Any, index: int = 0, dialect: Dialect = DUCKDB) -> CompiledPlan:
    """The SQL of one view's aggregations over ``entity_relation`` (which carries
    ``__skewless_row``): setup statements (temporary tables of events, labels, partials per tile
    and per window), then a query returning ``__skewless_row`` and one column per requested
    feature (``request.columns``' outputs), one row per entity row, ordered by input row."""
    d = dialect
    ident = d.ident
    p = f"__skewless_a{index}"
    vidx = _value_index(request)
    states = _states(request)
    requested = [j for j, (name, _) in enumerate(request.value_columns) if name in states]
    setup: list[tuple[str, tuple[Any, ...]]] = []
    keys = [f"k{j}" for j in range(len(request.source_keys))]

    # events
    ts = d.epoch_us.format(t=d.cast_ts(f"s.{ident(request.timestamp_column)}"))
    cr = (d.epoch_us.format(t=d.cast_ts(f"s.{ident(request.created_column)}"))
          if request.created_column else "NULL")
    cols = [f"s.{ident(sk)} AS k{j}" for j, sk in enumerate(request.source_keys)]
    cols += [f"{ts} AS ts", f"coalesce({cr}, {_MIN_BIGINT}) AS cr"]
    cols += [f"CAST(s.{ident(name)} AS {d.sql_type(t)}) AS v{j}"
             for j, (name, t) in enumerate(request.value_columns)]
    where = [f"{d.cast_ts(f's.{ident(request.timestamp_column)}')} IS NOT NULL"]
    where += [f"s.{ident(sk)} IS NOT NULL" for sk in request.source_keys]
    params: list[Any] = []
    if as_of is not None:
        known = d.cast_ts(f"s.{ident(known_column(request.timestamp_column, request.created_column))}")
        where.append(f"{known} <= {d.timestamp_param}")
        params.append(as_of)
    qualify = ""
    if request.event_id_column:
        eid = f"s.{ident(request.event_id_column)}"
        # the first written copy of an event (docs/aggregations.md, "Event ids")
        order = [f"coalesce({cr}, {_MIN_BIGINT}) ASC", f"{ts} ASC"]
        order += [f"CAST(s.{ident(name)} AS {d.sql_type(t)}) ASC NULLS FIRST"
                  for name, t in request.value_columns]
        qualify = (f" QUALIFY {eid} IS NULL OR row_number() OVER (PARTITION BY {eid} "
                   f"ORDER BY {', '.join(order)}) = 1")
    wanted = ", ".join(f"{ident(k)} AS k{j}" for j, k in enumerate(request.join_keys))
    semi = " AND ".join(f"x.k{j} = ek.k{j}" for j in range(len(keys)))
    setup.append((
        d.temp_table.format(name=f"{p}_ev")
        + f"SELECT x.* FROM (SELECT {', '.join(cols)} FROM {_scan(d, request)} AS s "
        f"WHERE {' AND '.join(where)}{qualify}) AS x "
        f"{d.semi_join} (SELECT DISTINCT {wanted} FROM {entity_relation}) AS ek ON {semi}",
        tuple(params)))

    # labels: those with a time and every key (the others have empty windows). With an
    # availability delay, ``u``: the exclusive bound of the event times usable at t
    # (``ts + delay <= t``, ``AggregateRequest.usable_before``); without one, t itself
    delayed = request.delay_us > 0
    until = "l.u" if delayed else "l.t"
    t = d.epoch_us.format(t=d.cast_ts(f"e.{ident(timestamp_column)}"))
    usable = f", {t} - {request.delay_us - 1} AS u" if delayed else ""
    lab_where = [f"{d.cast_ts(f'e.{ident(timestamp_column)}')} IS NOT NULL"]
    lab_where += [f"e.{ident(k)} IS NOT NULL" for k in request.join_keys]
    setup.append((
        d.temp_table.format(name=f"{p}_lab")
        + f"SELECT e.{ROW_ID}, "
        + ", ".join(f"e.{ident(k)} AS k{j}" for j, k in enumerate(request.join_keys))
        + f", {t} AS t{usable} FROM {entity_relation} AS e WHERE {' AND '.join(lab_where)}", ()))

    def tile_states(v: str, j: int, per_event: bool) -> list[str]:
        """The state columns of value column j: aggregated over a tile, or of one event."""
        out = []
        need = states[request.value_columns[j][0]]
        x = f"CAST({v} AS DOUBLE)"
        if per_event:
            out.append(f"CASE WHEN {v} IS NULL THEN 0 ELSE 1 END AS n{j}")
            out += [f"{v} AS s{j}"] if "s" in need else []
            out += [f"{x} AS m{j}", f"CAST(0 AS DOUBLE) AS q{j}"] if "q" in need else []
            out += [f"{v} AS lo{j}"] if "lo" in need else []
            out += [f"{v} AS hi{j}"] if "hi" in need else []
            out += [f"CASE WHEN {v} IS NOT NULL THEN {{'t': ts, 'c': cr, 'v': {v}}} END AS l{j}"] \
                if "l" in need else []
            return out
        out.append(f"count({v}) AS n{j}")
        out += [f"sum({v}) AS s{j}"] if "s" in need else []
        # the mean scaled by 2**-10 (exact, as is the product back, except below 2**-1012 where
        # the scaled value turns subnormal: an absolute loss under 1e-305): avg sums first, and
        # a sum of finite values past the double range (two of 1e308) made the mean inf
        out += [f"avg({x} * 0.0009765625) * 1024 AS m{j}", f"var_pop({x}) * count({v}) AS q{j}"] \
            if "q" in need else []
        out += [f"min({v}) AS lo{j}"] if "lo" in need else []
        out += [f"max({v}) AS hi{j}"] if "hi" in need else []
        out += [f"max({{'t': ts, 'c': cr, 'v': {v}}}) FILTER (WHERE {v} IS NOT NULL) AS l{j}"] \
            if "l" in need else []
        return out

    key_list = ", ".join(keys)
    key_eq = lambda a, b: " AND ".join(f"{a}.{k} = {b}.{k}" for k in keys)  # noqa: E731
    tiles = sorted({c.tile_us for c in request.columns})
    for s in tiles:
        # partials per (key, tile), of the tiles some label's window reads: those in the two
        # buckets of its longest window of this tile (every shorter window lies inside them)
        st = [x for j in requested for x in tile_states(f"v{j}", j, False)]
        longest = max(c.window_us for c in request.columns if c.tile_us == s) // s
        head = f"{_tile_start(d, 'l.t', s)} // {s}"
        wanted_buckets = (f"SELECT DISTINCT {', '.join(f'l.{k}' for k in keys)}, "
                          f"{d.floor_div.format(a=f'({head})', n=longest)} - 1 + b.d AS bucket "
                          f"FROM {p}_lab AS l CROSS JOIN (VALUES (0), (1)) AS b(d)")
        setup.append((
            d.temp_table.format(name=f"{p}_t{s}")
            + f"SELECT {key_list}, idx, {', '.join(st)} FROM (SELECT x.*, "
            f"{_tile_start(d, 'x.ts', s)} // {s} AS idx FROM {p}_ev AS x) AS x "
            f"{d.semi_join} ({wanted_buckets}) AS nb ON {key_eq('x', 'nb')} "
            f"AND {d.floor_div.format(a='x.idx', n=longest)} = nb.bucket "
            f"GROUP BY {key_list}, idx", ()))
        # the head tile of each label: its events before t
        ev = [x for j in requested for x in tile_states(f"e.v{j}", j, True)]
        ev = [x.replace("'t': ts, 'c': cr", "'t': e.ts, 'c': e.cr") for x in ev]
        # (with a delay: the tile holding u, its events before u, and the tiles of t and u
        # to tell whether that tile is inside a window at all)
        edges = (f", {_tile_start(d, 'l.t', s)} // {s} AS ht, {_tile_start(d, 'l.u', s)} // {s} AS hu"
                 if delayed else "")
        setup.append((
            d.temp_table.format(name=f"{p}_h{s}")
            + f"SELECT l.{ROW_ID}{edges}, {', '.join(ev)} FROM {p}_lab AS l JOIN {p}_ev AS e "
            f"ON {key_eq('e', 'l')} AND {_tile_start(d, 'e.ts', s)} = {_tile_start(d, until, s)} "
            f"AND e.ts < {until}", ()))

    windows = sorted({(c.window_us, c.tile_us) for c in request.columns})
    results: list[tuple[str, list[AggregateColumn]]] = []
    for w, s in windows:
        n_tiles = w // s
        mine = [c for c in request.columns if (c.window_us, c.tile_us) == (w, s)]
        used = sorted({vidx[c.source_column] for c in mine})
        names = [f"{x}{j}" for j in used for x in ("n", "s", "m", "q", "lo", "hi", "l")
                 if x == "n" or x in states[request.value_columns[j][0]]]
        head = f"{_tile_start(d, 'l.t', s)} // {s}"
        bucket = d.floor_div.format(a=f"({head})", n=n_tiles)
        full = (f"SELECT l.{ROW_ID}, {', '.join('p.' + x for x in names)} "
                f"FROM (SELECT l.*, {head} AS hidx, {bucket} - 1 + b.d AS bucket "
                f"FROM {p}_lab AS l CROSS JOIN (VALUES (0), (1)) AS b(d)) AS l "
                f"JOIN {p}_t{s} AS p ON {key_eq('p', 'l')} "
                f"AND {d.floor_div.format(a='p.idx', n=n_tiles)} = l.bucket "
                f"AND p.idx >= l.hidx - {n_tiles} AND p.idx < "
                + (f"{_tile_start(d, 'l.u', s)} // {s}" if delayed else "l.hidx"))
        inside = f" WHERE hu >= ht - {n_tiles}" if delayed else ""
        parts = f"{full}\nUNION ALL\nSELECT {ROW_ID}, {', '.join(names)} FROM {p}_h{s}{inside}"
        needs_mean = any(c.function.startswith("stddev") for c in mine)
        if needs_mean:
            # each part with its label's overall mean of the column (for Chan's M2): the parts'
            # means weighted by their shares of the count (a sum / count overflows to inf when
            # the sum of finite values leaves the double range)
            qs = [j for j in used if "q" in states[request.value_columns[j][0]]]
            shares = [f"CAST(n{j} AS DOUBLE) / nullif(sum(n{j}) OVER (PARTITION BY {ROW_ID}), 0) AS w{j}"
                      for j in qs]
            extra = [f"sum(m{j} * w{j}) OVER (PARTITION BY {ROW_ID}) AS mu{j}" for j in qs]
            parts = f"SELECT *, {', '.join(extra)} FROM (SELECT *, {', '.join(shares)} FROM ({parts}))"
        outs: list[str] = []
        for c in mine:
            j = vidx[c.source_column]
            n = f"sum(n{j})"
            f = c.function
            if f == "count":
                e = f"CAST(coalesce({n}, 0) AS BIGINT)"
            elif f == "sum":
                e = f"CASE WHEN {n} > 0 THEN CAST(sum(s{j}) AS DOUBLE) END"
            elif f == "mean":
                e = f"CASE WHEN {n} > 0 THEN CAST(sum(s{j}) AS DOUBLE) / {n} END"
            elif f == "min":
                e = f"min(lo{j})"
            elif f == "max":
                e = f"max(hi{j})"
            elif f == "last":
                e = f"(max(l{j})).v"
            else:
                m2 = f"(sum(q{j}) + sum(n{j} * (m{j} - mu{j}) * (m{j} - mu{j})))"
                denom = n if f == "stddev_pop" else f"({n} - 1)"
                least = 0 if f == "stddev_pop" else 1
                e = f"CASE WHEN {n} > {least} THEN sqrt(greatest({m2}, 0.0) / {denom}) END"
            outs.append(f"CAST({e} AS {d.sql_type(c.dtype)}) AS o{len(results)}_{len(outs)}")
        name = f"{p}_w{len(results)}"
        setup.append((d.temp_table.format(name=name)
                      + f"SELECT {ROW_ID}, {', '.join(outs)} FROM ({parts}) GROUP BY {ROW_ID}", ()))
        results.append((name, mine))

    # one row per entity row: the windows' values, count 0 and defaults for empty windows
    joins: list[str] = []
    picked: dict[str, tuple[str, tuple[Any, ...]]] = {}   # output -> (expression, its params)
    for r, (name, mine) in enumerate(results):
        joins.append(f"LEFT JOIN {name} AS w{r} ON w{r}.{ROW_ID} = e.{ROW_ID}")
        for i, c in enumerate(mine):
            v = f"w{r}.o{r}_{i}"
            if c.function == "count":
                picked[c.output] = (f"coalesce({v}, 0)", ())
            elif c.default is not None:
                picked[c.output] = (f"coalesce({v}, CAST(? AS {d.sql_type(c.dtype)}))", (c.default,))
            else:
                picked[c.output] = (v, ())
    exprs = [f"{picked[c.output][0]} AS {ident(c.output)}" for c in request.columns]
    final_params = tuple(x for c in request.columns for x in picked[c.output][1])
    sql = (f"SELECT e.{ROW_ID}, {', '.join(exprs)}\nFROM {entity_relation} AS e\n" + "\n".join(joins)
           + f"\nORDER BY e.{ROW_ID}")
    return CompiledPlan(tuple(setup), sql, final_params)
