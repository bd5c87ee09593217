"""The offline engine protocol, its capabilities, and the retrieval result every engine returns.

An engine translates a ``HistoricalPlan`` into its own execution; it returns the feature
columns, one row per entity row, in entity-row order. Pass-through columns are attached here,
once, so they come back untouched whatever the engine.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from skewless.backends import UNDECLARED, Capability, require
from skewless.errors import InvalidRequestError
from skewless.plan.historical import HistoricalPlan
from skewless.plan.materialize import MaterializeRequest



@dataclass(frozen=True)
class JobProgress:
    """What a running retrieval reports to ``RetrievalJob.progress``: the step it is in (for
    DuckDB, one per view joined), the share done when the engine can tell (``percent`` is None
    when it cannot: show a spinner, not a bar stuck at 0%), and, in the last report
    (``done``), the rows of the result. ``percent`` never decreases."""

    step: str                     # what runs now, e.g. "user_spend (1/3)"
    percent: float | None = None  # of the whole job, 0..100, when known
    rows: int | None = None       # rows of the result, set once it is complete
    done: bool = False


ProgressCallback = Callable[[JobProgress], None]


@dataclass(frozen=True)
class Capabilities:
    """What an engine can do, declared up front rather than discovered at run time: each is
    ``True`` or a ``Gap`` (``notyet`` / ``never``, with the reason), read by
    ``skewless.backends.require`` before a call that needs it (docs/backends.md)."""

    sql_entity_df: Capability = UNDECLARED       # entity_df given as a SQL query string
    streaming_parquet: Capability = UNDECLARED   # to_parquet without building the table in memory
    spills_to_disk: Capability = UNDECLARED      # larger-than-memory inputs complete


@dataclass
class EntityInput:
    """entity_df as the caller gave it: a pandas frame, an Arrow table or a SQL query."""

    table: pa.Table | None = None
    frame: pd.DataFrame | None = None
    sql: str | None = None

    @classmethod
    def of(cls, entity_df: object) -> EntityInput:
        if isinstance(entity_df, pd.DataFrame):
            try:
                table = pa.Table.from_pandas(entity_df, preserve_index=False)
            except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError) as e:
                raise InvalidRequestError(
                    f"entity_df cannot be converted to Arrow: {_culprit(entity_df)}{e}",
                    hint="give that column one type Arrow holds (integers within 64 bits, floats, "
                    "strings, timestamps), or leave it out of entity_df") from None
            return cls(table=table, frame=entity_df)
        if isinstance(entity_df, pa.RecordBatch):
            entity_df = pa.Table.from_batches([entity_df])
        if isinstance(entity_df, pa.Table):
            return cls(table=entity_df)
        if isinstance(entity_df, str):
            return cls(sql=entity_df)
        raise InvalidRequestError(
            f"entity_df must be a pandas DataFrame, an Arrow table or a SQL string, got "
            f"{type(entity_df).__name__}")


def _culprit(frame: pd.DataFrame) -> str:
    """``"entity_df column 'c': "`` for the first column of ``frame`` Arrow cannot hold alone
    (pyarrow's OverflowError names none), or "" when each converts alone."""
    for name in frame.columns:
        try:
            pa.Array.from_pandas(frame[name])
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
            return f"entity_df column '{name}': "
    return ""


def check_entity_input(engine: OfflineEngine, entity: EntityInput) -> None:
    """Before a retrieval runs: ``UnsupportedError`` if ``entity`` is a SQL query and the
    engine does not take one (its ``sql_entity_df`` capability is a gap)."""
    if entity.sql is not None:
        require("offline_engine", engine.name, engine.capabilities, "sql_entity_df",
                "entity_df as a SQL query")


class OfflineEngine(Protocol):
    name: str
    capabilities: Capabilities

    def entity_schema(self, entity: EntityInput) -> pa.Schema:
        """The entity_df schema (for a SQL query, without running it in full)."""

    def historical(self, plan: HistoricalPlan, entity: EntityInput) -> RetrievalJob:
        """A lazy result of the point-in-time join of ``entity`` with ``plan``."""

    def latest(self, request: MaterializeRequest, batch_rows: int = 100_000) -> Iterator[pa.RecordBatch]:
        """The latest row per entity in the request's window, streamed in batches: join-key
        columns, ``__event_ts``, ``__created_ts`` (UTC timestamps) and one column per feature."""


def _str_dtype() -> Any:
    """pandas' own string dtype where it infers strings as such (pandas >= 3: ``str``), else
    None (object columns, as pyarrow gives them)."""
    inferred = pd.Series(["a"]).dtype
    return inferred if isinstance(inferred, pd.StringDtype) else None


_STR_DTYPE = _str_dtype()


def pandas_types_mapper(t: pa.DataType) -> Any:
    """Integers and booleans become nullable pandas dtypes, so a missing value stays missing
    and a column's dtype never depends on whether it had a null; strings get pandas' string
    dtype even when every value is missing (pyarrow gives ``object`` then). Training and
    online frames both use it (docs/types.md)."""
    if pa.types.is_integer(t):
        return pd.api.types.pandas_dtype(str(t).replace("int", "Int").replace("uInt", "UInt"))
    if pa.types.is_boolean(t):
        return pd.BooleanDtype()
    if _STR_DTYPE is not None and (pa.types.is_string(t) or pa.types.is_large_string(t)):
        return _STR_DTYPE
    return None


class RetrievalJob:
    """A lazy point-in-time result. ``to_df`` / ``to_arrow`` compute it; ``to_parquet`` writes it
    (streaming on engines that can)."""

    def __init__(self, plan: HistoricalPlan, entity: EntityInput,
                 compute: Callable[[ProgressCallback | None], pa.Table],
                 write_parquet: Callable[[str, ProgressCallback | None], None] | None = None,
                 feature_columns: list[str] | None = None) -> None:
        self.plan = plan
        self._entity = entity
        self._compute = compute
        self._write_parquet = write_parquet
        self._feature_columns = feature_columns
        self.progress: ProgressCallback | None = None

    @property
    def feature_columns(self) -> list[str]:
        """The requested feature columns, in request order (``feature_columns`` when the job
        adds columns its plan does not list: on-demand views)."""
        return self._feature_columns if self._feature_columns is not None else self.plan.output_columns

    def on_demand(self, finish: Callable[[pa.Table, pa.Table | None], pa.Table],
                  columns: list[str]) -> RetrievalJob:
        """This job with ``finish(features, entity table)`` applied to its feature table (the
        on-demand views' runner): the result's feature columns are ``columns``; written to
        Parquet from memory."""
        entity, base_columns = self._entity, set(self.plan.output_columns)

        def compute(progress: ProgressCallback | None) -> pa.Table:
            features = self._compute(progress)
            out = finish(features, entity.table)
            if entity.table is None:   # SQL entity_df: the engine returned the entity columns too
                for i, name in enumerate(c for c in features.column_names if c not in base_columns):
                    out = out.add_column(i, name, features.column(name))
            return out
        return RetrievalJob(self.plan, entity, compute, None, columns)

    def _features(self) -> pa.Table:
        table = self._compute(self.progress)
        self._done(table.num_rows)
        return table

    def _done(self, rows: int) -> None:
        if self.progress is not None:
            self.progress(JobProgress("done", 100.0, rows, done=True))

    def to_arrow(self) -> pa.Table:
        """Entity columns untouched, then one column per requested feature, in input order."""
        feats = self._features()
        base = self._entity.table
        if base is None:  # SQL input: the engine returned the entity columns too
            return feats
        for name in feats.column_names:
            base = base.append_column(name, feats.column(name))
        return base

    def to_df(self) -> pd.DataFrame:
        feats = self._features()
        if self._entity.frame is not None:
            out = self._entity.frame.copy(deep=False)
            fdf = feats.to_pandas(types_mapper=pandas_types_mapper)
            fdf.index = out.index
            for name in feats.column_names:
                out[name] = fdf[name]
            return out
        table = self.to_arrow() if self._entity.table is not None else feats
        return table.to_pandas(types_mapper=pandas_types_mapper)

    def to_parquet(self, path: str | os.PathLike[str]) -> Path:
        """Write the result to ``path`` atomically (a temp file renamed into place)."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
        try:
            if self._write_parquet is not None:
                self._write_parquet(str(tmp), self.progress)
                self._done(pq.ParquetFile(tmp).metadata.num_rows)
            else:
                pq.write_table(self.to_arrow(), tmp)
            os.replace(tmp, target)
        finally:
            if tmp.exists():
                tmp.unlink()
        return target
