"""The DuckDB engine: the plan as one SQL query of chained ``ASOF LEFT JOIN``s, spelled by the
shared SQL builder (``skewless.engines.sql``, its ``DUCKDB`` dialect), which says how each rule
is translated. Timestamps are compared as UTC ``TIMESTAMPTZ`` (the session time zone is UTC, so
naive means UTC).
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Literal

import pyarrow as pa
from pydantic import Field, field_validator

from skewless.backends import Backend, BackendSettings, lazy_module
from skewless.engines.base import Capabilities, EntityInput, JobProgress, ProgressCallback, RetrievalJob
from skewless.engines.duckdb_errors import Failure, translate
from skewless.errors import InvalidRequestError
from skewless.engines.sql import DUCKDB, CompiledPlan, compile_aggregate, compile_latest, compile_plan
from skewless.plan.aggregate import AggregateRequest
from skewless.plan.historical import ROW_ID, HistoricalPlan, ViewRequest
from skewless.plan.materialize import MaterializeRequest

if TYPE_CHECKING:
    import duckdb

    from skewless.config import RepoConfig
else:
    duckdb = lazy_module("duckdb")   # imported at the first query, not with the config

# --- the backend: settings, capabilities, factory ----------------------------------------------
# A DuckDB size: a number and a unit (1000^i or 1024^i), or a share of the machine's memory.
_SIZE = re.compile(r"^\s*(\d+(\.\d*)?|\.\d+)\s*(b|bytes|kb|mb|gb|tb|kib|mib|gib|tib)\s*$", re.I)
_PERCENT = re.compile(r"^\s*(\d+(\.\d*)?|\.\d+)\s*%\s*$")


class DuckDBOfflineConfig(BackendSettings):
    """Embedded DuckDB engine. ``memory_limit`` bounds its memory; beyond it, it spills to
    ``temp_directory`` so larger-than-memory retrievals complete."""

    type: Literal["duckdb"] = "duckdb"
    memory_limit: str | None = None
    temp_directory: str | None = None
    threads: int | None = Field(default=None, ge=1)

    @field_validator("memory_limit", mode="before")
    @classmethod
    def _memory_limit(cls, value: Any) -> Any:
        """A size DuckDB understands, checked now rather than by DuckDB at the first query."""
        if value is None:
            return None
        what = "write a size with a unit, such as 4GB, 512MiB or 80% (of the machine's memory)"
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise ValueError(f"must be a size, got {type(value).__name__} {value!r}; {what}")
        text = str(value)
        if isinstance(value, (int, float)) or re.fullmatch(r"\s*[\d.]+\s*", text):
            raise ValueError(f"{text!r} has no unit; {what} (e.g. {text.strip()}MB)")
        percent = _PERCENT.match(text)
        if percent:
            if not 0 < float(percent.group(1)) <= 100:
                raise ValueError(f"{text!r} is not a share of memory between 0% and 100%; {what}")
            return text.strip()
        if not _SIZE.match(text):
            raise ValueError(f"{text!r} is not a size; {what}")
        if float(_SIZE.match(text).group(1)) == 0:  # type: ignore[union-attr]
            raise ValueError(f"{text!r} leaves DuckDB no memory at all; {what}")
        return text.strip()

    @field_validator("temp_directory")
    @classmethod
    def _temp_directory(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("it is empty; write a directory DuckDB may spill to (e.g. data/spill), "
                             "or remove the key")
        return value

    def problems(self, config: RepoConfig) -> list[tuple[str, str]]:
        if self.temp_directory:
            p = config.resolve(self.temp_directory)
            if p.exists() and not p.is_dir():
                return [("temp_directory", f"{str(p)!r} is a file; write a directory DuckDB may "
                         "spill to (it is created if missing)")]
        return []


CAPABILITIES = Capabilities(sql_entity_df=True, streaming_parquet=True, spills_to_disk=True)


def _make(config: RepoConfig, settings: DuckDBOfflineConfig) -> DuckDBEngine:
    duckdb.connect  # noqa: B018 - the driver loads here, once, not in racing query threads
    return DuckDBEngine(config, settings)


BACKEND = Backend("offline_engine", "duckdb", DuckDBOfflineConfig, _make, CAPABILITIES,
                  testing="skewless.testing.backends:DUCKDB",
                  description="embedded DuckDB: one SQL query per retrieval, spills to disk")
# -------------------------------------------------------------------------------------------------

_SQL_TYPES = {"Int32": "INTEGER", "Int64": "BIGINT", "Float32": "FLOAT", "Float64": "DOUBLE",
              "String": "VARCHAR", "Bool": "BOOLEAN", "Bytes": "BLOB", "UnixTimestamp": "TIMESTAMPTZ"}
_ENTITY = "__skewless_entity"
literal, sql_type = DUCKDB.literal, DUCKDB.sql_type   # the engine's spellings (duckdb_errors reads sql_type)


# DuckDB's statement types whose name is not what the user wrote
_STATEMENT_KINDS = {"LOAD": "INSTALL/LOAD", "MULTI": "multi-statement (e.g. PIVOT)"}


def read_only_query(sql: str) -> str:
    """``entity_df`` given as SQL, checked before anything runs: exactly one read-only query
    (``SELECT``, ``WITH ...``, ``VALUES``, ``FROM ...``), by DuckDB's own parser. Stacked
    statements, ``COPY``, ``ATTACH``, ``INSTALL``/``LOAD``, ``PRAGMA``, ``SET``, ``CREATE`` and
    every other statement are refused with InvalidRequestError, so a query can never write a
    file or change the session (docs/point-in-time.md). Returns the statement without its
    trailing ``;``, on its own lines, ready to be nested in a larger query."""
    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as e:
        raise InvalidRequestError(f"entity_df SQL query failed: {str(e).splitlines()[0]}",
                                  hint="pass one SELECT query (or a DataFrame)") from None
    hint = ("entity_df SQL must be one read-only query (SELECT, WITH ... SELECT, VALUES or "
            "FROM ...); run anything else yourself first")
    if len(statements) != 1:
        kinds = ", ".join(s.type.name for s in statements) or "none"
        raise InvalidRequestError(f"entity_df SQL holds {len(statements)} statements ({kinds}); "
                                  "nothing was run", hint=hint)
    (stmt,) = statements
    if stmt.type != duckdb.StatementType.SELECT:
        kind = _STATEMENT_KINDS.get(stmt.type.name, stmt.type.name)
        article = "an" if kind[0] in "AEIOU" else "a"
        raise InvalidRequestError(f"entity_df SQL is {article} {kind} statement, not a query; "
                                  "nothing was run", hint=hint)
    return "\n" + stmt.query.strip().rstrip(";").strip() + "\n"


def _make_dirs(path: str) -> None:
    import os

    from skewless.errors import ConfigError

    try:
        os.makedirs(path, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"offline_store.temp_directory {path!r} cannot be created: {e.strerror}",
                          hint="point offline_store.temp_directory at a writable directory") from None


class DuckDBEngine:
    """Embedded engine; spills to disk beyond ``memory_limit`` so larger-than-memory inputs complete."""

    name = "duckdb"
    capabilities = CAPABILITIES

    def __init__(self, config: RepoConfig | None = None, options: DuckDBOfflineConfig | None = None) -> None:
        self.repo = config
        self.options = options or DuckDBOfflineConfig()

    def connect(self) -> duckdb.DuckDBPyConnection:
        con = duckdb.connect()
        con.execute("SET TimeZone = 'UTC'")
        o = self.options
        if o.memory_limit:
            con.execute(f"SET memory_limit = {literal(o.memory_limit)}")
        if o.temp_directory:
            tmp = str(self.repo.resolve(o.temp_directory)) if self.repo else o.temp_directory
            _make_dirs(tmp)  # DuckDB creates only the last level, when it first spills
            con.execute(f"SET temp_directory = {literal(tmp)}")
        if o.threads:
            con.execute(f"SET threads = {int(o.threads)}")
        con.execute("SET preserve_insertion_order = false")
        return con

    def entity_schema(self, entity: EntityInput) -> pa.Schema:
        if entity.table is not None:
            return entity.table.schema
        assert entity.sql is not None
        entity.sql = read_only_query(entity.sql)
        con = self.connect()
        try:
            return con.sql(f"SELECT * FROM ({entity.sql}) LIMIT 0").to_arrow_table().schema
        except duckdb.Error as e:
            raise translate(e, Failure("entity_df query", entity_sql=entity.sql)) from None
        finally:
            con.close()

    def historical(self, plan: HistoricalPlan, entity: EntityInput) -> RetrievalJob:
        pit = plan.point_in_time()

        def steps(c: CompiledPlan, copy_to: str | None = None) -> list[_Step]:
            """One step per statement: the entity rows (several views), one per view, then the
            result (fetched as a table, or streamed to Parquet at ``copy_to``)."""
            query = c.query if copy_to is None else f"COPY ({c.query}) TO {literal(copy_to)} (FORMAT parquet)"
            fetch = "arrow" if copy_to is None else "execute"
            if not c.setup:
                return [_Step(f"{pit.views[0].view}", query, list(c.params), pit.views[0], fetch)]
            (entity_sql, entity_params), *_ = c.setup
            out = [_Step("entity rows", entity_sql, list(entity_params), None, "execute", entity=True)]
            out += [_Step(f"{v.view}", sql, list(params), v, "execute")
                    for v, (sql, params) in zip(pit.views, c.setup[1:])]
            out.append(_Step("result", query, list(c.params), None, fetch))
            return out

        def aggregate_steps(relation: str) -> list[_Step]:
            """Per aggregated view: its temporary tables, then its features by row."""
            out = []
            for i, a in enumerate(plan.aggregations):
                c = compile_aggregate(a, relation, plan.timestamp_column, plan.as_of, i)
                out += [_Step(f"{a.view} (aggregations)", sql, list(params), a, "execute")
                        for sql, params in c.setup]
                out.append(_Step(f"{a.view} (aggregations)", c.query, list(c.params), a, "arrow"))
            return out

        def numbered(all_steps: list[_Step]) -> list[_Step]:
            views = [s.label for s in all_steps if s.view is not None]
            names = list(dict.fromkeys(views))
            for s in all_steps:
                if s.view is not None:
                    s.label = f"{s.label} ({names.index(s.label) + 1}/{len(names)})"
            return all_steps

        def compute(progress: ProgressCallback | None) -> pa.Table:
            def run(con: duckdb.DuckDBPyConnection, relation: str, failing: _Failing) -> pa.Table:
                sql_entity = entity.table is None
                if plan.aggregations and sql_entity:   # read the query once: one row numbering
                    con.execute(f"CREATE TEMP TABLE __skewless_rows AS SELECT * FROM {relation}")
                    relation = "__skewless_rows"
                todo: list[_Step] = []
                if pit.views:
                    todo += steps(compile_plan(pit, relation, with_entity_columns=sql_entity))
                elif sql_entity:
                    todo.append(_Step("entity rows", f"SELECT * FROM {relation} ORDER BY {ROW_ID}", [],
                                      None, "arrow", entity=True))
                todo += aggregate_steps(relation)
                tables = _run_steps(con, numbered(todo), progress, failing)
                table = tables[0] if (pit.views or sql_entity) else None
                for part in tables[1 if table is not None else 0:]:
                    part = part.drop_columns([ROW_ID])
                    if table is None:
                        table = part
                        continue
                    for name in part.column_names:
                        table = table.append_column(name, part.column(name))
                assert table is not None
                if sql_entity:
                    table = table.drop_columns([ROW_ID]) if ROW_ID in table.column_names else table
                    head = [c for c in table.column_names if c not in plan.output_columns]
                    return table.select(head + plan.output_columns)
                table = table.drop_columns([ROW_ID]) if ROW_ID in table.column_names else table
                return table.select(plan.output_columns)
            # Only the columns the join reads: pass-through columns are attached by the
            # RetrievalJob untouched, and may have types DuckDB cannot scan (e.g. float16).
            needed = dict.fromkeys([plan.timestamp_column, *(k for _, keys in plan.join_key_sets for k in keys)])
            return self._with_entity(entity, run, (*plan.views, *plan.aggregations),
                                     "point-in-time join", list(needed))

        def write(path: str, progress: ProgressCallback | None) -> None:
            def run(con: duckdb.DuckDBPyConnection, relation: str, failing: _Failing) -> None:
                c = compile_plan(pit, relation, with_entity_columns=True)
                _run_steps(con, numbered(steps(c, copy_to=path)), progress, failing)
            self._with_entity(entity, run, plan.views, "point-in-time join", output=path)

        # with aggregations, to_parquet writes the computed table (no streaming COPY)
        return RetrievalJob(plan, entity, compute, None if plan.aggregations else write)

    def latest(self, request: MaterializeRequest, batch_rows: int = 100_000) -> Iterator[pa.RecordBatch]:
        sql, params = compile_latest(request)
        con = self.connect()
        try:
            reader = con.sql(sql, params=params).to_arrow_reader(batch_rows)
            yield from reader
        except duckdb.Error as e:
            raise translate(e, Failure("materialization", view=request,
                                       memory_limit=self.options.memory_limit)) from None
        finally:
            con.close()

    def _with_entity(self, entity: EntityInput,
                     fn: Callable[[duckdb.DuckDBPyConnection, str, _Failing], Any],
                     views: tuple[ViewRequest | AggregateRequest, ...], operation: str,
                     columns: list[str] | None = None, output: str | None = None) -> Any:
        con = self.connect()
        failing = _Failing()
        try:
            if entity.table is not None:
                table = entity.table if columns is None else entity.table.select(columns)
                rows = pa.array(range(table.num_rows), type=pa.int64())
                con.register(_ENTITY, table.append_column(ROW_ID, rows))
                relation = _ENTITY
            else:
                relation = f"(SELECT *, row_number() OVER () AS {ROW_ID} FROM ({read_only_query(entity.sql or '')}))"
            return fn(con, relation, failing)
        except duckdb.Error as e:
            # the failing step says which view (or the entity rows alone); else any of them
            step = failing.step
            known = step is not None and (step.view is not None or step.entity)
            where = Failure(operation, view=step.view if step else None, views=() if known else views,
                            entity_sql=entity.sql, output=output, memory_limit=self.options.memory_limit)
            raise translate(e, where) from None
        finally:
            con.close()


@dataclass
class _Step:
    """One statement of a retrieval: what it is called in progress reports, the view it joins
    (None for the entity rows and the final assembly), and how its result is taken."""

    label: str
    sql: str
    params: list[Any]
    view: ViewRequest | AggregateRequest | None
    fetch: str             # "execute", or "arrow" (the result table)
    entity: bool = False   # reads the entity rows alone


class _Failing:
    """The step running now: which view a failure belongs to."""

    step: _Step | None = None


def _run_steps(con: duckdb.DuckDBPyConnection, steps: list[_Step], progress: ProgressCallback | None,
               failing: _Failing) -> list[pa.Table]:
    """Run ``steps`` in order, returning the tables of the steps fetched as Arrow, in order. With ``progress``, each step is
    reported as it starts and a thread polls DuckDB's progress of the running statement
    (``query_progress``: the share of its scans done, or -1 when DuckDB cannot tell), reported
    as a share of the whole job: step i of n at p% is (i + p/100) / n. Never decreasing."""
    state: dict[str, float] = {"i": 0, "best": 0.0}
    lock = threading.RLock()

    def report(pct: float | None) -> None:
        if progress is None:
            return
        with lock:
            i = int(state["i"])
            total = state["best"] if state["best"] > 0 else None
            if pct is not None:
                total = state["best"] = max(state["best"], 100.0 * (i + min(pct, 100.0) / 100.0) / len(steps))
            progress(JobProgress(steps[i].label, total))

    done = threading.Event()
    poller = None
    if progress is not None:
        con.execute("SET enable_progress_bar = true")
        con.execute("SET enable_progress_bar_print = false")

        def poll() -> None:
            while not done.wait(0.2):
                with lock:
                    i = state["i"]
                try:
                    pct = con.query_progress()
                except duckdb.Error:
                    continue
                with lock:
                    if pct > 0 and state["i"] == i:   # not a figure of the previous step
                        report(pct)
        poller = threading.Thread(target=poll, daemon=True)
        poller.start()
    try:
        results: list[pa.Table] = []
        for i, step in enumerate(steps):
            failing.step = step
            with lock:
                state["i"] = i
                report(None if i == 0 else 0.0)
            if step.fetch == "arrow":
                results.append(con.sql(step.sql, params=step.params).to_arrow_table())
            else:
                con.execute(step.sql, step.params)
        failing.step = None
        return results
    finally:
        done.set()
        if poller is not None:
            poller.join()
