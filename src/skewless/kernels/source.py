"""Finding and checking Parquet sources: shared by every engine, ``plan`` and ``apply``.

A source path is a file, a directory (read recursively, hive partitions become columns) or a
glob. Checks read every file's footer and compare each file's columns with the view's
declaration through the one conformance table (``skewless.types``, docs/types.md), naming the
view, the file and the column of every problem at once.
"""

from __future__ import annotations

import glob as _glob
import math
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from skewless import types as T
from skewless.define import FeatureView, FileSource
from skewless.define.source import glob_pattern, is_glob, literal_pattern
from skewless.errors import SourceError, closest


@dataclass(frozen=True)
class ResolvedSource:
    """Where a FileSource's files are, in the two forms engines need."""

    location: str          # absolute path, directory, glob or URL, as the user meant it
    files: tuple[str, ...]  # concrete files (empty for URLs: the engine lists them)
    is_dir: bool
    is_url: bool

    @property
    def duckdb_pattern(self) -> str:
        """The location as DuckDB's ``read_parquet`` must be given it: DuckDB globs every
        path, so a literal ``[`` (and any wildcard of a concrete path) is escaped."""
        if self.is_dir:
            return os.path.join(literal_pattern(self.location), "**", "*.parquet")
        return glob_pattern(self.location) if is_glob(self.location) else literal_pattern(self.location)

    def duckdb_files(self) -> list[str]:
        """``files`` as DuckDB's ``read_parquet`` must be given them: each escaped so that
        DuckDB, which globs every path, reads that one file (``literal_pattern``)."""
        return [literal_pattern(f) for f in self.files]


HIDDEN_PREFIXES = (".", "_")


def is_hidden(relative: Path) -> bool:
    """Whether a file under a source folder is not data: some part of its path relative to the
    folder starts with '.' or '_' (``_SUCCESS``, Spark's ``_temporary/``, a writer's
    ``.part.parquet`` in progress). Arrow's dataset discovery skips them; every engine must
    read the same files, so the folder's file list is made here, once (docs/types.md)."""
    return any(part.startswith(HIDDEN_PREFIXES) for part in relative.parts)


def resolve_source(source: FileSource, repo_path: str | Path) -> ResolvedSource:
    """Locate ``source`` relative to the repo; a missing path is an error naming it."""
    path = source.path
    if "://" in path:
        return ResolvedSource(path, (), path.endswith("/"), True)
    p = Path(path).expanduser()
    if not p.is_absolute():
        p = Path(repo_path) / p
    loc = str(p)
    if is_glob(path):
        # the repo's own path is literal; only the source's path holds wildcards
        pattern = glob_pattern(path) if Path(path).expanduser().is_absolute() else \
            os.path.join(literal_pattern(str(repo_path)), glob_pattern(path))
        files = tuple(sorted(f for f in _glob.glob(os.path.expanduser(pattern), recursive=True)
                             if os.path.isfile(f)))
        if not files:
            raise SourceError(f"source '{source.name}': no file matches {loc}",
                              hint="check the glob in FileSource(path=...)")
        return ResolvedSource(loc, files, False, False)
    if p.is_dir():
        files = tuple(sorted(str(f) for f in p.rglob("*.parquet")
                             if f.is_file() and not is_hidden(f.relative_to(p))))
        if not files:
            raise SourceError(f"source '{source.name}': directory {loc} holds no .parquet file "
                              "(files and folders whose name starts with '.' or '_' are ignored)")
        return ResolvedSource(loc, files, True, False)
    if p.is_file():
        return ResolvedSource(loc, (loc,), False, False)
    # in the message, not only the hint: plan/apply list each problem's message alone
    literal = (" ('[' and ']' are literal characters of the file name, never a character "
               "class: only * and ? make a path a glob; see docs/types.md)") if "[" in path else ""
    raise SourceError(
        f"source '{source.name}': file {loc} does not exist" + literal,
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
    """The dataset's schema (the first file's, plus hive partitions): for key types and
    ``init``; the type checks read every file (``source_files``)."""
    return dataset(resolved).schema


# --- every file, checked by the one conformance table --------------------------------------------

@dataclass(frozen=True)
class SourceFile:
    """One file of a source: its footer schema (hive partition columns added) and fragment."""

    path: str
    schema: pa.Schema
    fragment: ds.Fragment
    physical: frozenset[str]   # columns stored in the file (the others are hive partitions)


def source_files(resolved: ResolvedSource, view: str) -> list[SourceFile]:
    """Every file of ``view``'s source with its schema, read from the Parquet footers (cheap: no
    data page is read). A file that is not Parquet is an error naming the view and the file."""
    d = dataset(resolved)
    parts = list(d.partitioning.schema) if resolved.is_dir and d.partitioning is not None else []
    out = []
    for frag in d.get_fragments():
        try:
            phys = frag.physical_schema
        except (pa.ArrowInvalid, OSError) as e:
            raise SourceError(f"feature view '{view}': cannot read the Parquet footer of {frag.path}: "
                              f"{_first_line(e)}",
                              hint="is it a Parquet file? remove or rewrite it") from None
        names = set(phys.names)
        schema = pa.schema(list(phys) + [f for f in parts if f.name not in names])
        out.append(SourceFile(frag.path, schema, frag, frozenset(names)))
    return out


def did_you_mean(name: str, choices: object) -> str:
    """`` (did you mean 'x'?)`` when a choice is close to ``name``, else nothing (the caller
    lists the choices anyway)."""
    phrase = closest(name, choices)  # type: ignore[arg-type]
    return f" ({phrase})" if phrase.startswith("did you mean") else ""


def _is_time(t: pa.DataType) -> bool:
    return pa.types.is_timestamp(t) or pa.types.is_date(t)


def _first_line(e: BaseException) -> str:
    return str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__


def _stats_prove_fit(sf: SourceFile, column: str, source: pa.DataType, target: pa.DataType) -> bool:
    """Whether the footer's min/max statistics alone show every value of ``column`` fits
    ``target`` (ranges: ints into narrower ints, float64 into float32, ints into floats); a
    float into an int needs the values themselves (whole numbers), as do lists."""
    fs, ft = T._family(source), T._family(target)
    if fs not in ("int", "float") or (fs, ft) == ("float", "int") or column not in sf.physical:
        return False
    ranges = _footer_ranges(sf, column)
    if ranges is None:
        return False
    for low, high in ranges:
        try:
            bounds = pa.array([low, high], type=source)
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, OverflowError):
            return False
        if fs == "float" and not all(math.isfinite(v) for v in bounds.to_pylist()):
            return False
        if fs == "int" and ft == "float":
            # exact between the bounds only within +-2**mantissa (beyond, some integers are not)
            m = 2 ** T._MANTISSA[target.bit_width]
            if not all(-m <= v <= m for v in bounds.to_pylist()):
                return False
        elif T.misfits(bounds, target) is not None:
            return False
    return True


def _read_column(sf: SourceFile, column: str) -> pa.Array:
    table = sf.fragment.to_table(schema=sf.schema, columns=[column])
    col = table.column(column)
    return col.combine_chunks() if col.num_chunks else pa.array([], type=col.type)


@dataclass(frozen=True)
class Misfit:
    """The first value of a column that does not fit its declared type, and how many don't."""

    row: int
    value: object
    count: int


def column_misfit(sf: SourceFile, column: str, target: T.ValueType | pa.DataType) -> Misfit | None:
    """For a column the table accepts if its values fit: the first value that does not (None
    when all fit). Footer statistics answer when they can; else only that column is read."""
    target_t = target.to_arrow() if isinstance(target, T.ValueType) else target
    source = sf.schema.field(column).type
    if _stats_prove_fit(sf, column, source, target_t):
        return None
    array = _read_column(sf, column)
    bad = T.misfits(array, target_t)
    if bad is None:
        return None
    rows = pc.indices_nonzero(bad)
    row = int(rows[0].as_py())
    value = array[row].as_py()
    return Misfit(row, value, len(rows))


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


class _Problems:
    """Problems of one view, the same problem in several files said once, with the others
    counted (a folder of 365 daily files does not print 365 lines)."""

    def __init__(self, view: str) -> None:
        self.view = view
        self.by_key: dict[tuple[str, ...], list[str]] = {}
        self.text: dict[tuple[str, ...], str] = {}

    def add(self, key: tuple[str, ...], path: str, text: str) -> None:
        self.by_key.setdefault(key, []).append(path)
        self.text.setdefault(key, text)

    def lines(self) -> list[str]:
        out = []
        for key, paths in self.by_key.items():
            text = self.text[key]
            if len(paths) > 1:
                more = ", ".join(os.path.basename(p) for p in paths[1:4])
                text += (f" (the same problem in {len(paths) - 1} other file(s): {more}"
                         f"{', ...' if len(paths) > 4 else ''})")
            out.append(text)
        return out


def check_view_source(view: FeatureView, join_keys: tuple[str, ...], resolved: ResolvedSource,
                      values: bool = True) -> list[str]:
    """Every mismatch between ``view``'s declaration and its source's files (empty = fine),
    each naming the view, the file and the column, by the conformance table of
    ``skewless.types`` (docs/types.md). Every file's footer is read; with ``values``, the
    columns whose type is accepted only if their values fit are checked too (footer statistics
    first, else that column of that file is read)."""
    files = source_files(resolved, view.name)
    src = view.batch_source
    problems: list[str] = []
    per_file = _Problems(view.name)
    where = f"feature view '{view.name}' (source {resolved.location})"
    names: set[str] = set()
    for sf in files:
        names.update(sf.schema.names)
    have = sorted(names)

    def missing(label: str, c: str) -> str:
        return f"{where}: {label} column '{c}' is missing{did_you_mean(c, names)}; the source has {have}"

    required: list[tuple[str, str]] = [("timestamp_field", src.timestamp_field)]
    required += [("join key", src.source_column(k)) for k in join_keys]
    for label, c in required:
        if c not in names:
            problems.append(missing(label, c))
            continue
        for sf in files:
            if c not in sf.schema.names:
                per_file.add(("absent", c), sf.path,
                             f"feature view '{view.name}' (file {sf.path}): {label} column '{c}' "
                             f"is missing from this file; every file needs it")
    created = src.created_timestamp_column
    if created is not None and created not in names:
        problems.append(missing("created_timestamp_column", created))
    event_id = src.event_id_column
    if event_id is not None and view.aggregated and event_id not in names:
        problems.append(missing("event_id_column", event_id))
    times = [("timestamp_field", src.timestamp_field)]
    if created is not None:
        times.append(("created_timestamp_column", created))
    for label, c in times:
        for sf in files:
            if c in sf.schema.names:
                t = sf.schema.field(c).type
                if not _is_time(t) and not pa.types.is_null(t):
                    extra = (" (strings never become timestamps: write timestamps, e.g. "
                             "pd.to_datetime(df[col], utc=True); see docs/types.md)"
                             if T._family(t) == "string" else "")
                    per_file.add(("time", c, str(t)), sf.path,
                                 f"feature view '{view.name}' (file {sf.path}): {label} column "
                                 f"'{c}' has type {t}, expected a timestamp{extra}")
    declared_keys = {f.name: f for f in view.schema if f.name in join_keys}
    checks: list[tuple[str, str, T.ValueType]] = []   # (column, what, declared)
    for k in join_keys:
        if k in declared_keys:
            checks.append((src.source_column(k), f"join key '{k}'", declared_keys[k].dtype))
        else:
            _undeclared_key(view.name, src.source_column(k), files, per_file)
    absent = []
    for f in view.features_for(set(join_keys)):
        sc = src.source_column(f.name)
        if sc not in names:
            absent.append(sc)
        else:
            checks.append((sc, f"feature '{f.name}'", f.dtype))
    if absent:
        hints = "".join(did_you_mean(c, names).replace(" (", f" ('{c}': ", 1) for c in absent)
        problems.append(f"{where}: column(s) {absent} are missing{hints}; the source has {have}")
    for sc, what, dtype in checks:
        is_key = what.startswith("join key")
        for sf in files:
            if sc not in sf.schema.names:
                continue   # a feature added later: older files read as null
            t = sf.schema.field(sc).type
            verdict = T.conformance(t, dtype)
            head = f"feature view '{view.name}' (file {sf.path}): column '{sc}'"
            if not verdict.ok or (is_key and verdict.verdict == T.CHECK):
                per_file.add(("type", sc, str(t)), sf.path,
                             f"{head} has type {t}, but {what} is declared {dtype} "
                             f"({verdict.rule}; see docs/types.md)")
            elif verdict.verdict == T.CHECK and values:
                bad = column_misfit(sf, sc, dtype)
                if bad is not None:
                    more = f" and {bad.count - 1} other row(s)" if bad.count > 1 else ""
                    per_file.add(("value", sc), sf.path,
                                 f"{head} holds {_show(bad.value)} in row {bad.row}{more}, which "
                                 f"{what} declared {dtype} cannot take ({verdict.rule}; see "
                                 "docs/types.md)")
        if values and not is_key and dtype is T.Int64:
            _mixed_int_float(view.name, sc, dtype, files, per_file)
    return problems + per_file.lines()


def _undeclared_key(view: str, column: str, files: list[SourceFile], per_file: _Problems) -> None:
    """A join key not declared in the schema has no type to conform to, but it must have one
    type family in every file: a folder whose first file holds ``user_id`` as integers and a
    later one as strings (or floats) is read by DuckDB as text (or floats), so training would
    match ``'01'`` to 1 while the online store keys the entities by the text. The first file
    holding the key (in file order) says which type the others must have."""
    first: SourceFile | None = None
    for sf in files:
        if column not in sf.schema.names:
            continue   # reported as absent
        t = _decoded(sf.schema.field(column).type)
        if pa.types.is_null(t):
            continue   # all-null keys match nothing, on every path
        if first is None:
            first = sf
            continue
        ref = _decoded(first.schema.field(column).type)
        if T._family(t) != T._family(ref):
            per_file.add(("key", column, str(t)), sf.path,
                         f"feature view '{view}' (file {sf.path}): join key column '{column}' has "
                         f"type {T.arrow_name(t)}, but file {first.path} holds it as "
                         f"{T.arrow_name(ref)}; a join key must have one type in every file "
                         f"(declare it, e.g. Field('{column}', {T.from_arrow(ref).name}), to say "
                         "which; see docs/types.md)")


def _mixed_int_float(view: str, column: str, dtype: T.ValueType, files: list[SourceFile],
                     per_file: _Problems) -> None:
    """A folder holding an Int64 column as integers in some files and floats in others is read
    by a multi-file engine (DuckDB) with one type for the column, float64: an integer beyond
    +-2**53 in an integer file would be rounded there, and not by an engine reading file by
    file. Such a value is refused, so every engine returns the same integers."""
    fams = {T._family(_decoded(sf.schema.field(column).type)) for sf in files
            if column in sf.schema.names}
    if not {"int", "float"} <= fams:
        return
    for sf in files:
        if column not in sf.schema.names or T._family(sf.schema.field(column).type) != "int":
            continue
        bad = column_misfit(sf, column, pa.float64())
        if bad is not None:
            per_file.add(("mixed", column), sf.path,
                         f"feature view '{view}' (file {sf.path}): column '{column}' holds "
                         f"{_show(bad.value)} in row {bad.row}, beyond +-2**53, while other files "
                         f"hold '{column}' as floats: the folder is read as float64, which "
                         f"cannot hold it exactly (declared {dtype}); write the column as "
                         "integers in every file (see docs/types.md)")


def _decoded(t: pa.DataType) -> pa.DataType:
    return t.value_type if pa.types.is_dictionary(t) else t


def check_key_types(view_name: str, join_keys: tuple[str, ...], source_keys: tuple[str, ...],
                    source_schema_: pa.Schema, entity_schema: pa.Schema) -> list[str]:
    """Entity-df key columns must be of the same family (int, string, ...) as the source's."""
    problems = []
    for k, sk in zip(join_keys, source_keys):
        if k not in entity_schema.names or sk not in source_schema_.names:
            continue
        et, st = entity_schema.field(k).type, source_schema_.field(sk).type
        if T._family(et) != T._family(st) and not (pa.types.is_null(et)):
            if T._family(et) == "float" and T._family(st) == "int":
                # pandas turns an integer column with a missing value into floats
                fix = (f"df['{k}'] = df['{k}'].astype('Int64') (nullable: a missing key "
                       "matches nothing, as online)")
            else:
                fix = f"e.g. df['{k}'] = df['{k}'].astype({_pandas_name(st)!r})"
            problems.append(
                f"entity_df column '{k}' has type {T.arrow_name(et)}, but feature view "
                f"'{view_name}' keys it by {T.arrow_name(st)}; convert the column: {fix}")
    return problems


def _pandas_name(t: pa.DataType) -> str:
    """The pandas dtype to convert a key column to, for a source key of Arrow type ``t``."""
    fam = T._family(t)
    return {"int": "Int64", "string": "string", "float": "float64", "bool": "boolean"}.get(fam, str(t))


UTC_MICROS = pa.timestamp("us", tz="UTC")


def read_conformed(resolved: ResolvedSource, columns: dict[str, pa.DataType | None],
                   view: str) -> pa.Table:
    """The source's ``columns`` read file by file, each converted by the conformance table to
    its target (None: as stored, dictionaries decoded), then concatenated: what the reference
    engine reads. A column absent from a file reads as nulls there. A value the table refuses
    is a SourceError naming the view, the file, the column and the row."""
    tables = []
    for sf in source_files(resolved, view):
        present = [c for c in columns if c in sf.schema.names]
        table = sf.fragment.to_table(schema=sf.schema, columns=present)
        cols: dict[str, pa.Array] = {}
        for c, target in columns.items():
            if c not in sf.schema.names:
                cols[c] = pa.nulls(table.num_rows, type=target or pa.null())
                continue
            chunked = table.column(c)
            arr = chunked.combine_chunks() if chunked.num_chunks else pa.array([], type=chunked.type)
            if pa.types.is_dictionary(arr.type):
                arr = arr.dictionary_decode()
            if target is not None:
                verdict = T.conformance(arr.type, target)
                if not verdict.ok:
                    raise SourceError(f"feature view '{view}' (file {sf.path}): column '{c}' has "
                                      f"type {arr.type}: {verdict.rule}; see docs/types.md")
                bad = T.misfits(arr, target) if verdict.verdict == T.CHECK else None
                if bad is not None:
                    row = int(pc.indices_nonzero(bad)[0].as_py())
                    raise SourceError(f"feature view '{view}' (file {sf.path}): column '{c}' "
                                      f"holds {_show(arr[row].as_py())} in row {row}: "
                                      f"{verdict.rule}; see docs/types.md")
                arr = T.convert(arr, target)
            cols[c] = arr
        tables.append(pa.table(cols))
    if not tables:
        return pa.table({c: pa.array([], type=t or pa.null()) for c, t in columns.items()})
    return pa.concat_tables(tables, promote_options="permissive")


# --- created times ahead of the clock ---------------------------------------------------------------

CREATED_AHEAD_HINT = (
    "a created time ahead of the clock would move the created-time mark past every later late "
    "row (docs/online.md#created-times-ahead-of-the-clock): fix the producer's clock or time "
    "zone (naive timestamps are UTC), or raise `created_timestamp_tolerance_seconds` in "
    "feature_store.yaml")


def values_after(array: pa.Array | pa.ChunkedArray, limit: datetime,
                 among: pa.Array | None = None) -> Misfit | None:
    """The first value of a timestamp column later than ``limit`` (a UTC datetime), and how
    many are (None: none; nulls never are), counting only the rows where ``among`` (booleans)
    is true, if given. Naive timestamps are UTC."""
    from skewless.kernels.batch import UTC_MICROS, cast

    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks() if array.num_chunks else pa.array([], type=array.type)
    if not len(array):
        return None
    later = pc.fill_null(pc.greater(cast(array, UTC_MICROS), pa.scalar(limit, type=UTC_MICROS)), False)
    if among is not None:
        later = pc.and_(later, pc.fill_null(among, False))
    rows = pc.indices_nonzero(later)
    if not len(rows):
        return None
    row = int(rows[0].as_py())
    return Misfit(row, array[row].as_py(), len(rows))


def created_after(sf: SourceFile, column: str, limit: datetime, timestamp_field: str | None = None,
                  end: datetime | None = None) -> Misfit | None:
    """``values_after`` for ``column`` of one source file, among the rows whose
    ``timestamp_field`` is at most ``end`` if given (the rows a run up to ``end`` reads). The
    footer's max statistics answer when they show every value is at most ``limit``; else the
    columns are read."""
    from skewless.kernels.batch import UTC_MICROS, cast

    if column not in sf.schema.names or not _is_time(sf.schema.field(column).type):
        return None   # a missing or mistyped column is reported by check_view_source
    if column in sf.physical and _stats_at_most(sf, column, limit):
        return None
    among = None
    if timestamp_field is not None and end is not None and timestamp_field in sf.schema.names \
            and _is_time(sf.schema.field(timestamp_field).type):
        ts = _read_column(sf, timestamp_field)
        among = pc.less_equal(cast(ts, UTC_MICROS), pa.scalar(end, type=UTC_MICROS))
    return values_after(_read_column(sf, column), limit, among)


def _stats_at_most(sf: SourceFile, column: str, limit: datetime) -> bool:
    ranges = _footer_ranges(sf, column)
    if ranges is None:
        return False
    source = sf.schema.field(column).type
    for _, high in ranges:
        try:
            if values_after(pa.array([high], type=source), limit) is not None:
                return False
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, OverflowError):
            return False
    return True


def _footer_ranges(sf: SourceFile, column: str) -> list[tuple[object, object]] | None:
    """``(min, max)`` of ``column`` in each row group that holds a value, from the Parquet
    footer's statistics; None when a row group has none (the values must be read)."""
    try:
        md = sf.fragment.metadata
    except (pa.ArrowInvalid, OSError, AttributeError):
        return None
    idx = next((j for j in range(md.num_columns) if md.schema.column(j).path == column), None)
    if idx is None:
        return None
    ranges: list[tuple[object, object]] = []
    for i in range(md.num_row_groups):
        rg = md.row_group(i)
        st = rg.column(idx).statistics
        if st is None:
            return None
        if not st.has_min_max:
            if st.has_null_count and st.null_count == rg.num_rows:
                continue   # all null
            return None
        ranges.append((st.min, st.max))
    return ranges
