"""The one SQL builder: a point-in-time plan, and a materialization's latest row per key, as SQL.

What the queries compute is fixed by the plan (``plan/historical.py``, ``plan/materialize.py``)
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


def _scan(d: Dialect, v: ViewRequest | MaterializeRequest) -> str:
    src = v.source
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
