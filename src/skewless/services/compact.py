"""Compaction: merge a push source's small pushed files into larger ones (``skewless compact``).

Every push and every stream batch adds one Parquet file to the push source's batch folder;
thousands of small files slow every read. Compaction merges the pushed files (``push-*`` and
earlier ``compact-*`` files smaller than ``small_bytes``; files the user wrote are never
touched) into ``compact-<id>.parquet`` files of up to ``target_bytes``.

It is atomic and safe while readers run (``skewless.kernels.compaction``): per merged file,

1. the rows of the files it replaces are read and written to a hidden temp file
   (``.compact-<id>.parquet.tmp``, fsynced): readers ignore it;
2. each replaced push file gets a marker (``_skewless/compacted/<name>``, its content digest
   inside), so a retried push of that batch is still recognised once the file is gone;
3. the manifest entry (merged name -> replaced names) is written atomically;
4. the temp file is renamed to ``compact-<id>.parquet``: the switch. A reader listing the
   folder from now on reads the merged file and leaves the replaced ones out;
5. a later run (``grace_seconds`` after the switch) deletes the replaced files: a reader that
   listed the folder before the switch may still be reading them until then.

A crash between steps leaves a state the next run finishes or undoes: before step 4 the
merged file is not visible and its entry is dropped (the replaced files are all still read);
after it, the switch happened and only the deletion is left. ``<id>`` is a digest of the
replaced names, so re-running a crashed compaction rewrites the same file. One compaction
per folder at a time (an exclusive lock on ``_skewless/compact.lock``).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow.parquet as pq

from skewless.context import RuntimeContext
from skewless.define.source import is_glob
from skewless.errors import LeaseHeldError, SourceError
from skewless.kernels.compaction import (META_DIR, MARKERS, fsync_dir, live_files, marker,
                                         read_manifest, write_manifest)
from skewless.registry import Snapshot
from skewless.services.push import _CONTENT_KEY, _push_dir, find_push_source

SMALL_BYTES = 16 * 1024 * 1024
TARGET_BYTES = 128 * 1024 * 1024
GRACE_SECONDS = 600.0


@dataclass
class CompactReport:
    """What a compaction did (``merged``: new file name -> number of files it replaces)."""

    source: str
    directory: str
    merged: dict[str, int] = field(default_factory=dict)
    rows: int = 0                    # rows written to merged files
    deleted: list[str] = field(default_factory=list)   # replaced files deleted (grace passed)
    pending_delete: int = 0          # replaced files kept until their grace period ends
    undone: list[str] = field(default_factory=list)    # merged files of a crashed run dropped
    files_before: int = 0            # files a reader reads, before and after
    files_after: int = 0
    seconds: float = 0.0


@contextmanager
def _folder_lock(directory: Path, label: str) -> Iterator[None]:
    meta = directory / META_DIR
    meta.mkdir(exist_ok=True)
    fd = os.open(meta / "compact.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise LeaseHeldError(
                f"{label}: another compaction of {directory} is running",
                hint="wait for it to finish; compactions of one folder run one at a time") from None
        yield
    finally:
        os.close(fd)


def _readable(directory: Path) -> list[str]:
    """The top-level Parquet files a reader reads now (hidden and replaced ones left out)."""
    names = sorted(str(directory / n) for n in os.listdir(directory)
                   if n.endswith(".parquet") and not n.startswith((".", "_"))
                   and (directory / n).is_file())
    return [os.path.basename(f) for f in live_files(directory, names)]


def _settle(directory: Path, now: float, grace: float, report: CompactReport) -> None:
    """Finish or undo what earlier runs left: entries whose merged file never appeared (a crash
    before the switch) are dropped; replaced files past their grace period are deleted."""
    merged = read_manifest(directory)
    changed = False
    # oldest switch first: a merged file that a later one replaced goes only after the files
    # it replaced, so no listing ever holds those without the file that leaves them out
    for name, entry in sorted(merged.items(), key=lambda kv: int(kv[1].get("seq", 0))):
        replaces = list(entry.get("replaces", ()))
        if entry.get("gone_at") is not None:
            # a merged file replaced in turn and deleted: its entry still serves listings made
            # before that deletion, for one more grace period
            if now - float(entry["gone_at"]) >= grace:
                del merged[name]
                changed = True
            continue
        if not (directory / name).exists():
            # crashed before the switch: nobody ever read the merged file; undo the entry and the
            # markers of files still there (they are read as before)
            for r in replaces:
                if (directory / r).exists():
                    marker(directory, r).unlink(missing_ok=True)
            del merged[name]
            report.undone.append(name)
            changed = True
            continue
        switched = float(entry.get("switched_at") or 0)
        if entry.get("deleted_at") is None:
            if now - switched >= grace:
                for r in replaces:
                    path = directory / r
                    if path.exists():
                        path.unlink()
                        report.deleted.append(r)
                    if r in merged:
                        merged[r]["gone_at"] = now
                entry["deleted_at"] = now
                changed = True
            else:
                report.pending_delete += sum((directory / r).exists() for r in replaces)
        elif now - float(entry["deleted_at"]) >= grace:
            # a reader that listed a replaced file just before its deletion is long done: the
            # entry is no longer needed (the markers stay, for retried pushes)
            del merged[name]
            changed = True
    for n in os.listdir(directory):   # temp files of a crashed run (a crashed push's: once old)
        if n.startswith(".compact-") and n.endswith(".tmp"):
            (directory / n).unlink(missing_ok=True)
        elif n.startswith(".push-") and n.endswith(".tmp"):
            try:
                if time.time() - (directory / n).stat().st_mtime >= max(grace, 3600.0):
                    (directory / n).unlink(missing_ok=True)
            except FileNotFoundError:
                pass
    if changed:
        write_manifest(directory, merged)
        fsync_dir(directory)


def _groups(directory: Path, candidates: list[str], target: int) -> list[list[str]]:
    """Candidates grouped by identical schema, each group cut at ``target`` bytes."""
    by_schema: dict[str, list[str]] = {}
    for name in candidates:
        schema = pq.read_schema(directory / name).remove_metadata()
        by_schema.setdefault(schema.to_string(), []).append(name)
    out: list[list[str]] = []
    for names in by_schema.values():
        group: list[str] = []
        size = 0
        for name in names:
            s = (directory / name).stat().st_size
            if group and size + s > target:
                out.append(group)
                group, size = [], 0
            group.append(name)
            size += s
        out.append(group)
    return [g for g in out if len(g) >= 2]


def _merge(directory: Path, names: list[str], now: float) -> tuple[str, int]:
    """Steps 1 to 4 for one group; returns the merged file's name and its rows."""
    merged_name = "compact-" + hashlib.blake2b("\n".join(names).encode(), digest_size=12).hexdigest() + ".parquet"
    tmp = directory / f".{merged_name}.tmp"
    digests: dict[str, str] = {}
    rows = 0
    schema = pq.read_schema(directory / names[0]).remove_metadata()
    with open(tmp, "wb") as fh:                                   # 1: file by file (bounded memory)
        with pq.ParquetWriter(fh, schema) as writer:
            for name in names:
                t = pq.read_table(directory / name)
                digests[name] = ((t.schema.metadata or {}).get(_CONTENT_KEY) or b"").decode()
                writer.write_table(t.replace_schema_metadata(None))
                rows += t.num_rows
        fh.flush()
        os.fsync(fh.fileno())
    markers = directory / META_DIR / MARKERS                      # 2
    markers.mkdir(parents=True, exist_ok=True)
    for name in names:
        if name.startswith("push-"):
            m = marker(directory, name)
            m.write_text(digests[name])
    fsync_dir(markers)
    manifest = read_manifest(directory)                           # 3
    seq = 1 + max((int(e.get("seq", 0)) for e in manifest.values()), default=0)
    manifest[merged_name] = {"replaces": names, "switched_at": now, "deleted_at": None, "seq": seq}
    write_manifest(directory, manifest)
    os.replace(tmp, directory / merged_name)                      # 4: the switch
    fsync_dir(directory)
    return merged_name, rows


def compact(ctx: RuntimeContext, snapshot: Snapshot, source_name: str, *,
            small_bytes: int = SMALL_BYTES, target_bytes: int = TARGET_BYTES,
            grace_seconds: float = GRACE_SECONDS) -> CompactReport:
    """Merge the push source ``source_name``'s small pushed files (docs/streams.md,
    "Compaction"). Idempotent: a second run with nothing new to merge only settles what earlier
    runs left (deletes replaced files whose ``grace_seconds`` have passed). Raises
    UnknownObjectError (no such push source), SourceError (no batch folder), LeaseHeldError
    (another compaction of the folder runs)."""
    t0 = time.perf_counter()
    push, _ = find_push_source(snapshot, source_name)
    if is_glob(push.batch_source.path):
        raise SourceError(
            f"push source '{source_name}': its batch source is a glob ({push.batch_source.path}); "
            "compaction needs a directory batch source (a merged file must be read in place of "
            "the files it replaces, and a glob may not match its name)",
            hint="point the push source's FileSource at the directory itself")
    directory = _push_dir(push, ctx.repo_path)
    if not directory.is_dir():
        raise SourceError(f"push source '{source_name}': batch directory {directory} does not exist",
                          hint="compaction works on the folder pushes write to")
    return compact_directory(directory, source_name, now=ctx.now().timestamp(),
                             prefixes=("push-", "compact-"), small_bytes=small_bytes,
                             target_bytes=target_bytes, grace_seconds=grace_seconds, t0=t0,
                             label=f"push source '{source_name}'")


def compact_directory(directory: Path, name: str, *, now: float, prefixes: tuple[str, ...],
                      small_bytes: int = SMALL_BYTES, target_bytes: int = TARGET_BYTES,
                      grace_seconds: float = GRACE_SECONDS, t0: float | None = None,
                      temp_prefix: str | None = None, label: str | None = None) -> CompactReport:
    """The module docstring's steps on one folder: its readable files named with one of
    ``prefixes`` and smaller than ``small_bytes`` merged (``name`` is what errors and the report
    call the folder's owner, ``label`` what the lock's error calls it; ``now``: Unix seconds). ``temp_prefix``: hidden temp files of
    writers to the folder (``.<temp_prefix>*.tmp``) an hour old or more are removed (a crashed
    writer's). The push sources' compaction and the feature logs' (docs/feature-logging.md)
    both run it. Raises LeaseHeldError when another compaction of the folder runs."""
    t0 = time.perf_counter() if t0 is None else t0
    report = CompactReport(name, str(directory))
    with _folder_lock(directory, label or name):
        _settle(directory, now, grace_seconds, report)
        if temp_prefix is not None:
            for n in os.listdir(directory):
                if n.startswith("." + temp_prefix) and n.endswith(".tmp"):
                    try:
                        if time.time() - (directory / n).stat().st_mtime >= 3600.0:
                            (directory / n).unlink(missing_ok=True)
                    except FileNotFoundError:
                        pass
        readable = _readable(directory)
        report.files_before = len(readable)
        candidates = [n for n in readable if n.startswith(prefixes)
                      and (directory / n).stat().st_size < small_bytes]
        for group in _groups(directory, candidates, target_bytes):
            merged, rows = _merge(directory, group, now)
            report.merged[merged] = len(group)
            report.rows += rows
            report.pending_delete += len(group)
        if grace_seconds <= 0 and report.merged:
            _settle(directory, now, grace_seconds, report)
            report.pending_delete = 0
        report.files_after = len(_readable(directory))
    report.seconds = time.perf_counter() - t0
    return report


__all__ = ["GRACE_SECONDS", "SMALL_BYTES", "TARGET_BYTES", "CompactReport", "compact", "compact_directory"]
