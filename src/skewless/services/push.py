"""Push: the caller's rows into a PushSource, offline first, then online (``FeatureStore.push``).

A push names a PushSource; the views fed by it (views whose ``source`` is that PushSource)
decide what a batch must hold. In order:

1. **Validate the whole batch** against the batch source's files and the views' schemas:
   every join key, the timestamp field and every feature column must be there (with the
   view's names: a ``field_mapping`` is applied in reverse when writing); extra columns the
   batch source's files do not have are rejected (a typo must not go unnoticed); values must
   convert to the stored types (``skewless.kernels.batch``); join keys and event timestamps
   must not be null, event timestamps must not be after the push time (the online store
   must never serve what the offline join would not know yet), and created timestamps not
   after the push time plus ``created_timestamp_tolerance_seconds`` (a created time ahead of
   the clock would hide later late rows from incremental materialization). A bad batch is rejected whole
   with an InvalidRequestError naming each bad column and its first bad rows (0-based
   positions): nothing is written anywhere.
2. **Offline** (``to`` "offline" or "online_and_offline"): one new Parquet file
   ``push-<batch id>.parquet`` in the batch source's directory, with the columns and types of
   the existing files, written atomically (hidden temp file, fsync, then a link that never
   replaces an existing file). If the batch source has a ``created_timestamp_column`` the batch
   lacks, it is filled with the push time, so incremental materialization's created-time
   high-water mark picks the rows up.
   **Idempotent**: the batch id is the caller's ``batch_id``, else derived from the batch's
   content (the rows as sent, without the filled-in created time). A retry of a push (after a
   timeout, a crash, a SIGKILL) finds its file and skips the offline write, so its rows land
   once; the online write is redone from that file, which "only if newer" makes harmless.
   A ``batch_id`` already used for other rows is refused with nothing written.
3. **Online** (``to`` "online" or "online_and_offline"): per online view fed by the source,
   among the rows already usable at the push time (see "Availability delay" below), the latest
   row per entity (greatest event time, then created time), written only if newer
   than what is stored, with the materializer's own record building (``batch_records``). If
   this fails after the offline write landed, the OnlineStoreError says the rows are safe
   offline and how to bring them online.

**Availability delay** (``FileSource(availability_delay=...)`` on the batch source; docs/online.md,
"Availability delay"): a push is the rows' arrival, and like every row of the source a pushed row
is usable only from ``event_ts + availability_delay``. Step 2 writes every row offline at once
(training data sees each from its availability time); step 3 writes online only the rows
already usable once the offline file has landed (the clock read again then). The others
(``PushReport.pending_rows``) reach the online store with the first ``materialize`` /
``materialize-incremental`` whose end is at or after their availability time: it lies after
that instant, so after every view's watermark. Serving thus
never holds a row the offline join would not see yet, and never loses the row before it. With
``to="online"`` such rows would land nowhere: the batch is refused.

``to="online"`` skips the offline write: such rows are not in the offline history, so
``rebuild-online`` drops them and training data never sees them. Use it only for values that
are recomputed elsewhere.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from skewless import types as T
from skewless.context import RuntimeContext
from skewless.define import FeatureView, FileSource, PushSource
from skewless.define.source import is_glob
from skewless.errors import (InvalidRequestError, OnlineStoreError, SkewlessError, SourceError,
                             UnknownObjectError, closest)
from skewless.kernels.batch import UTC_MICROS, BadColumn, cast, columns_of, conform, show_rows
from skewless.kernels.compaction import fsync_dir, live_files, was_compacted
from skewless.kernels.source import CREATED_AHEAD_HINT, resolve_source, values_after
from skewless.times import to_utc
from skewless.plan.materialize import CREATED_TS, EVENT_TS
from skewless.plan.visibility import Visibility
from skewless.registry import Snapshot
from skewless.services.materialize import batch_records
from skewless.services.tiles import push_tiles, require_tiles

PUSH_TARGETS = ("online", "offline", "online_and_offline")


@dataclass
class PushReport:
    """What a push wrote."""

    source: str
    to: str
    rows: int                                  # rows in the batch
    offline_rows: int = 0                      # rows written to the batch source
    offline_file: str | None = None            # the new Parquet file
    online_records: dict[str, int] = field(default_factory=dict)  # per view: records offered (rows)
    seconds: float = 0.0
    batch_id: str | None = None                # the caller's, or derived from the content
    duplicate: bool = False                    # the batch was already offline: not written again
    pending_rows: int = 0                      # rows not usable yet (availability delay): offline
                                               # only, online with a later materialization


# --- finding push sources -------------------------------------------------------------------------

def push_sources(snapshot: Snapshot) -> dict[str, list[FeatureView]]:
    """The views fed by each push source, by push source name."""
    out: dict[str, list[FeatureView]] = {}
    for view in snapshot.feature_views.values():
        if view.push_source is not None:
            out.setdefault(view.push_source.name, []).append(view)
    return out


def find_push_source(snapshot: Snapshot, name: str) -> tuple[PushSource, list[FeatureView]]:
    views = push_sources(snapshot).get(name) if isinstance(name, str) else None
    if not views:
        known = push_sources(snapshot)
        raise UnknownObjectError(
            f"push source {name!r} is not used by any feature view of project "
            f"'{snapshot.project}'; {closest(str(name), known)}",
            hint="a push source is registered by applying a FeatureView whose source is "
            "PushSource(name, batch_source=...)")
    push = views[0].push_source
    assert push is not None
    return push, views


def check_push_sources(snapshot: Snapshot, repo_path: str | Path, check_files: bool = True) -> list[str]:
    """``plan``/``apply`` checks: views sharing a push source name share its definition, and
    its batch directory can take pushed files (no hive partitions)."""
    problems = []
    for name, views in push_sources(snapshot).items():
        first = views[0]
        push = first.push_source
        assert push is not None
        for other in views[1:]:
            if other.push_source != push:
                problems.append(
                    f"push source '{name}' is defined differently by feature views '{first.name}' "
                    f"and '{other.name}'; views fed by one push source must share its definition")
        if check_files:
            try:
                _hive_check(push, _push_dir(push, repo_path))
            except SourceError as e:
                problems.append(f"feature view '{first.name}': {e.message}")
    return problems


# --- the batch source's layout ----------------------------------------------------------------------

@dataclass(frozen=True)
class PushTarget:
    directory: Path       # where pushed files go
    schema: pa.Schema     # columns and types of the pushed files: those of the existing files


def _push_dir(push: PushSource, repo_path: str | Path) -> Path:
    d = Path(push.push_dir).expanduser()
    return d if d.is_absolute() else Path(repo_path) / d


def _hive_check(push: PushSource, directory: Path) -> None:
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return  # a missing directory is reported elsewhere (apply: the source check)
    hive = sorted(e.name for e in entries if "=" in e.name and e.is_dir())
    if hive:
        raise SourceError(
            f"push source '{push.name}': batch directory {directory} is hive-partitioned "
            f"({', '.join(hive[:3])}{', ...' if len(hive) > 3 else ''}); a pushed file at its top "
            "level would have no partition values, which DuckDB refuses to read "
            "('Hive partition mismatch')",
            hint="give the push source a batch source directory without partition directories")


def _template(push: PushSource, directory: Path, repo_path: str | Path) -> Path | None:
    """An existing Parquet file of the batch source: it fixes the pushed files' schema."""
    batch = push.batch_source
    if is_glob(batch.path):
        matched = resolve_source(batch, repo_path).files
        return Path(matched[0]) if matched else None
    for root, dirs, files in os.walk(directory):
        dirs[:] = sorted(d for d in dirs if not d.startswith((".", "_")))
        names = [os.path.join(root, n) for n in sorted(files)
                 if n.endswith(".parquet") and not n.startswith((".", "_"))]
        # not a file a compaction replaced: it is deleted once its grace period is over
        live = live_files(Path(root), names) if names else []
        if live:
            return Path(live[0])
    return None


# The layout read last per batch directory: (directory's inode and link count, template
# file, its identity) -> schema. Walking the folder and reading the template's footer on every
# push cost O(files in the folder) (2 ms at 1,000 files); a stat of each shows whether it holds.
_LAYOUTS: dict[tuple[str, str], tuple[tuple[int, ...], Path, tuple[int, ...], pa.Schema]] = {}
_LAYOUTS_MAX = 256


def _dir_id(st: os.stat_result) -> tuple[int, ...]:
    # st_nlink of a folder counts its subfolders (ext4, xfs, tmpfs...): a partition folder
    # created since changes it; where it does not (1: btrfs and others), nothing is cached
    return (st.st_dev, st.st_ino, st.st_nlink)


def _file_id(st: os.stat_result) -> tuple[int, ...]:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def push_target(push: PushSource, repo_path: str | Path) -> PushTarget:
    """Where ``push``'s files go and their schema (that of an existing file of the batch
    source); SourceError when the folder is missing, hive-partitioned or holds no file. The
    answer is kept while the folder gains no subfolder and the template file is unchanged."""
    directory = _push_dir(push, repo_path)
    key = (str(directory), push.batch_source.path)
    try:
        dir_id = _dir_id(os.stat(directory))
    except OSError:
        dir_id = None
    held = _LAYOUTS.get(key)
    if held is not None and dir_id is not None and held[0] == dir_id and dir_id[2] > 1:
        try:
            if _file_id(os.stat(held[1])) == held[2]:
                return PushTarget(directory, held[3])
        except OSError:
            pass   # the template is gone (compacted away): read the layout again
    return _read_target(push, directory, repo_path)


def _read_target(push: PushSource, directory: Path, repo_path: str | Path) -> PushTarget:
    try:
        dir_id = _dir_id(os.stat(directory))   # before the checks: a later change shows
    except OSError:
        dir_id = None
    if dir_id is None or not directory.is_dir():
        raise SourceError(
            f"push source '{push.name}': batch directory {directory} does not exist",
            hint="create it with at least one Parquet file of the source's columns (its schema "
            "fixes the pushed files' column types), then `skewless apply`")
    _hive_check(push, directory)
    template = _template(push, directory, repo_path)
    if template is None:
        raise SourceError(
            f"push source '{push.name}': batch directory {directory} holds no Parquet file yet",
            hint="write one Parquet file of the source's columns there first: it fixes the pushed "
            "files' column types")
    try:
        file_id = _file_id(os.stat(template))
        schema = pq.read_schema(template).remove_metadata()
    except (pa.ArrowInvalid, OSError) as e:
        raise SourceError(f"push source '{push.name}': cannot read {template}: {e}") from None
    if len(_LAYOUTS) >= _LAYOUTS_MAX:
        _LAYOUTS.clear()
    _LAYOUTS[(str(directory), push.batch_source.path)] = (dir_id, template, file_id, schema)
    return PushTarget(directory, schema)


# --- validation --------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Column:
    file_name: str          # column in the Parquet files
    push_name: str          # column in the pushed batch
    type: pa.DataType       # stored type
    required: bool
    not_null: bool


def _expected(batch: FileSource, views: Sequence[FeatureView], snapshot: Snapshot,
              schema: pa.Schema) -> list[_Column]:
    """The pushed columns, in file order: the file's columns (plus any view column the
    template file lacks), required when a view reads them."""
    ts, created = batch.timestamp_field, batch.created_timestamp_column
    keys: set[str] = set()
    needed: dict[str, pa.DataType] = {ts: UTC_MICROS}
    strict: dict[str, pa.DataType] = {ts: UTC_MICROS}   # declared types
    for view in views:
        jk = snapshot.join_keys(view)
        declared = {f.name: f.dtype.to_arrow() for f in view.schema}
        for k in jk:
            keys.add(batch.source_column(k))
            needed.setdefault(batch.source_column(k), declared.get(k, pa.string()))
            if k in declared:
                strict.setdefault(batch.source_column(k), declared[k])
        for f in view.features_for(set(jk)):
            needed.setdefault(batch.source_column(f.name), f.dtype.to_arrow())
            strict.setdefault(batch.source_column(f.name), f.dtype.to_arrow())
    types = {f.name: f.type for f in schema}
    names = list(schema.names) + [c for c in needed if c not in types]
    if created and created not in names:
        names.append(created)
    out = []
    for c in names:
        t = types.get(c) or needed.get(c) or UTC_MICROS
        if pa.types.is_dictionary(t):
            t = t.value_type
        if pa.types.is_null(t):
            t = needed.get(c, t)
        if c in strict and T.conformance(t, strict[c]).verdict != T.ACCEPT:
            # The template file's type would need a value check against the declared type
            # (float64 over Float32, int64 over Int32) or holds nothing (all None): store the
            # declared type, so every pushed value conforms (docs/types.md).
            t = strict[c]
        push_name = c if c in (ts, created) else batch.field_mapping.get(c, c)
        out.append(_Column(c, push_name, t, required=c in needed, not_null=c == ts or c in keys))
    return out


def _validate(push: PushSource, expected: list[_Column], data: Any, now: datetime,
              created_tolerance: timedelta) -> pa.Table:
    """The batch as a table of the files' columns and types; InvalidRequestError listing every
    problem when anything is wrong."""
    columns, n = columns_of(data)
    batch = push.batch_source
    problems: list[str] = []
    by_push = {c.push_name: c for c in expected}
    missing = [c.push_name for c in expected if c.required and c.push_name not in columns]
    if missing:
        problems.append(f"missing column(s) {missing}")
    extra = [c for c in columns if c not in by_push]
    if extra:
        renames = {src: dst for src, dst in batch.field_mapping.items() if src in extra}
        fix = "; ".join(f"rename '{s}' to '{d}'" for s, d in renames.items())
        problems.append(f"unknown column(s) {extra}: the batch source's files have no such "
                        f"column{' (push uses the view names: ' + fix + ')' if fix else ''}")
    arrays: dict[str, pa.Array] = {}
    for c in expected:
        if c.push_name not in columns:
            continue
        try:
            arr = conform(columns[c.push_name], c.type)
        except BadColumn as e:
            problems.append(f"column '{c.push_name}': {e.reason}: {show_rows(e.rows)}")
            continue
        if c.not_null and arr.null_count:
            rows = pc.indices_nonzero(arr.is_null()).to_pylist()
            what = "event timestamp" if c.file_name == batch.timestamp_field else "join key"
            problems.append(f"column '{c.push_name}': null {what} in {show_rows(rows)}")
            continue
        arrays[c.file_name] = arr
    ts = arrays.get(batch.timestamp_field)
    if ts is not None and len(ts):
        future = pc.greater(cast(ts, UTC_MICROS), pa.scalar(now, type=UTC_MICROS))
        rows = pc.indices_nonzero(future).to_pylist()
        if rows:
            problems.append(
                f"column '{batch.timestamp_field}': event time after the push time "
                f"{now.isoformat()} in {show_rows(rows)} (naive timestamps are UTC: is the "
                "producer sending local time?)")
    created_arr = arrays.get(batch.created_timestamp_column or "")
    if created_arr is not None:
        limit = now + created_tolerance
        late = values_after(created_arr, limit)
        if late is not None:
            rows = pc.indices_nonzero(pc.fill_null(pc.greater(
                cast(created_arr, UTC_MICROS), pa.scalar(limit, type=UTC_MICROS)), False)).to_pylist()
            problems.append(
                f"column '{batch.created_timestamp_column}': {late.count} created time(s) after "
                f"{limit.isoformat()} (the push time plus created_timestamp_tolerance_seconds="
                f"{created_tolerance.total_seconds():g}) in {show_rows(rows)}; first: row "
                f"{late.row}, {late.value}. {CREATED_AHEAD_HINT}")
    if problems:
        body = "\n".join(f"  - {p}" for p in problems)
        raise InvalidRequestError(
            f"push to '{push.name}' rejected ({n} row{'s' if n != 1 else ''}); nothing was "
            f"written:\n{body}",
            hint=f"fix the batch and push it again; expected columns: "
            f"{[c.push_name for c in expected if c.required]}"
            + (f", optional: {[c.push_name for c in expected if not c.required]}"
               if any(not c.required for c in expected) else ""))
    created = batch.created_timestamp_column
    out = {}
    for c in expected:
        if c.file_name in arrays:
            out[c.file_name] = arrays[c.file_name]
        elif c.file_name == created:
            out[c.file_name] = cast(pa.array([now] * n, type=UTC_MICROS), c.type)
        else:
            out[c.file_name] = pa.nulls(n, type=c.type)
    return pa.table(out)


# --- writing -----------------------------------------------------------------------------------

BATCH_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_CONTENT_KEY = b"skewless.push.content"   # Parquet metadata: the batch's content digest


def check_batch_id(batch_id: Any) -> str:
    """A caller's batch id: it names the pushed file, so letters, digits, ``.``, ``_``, ``-``
    (1 to 128, starting with a letter or digit); InvalidRequestError otherwise."""
    if not isinstance(batch_id, str) or not BATCH_ID.match(batch_id):
        raise InvalidRequestError(
            f"batch_id {batch_id!r} is invalid: it names the pushed file, so use 1 to 128 letters, "
            "digits, '.', '_' or '-', starting with a letter or digit",
            hint="e.g. the producer's message offset or a UUID: 'orders-2024-05-01-000123'")
    return batch_id


def content_digest(table: pa.Table, leave_out: Sequence[str] = ()) -> str:
    """A digest of the batch's rows (its columns in order, names and values; ``leave_out``:
    columns filled in by the push itself, such as the created time): equal batches, equal
    digests, whichever process pushes them."""
    h = hashlib.blake2b(digest_size=16)
    kept = table.select([c for c in table.column_names if c not in leave_out]).combine_chunks()
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, kept.schema) as writer:
        writer.write_table(kept)
    h.update(sink.getvalue())
    return h.hexdigest()


def pushed_file(directory: Path, batch_id: str) -> Path:
    """Where the push of ``batch_id`` lands in ``directory``."""
    return directory / f"push-{batch_id}.parquet"


def write_file(table: pa.Table, directory: Path, now: datetime, batch_id: str | None = None,
               digest: str | None = None) -> tuple[Path, bool]:
    """Write ``table`` as the Parquet file of ``batch_id`` in ``directory`` atomically: readers
    see the whole file or none of it, and a crash leaves at most a hidden temp file (ignored by
    readers). The file is linked into place, never over an existing one: returns the path and
    whether it was written (False: the batch was already there, from an earlier try or a
    concurrent retry; nothing is written). ``digest`` is kept in the file's metadata, so a
    batch id reused for other rows is caught. Without a batch id, a unique name is used."""
    if batch_id is None:
        batch_id = f"{now:%Y%m%dT%H%M%S%fZ}-{uuid.uuid4().hex}"
    final = pushed_file(directory, batch_id)
    if final.exists() or was_compacted(directory, final.name) is not None:
        return final, False   # already pushed (and maybe merged into a compacted file since)
    tmp = directory / f".{final.name}.{uuid.uuid4().hex}.tmp"
    if digest is not None:
        table = table.replace_schema_metadata({**(table.schema.metadata or {}), _CONTENT_KEY: digest.encode()})
    # encoded in memory first, then one write: a Python file object under pyarrow's writer
    # costs more than the encoding (pushed batches are small; a large one is no worse)
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    data = memoryview(sink.getvalue())
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666)
        try:
            while data:
                data = data[os.write(fd, data):]
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, final)        # atomic, and fails if a concurrent retry got there first
            written = True
        except FileExistsError:
            written = False
        except OSError:                # a filesystem without hard links: rename (same rows)
            written = not final.exists()
            if written:
                os.replace(tmp, final)
        tmp.unlink(missing_ok=True)
        fsync_dir(directory)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise SourceError(f"cannot write pushed rows to {directory}: {e}",
                          hint="check the directory exists and is writable; nothing was written") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return final, written


def _already_pushed(path: Path, batch_id: str, digest: str, table: pa.Table, source: str) -> pa.Table:
    """The rows of an earlier push of ``batch_id`` (for the online write of a retry), after
    checking they are the rows pushed now; InvalidRequestError when the id was used for others.
    A file compacted away since (docs/streams.md) is checked by the digest its marker keeps."""
    if not path.exists():
        had_digest = was_compacted(path.parent, path.name)
        if had_digest is not None:
            if had_digest and had_digest != digest:
                raise InvalidRequestError(
                    f"push to '{source}': batch_id {batch_id!r} was already pushed with other "
                    f"rows (since compacted: {path.name}); nothing was written",
                    hint="a batch id names one batch: give new rows a new batch_id (or none: it "
                    "is then derived from the rows)")
            return table
    try:
        stored = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as e:
        raise SourceError(f"push to '{source}': batch {batch_id!r} is already in {path}, which "
                          f"cannot be read: {e}",
                          hint="move the file aside if it is damaged, then push again") from None
    had = (stored.schema.metadata or {}).get(_CONTENT_KEY)
    if had is not None and had.decode() != digest:
        raise InvalidRequestError(
            f"push to '{source}': batch_id {batch_id!r} was already pushed with other rows "
            f"({path}); nothing was written",
            hint="a batch id names one batch: give new rows a new batch_id (or none: it is then "
            "derived from the rows)")
    stored = stored.replace_schema_metadata(None)
    if stored.schema.equals(table.schema):
        return stored
    return table   # the definition changed since: the rows as validated now


def online_rows(table: pa.Table, batch: FileSource, views: Sequence[FeatureView],
                snapshot: Snapshot) -> dict[str, list[Any]]:
    """Per online table: a record of every row of ``table`` (file columns), built by the
    materializer's ``batch_records``. Which row of an entity wins is the online store's one
    rule, only if newer by (event, created) time, as for materialization: not decided here."""
    event = cast(table.column(batch.timestamp_field).combine_chunks(), UTC_MICROS)
    created_col = batch.created_timestamp_column
    created = (cast(table.column(created_col).combine_chunks(), UTC_MICROS) if created_col
               else pa.nulls(table.num_rows, UTC_MICROS))
    out: dict[str, list[Any]] = {}
    for view in views:
        keys = snapshot.join_keys(view)
        cols: dict[str, pa.Array] = {k: table.column(batch.source_column(k)) for k in keys}
        cols[EVENT_TS] = event
        cols[CREATED_TS] = created
        feats = view.features_for(set(keys))
        for f in feats:
            cols[f.name] = cast(table.column(batch.source_column(f.name)).combine_chunks(),
                                f.dtype.to_arrow())
        records: list[Any] = []
        for rb in pa.table(cols).to_batches():
            records.extend(batch_records(rb, keys, [f.name for f in feats]))
        out[snapshot.online_table(view.name)] = records
    return out


# --- the use case ------------------------------------------------------------------------------

def _usable(table: pa.Table, batch: FileSource, now: datetime) -> pa.Array:
    """Per row of ``table`` (file columns), whether it is usable at ``now``: ``event_ts +
    availability_delay <= now`` (``plan/visibility.py``). Without a delay every row is (event
    times after the push time are refused by validation)."""
    newest = Visibility.of(None, batch.availability_delay).available_until(now)
    event = cast(table.column(batch.timestamp_field).combine_chunks(), UTC_MICROS)
    return pc.less_equal(event, pa.scalar(newest, type=UTC_MICROS))


def _given_columns(data: Any) -> set[str]:
    """The column names the caller sent (a frame, a table or a dict of columns)."""
    names = getattr(data, "column_names", None)
    if names is None:
        names = getattr(data, "columns", None)
    if names is None and hasattr(data, "keys"):
        names = data.keys()
    return {str(n) for n in names} if names is not None else set()


def push(ctx: RuntimeContext, snapshot: Snapshot, source_name: str, data: Any, *,
         to: str = "online_and_offline", batch_id: str | None = None) -> PushReport:
    """Push ``data`` (pandas, Arrow or a dict of columns) to the push source ``source_name`` of
    ``snapshot``: validate it whole, write it offline (unless ``to="online"``), then online
    (unless ``to="offline"``; the context's online store is opened only then). ``batch_id``
    (else a digest of the rows) makes the push idempotent: a retry lands its rows once. The
    push time is the context's clock; created times later than it plus the context's
    created-timestamp tolerance are refused with the rest of the batch."""
    t0 = time.perf_counter()
    repo_path, now = ctx.repo_path, ctx.now()
    if batch_id is not None:
        batch_id = check_batch_id(batch_id)
    if to not in PUSH_TARGETS:
        raise InvalidRequestError(f"to={to!r} is invalid; valid values: {', '.join(PUSH_TARGETS)}",
                                  hint='to="online_and_offline" (the default) keeps the online '
                                  "store rebuildable from the offline one")
    now = to_utc(now)
    push_src, views = find_push_source(snapshot, source_name)
    online = [v for v in views if v.online]
    if to == "online" and not online:
        raise InvalidRequestError(
            f"push source '{source_name}' feeds no online view ({', '.join(v.name for v in views)} "
            "have online=False); to='online' would write nothing",
            hint='push with to="offline"')
    if to != "offline":   # before anything is written: a store without tiles refuses
        for v in online:
            if v.aggregations:
                require_tiles(ctx.online_store, v, "push")
    target = push_target(push_src, repo_path)
    expected = _expected(push_src.batch_source, views, snapshot, target.schema)
    table = _validate(push_src, expected, data, now, ctx.created_tolerance)
    delayed = push_src.batch_source.availability_delay is not None
    usable = _usable(table, push_src.batch_source, now) if delayed and to == "online" else None
    if usable is not None and not pc.all(usable).as_py():
        rows = pc.indices_nonzero(pc.invert(usable)).to_pylist()
        delay = push_src.batch_source.availability_delay
        raise InvalidRequestError(
            f"push to '{source_name}' rejected ({table.num_rows} rows); nothing was written:\n  - "
            f"column '{push_src.batch_source.timestamp_field}': not usable yet at the push time "
            f"{now.isoformat()} (event time + availability_delay {delay} is later) in "
            f"{show_rows(rows)}; with to='online' they would be written nowhere",
            hint='push with to="online_and_offline": they land offline now and online with the '
            "first materialization at or after their availability time (docs/online.md, "
            '"Availability delay")')
    report = PushReport(source_name, to, table.num_rows, batch_id=batch_id)
    if table.num_rows == 0:
        report.seconds = time.perf_counter() - t0
        return report
    if to != "online":
        created = push_src.batch_source.created_timestamp_column
        filled = [created] if created and created not in _given_columns(data) else []
        digest = content_digest(table, filled)
        report.batch_id = batch_id or digest
        path, written = write_file(table, target.directory, now, report.batch_id, digest)
        report.offline_file = str(path)
        if written:
            report.offline_rows = table.num_rows
        else:   # a retry: the rows are offline already; redo the online write from them
            report.duplicate = True
            table = _already_pushed(path, report.batch_id, digest, table, source_name)
    if to != "offline" and online and delayed:
        # Usable by the clock read once the file has landed: a materialization that listed the
        # batch files before it could only have covered rows landing before that instant, so
        # a row it skipped and this push holds back cannot exist (docs/online.md).
        written_at = max(now, to_utc(ctx.now())) if report.offline_file else now
        # (on a retry, ``table`` holds the stored rows)
        table = table.filter(_usable(table, push_src.batch_source, written_at))
        report.pending_rows = report.rows - table.num_rows
    if to != "offline" and online and table.num_rows:
        plain = [v for v in online if not v.aggregations]
        rows = online_rows(table, push_src.batch_source, plain, snapshot)
        try:
            store = ctx.online_store
            store.create(list(rows) + [snapshot.online_table(v.name) for v in online if v.aggregations])
            if rows:
                store.write_batch(rows)
            for v in online:
                if v.aggregations:   # merged into the view's tiles (services/tiles.py)
                    push_tiles(store, snapshot, v, snapshot.online_table(v.name), table,
                               report.batch_id)
        except Exception as e:
            if report.offline_file is None:
                raise
            reason = e.message if isinstance(e, SkewlessError) else f"{type(e).__name__}: {e}"
            raise OnlineStoreError(
                f"push to '{source_name}': the online write failed ({reason}); the "
                f"{table.num_rows} rows are safe offline in {report.offline_file}",
                hint="`skewless materialize-incremental` brings them online when the batch source "
                "has a created_timestamp_column or the rows are newer than the views' watermarks; "
                "`skewless rebuild-online` always does") from e
        report.online_records = {v.name: len(rows[snapshot.online_table(v.name)])
                                 if not v.aggregations else table.num_rows for v in online}
    report.seconds = time.perf_counter() - t0
    return report


__all__ = ["PUSH_TARGETS", "PushReport", "PushTarget", "check_batch_id", "check_push_sources",
           "content_digest", "find_push_source", "online_rows", "push", "push_sources", "push_target",
           "pushed_file", "write_file"]
