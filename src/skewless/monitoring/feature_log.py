"""Feature logging: the values served by online reads of a FeatureService, written to Parquet
asynchronously and sampled (docs/feature-logging.md).

``FeatureLogger`` is a lifecycle hook (``skewless.hooks``) on the ``online_read`` after-event:
``FeatureStore`` registers one only when logging is on (``logging.sample_rate > 0`` in
feature_store.yaml, or a service with ``logging_config``), so a store that logs nothing pays
nothing. Per request (after the answer is built), the hook draws the sample, copies the
answer's column lists and puts one item on a bounded queue (``logging.queue_size``); a full
queue drops the item and counts it (``dropped``, the Prometheus counter
``skewless_feature_log_dropped_total``): a request is never delayed or failed by logging.

A background thread (the writer) gathers items per (log root, service, date) and writes each
partition's rows as one Parquet file every ``flush_interval_seconds`` or once ``flush_rows``
rows are buffered, atomically: a hidden temp file, fsync, rename, fsync of the folder. A crash
loses the queue and the buffer, never a written file. Write failures are counted
(``write_errors``, ``lost_rows``) and logged, never raised to a request.

Layout (docs/feature-logging.md): ``<root>/feature_service=<name>/log_date=YYYY-MM-DD/log-*.parquet``;
files whose name starts with ``_`` or ``.`` are not data. Columns: the join keys, the request
columns, per feature ``<view>__<feature>``, ``<view>__<feature>__timestamp`` and
``<view>__<feature>__status``, then ``__log_timestamp``, ``__request_id``,
``__feature_service``. ``compact_logs`` merges a partition's small files with the push
sources' compaction mechanism (``services.compact.compact_directory``), and deletes partitions older
than ``logging.retention_days``; ``read_feature_logs`` reads them back.
"""

from __future__ import annotations

import atexit
import collections
import itertools
import logging
import os
import random
import re
import shutil
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
from prometheus_client import Counter

from skewless import types as T
from skewless.config import RepoConfig
from skewless.context import utc_now
from skewless.define import FeatureService
from skewless.errors import SkewlessError
from skewless.hooks import BaseHook, Event, Outcome
from skewless.kernels.compaction import fsync_dir, live_files

log = logging.getLogger("skewless.feature_log")

LOG_TIMESTAMP = "__log_timestamp"
REQUEST_ID = "__request_id"
FEATURE_SERVICE = "__feature_service"
META_COLUMNS = (LOG_TIMESTAMP, REQUEST_ID, FEATURE_SERVICE)
STATUS_SUFFIX = "__status"
TIMESTAMP_SUFFIX = "__timestamp"
FILE_PREFIX = "log-"
_TS = pa.timestamp("us", tz="UTC")

DROPPED = Counter("skewless_feature_log_dropped", "Logged requests dropped because the feature "
                  "log's queue was full (docs/feature-logging.md).", ["service"])
WRITE_ERRORS = Counter("skewless_feature_log_write_errors", "Feature log files that could not be "
                       "written (their rows are lost; docs/feature-logging.md).", ["service"])
WRITTEN = Counter("skewless_feature_log_rows", "Rows written to the feature log.", ["service"])


def partition_dir(root: Path, service: str, day: date | str) -> Path:
    """The folder of ``service``'s logs of ``day`` under ``root`` (docs/feature-logging.md)."""
    return root / f"feature_service={service}" / f"log_date={day}"


def log_root(config: RepoConfig, service: FeatureService | None = None) -> Path:
    """The log root of ``service``: its ``logging_config.path``, else ``logging.path``,
    resolved against the repo."""
    path = config.logging.path
    if service is not None and service.logging_config is not None and service.logging_config.path:
        path = service.logging_config.path
    return config.resolve(path)


def sample_rate(config: RepoConfig, service: FeatureService | None) -> float:
    """The share of ``service``'s online requests logged: its own ``logging_config``'s rate,
    else the global ``logging.sample_rate``."""
    if service is not None and service.logging_config is not None:
        return service.logging_config.sample_rate
    return config.logging.sample_rate


def logging_wanted(config: RepoConfig, services: Mapping[str, FeatureService]) -> bool:
    """Whether any online read may be logged (else no hook is registered: zero cost)."""
    return config.logging.sample_rate > 0 or any(
        s.logging_config is not None and s.logging_config.sample_rate > 0 for s in services.values())


# --- the request side ---------------------------------------------------------------------------

_STOP = object()
POLL_SECONDS = 0.05     # how often the writer takes what was queued
POLICY_SECONDS = 1.0    # how often a request re-reads its service's logging policy
YIELD_EVERY = 16        # the writer yields the GIL after this many queued requests


class _Flush:
    """A flush request put on the queue: the writer sets ``done`` once everything before it is
    written."""

    def __init__(self) -> None:
        self.done = threading.Event()


# one logged request: service, root, log time (µs), keys, values, groups, dtypes, entity rows,
# full_feature_names
_Item = tuple[str, Path, int, dict[str, list[Any]], dict[str, list[Any]], Sequence[Any],
              Mapping[str, Any], Sequence[Mapping[str, Any]], bool]


class FeatureLogger(BaseHook):
    """The feature log of one ``FeatureStore`` (module docstring). ``store``: anything with
    ``config``, ``clock`` and ``serving_snapshot()``. ``writer``: replaces the function that
    writes one partition's table (tests make it failing); the writer thread starts with the
    first logged request (or ``start()``, or ``start=True``), so a store that logs nothing (a
    CLI command) runs no thread.

    Counters (since creation): ``logged`` requests queued, ``dropped`` requests not logged
    because the queue was full, ``written_rows``, ``files``, ``write_errors`` and ``lost_rows``
    (rows of files that could not be written)."""

    def __init__(self, store: Any, *, writer: Any = None, start: bool = False,
                 rng: random.Random | None = None) -> None:
        self.store = store
        self.config: RepoConfig = store.config
        cfg = self.config.logging
        # the queue: a deque (appends are atomic, take no lock and wake nobody), bounded by a
        # length check, drained by the writer every POLL_SECONDS: one wake-up per batch of
        # requests instead of one per request (a woken thread per request cost the SDK ~100 µs)
        self.queue: collections.deque[Any] = collections.deque()
        self.queue_size = cfg.queue_size
        self._wake = threading.Event()
        self.flush_interval = cfg.flush_interval_seconds
        self.flush_rows = cfg.flush_rows
        self._write = writer or write_partition
        self._random = (rng or random.Random()).random
        self._policies: dict[str, tuple[float, Path]] = {}
        self._policy_version: int | None = None
        self._policy_read = 0.0
        self.logged = 0
        self.dropped = 0
        self.written_rows = 0
        self.files = 0
        self.write_errors = 0
        self.lost_rows = 0
        self._gate = threading.Lock()
        self._pause_wanted = False
        self._resumed = threading.Event()
        self._thread: threading.Thread | None = None
        self._starting = threading.Lock()
        self._closed = False
        ref = weakref.ref(self)
        self._atexit = lambda: (lambda me: me.close() if me is not None else None)(ref())
        atexit.register(self._atexit)
        if start:
            self.start()

    # -- hook -----------------------------------------------------------------------------------
    def after(self, event: Event, outcome: Outcome) -> None:
        """Queue the answer of an online read by feature service, if sampled (never blocks)."""
        result = outcome.result
        if outcome.error is not None or getattr(result, "groups", None) is None:
            return   # a refused or failed read (an OnlineResponse has groups)
        features = event.request.get("features")
        if isinstance(features, FeatureService):
            name = features.name
        elif isinstance(features, str) and ":" not in features:
            name = features
        else:
            return
        rate, root = self._policy(name)
        if rate <= 0.0 or (rate < 1.0 and self._random() >= rate):
            return
        rows = event.request.get("entity_rows")
        clock = self.store.clock
        now_us = time.time_ns() // 1000 if clock is utc_now else _micros(clock())
        item: _Item = (name, root, now_us, {k: v[:] for k, v in result.keys.items()},
                       {k: v[:] for k, v in result.values.items()}, result.groups,
                       result.dtypes, rows if type(rows) is list else list(rows or ()),
                       bool(event.request.get("full_feature_names")))
        if self._thread is None:
            self.start()
        if len(self.queue) < self.queue_size:
            self.queue.append(item)
            self.logged += 1
        else:
            self.dropped += 1
            DROPPED.labels(name).inc()

    def _policy(self, name: str) -> tuple[float, Path]:
        """(sample rate, log root) of service ``name``, from the serving definitions, re-read at
        most every POLICY_SECONDS (a changed registry version empties the cache)."""
        now = time.monotonic()
        policy = self._policies.get(name)
        if policy is not None and now - self._policy_read < POLICY_SECONDS:
            return policy
        try:
            snap = self.store.serving_snapshot()
        except SkewlessError:
            return 0.0, Path()
        self._policy_read = now
        if snap.version != self._policy_version:
            self._policies = {}
            self._policy_version = snap.version
        policy = self._policies.get(name)
        if policy is None:
            svc = snap.feature_services.get(name)
            policy = (sample_rate(self.config, svc), log_root(self.config, svc))
            self._policies[name] = policy
        return policy

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> None:
        """Start the writer thread (once; the first logged request does, unless started)."""
        with self._starting:
            if self._thread is None and not self._closed:
                thread = threading.Thread(target=self._run, name="skewless-feature-log", daemon=True)
                thread.start()
                self._thread = thread

    def pause(self) -> None:
        """Stop the writer from taking items off the queue until ``resume()`` (tests: a writer
        that is deterministically behind). Returns once the writer holds no item."""
        self._pause_wanted = True
        self._resumed.clear()
        self._gate.acquire()

    def resume(self) -> None:
        self._pause_wanted = False
        self._resumed.set()
        self._gate.release()

    def flush(self, timeout: float = 30.0) -> bool:
        """Write everything queued before this call; True once written, False when the writer
        did not finish within ``timeout`` seconds (paused, stuck on a slow disk, stopped)."""
        if self._thread is None:
            return True          # nothing was ever queued
        if not self._thread.is_alive():
            return False
        marker = _Flush()
        self.queue.append(marker)
        self._wake.set()
        return marker.done.wait(timeout)

    def close(self, timeout: float = 30.0) -> None:
        """Write what is queued and stop the writer (idempotent; ``FeatureStore.close()``, the
        feature server's shutdown and interpreter exit call it)."""
        if self._closed:
            return
        self._closed = True
        atexit.unregister(self._atexit)
        thread = self._thread
        if thread is None or not thread.is_alive():
            return
        if self._pause_wanted:
            self.resume()
        self.queue.append(_STOP)
        self._wake.set()
        thread.join(timeout)
        if thread.is_alive():
            log.error("feature log: the writer did not write its queue in %ss; %d queued requests "
                      "may not be logged", timeout, len(self.queue))

    # -- the writer thread ----------------------------------------------------------------------
    def _run(self) -> None:
        buffers: dict[tuple[Path, str, str], _Buffer] = {}
        last = time.monotonic()
        while True:
            if self._pause_wanted:
                self._resumed.wait()
            with self._gate:
                wait = max(0.001, min(POLL_SECONDS, self.flush_interval - (time.monotonic() - last)))
                self._wake.wait(wait)
                self._wake.clear()
                queue = self.queue
                done = 0
                while queue:
                    item = queue.popleft()
                    done += 1
                    if done % YIELD_EVERY == 0:
                        # hand the GIL over: a serving thread waiting for it would otherwise
                        # wait for the interpreter's switch interval (5 ms), in its tail latency
                        time.sleep(0)
                    if item is _STOP:
                        self._flush_all(buffers)
                        return
                    if isinstance(item, _Flush):
                        self._flush_all(buffers)
                        last = time.monotonic()
                        item.done.set()
                        continue
                    try:
                        buf = _add(buffers, item)
                    except Exception:  # noqa: BLE001 - a bad item must not stop the writer
                        log.exception("feature log: could not log a request of service '%s'", item[0])
                        self.lost_rows += 1
                        continue
                    if buf.total >= self.flush_rows:
                        self._flush_one(buffers, buf)
                for buf in buffers.values():
                    buf.seal()
                if time.monotonic() - last >= self.flush_interval:
                    self._flush_all(buffers)
                    last = time.monotonic()

    def _flush_all(self, buffers: dict[tuple[Path, str, str], _Buffer]) -> None:
        for buf in list(buffers.values()):
            self._flush_one(buffers, buf)

    def _flush_one(self, buffers: dict[tuple[Path, str, str], _Buffer], buf: _Buffer) -> None:
        del buffers[(buf.root, buf.service, buf.day)]
        rows = buf.total
        if not rows:
            return
        try:
            table = buf.table()
            self._write(partition_dir(buf.root, buf.service, buf.day), table)
        except Exception as e:  # noqa: BLE001 - logging never fails a request nor the writer
            self.write_errors += 1
            self.lost_rows += rows
            WRITE_ERRORS.labels(buf.service).inc()
            log.error("feature log: %d rows of service '%s' (%s) could not be written to %s: %s",
                      rows, buf.service, buf.day, buf.root, e)
            return
        self.files += 1
        self.written_rows += rows
        WRITTEN.labels(buf.service).inc(rows)


def _micros(t: datetime) -> int:
    delta = t - datetime(1970, 1, 1, tzinfo=timezone.utc)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


@dataclass
class _Buffer:
    """The rows of one partition waiting to be written: the requests taken off the queue since
    the last wake-up as a list per column (padded with None), and the earlier ones as Arrow
    tables (``seal``): few Python objects stay alive between flushes, so logging does not make
    the garbage collector's full passes longer."""

    root: Path
    service: str
    day: str
    rows: int = 0       # rows in ``columns``
    sealed: int = 0     # rows in ``chunks``
    columns: dict[str, list[Any]] = field(default_factory=dict)
    types: dict[str, pa.DataType | None] = field(default_factory=dict)
    chunks: list[pa.Table] = field(default_factory=list)

    @property
    def total(self) -> int:
        return self.rows + self.sealed

    def column(self, name: str, dtype: pa.DataType | None) -> list[Any]:
        col = self.columns.get(name)
        if col is None:
            col = self.columns[name] = [None] * self.rows
            self.types[name] = dtype
        return col

    def seal(self) -> None:
        """The rows in lists as one Arrow table."""
        if not self.rows:
            return
        names = [n for n in self.columns if n not in META_COLUMNS] + list(META_COLUMNS)
        self.chunks.append(pa.Table.from_arrays(
            [_array(self.columns[n], self.types.get(n)) for n in names], names=names))
        self.sealed += self.rows
        self.rows = 0
        self.columns = {}

    def table(self) -> pa.Table:
        self.seal()
        if len(self.chunks) == 1:
            return self.chunks[0]
        table = pa.concat_tables(self.chunks, promote_options="permissive")
        names = [n for n in table.column_names if n not in META_COLUMNS] + list(META_COLUMNS)
        return table.select(names)


def _array(values: list[Any], dtype: pa.DataType | None) -> pa.Array:
    """``values`` as an Arrow array of ``dtype`` (inferred when None or when they do not fit;
    strings as a last resort, so one odd value never loses a file)."""
    if dtype is not None:
        try:
            if pa.types.is_timestamp(dtype) and any(type(v) is int for v in values):
                return pa.array(values, pa.int64()).cast(dtype)
            return pa.array(values, dtype)
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError):
            pass
    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError):
        return pa.array([None if v is None else str(v) for v in values], pa.string())


_STRING = pa.string()
_DAY_US = 86_400_000_000
_days: dict[int, str] = {}


def _day_of(log_us: int) -> str:
    n = log_us // _DAY_US
    day = _days.get(n)
    if day is None:
        day = _days[n] = (datetime(1970, 1, 1) + timedelta(days=n)).date().isoformat()
    return day


_ids = itertools.count()
_ID_PREFIX = uuid.uuid4().hex[:16]


def _new_id_prefix() -> None:
    """A forked process (a server worker) draws its own prefix."""
    global _ID_PREFIX, _ids
    _ID_PREFIX, _ids = uuid.uuid4().hex[:16], itertools.count()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_new_id_prefix)


def _request_id() -> str:
    """A request id unique across processes: a random prefix per process, then a counter
    (cheaper than a uuid4 per request, which reads the system's random source)."""
    return f"{_ID_PREFIX}{next(_ids):016x}"


def _add(buffers: dict[tuple[Path, str, str], _Buffer], item: _Item) -> _Buffer:
    """Append one logged request to its partition's buffer."""
    name, root, log_us, keys, values, groups, dtypes, rows, full = item
    n = len(next(iter(keys.values()))) if keys else len(rows)
    day = _day_of(log_us)
    buf = buffers.get((root, name, day))
    if buf is None:
        buf = buffers[(root, name, day)] = _Buffer(root, name, day)
    columns = buf.columns
    touched = len(keys) + 3
    for k, v in keys.items():
        col = columns.get(k)
        if col is None:
            col = buf.column(k, None)
        col.extend(v)
    if rows and type(rows[0]) is dict and len(rows[0]) > len(keys):   # request columns
        for k in [k for k in rows[0] if k not in keys]:
            touched += 1
            col = columns.get(k)
            if col is None:
                col = buf.column(k, None)
            col.extend([r.get(k) if type(r) is dict else None for r in rows])
    for g in groups:
        stamps, statuses, view = g.event_micros, g.statuses, g.view
        for out in g.outputs:
            touched += 3
            lname = out if full or not view else f"{view}__{out}"
            col = columns.get(lname)
            if col is None:   # a new column: its types (else only the values are appended)
                dtype = dtypes.get(out)
                col = buf.column(lname, dtype.to_arrow() if isinstance(dtype, T.ValueType) else None)
                buf.column(lname + TIMESTAMP_SUFFIX, _TS)
                buf.column(lname + STATUS_SUFFIX, _STRING)
            col.extend(values[out])
            columns[lname + TIMESTAMP_SUFFIX].extend(stamps)
            columns[lname + STATUS_SUFFIX].extend(statuses)
    for meta, dtype, value in ((LOG_TIMESTAMP, _TS, log_us), (REQUEST_ID, _STRING, _request_id()),
                               (FEATURE_SERVICE, _STRING, name)):
        col = columns.get(meta)
        if col is None:
            col = buf.column(meta, dtype)
        col.extend([value] * n)
    buf.rows += n
    if touched != len(columns):   # columns this request did not have: padded with nulls
        for col in columns.values():
            if len(col) < buf.rows:
                col.extend([None] * (buf.rows - len(col)))
    return buf


def write_partition(directory: Path, table: pa.Table) -> Path:
    """Write ``table`` as a new file of the partition ``directory``, atomically: a hidden temp
    file, fsynced, renamed into place, then the folder fsynced. Returns the file's path."""
    directory.mkdir(parents=True, exist_ok=True)
    name = f"{FILE_PREFIX}{time.time_ns()}-{uuid.uuid4().hex[:8]}.parquet"
    tmp = directory / f".{name}.tmp"
    try:
        with open(tmp, "wb") as fh:
            pq.write_table(table, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, directory / name)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(directory)
    return directory / name


# --- reading --------------------------------------------------------------------------------------

def _day(value: datetime) -> date:
    return value.astimezone(timezone.utc).date()


def partition_files(root: Path, service: str, since: datetime | None = None,
                    until: datetime | None = None) -> list[str]:
    """The data files a reader reads now for ``service`` between ``since`` and ``until`` (by
    partition date): hidden and ``_`` files left out, and files a compaction replaced left out
    (``kernels.compaction.live_files``)."""
    base = root / f"feature_service={service}"
    if not base.is_dir():
        return []
    out: list[str] = []
    for part in sorted(base.iterdir()):
        m = re.fullmatch(r"log_date=(\d{4}-\d{2}-\d{2})", part.name)
        if m is None or not part.is_dir():
            continue
        day = date.fromisoformat(m.group(1))
        if (since is not None and day < _day(since)) or (until is not None and day > _day(until)):
            continue
        names = sorted(str(part / n) for n in os.listdir(part)
                       if n.endswith(".parquet") and not n.startswith((".", "_")))
        out.extend(live_files(part, names))
    return out


def read_feature_logs(config: RepoConfig, service: str, since: datetime | None = None,
                      until: datetime | None = None, root: Path | None = None) -> pa.Table:
    """The logged rows of ``service`` with ``since <= __log_timestamp < until`` (aware
    datetimes; None: unbounded), columns as in the module docstring, partition by partition
    and file by file in the order they were written (not sorted: sort if you need to).
    ``root``: the log root (default ``logging.path`` of ``config``; a service with its own
    ``logging_config.path``: pass ``log_root(config, service)``). No logged rows: an empty
    table with the three ``__`` columns. A file that cannot be read: SourceError naming it."""
    root = root if root is not None else log_root(config)
    files = partition_files(root, service, since, until)
    if not files:
        return pa.table({LOG_TIMESTAMP: pa.array([], _TS), REQUEST_ID: pa.array([], pa.string()),
                         FEATURE_SERVICE: pa.array([], pa.string())})
    where = []
    params: list[Any] = []
    if since is not None:
        where.append(f'"{LOG_TIMESTAMP}" >= ?')
        params.append(since)
    if until is not None:
        where.append(f'"{LOG_TIMESTAMP}" < ?')
        params.append(until)
    sql = ("SELECT * FROM read_parquet(?, union_by_name = true, hive_partitioning = false)"
           + (" WHERE " + " AND ".join(where) if where else ""))
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        return con.sql(sql, params=[files, *params]).to_arrow_table()
    except duckdb.Error as e:
        from skewless.errors import SourceError
        raise SourceError(f"feature logs of service '{service}' under {root} cannot be read: {e}",
                          hint="a file there is not a feature log file; move it out "
                          "(docs/feature-logging.md)") from None
    finally:
        con.close()


# --- compaction and retention -------------------------------------------------------------------

@dataclass
class LogCompactReport:
    """What ``compact_logs`` did: per partition folder, merged files; partitions deleted by
    retention; stale temp files removed."""

    root: str
    merged: dict[str, int] = field(default_factory=dict)   # merged file -> files it replaces
    rows: int = 0
    partitions: int = 0
    files_before: int = 0
    files_after: int = 0
    expired: list[str] = field(default_factory=list)      # partition folders deleted
    deleted: int = 0                                      # replaced files deleted (grace passed)
    seconds: float = 0.0


def compact_logs(config: RepoConfig, compact_folder: Callable[..., Any],
                 services: Sequence[FeatureService] | None = None, *,
                 root: Path | None = None, now: datetime | None = None,
                 small_bytes: int = 16 * 1024 * 1024, target_bytes: int = 128 * 1024 * 1024,
                 grace_seconds: float = 600.0, retention_days: int | None = None) -> LogCompactReport:
    """Merge each partition's small log files into one and delete partitions whose date is
    more than ``retention_days`` (default ``logging.retention_days``; None: none) before
    ``now``. ``compact_folder``: the push sources' compaction of one folder
    (``services.compact.compact_directory``, passed by ``FeatureStore``): atomic and safe while
    readers run, replaced files deleted ``grace_seconds`` after the switch. ``services``: limit
    to these (default: every service folder under the root). Raises LeaseHeldError when
    another compaction of a partition runs."""
    t0 = time.perf_counter()
    root = root if root is not None else log_root(config)
    now = now or datetime.now(timezone.utc)
    retention = retention_days if retention_days is not None else config.logging.retention_days
    report = LogCompactReport(str(root))
    if not root.is_dir():
        return report
    wanted = {s.name for s in services} if services is not None else None
    for sdir in sorted(root.iterdir()):
        if not sdir.is_dir() or not sdir.name.startswith("feature_service="):
            continue
        service = sdir.name.split("=", 1)[1]
        if wanted is not None and service not in wanted:
            continue
        for part in sorted(sdir.iterdir()):
            m = re.fullmatch(r"log_date=(\d{4}-\d{2}-\d{2})", part.name)
            if m is None or not part.is_dir():
                continue
            if retention is not None and date.fromisoformat(m.group(1)) < _day(now) - timedelta(days=retention):
                shutil.rmtree(part, ignore_errors=True)
                report.expired.append(str(part))
                continue
            report.partitions += 1
            sub = compact_folder(part, service, now=now.timestamp(), prefixes=(FILE_PREFIX, "compact-"),
                                 small_bytes=small_bytes, target_bytes=target_bytes,
                                 grace_seconds=grace_seconds, temp_prefix=FILE_PREFIX,
                                 label=f"the feature log partition of service '{service}'")
            report.merged.update({str(part / k): v for k, v in sub.merged.items()})
            report.rows += sub.rows
            report.files_before += sub.files_before
            report.files_after += sub.files_after
            report.deleted += len(sub.deleted)
    report.seconds = time.perf_counter() - t0
    return report


__all__ = ["FEATURE_SERVICE", "LOG_TIMESTAMP", "META_COLUMNS", "REQUEST_ID", "STATUS_SUFFIX",
           "TIMESTAMP_SUFFIX", "FeatureLogger", "LogCompactReport", "compact_logs", "log_root",
           "logging_wanted", "partition_dir", "partition_files", "read_feature_logs", "sample_rate",
           "write_partition"]
