"""``skewless serve``: the HTTP feature server (uvicorn running ``skewless.server``).

One worker: uvicorn in this process. Several: one process per worker, each with its own
SO_REUSEPORT socket (``skewless.server.workers``), or uvicorn's multi-process mode where the
platform has no SO_REUSEPORT. The app is built in each worker by ``app_from_env`` from
``SKEWLESS_REPO``."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from skewless.cli._common import console, guarded, repo_of
from skewless.errors import InvalidRequestError


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)


def _prepare_multiprocess_metrics(workers: int) -> str | None:
    """With several workers, Prometheus metrics live in files every worker writes and
    ``/metrics`` aggregates: a fresh directory, removed at exit, unless the user set one."""
    if workers <= 1 or os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    path = tempfile.mkdtemp(prefix="skewless-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = path
    atexit.register(shutil.rmtree, path, True)
    return path


@guarded
def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", "-p", min=0, max=65535, help="Port to listen on.")] = 6566,
    workers: Annotated[int, typer.Option("--workers", "-w", min=1,
                                         help="Worker processes (one event loop each).")] = 1,
    repo: Annotated[Optional[Path], typer.Option(
        "--repo", "-r", show_default=False,
        help="The feature repo (default: the global --repo, else the current directory).")] = None,
    access_log: Annotated[bool, typer.Option("--access-log/--no-access-log",
                                             help="Log every request (costs latency).")] = False,
    log_level: Annotated[str, typer.Option("--log-level", help="uvicorn log level.")] = "info",
) -> None:
    """Serve online features over HTTP (Feast-compatible requests and responses).

    POST /get-online-features and /push; GET /health, /ready, /metrics, /openapi.json.

    GET /ready answers 200 once the online store answers and every online view was materialized.

    See docs/server.md.
    """
    import uvicorn

    from skewless.server.workers import reuse_port_supported
    from skewless.server.workers import run as run_workers
    from skewless.store import FeatureStore

    path = (repo or repo_of(ctx)).expanduser().resolve()
    store = FeatureStore(path)  # fail fast on a bad repo or config, before any worker starts
    if log_level.lower() not in ("critical", "error", "warning", "info", "debug", "trace"):
        raise InvalidRequestError(f"--log-level {log_level!r} is not a log level",
                                  hint="critical, error, warning, info, debug or trace")
    os.environ["SKEWLESS_REPO"] = str(path)
    metrics_dir = _prepare_multiprocess_metrics(workers)
    options: dict[str, Any] = {
        "loop": "uvloop" if _has("uvloop") else "auto", "http": "httptools" if _has("httptools") else "auto",
        "access_log": access_log, "log_level": log_level.lower(), "timeout_keep_alive": 75, "backlog": 4096}
    online = store.config.online_store.type
    console.print(f"skewless feature server: project '{store.project}' ({online} online store), "
                  f"http://{host}:{port}, {workers} worker(s)"
                  + (f", metrics in {metrics_dir}" if metrics_dir and workers > 1 else ""), soft_wrap=True)
    if workers > 1 and reuse_port_supported():
        if port == 0:
            raise InvalidRequestError("--port 0 needs --workers 1 (each worker would pick its own port)")
        try:
            status = run_workers(host, port, workers, options)
        except OSError as e:
            raise InvalidRequestError(f"cannot listen on {host}:{port}: {e.strerror or e}",
                                      hint="pick another --port, or stop what is using it") from None
        if status:
            raise typer.Exit(status)
        return
    uvicorn.run("skewless.server.app:app_from_env", factory=True, host=host, port=port,
                workers=workers, **options)


def _has(module: str) -> bool:
    import importlib.util
    return importlib.util.find_spec(module) is not None
