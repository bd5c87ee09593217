"""``skewless serve``: the HTTP feature server (uvicorn running ``skewless.server``).

One worker: uvicorn in this process. Several: one process per worker, each with its own
SO_REUSEPORT socket (``skewless.server.workers``), or uvicorn's multi-process mode where the
platform has no SO_REUSEPORT. The app is built in each worker by ``app_from_env`` from
``SKEWLESS_REPO``."""

from __future__ import annotations

import atexit
import errno
import os
import shutil
import socket
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

    from skewless.server.workers import APP, reuse_port_supported
    from skewless.server.workers import run as run_workers
    from skewless.backends import require_of
    from skewless.store import FeatureStore

    path = (repo or repo_of(ctx)).expanduser().resolve()
    store = FeatureStore(path)  # fail fast on a bad repo or config, before any worker starts
    if workers > 1:   # every worker opens the online store: they must all see the same one
        require_of("online_store", store.config.online_store.type, "shared", f"--workers {workers}")
    if log_level.lower() not in ("critical", "error", "warning", "info", "debug", "trace"):
        raise InvalidRequestError(f"--log-level {log_level!r} is not a log level",
                                  hint="critical, error, warning, info, debug or trace")
    multi = workers > 1 and reuse_port_supported()
    if multi and port == 0:
        raise InvalidRequestError("--port 0 needs --workers 1 (each worker would pick its own port)")
    # Refuse a port that cannot be listened on before anything starts, whatever the worker
    # count. One worker serves on the very socket checked here (no window for another process
    # to take the port); several each bind their own SO_REUSEPORT socket after the same check.
    sock = claim_port(host, port, keep=workers == 1)
    if sock is not None:
        port = sock.getsockname()[1]
    os.environ["SKEWLESS_REPO"] = str(path)
    metrics_dir = _prepare_multiprocess_metrics(workers)
    options: dict[str, Any] = {
        "loop": "uvloop" if _has("uvloop") else "auto", "http": "httptools" if _has("httptools") else "auto",
        "access_log": access_log, "log_level": log_level.lower(), "timeout_keep_alive": 75, "backlog": 4096}
    online = store.config.online_store.type
    console.print(f"skewless feature server: project '{store.project}' ({online} online store), "
                  f"http://{_netloc(host, port)}, {workers} worker(s)"
                  + (f", metrics in {metrics_dir}" if metrics_dir and workers > 1 else ""), soft_wrap=True)
    if sock is not None:
        server = uvicorn.Server(uvicorn.Config(APP, factory=True, host=host, port=port, **options))
        try:
            server.run(sockets=[sock])
        except KeyboardInterrupt:
            pass
        finally:
            sock.close()
        if not server.started:
            raise typer.Exit(3)  # the app failed to start: uvicorn logged why
        return
    if multi:
        try:
            status = run_workers(host, port, workers, options)
        except OSError as e:  # taken between the check and the workers' bind
            raise port_error(host, port, e) from None
        if status:
            raise typer.Exit(status)
        return
    uvicorn.run(APP, factory=True, host=host, port=port, workers=workers, **options)


def _netloc(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def claim_port(host: str, port: int, keep: bool) -> socket.socket | None:
    """Check that ``host:port`` can be listened on: a plain bind (no SO_REUSEPORT) fails if any
    process listens there, another ``skewless serve`` included, on that address or on a
    wildcard one. If it cannot, an error naming ``host:port`` and what to do (docs/server.md).
    ``keep=True`` returns the bound, listening socket for the server to use; else it is closed."""
    try:
        sock = _bind(host, port)
    except OSError as e:
        raise port_error(host, port, e) from None
    if keep:
        return sock
    sock.close()
    return None


def _bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` as uvicorn would open it (SO_REUSEADDR, so a port
    left in TIME_WAIT by a previous run is reusable; no SO_REUSEPORT, so the bind fails if any
    process listens there)."""
    infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, _, _, _, address = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(4096)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def port_error(host: str, port: int, e: OSError) -> InvalidRequestError:
    """The refusal of ``host:port``: what went wrong, and what to do (docs/server.md)."""
    where = _netloc(host, port)
    if isinstance(e, socket.gaierror):
        return InvalidRequestError(f"cannot listen on {where}: --host {host!r} is not a known address "
                                   f"({e.strerror or e})",
                                   hint="pass an IP address of this machine (127.0.0.1, 0.0.0.0, ::1, ::) "
                                   "or a resolvable host name")
    if e.errno == errno.EADDRINUSE:
        return InvalidRequestError(
            f"cannot listen on {where}: the port is already in use (another `skewless serve`, or any "
            "process listening there); nothing was started",
            hint=f"stop what listens on port {port} (`ss -ltnp 'sport = :{port}'` shows it), or "
            "pick another --port")
    if e.errno in (errno.EACCES, errno.EPERM):
        return InvalidRequestError(
            f"cannot listen on {where}: permission denied (ports below 1024 need root or "
            "CAP_NET_BIND_SERVICE); nothing was started",
            hint="pick a --port of 1024 or above (the default is 6566), or put a proxy in front")
    if e.errno == errno.EADDRNOTAVAIL:
        return InvalidRequestError(
            f"cannot listen on {where}: {host} is not an address of this machine; nothing was started",
            hint="use 127.0.0.1 (this machine only) or 0.0.0.0 (every interface); `::1` or `::` for IPv6")
    return InvalidRequestError(f"cannot listen on {where}: {e.strerror or e}; nothing was started",
                               hint="pick another --host or --port")


def _has(module: str) -> bool:
    import importlib.util
    return importlib.util.find_spec(module) is not None
