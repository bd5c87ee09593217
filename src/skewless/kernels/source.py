"""Finding and checking Parquet sources: shared by every engine, ``plan`` and ``apply``.

A source path is a file, a directory (read recursively, hive partitions become columns) or a
glob. Checks compare the source's Arrow schema with the view's declaration and name every
missing or mistyped column at once.
"""

from __future__ import annotations

import glob as _glob
import os
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds

from skewless import types as T
from skewless.define import FeatureView, FileSource
from skewless.errors import SourceError

_GLOB_CHARS = set("*?[")


@dataclass(frozen=True)
class ResolvedSource:
    """Where a FileSource's files are, in the two forms engines need."""

    location: str          # absolute path, directory, glob or URL, as the user meant it
    files: tuple[str, ...]  # concrete files (empty for URLs: the engine lists them)
    is_dir: bool
    is_url: bool

    @property
    def duckdb_pattern(self) -> str:
        if self.is_dir:
            return os.path.join(self.location, "**", "*.parquet")
        return self.location


def resolve_source(source: FileSource, repo_path: str | Path) -> ResolvedSource:
    """Locate ``source`` relative to the repo; a missing path is an error naming it."""
    path = source.path
    if "://" in path:
        return ResolvedSource(path, (), path.endswith("/"), True)
    p = Path(path).expanduser()
    if not p.is_absolute():
        p = Path(repo_path) / p
    loc = str(p)
    if _GLOB_CHARS & set(path):
        files = tuple(sorted(f for f in _glob.glob(loc, recursive=True) if os.path.isfile(f)))
        if not files:
            raise SourceError(f"source '{source.name}': no file matches {loc}",
                              hint="check the glob in FileSource(path=...)")
        return ResolvedSource(loc, files, False, False)
    if p.is_dir():
        files = tuple(sorted(str(f) for f in p.rglob("*.parquet") if f.is_file()))
        if not files:
            raise SourceError(f"source '{source.name}': directory {loc} holds no .parquet file")
        return ResolvedSource(loc, files, True, False)
    if p.is_file():
        return ResolvedSource(loc, (loc,), False, False)
    raise SourceError(
        f"source '{source.name}': file {loc} does not exist",
        hint="fix FileSource(path=...) (relative paths are relative to the feature repo), "
        "or create the data first",
    )


def dataset(resolved: ResolvedSource) -> ds.Dataset:
    """A pyarrow dataset over the source (hive partitions discovered for directories)."""
    try:
        if resolved.is_dir:
            return ds.dataset(resolved.location, format="parquet", partitioning="hive")
        if resolved.is_url:
            return ds.dataset(resolved.location, format="parquet")
        return ds.dataset(list(resolved.files), format="parquet")
    except (pa.ArrowInvalid, OSError) as e:
        raise SourceError(f"cannot read Parquet at {resolved.location}: {e}",
                          hint="is it a Parquet file (or a directory of them)?") from None


def source_schema(resolved: ResolvedSource) -> pa.Schema:
    return dataset(resolved).schema


def _is_time(t: pa.DataType) -> bool:
    return pa.types.is_timestamp(t) or pa.types.is_date(t)


def check_view_source(view: FeatureView, join_keys: tuple[str, ...], schema: pa.Schema,
                      location: str) -> list[str]:
    """Every mismatch between ``view``'s declaration and the source schema (empty = fine)."""
    src = view.batch_source
    problems: list[str] = []
    where = f"feature view '{view.name}' (source {location})"
    names = set(schema.names)

    def col(c: str) -> pa.DataType | None:
        return schema.field(c).type if c in names else None

    for label, c in (("timestamp_field", src.timestamp_field),
                     ("created_timestamp_column", src.created_timestamp_column)):
        if c is None:
            continue
        t = col(c)
        if t is None:
            problems.append(f"{where}: {label} column '{c}' is missing")
        elif not _is_time(t):
            problems.append(f"{where}: {label} column '{c}' has type {t}, expected a timestamp")
    key_fields = {f.name: f for f in view.schema if f.name in join_keys}
    for k in join_keys:
        sc = src.source_column(k)
        t = col(sc)
        if t is None:
            problems.append(f"{where}: join key column '{sc}' is missing")
        elif k in key_fields and not T.is_compatible(t, key_fields[k].dtype):
            problems.append(f"{where}: join key '{sc}' has type {t}, declared {key_fields[k].dtype}")
    missing = []
    for f in view.features_for(set(join_keys)):
        sc = src.source_column(f.name)
        t = col(sc)
        if t is None:
            missing.append(sc)
        elif not T.is_compatible(t, f.dtype):
            problems.append(f"{where}: column '{sc}' has type {t}, but feature '{f.name}' is "
                            f"declared {f.dtype}")
    if missing:
        problems.append(f"{where}: column(s) {missing} are missing; the source has {sorted(names)}")
    return problems


def check_key_types(view_name: str, join_keys: tuple[str, ...], source_keys: tuple[str, ...],
                    source_schema_: pa.Schema, entity_schema: pa.Schema) -> list[str]:
    """Entity-df key columns must be of the same family (int, string, ...) as the source's."""
    problems = []
    for k, sk in zip(join_keys, source_keys):
        if k not in entity_schema.names or sk not in source_schema_.names:
            continue
        et, st = entity_schema.field(k).type, source_schema_.field(sk).type
        if T._family(et) != T._family(st) and not (pa.types.is_null(et)):
            problems.append(
                f"entity_df column '{k}' has type {et}, but feature view '{view_name}' keys it "
                f"by {st}; convert the column (e.g. df['{k}'] = df['{k}'].astype(...))")
    return problems
