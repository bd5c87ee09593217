"""``skewless ingest`` (a Redis Stream into a push source) and ``skewless compact`` (merge a push
source's small files): docs/streams.md."""

from __future__ import annotations

import signal
import socket
import time
from typing import Annotated, Any, Optional

import typer

from skewless.cli._common import console, err_console, guarded, open_store, plural
from skewless.errors import ConfigError


def register(app: typer.Typer) -> None:
    app.command("ingest")(ingest)
    app.command("compact")(compact)


def _stream_url(url: str) -> tuple[str, str | None]:
    """``redis://host:port/db`` plus an optional stream key as the URL's fragment
    (``redis://host:6379/0#orders``)."""
    if not url.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigError(f"--stream {url!r}: expected a redis://host:port/db URL",
                          hint="e.g. --stream redis://127.0.0.1:6379/0 --key orders")
    base, _, key = url.partition("#")
    return base, key or None


@guarded
def ingest(
    ctx: typer.Context,
    push_source: Annotated[str, typer.Option("--push-source", "-s", help="The PushSource to feed.")],
    stream: Annotated[str, typer.Option(
        "--stream", help="The Redis holding the stream: redis://host:port/db (a stream key may "
        "follow as '#key').")],
    key: Annotated[Optional[str], typer.Option(
        "--key", "-k", help="The stream key (default: the URL's '#key', else the push source's name).")] = None,
    group: Annotated[str, typer.Option("--group", "-g", help="The consumer group.")] = "skewless",
    consumer: Annotated[Optional[str], typer.Option(
        "--consumer", "-c", help="This consumer's name, stable across restarts: a rerun takes its "
        "pending entries back by it (default: the host name; give each process its own).")] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Entries per batch at most.")] = 1000,
    block_ms: Annotated[int, typer.Option("--block-ms", help="How long one read waits for entries.")] = 500,
    claim_idle_ms: Annotated[int, typer.Option(
        "--claim-idle-ms", help="Claim other consumers' pending entries idle this long (at start, then as often).")] = 60_000,
    start: Annotated[str, typer.Option(
        "--start", help="Where a new consumer group starts: 0 (the whole stream) or $ (new entries).")] = "0",
    dead_key: Annotated[Optional[str], typer.Option(
        "--dead-letter", help="The dead-letter stream (default: '<key>:dead').")] = None,
    metrics_port: Annotated[Optional[int], typer.Option(
        "--metrics-port", help="Serve Prometheus metrics on this port (/metrics).")] = None,
    metrics_host: Annotated[str, typer.Option("--metrics-host", help="Address of the metrics port.")] = "127.0.0.1",
    compact_every: Annotated[float, typer.Option(
        "--compact-every", help="Compact the push source's files every this many seconds, between "
        "batches (0: never; run `skewless compact` instead).")] = 0.0,
    max_entries: Annotated[Optional[int], typer.Option(
        "--max-entries", help="Stop after this many entries (default: run until SIGTERM/SIGINT).")] = None,
) -> None:
    """Consume a Redis Stream into a push source: each batch offline (one atomic Parquet file),
    then online, then acknowledged; malformed entries go to a dead-letter stream. Stops
    cleanly on SIGTERM or Ctrl-C. See docs/streams.md."""
    from skewless.store import StreamMetrics as Metrics, StreamSpec

    url, url_key = _stream_url(stream)
    store = open_store(ctx)
    spec = StreamSpec(url=url, key=key or url_key or push_source, group=group,
                      consumer=consumer or socket.gethostname(), batch_size=batch_size,
                      block_ms=block_ms, claim_idle_ms=claim_idle_ms, start=start,
                      dead_key=dead_key)
    metrics = Metrics()
    if metrics_port is not None:
        from prometheus_client import start_http_server
        start_http_server(metrics_port, addr=metrics_host, registry=metrics.registry)
        err_console.print(f"metrics on http://{metrics_host}:{metrics_port}/metrics")
    last_compact = [time.monotonic()]

    def after_batch(_: Any) -> None:
        if compact_every > 0 and time.monotonic() - last_compact[0] >= compact_every:
            last_compact[0] = time.monotonic()
            r = store.compact(push_source)
            if r.merged:
                err_console.print(f"compacted {sum(r.merged.values())} files into {len(r.merged)}")

    worker = store.stream_ingest(push_source, spec, metrics=metrics,
                                 log=lambda m: err_console.print(m, soft_wrap=True, highlight=False),
                                 on_batch=after_batch)

    def on_signal(signum: int, _frame: Any) -> None:
        err_console.print(f"ingest {push_source}: {signal.Signals(signum).name}: stopping after "
                          "the current batch")
        worker.stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    stats = worker.run(max_entries=max_entries)
    n, b = stats.ingested, stats.batches
    console.print(f"ingested {n:,} entr{'y' if n == 1 else 'ies'} in {b:,} batch{'' if b == 1 else 'es'}"
                  f" ({stats.dead} dead-lettered, {stats.duplicates} duplicate, "
                  f"{stats.redelivered} redelivered batch(es))", soft_wrap=True)


@guarded
def compact(
    ctx: typer.Context,
    push_source: Annotated[str, typer.Option("--push-source", "-s", help="The PushSource whose files to merge.")],
    small_mb: Annotated[float, typer.Option("--small-mb", help="Merge pushed files smaller than this.")] = 16.0,
    target_mb: Annotated[float, typer.Option("--target-mb", help="Merged files grow up to this.")] = 128.0,
    grace_seconds: Annotated[float, typer.Option(
        "--grace-seconds", help="Delete replaced files only this long after the switch (longer "
        "than any read of the source takes).")] = 600.0,
) -> None:
    """Merge a push source's small pushed files into larger ones, atomically and safely while
    readers run; replaced files are deleted by a later run, after --grace-seconds."""
    store = open_store(ctx)
    r = store.compact(push_source, small_bytes=int(small_mb * 2**20),
                      target_bytes=int(target_mb * 2**20), grace_seconds=grace_seconds)
    merged = sum(r.merged.values())
    console.print(f"{push_source}: merged {plural(merged, 'file')} into {plural(len(r.merged), 'file')} "
                  f"({plural(r.rows, 'row')}); readers read {r.files_before} -> {r.files_after} files; "
                  f"deleted {len(r.deleted)}, {r.pending_delete} left for a later run "
                  f"(grace {grace_seconds:g}s)" + (f"; undid {len(r.undone)} crashed merge(s)" if r.undone else ""))
