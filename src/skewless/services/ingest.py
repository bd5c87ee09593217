"""Stream ingestion: a Redis Stream into a PushSource, offline first, then online, at least once
(``skewless ingest``, docs/streams.md).

A consumer of a consumer group reads batches with ``XREADGROUP``. Per batch, in order:

1. **Parse and check each entry.** An entry holds one field ``data``: a JSON object of the push
   source's columns, by the names a push uses (timestamps as ISO-8601 strings, naive = UTC).
   Each entry is checked by push's own rule (``skewless.services.push``: required columns,
   the one type table of docs/types.md, no null key or event time, no event time after now).
   A malformed entry (not JSON, not an object, a missing or unknown column, a value that does
   not convert) is added to the dead-letter stream ``<key>:dead`` (its original fields plus
   ``reason``, ``entry_id``, ``stream``) and acknowledged in one MULTI/EXEC transaction: the
   rest of the batch goes on.
2. **Dedup** (when the batch source declares ``event_id_column``): the later entries of an
   event id already in the batch are dropped (acknowledged with the batch).
3. **Push** through ``FeatureStore.push`` with ``batch_id`` derived from the stream and the
   batch's first and last entry ids: the offline file is written atomically, then the online
   write. A redelivered batch has the same id, so its offline file is found (not written
   twice) and the online write is redone ("only if newer": harmless).
4. **Acknowledge** the batch's entries (``XACK``) only after both writes.

A consumer's pending entries are exactly its one batch in flight (it reads the next batch only
after acknowledging the last), so on start it first re-processes its own pending entries
(``XREADGROUP ... 0``), then claims (``XCLAIM``) those of other consumers idle for longer than
``claim_idle_ms`` (at start, then as often), one consumer's entries as one batch, which gives
them the same batch id they had. Redis errors (a restart, a network cut) are retried with capped exponential backoff
and a message per attempt; the consumer group is re-created if a restarted Redis lost it.
"""

from __future__ import annotations

import hashlib
import json
import socket
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import pyarrow as pa

from skewless.errors import (ConfigError, InvalidRequestError, MissingExtraError, OnlineStoreError,
                             SkewlessError, SourceError)
from skewless.kernels.batch import UTC_MICROS, cast
from skewless.services.push import _expected, _validate, find_push_source, push_target

if TYPE_CHECKING:
    from pathlib import Path

    from prometheus_client import CollectorRegistry

    from skewless.context import RuntimeContext
    from skewless.registry import Snapshot
    from skewless.services.push import PushReport


class PushingStore(Protocol):
    """What the consumer needs of the store it feeds (``skewless.FeatureStore`` is one): the
    front door's ``push``, its definitions, clock and context. A protocol, not the facade's
    class, so that this use case does not import the facade that builds it."""

    repo_path: Path

    @property
    def context(self) -> RuntimeContext: ...

    @property
    def clock(self) -> Callable[[], datetime]: ...

    def snapshot(self) -> Snapshot: ...

    def push(self, source_name: str, df: Any, to: Any = ..., batch_id: str | None = None) -> PushReport: ...

DATA_FIELD = "data"
FRESHNESS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
                     300.0, 3600.0)
DEFAULT_GROUP = "skewless"


@dataclass(frozen=True)
class StreamSpec:
    """Where and how to consume. ``url``: ``redis://host:port/db`` (``rediss://``, ``unix://``
    too); ``key``: the stream key; ``group`` / ``consumer``: the consumer group and this
    consumer's name (stable across restarts: a restarted consumer takes its pending entries
    back by name); ``start``: where a new group starts (``0``: the whole stream, ``$``: new
    entries only)."""

    url: str
    key: str
    group: str = DEFAULT_GROUP
    consumer: str = field(default_factory=socket.gethostname)
    batch_size: int = 1000
    block_ms: int = 500
    claim_idle_ms: int = 60_000
    start: str = "0"
    dead_key: str | None = None        # default: "<key>:dead"
    max_backoff_s: float = 5.0

    @property
    def dead(self) -> str:
        return self.dead_key or f"{self.key}:dead"


@dataclass
class IngestStats:
    batches: int = 0
    ingested: int = 0          # entries written offline and online, then acknowledged
    dead: int = 0              # entries sent to the dead-letter stream
    duplicates: int = 0        # entries dropped by event id within a batch
    redelivered: int = 0       # batches whose offline file was already there
    reconnects: int = 0
    last_event: datetime | None = None


@dataclass(frozen=True)
class BatchDone:
    """One acknowledged batch, for callbacks (benchmarks, tests)."""

    batch_id: str
    entry_ids: tuple[str, ...]
    rows: int
    duplicate: bool
    servable_at: float                  # time.time() when the online write returned
    event_times: tuple[float, ...]      # unix seconds of each row's event time


class Metrics:
    """The consumer's Prometheus metrics (docs/streams.md, "Metrics")."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.freshness = Histogram(
            "skewless_stream_freshness_seconds",
            "Event time to servable: seconds from a row's event time to the end of the online "
            "write of its batch.", ["push_source"], registry=r,
            buckets=FRESHNESS_BUCKETS)
        self.bounds = np.array(FRESHNESS_BUCKETS, dtype=float)
        self.last_event = Gauge(
            "skewless_stream_last_event_timestamp_seconds",
            "Greatest event time ingested (unix seconds).", ["push_source"], registry=r,
            multiprocess_mode="max")
        self.entries = Counter(
            "skewless_stream_entries_total",
            "Stream entries handled, by outcome (ingested, dead_letter, duplicate).",
            ["push_source", "outcome"], registry=r)
        self.batches = Counter("skewless_stream_batches_total", "Batches acknowledged.",
                               ["push_source"], registry=r)
        self.redelivered = Counter(
            "skewless_stream_redelivered_batches_total",
            "Batches whose offline file was already written (a redelivery after a crash).",
            ["push_source"], registry=r)
        self.reconnects = Counter("skewless_stream_redis_errors_total",
                                  "Redis errors retried with backoff.", ["push_source"], registry=r)


def observe_many(child: Any, bounds: Any, values: Any) -> None:
    """``child.observe(v)`` for each of ``values`` (a numpy array), as one update per bucket
    when the histogram child exposes its buckets (every prometheus-client since 0.4), else
    value by value. ``bounds``: the histogram's finite upper bounds, ascending."""
    buckets = getattr(child, "_buckets", None)
    if isinstance(buckets, list) and len(buckets) == len(bounds) + 1 and hasattr(
            getattr(child, "_sum", None), "inc"):
        # a value lands in the first bucket whose upper bound is >= it, as observe() does
        counts = np.bincount(np.searchsorted(bounds, values, side="left"), minlength=len(bounds) + 1)
        child._sum.inc(float(values.sum()))
        for bucket, n in zip(buckets, counts.tolist()):
            if n:
                bucket.inc(n)
    else:
        for v in values.tolist():
            child.observe(v)


def _redis() -> Any:
    try:
        import redis
    except ImportError:
        raise MissingExtraError("redis", "redis") from None
    return redis


def _not_utf8(text: str) -> str | None:
    """Where ``text`` (read with ``surrogateescape``) holds bytes that are not UTF-8, or None."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        raw = text[e.start:e.end].encode("utf-8", "surrogateescape")
        return f"byte 0x{raw[0]:02x} at character {e.start}"
    return None


def batch_id_for(key: str, entry_ids: Sequence[str]) -> str:
    """The push batch id of a batch: the stream (a digest of its key) and its first and last
    entry ids. Equal on every redelivery of the batch."""
    tag = hashlib.blake2b(key.encode(), digest_size=4).hexdigest()
    return f"stream-{tag}-{entry_ids[0]}-{entry_ids[-1]}"


class StreamIngest:
    """Consume ``spec`` into the push source ``source`` of ``store`` until ``stop`` is set
    (:meth:`run`). ``log``: progress and retry messages (default: stderr); ``on_batch``:
    called after each acknowledged batch."""

    def __init__(self, store: PushingStore, source: str, spec: StreamSpec, *,
                 metrics: Metrics | None = None, log: Callable[[str], None] | None = None,
                 on_batch: Callable[[BatchDone], None] | None = None) -> None:
        self.store, self.source, self.spec = store, source, spec
        self.metrics = metrics or Metrics()
        self.log = log or (lambda m: print(m, file=sys.stderr, flush=True))
        self.on_batch = on_batch
        self.stats = IngestStats()
        self.stop = threading.Event()
        self._client: Any = None
        snapshot = store.snapshot()
        push, views = find_push_source(snapshot, source)   # UnknownObjectError: fail fast
        self._push = push
        self._required: list[str] = []
        self._last_claim = time.monotonic()
        self._ts_push = push.batch_source.timestamp_field
        if spec.batch_size < 1:
            raise ConfigError(f"batch size {spec.batch_size} must be at least 1")
        # the batch source may declare an event id column (branch `agg`); read it softly
        self.event_id: str | None = getattr(push.batch_source, "event_id_column", None)

    # --- Redis, with retries --------------------------------------------------------------------

    def _connect(self) -> Any:
        redis = _redis()
        # bytes that are not UTF-8 decode to lone surrogates instead of failing the whole read
        # (an entry's bytes are the producer's: one bad entry must not stop the stream); they
        # encode back to the same bytes, so a dead letter keeps the entry as it was
        return redis.Redis.from_url(self.spec.url, socket_connect_timeout=2.0,
                                    socket_timeout=max(5.0, self.spec.block_ms / 1000 + 5.0),
                                    decode_responses=True, encoding_errors="surrogateescape")

    def _call(self, what: str, fn: Callable[[Any], Any], abandon_on_stop: bool = True) -> Any:
        """``fn(client)`` retried on connection errors with capped exponential backoff; None
        when ``stop`` is set while waiting (the caller abandons its batch)."""
        redis = _redis()
        attempt = 0
        while True:
            try:
                if self._client is None:
                    self._client = self._connect()
                return fn(self._client)
            except (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError) as e:
                attempt += 1
                self.stats.reconnects += 1
                self.metrics.reconnects.labels(self.source).inc()
                wait = min(self.spec.max_backoff_s, 0.1 * 2 ** min(attempt - 1, 10))
                self.log(f"ingest {self.source}: Redis at {self._where()} unavailable while {what} "
                         f"({type(e).__name__}: {e}); retry {attempt} in {wait:.1f}s")
                try:
                    if self._client is not None:
                        self._client.close()
                except Exception:
                    pass
                self._client = None
                if self.stop.wait(wait) and abandon_on_stop:
                    return None
            except redis.ResponseError as e:
                if "NOGROUP" in str(e):
                    self.log(f"ingest {self.source}: consumer group '{self.spec.group}' is gone "
                             "(a Redis restart without persistence?); creating it again")
                    self._ensure_group()
                    continue
                # WRONGTYPE (the key holds no stream), a command the server refuses (an ACL, a
                # Redis too old for streams): terminal, named with the stream and the step
                raise SourceError(
                    f"ingest {self.source}: Redis at {self._where()} refused {what} on stream "
                    f"'{self.spec.key}' (group '{self.spec.group}'): {e}",
                    hint="check that --key names a stream (`TYPE <key>` in redis-cli says "
                    "'stream' or 'none') and that this user may run stream commands; the "
                    "batch in flight stays pending for the rerun (docs/streams.md)") from e

    def _where(self) -> str:
        from skewless.online.redis import parse_connection_string
        try:
            return parse_connection_string(self.spec.url)[2]
        except SkewlessError:
            return "?"

    def _ensure_group(self) -> None:
        redis = _redis()

        def create(r: Any) -> None:
            try:
                r.xgroup_create(self.spec.key, self.spec.group, id=self.spec.start, mkstream=True)
            except redis.ResponseError as e:
                if "BUSYGROUP" not in str(e):
                    raise
        self._call("creating the consumer group", create)

    # --- one batch ------------------------------------------------------------------------------

    def _columns(self) -> tuple[list[Any], list[str]]:
        """The push source's columns as a push expects them, from the registry as it is now
        (a definition changed while the consumer runs applies to the next batch)."""
        snapshot = self.store.snapshot()
        push, views = find_push_source(snapshot, self.source)
        target = push_target(push, self.store.repo_path)
        expected = _expected(push.batch_source, views, snapshot, target.schema)
        self._push = push
        self._required = [c.push_name for c in expected if c.required]
        ts = push.batch_source.timestamp_field
        self._ts_push = next(c.push_name for c in expected if c.file_name == ts)
        return expected, [c.push_name for c in expected]

    def _dead(self, entry_id: str, fields: dict[str, str], reason: str) -> bool:
        """Dead-letter and acknowledge one entry, atomically; False when stopped meanwhile."""
        def send(r: Any) -> bool:
            pipe = r.pipeline(transaction=True)
            letter = {**fields, "reason": reason, "entry_id": entry_id, "stream": self.spec.key,
                      "push_source": self.source}
            # as bytes: a field that is not UTF-8 goes back as the producer wrote it
            pipe.xadd(self.spec.dead, {k.encode("utf-8", "surrogateescape"): v.encode("utf-8", "surrogateescape")
                                       for k, v in letter.items()})
            pipe.xack(self.spec.key, self.spec.group, entry_id)
            pipe.execute()
            return True
        if self._call("dead-lettering an entry", send) is None:
            return False
        self.stats.dead += 1
        self.metrics.entries.labels(self.source, "dead_letter").inc()
        self.log(f"ingest {self.source}: entry {entry_id} -> {self.spec.dead}: {reason}")
        return True

    def _parse(self, names: list[str], entries: list[tuple[str, dict[str, str]]]
               ) -> list[tuple[str, dict[str, Any]]] | None:
        """The entries whose ``data`` is a JSON object with every required column and no
        unknown one, as (id, row); the others dead-lettered. None when stopped meanwhile."""
        known = set(names)
        good: list[tuple[str, dict[str, Any]]] = []
        for entry_id, fields in entries:
            reason = None
            raw = fields.get(DATA_FIELD)
            row: Any = None
            if raw is None:
                reason = f"no '{DATA_FIELD}' field (fields: {sorted(fields)})"
            elif (bad := _not_utf8(raw)) is not None:
                reason = f"'{DATA_FIELD}' is not UTF-8 text ({bad})"
            else:
                try:
                    row = json.loads(raw)
                except ValueError as e:
                    reason = f"'{DATA_FIELD}' is not JSON: {e}"
                except RecursionError:   # nested past the parser's depth: not a row of columns
                    reason = f"'{DATA_FIELD}' is JSON nested too deeply to parse"
                else:
                    if not isinstance(row, dict):
                        reason = f"'{DATA_FIELD}' is a JSON {type(row).__name__}, expected an object"
                    else:
                        missing = [c for c in self._required if c not in row]
                        extra = [c for c in row if c not in known]
                        if missing:
                            reason = f"missing column(s) {missing}"
                        elif extra:
                            reason = f"unknown column(s) {extra}; the push source has {names}"
            if reason is not None:
                if not self._dead(entry_id, fields, reason):
                    return None
                continue
            good.append((entry_id, row))
        return good

    def _bad_values(self, expected: list[Any], good: list[tuple[str, dict[str, Any]]],
                    entries: list[tuple[str, dict[str, str]]]) -> list[tuple[str, dict[str, Any]]] | None:
        """After push refused the batch: each entry checked alone by push's rule, the bad ones
        dead-lettered with push's reason; the others returned. None when stopped meanwhile."""
        now = self.store.clock()
        tolerance = self.store.context.created_tolerance
        fields_of = dict(entries)
        kept = []
        for entry_id, row in good:
            try:
                _validate(self._push, expected, {n: [v] for n, v in row.items()}, now, tolerance)
            except InvalidRequestError as e:
                reason = e.message.split("\n", 1)[-1].strip().lstrip("- ")
                if not self._dead(entry_id, dict(fields_of[entry_id]), reason):
                    return None
                continue
            kept.append((entry_id, row))
        return kept

    def _dedup(self, good: list[tuple[str, dict[str, Any]]]) -> tuple[list[tuple[str, dict[str, Any]]], list[str]]:
        if self.event_id is None:
            return good, []
        seen: set[Any] = set()
        kept, dropped = [], []
        for entry_id, row in good:
            eid = row.get(self.event_id)
            if isinstance(eid, (list, dict)):   # not an id (push's type check dead-letters it)
                kept.append((entry_id, row))
                continue
            if eid is not None and eid in seen:
                dropped.append(entry_id)
                continue
            seen.add(eid)
            kept.append((entry_id, row))
        return kept, dropped

    def _table(self, names: list[str], good: list[tuple[str, dict[str, Any]]]
               ) -> tuple[dict[str, Any], pa.Array | None]:
        """The batch as columns for push, the event times parsed once (for push and for the
        freshness metric; None when some do not parse: push then names them)."""
        cols: dict[str, Any] = {n: [r.get(n) for _, r in good] for n in names
                                if any(n in r for _, r in good)}
        values = cols.get(self._ts_push)
        events = None
        if values is not None and all(isinstance(v, str) for v in values):
            try:
                events = cast(pa.array(values, pa.string()), UTC_MICROS)
            except (ValueError, pa.ArrowInvalid, SkewlessError):
                events = None
            if events is not None:
                cols[self._ts_push] = events
        return cols, events

    def process(self, entries: list[tuple[str, dict[str, str]]]) -> bool:
        """Handle one batch (as XREADGROUP returns it); True when acknowledged, False when
        abandoned (stop requested during a retry: the entries stay pending)."""
        if not entries:
            return True
        expected, names = self._columns()
        good = self._parse(names, entries)
        if good is None:
            return False
        good, dropped = self._dedup(good)
        done: BatchDone | None = None
        report = None
        retried = False
        while good:
            # the batch id is derived after every bad entry is gone: a redelivery (of the good
            # ones only: the bad ones are acknowledged) derives the same id
            batch_id = batch_id_for(self.spec.key, [i for i, _ in good])
            cols, events = self._table(names, good)
            try:
                report = self._push_until_done(batch_id, cols)
            except InvalidRequestError as refused:
                kept = self._bad_values(expected, good, entries)
                if kept is None:
                    return False
                if len(kept) == len(good):
                    # No entry is bad alone. The checks that depend on the clock (an event time
                    # after now, a created time beyond the tolerance) only relax as it moves on:
                    # an entry a moment in the future at the push may be fine at the check
                    # after it. Push once more; refused again, a definition changed meanwhile.
                    if retried:
                        raise refused
                    retried = True
                good = kept
                continue
            if report is None:
                return False
            servable = time.time()
            seconds = np.array([], dtype=float)
            if events is not None:   # else push converted them (it accepted the batch): not metered
                seconds = events.cast(pa.int64()).to_numpy(zero_copy_only=False) / 1e6
                self._observe(servable, seconds)
            if report.duplicate:
                self.stats.redelivered += 1
                self.metrics.redelivered.labels(self.source).inc()
            done = BatchDone(batch_id, tuple(i for i, _ in good), len(good), report.duplicate,
                             servable, tuple(seconds.tolist()))
            break
        ids = [i for i, _ in good]
        to_ack = ids + dropped
        if to_ack and self._call("acknowledging a batch",
                                 lambda r: r.xack(self.spec.key, self.spec.group, *to_ack)) is None:
            return False
        self.stats.batches += 1
        self.stats.ingested += len(ids)
        self.stats.duplicates += len(dropped)
        self.metrics.batches.labels(self.source).inc()
        self.metrics.entries.labels(self.source, "ingested").inc(len(ids))
        if dropped:
            self.metrics.entries.labels(self.source, "duplicate").inc(len(dropped))
        if done is not None and self.on_batch is not None:
            self.on_batch(done)
        return True

    def _observe(self, servable: float, event_seconds: Any) -> None:
        """Freshness of each row (servable - event time), added to the histogram in one update
        per bucket (an observe() per row costs ~9 us under prometheus-client's lock)."""
        ages = np.maximum(servable - event_seconds, 0.0)
        observe_many(self.metrics.freshness.labels(self.source), self.metrics.bounds, ages)
        latest = float(event_seconds.max())
        self.metrics.last_event.labels(self.source).set(latest)
        last = datetime.fromtimestamp(latest, timezone.utc)
        if self.stats.last_event is None or last > self.stats.last_event:
            self.stats.last_event = last

    def _push_until_done(self, batch_id: str, cols: dict[str, list[Any]]) -> Any:
        """The push, retried while the online store fails (the offline file, once written, is
        found again by its batch id); None when stopped meanwhile."""
        attempt = 0
        while True:
            try:
                return self.store.push(self.source, cols, batch_id=batch_id)
            except InvalidRequestError:
                raise   # a bad entry: the caller finds it and dead-letters it
            except SkewlessError as e:
                if not (e.retryable or isinstance(e, OnlineStoreError)):
                    raise
                attempt += 1
                wait = min(self.spec.max_backoff_s, 0.1 * 2 ** min(attempt - 1, 10))
                self.log(f"ingest {self.source}: push of batch {batch_id} failed ({e.message}); "
                         f"retry {attempt} in {wait:.1f}s")
                if self.stop.wait(wait):
                    return None

    # --- the loop -------------------------------------------------------------------------------

    def _read(self, start_id: str, count: int, block: int | None) -> list[tuple[str, dict[str, str]]] | None:
        def read(r: Any) -> Any:
            return r.xreadgroup(self.spec.group, self.spec.consumer, {self.spec.key: start_id},
                                count=count, block=block)
        while True:
            answer = self._call("reading", read)
            if answer is None:
                return None
            entries: list[tuple[str, dict[str, str]]] = []
            gone: list[str] = []
            for _key, items in answer or []:
                for i, f in items:
                    if f is None or not f:   # deleted from the stream (XDEL, trimming) while pending
                        gone.append(i)
                    else:
                        entries.append((i, f))
            if not gone:
                return entries
            self.log(f"ingest {self.source}: {len(gone)} pending entr{'y was' if len(gone) == 1 else 'ies were'} "
                     "deleted from the stream meanwhile; acknowledging them (nothing to ingest)")
            if self._call("acknowledging deleted entries",
                          lambda r: r.xack(self.spec.key, self.spec.group, *gone)) is None:
                return None
            if entries:
                return entries

    def recover(self) -> int:
        """Re-process this consumer's pending batch, then other consumers' idle ones (claimed,
        one consumer's entries as one batch). Returns the entries handled."""
        handled = 0
        while not self.stop.is_set():
            mine = self._read("0", self.spec.batch_size, None)
            if not mine:
                break
            self.log(f"ingest {self.source}: re-processing {len(mine)} pending entr"
                     f"{'y' if len(mine) == 1 else 'ies'} of consumer '{self.spec.consumer}'")
            if not self.process(mine):
                return handled
            handled += len(mine)
        if self.stop.is_set():
            return handled
        return handled + self.claim_idle()

    def claim_idle(self) -> int:
        """Claim (``XCLAIM``) and process the entries other consumers have left pending for
        longer than ``claim_idle_ms``: each consumer's entries as one batch, the batch it was
        processing (so it keeps its batch id). Returns the entries handled."""
        handled = 0
        self._last_claim = time.monotonic()
        pending = self._call("listing pending entries", lambda r: r.xpending_range(
            self.spec.key, self.spec.group, min="-", max="+", count=100_000,
            idle=self.spec.claim_idle_ms)) or []
        by_consumer: dict[str, list[str]] = {}
        for p in pending:
            if p["consumer"] != self.spec.consumer:
                by_consumer.setdefault(p["consumer"], []).append(p["message_id"])
        for other, ids in by_consumer.items():
            if self.stop.is_set():
                break
            # all of them in one XCLAIM (atomic: a consumer claiming at the same time gets none)
            # and one batch, never cut by this consumer's batch size: the same batch id
            claimed = self._call("claiming entries", lambda r: r.xclaim(
                self.spec.key, self.spec.group, self.spec.consumer,
                min_idle_time=self.spec.claim_idle_ms, message_ids=ids))
            if claimed is None:
                return handled
            entries = [(eid, f) for eid, f in claimed if f]
            gone = [eid for eid, f in claimed if not f]
            if gone and self._call("acknowledging deleted entries",
                                   lambda r: r.xack(self.spec.key, self.spec.group, *gone)) is None:
                return handled
            if not entries:
                continue
            self.log(f"ingest {self.source}: claimed {len(entries)} entr"
                     f"{'y' if len(entries) == 1 else 'ies'} idle in consumer '{other}'")
            if not self.process(entries):
                return handled
            handled += len(entries)
        return handled

    def run(self, max_entries: int | None = None) -> IngestStats:
        """Consume until :attr:`stop` is set (or ``max_entries`` were handled). The batch in
        progress when ``stop`` is set is finished if its writes succeed without retry, else
        abandoned unacknowledged (a rerun re-processes it)."""
        self._ensure_group()
        self.log(f"ingest {self.source}: consuming stream '{self.spec.key}' at {self._where()} "
                 f"as '{self.spec.consumer}' of group '{self.spec.group}'")
        self.recover()
        errors_before = self.stats.reconnects
        while not self.stop.is_set():
            if max_entries is not None and self.stats.ingested + self.stats.dead + self.stats.duplicates >= max_entries:
                break
            entries = self._read(">", self.spec.batch_size, self.spec.block_ms)
            if entries is None:
                break
            if self.stats.reconnects != errors_before:   # back after an outage: anything left?
                errors_before = self.stats.reconnects
                self.log(f"ingest {self.source}: Redis is back")
                if not self.process(entries):
                    break
                self.recover()
                continue
            if not self.process(entries):
                break
            if time.monotonic() - self._last_claim >= max(self.spec.claim_idle_ms / 1000, 1.0):
                self.claim_idle()   # a consumer of the group died meanwhile
        if self._client is not None:
            try:
                self._client.close()
            except Exception:
                pass
            self._client = None
        return self.stats


__all__ = ["BatchDone", "DATA_FIELD", "IngestStats", "Metrics", "StreamIngest", "StreamSpec",
           "batch_id_for", "observe_many"]
