"""DuckDB's errors, translated into skewless's error tree in one place.

Every statement the DuckDB engine runs (point-in-time joins of one or several views, their
streaming to Parquet, materialization's latest-row query, the entity_df SQL) fails through
``translate``. A DuckDB message ("Binder Error: Referenced column ...", "Conversion Error: Could
not convert string 'abc' to DOUBLE", "Footer length error in file ...") names neither the feature
view nor, mostly, the file; so on failure, and only then, the source is diagnosed: each file's
Parquet footer is read (cheap) to find the one that is unreadable, lacks the column, or holds it
in another type family, and the offending value is looked up in that file. The result names
the view, the file and the column, with a hint saying how to fix it (docs/point-in-time.md,
"When a query fails").
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.parquet as pq

from skewless import types as T
from skewless.errors import EngineResourceError, InvalidRequestError, SkewlessError, SourceError
from skewless.plan.aggregate import AggregateRequest
from skewless.plan.historical import ViewRequest
from skewless.plan.materialize import MaterializeRequest

if TYPE_CHECKING:
    import duckdb
else:
    from skewless.backends import lazy_module
    duckdb = lazy_module("duckdb")   # imported at the first query, not with the config

Request = ViewRequest | MaterializeRequest | AggregateRequest

_COLUMN = (re.compile(r'Referenced column "([^"]+)" not found'),
           re.compile(r"when casting from source column (\S+)"),
           re.compile(r'column "([^"]+)"'))
_FILE = (re.compile(r"in file '([^']+)'"), re.compile(r'file "([^"]+)"'), re.compile(r"file '([^']+)'"))
_FIX = ("fix or replace that file (every file of a source must hold the declared columns and "
        "types; docs/point-in-time.md), or change the definition and run `skewless plan`")


@dataclass(frozen=True)
class Failure:
    """Where a statement failed: the operation (for the message), the view it read (None for
    the entity_df alone), the views it may have read, and the entity_df SQL if any."""

    operation: str                        # e.g. "point-in-time join", "materialization"
    view: Request | None = None           # the view the failing statement reads, if known
    views: Sequence[Request] = ()         # the views it may have read, when ``view`` is unknown
    entity_sql: str | None = None
    output: str | None = None             # the file being written, if any
    memory_limit: str | None = None


def first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def translate(e: duckdb.Error, where: Failure) -> SkewlessError:
    """The skewless error for DuckDB error ``e`` raised while running ``where``."""
    msg = first_line(e)
    if isinstance(e, duckdb.OutOfMemoryException):
        return EngineResourceError(
            f"DuckDB ran out of memory during the {where.operation} "
            f"(memory_limit={where.memory_limit or 'default'}): {msg}",
            hint="raise offline_store.memory_limit in feature_store.yaml, or point "
            "offline_store.temp_directory at a disk with free space so DuckDB can spill")
    if where.output and where.output in str(e):
        return InvalidRequestError(f"cannot write the result of the {where.operation} to "
                                   f"{where.output}: {msg}",
                                   hint="check the output directory exists, is writable and has space")
    column = next((m.group(1) for p in _COLUMN if (m := p.search(str(e)))), None)
    named_file = next((m.group(1) for p in _FILE if (m := p.search(str(e)))), None)
    candidates = [where.view] if where.view is not None else list(where.views)
    for v in candidates:
        found = diagnose(v, column, named_file)
        if found is not None:
            return SourceError(f"{where.operation} of feature view '{v.view}' failed: {found}", hint=_FIX)
    if where.entity_sql is not None:
        problem = entity_sql_error(where.entity_sql) if candidates else msg
        if problem is not None:
            return InvalidRequestError(f"entity_df SQL query failed: {problem}",
                                       hint="run the query alone in DuckDB to check it")
    if not candidates:
        return InvalidRequestError(f"{where.operation} failed: {msg}")
    one = candidates[0] if len(candidates) == 1 else None
    names = ", ".join(f"'{c.view}'" for c in candidates)
    loc = f" (source {one.source.location})" if one is not None else ""
    col = f", column '{column}'" if column else ""
    return SourceError(
        f"{where.operation} of feature view{'' if one else 's'} {names}{loc} failed{col}: {msg}",
        hint="check the source files against the definition with `skewless plan`; "
        "docs/point-in-time.md lists what each file must hold")


def diagnose(v: Request, column: str | None, named_file: str | None) -> str | None:
    """What is wrong with ``v``'s source files, naming the file and the column, or None. The
    column DuckDB named is looked at first (missing from a file, held in another type family,
    holding a value that does not convert), then every column the view reads."""
    files = list(v.source.files)
    if named_file is not None:
        files.sort(key=lambda f: f != named_file)   # the file DuckDB named first
    wanted = _wanted(v)
    schemas: dict[str, pa.Schema] = {}
    for f in files:
        try:
            schemas[f] = pq.read_schema(f)
        except (OSError, pa.ArrowException) as err:
            return f"file {f} cannot be read as Parquet ({first_line(err)})"
    if column is not None and column in wanted:
        found = _missing(v, schemas, column) or _mistyped(schemas, column, wanted[column])
        if found:
            return found
        for f in schemas:   # same family, but a value that does not convert (int64 into Int32, ...)
            bad = _bad_value(f, column, wanted[column])
            if bad:
                return f"file {f}: column '{column}' cannot be read as {wanted[column]}{bad}"
    for c, kind in wanted.items():
        found = _missing(v, schemas, c) or _mistyped(schemas, c, kind)
        if found:
            return found
    return None


def _missing(v: Request, schemas: dict[str, pa.Schema], column: str) -> str | None:
    for f, schema in schemas.items():
        names = set(schema.names) | _hive_columns(v, f)
        if column not in names:
            return (f"file {f} has no column '{column}' (it has {sorted(names)}), which "
                    f"feature view '{v.view}' reads")
    return None


def _mistyped(schemas: dict[str, pa.Schema], column: str, kind: T.ValueType | str) -> str | None:
    """A file holding ``column`` in a type the view cannot read it as: for a feature, what the
    conformance table refuses (strings in a Float64 column, ...); for a timestamp, another
    type family."""
    family = _family_of(kind)
    if family is None:
        return None
    for f, schema in schemas.items():
        if column not in schema.names:
            continue   # a hive partition column
        t = schema.field(column).type
        if isinstance(kind, T.ValueType):   # a feature: the one conformance table (docs/types.md)
            verdict = T.conformance(t, kind)
            if not verdict.ok:
                return (f"file {f}: column '{column}' has type {t}, declared {kind} ({verdict.rule})"
                        f"{_bad_value(f, column, kind)}")
        elif family != T._family(t.value_type if pa.types.is_dictionary(t) else t):
            return f"file {f}: column '{column}' has type {t}, expected {kind}{_bad_value(f, column, kind)}"
    return None


def _wanted(v: Request) -> dict[str, T.ValueType | str]:
    """Source column -> what the view reads it as (a declared type, or "timestamp"/"key")."""
    out: dict[str, T.ValueType | str] = {v.timestamp_column: "timestamp"}
    if v.created_column:
        out[v.created_column] = "timestamp"
    for k in v.source_keys:
        out.setdefault(k, "key")
    for f in v.features:
        out.setdefault(f.source_column, f.dtype)
    return out


def _family_of(kind: T.ValueType | str) -> str | None:
    if kind == "timestamp":
        return "timestamp"
    if isinstance(kind, T.ValueType):
        return T._family(kind.to_arrow())
    return None   # a key: its type is checked against entity_df elsewhere


def _hive_columns(v: Request, file: str) -> set[str]:
    """Hive partition columns (``day=2024-01-01/``) of ``file`` under a directory source."""
    if not v.source.is_dir or not file.startswith(v.source.location):
        return set()
    parts = file[len(v.source.location):].strip("/").split("/")[:-1]
    return {p.split("=", 1)[0] for p in parts if "=" in p}


def _bad_value(file: str, column: str, kind: T.ValueType | str) -> str:
    """'; row R holds V' for the first value of ``column`` in ``file`` that does not convert
    to ``kind`` (empty when all do, or when that cannot be told)."""
    from skewless.engines.duckdb import sql_type as declared_sql_type  # the engine's one type map

    if kind == "key" or isinstance(kind, T.Array):
        return ""
    sql_type = declared_sql_type(kind) if isinstance(kind, T.ValueType) else "TIMESTAMPTZ"
    q = column.replace('"', '""')
    path = file.replace("'", "''")
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        row = con.execute(
            f"SELECT file_row_number, CAST(\"{q}\" AS VARCHAR) FROM read_parquet('{path}', "
            f"file_row_number = true) WHERE \"{q}\" IS NOT NULL AND "
            f"TRY_CAST(\"{q}\" AS {sql_type}) IS NULL LIMIT 1").fetchone()
    except duckdb.Error:
        return ""
    finally:
        con.close()
    if row is None:
        return ""
    return f"; row {row[0] + 1} holds {row[1]!r}"


def entity_sql_error(sql: str) -> str | None:
    """The error of the entity_df SQL run alone (every row, every column), or None if it runs."""
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        for _ in con.sql(f"SELECT * FROM ({sql})").to_arrow_reader(100_000):
            pass
    except duckdb.Error as e:
        return first_line(e)
    finally:
        con.close()
    return None
