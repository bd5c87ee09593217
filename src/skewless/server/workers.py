"""Several server processes on one port, each with its own listening socket (SO_REUSEPORT).

uvicorn's own multi-process mode shares one listening socket between its workers, and whichever
worker wakes first accepts every pending connection: when a client pool opens its keep-alive
connections in a burst (the usual case), one worker gets all of them and the others idle
(measured with ``bench/server.py``: 32 connections, 100% on one of two workers, half the
throughput). With one SO_REUSEPORT socket per worker, the kernel spreads new connections over
the workers by hash.

The supervisor starts ``workers`` processes (spawned, so each imports the app afresh and builds
its own store), restarts one that dies (and gives up, exit status 1, when they keep dying:
more than two deaths per worker within 30 s), never recycles them, and stops them all on
SIGINT / SIGTERM (each finishes its requests: uvicorn's graceful shutdown). A worker whose
supervisor is gone (SIGKILL) stops itself, gracefully, within a second.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import socket
import threading
import time
from typing import Any

log = logging.getLogger("uvicorn.error")

APP = "skewless.server.app:app_from_env"
CRASH_WINDOW_S = 30


def reuse_port_supported() -> bool:
    return hasattr(socket, "SO_REUSEPORT")


def _listen(host: str, port: int, backlog: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(backlog)
    sock.set_inheritable(True)
    return sock


def _stop_with(parent: int) -> None:  # pragma: no cover - subprocess
    """SIGTERM this worker (uvicorn's graceful shutdown) once its supervisor ``parent`` is gone
    (killed with SIGKILL, which it cannot pass on): an orphaned worker would answer on the port
    with nobody to restart it, and keep the port from the next ``skewless serve``."""
    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        log.warning("the supervisor (pid %s) is gone: stopping worker %s", parent, os.getpid())
        os.kill(os.getpid(), signal.SIGTERM)
    threading.Thread(target=watch, name="skewless-supervisor-watch", daemon=True).start()


def _worker(host: str, port: int, options: dict[str, Any], app: str = APP,
            parent: int | None = None) -> None:  # pragma: no cover - subprocess
    import uvicorn
    if parent is not None:
        _stop_with(parent)
    config = uvicorn.Config(app, factory=True, host=host, port=port, **options)
    # Import the app and build its store before listening: the kernel routes new connections to
    # a socket as soon as it listens, and a (re)starting worker would hold them unanswered for
    # as long as its imports take (seconds on a loaded machine).
    config.load()
    sock = _listen(host, port, options.get("backlog", 2048))
    uvicorn.Server(config).run(sockets=[sock])


def check_port(host: str, port: int) -> None:
    """Fail fast (OSError) if ``host:port`` is taken: by a process that did not set
    SO_REUSEPORT (the bind fails), or by one that did, such as another ``skewless serve``
    (something answers there; sharing its port would split traffic between two servers)."""
    probe = "127.0.0.1" if host in ("0.0.0.0", "") else "::1" if host == "::" else host
    family = socket.AF_INET6 if ":" in probe else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        if s.connect_ex((probe, port)) == 0:
            raise OSError(98, "something is already listening there")
    _listen(host, port, 1).close()


def run(host: str, port: int, workers: int, options: dict[str, Any], app: str = APP,
        restart: bool = True) -> int:
    """Run ``workers`` server processes of ``app`` (an import string of an app factory) until
    SIGINT/SIGTERM; returns an exit status. ``restart=False`` stops everything (status 1) when
    a worker dies, for benchmarks that must not measure a restart."""
    check_port(host, port)
    ctx = multiprocessing.get_context("spawn")
    stopping = False

    def stop(signum: int, frame: Any) -> None:
        nonlocal stopping
        stopping = True

    previous = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}

    def start() -> Any:
        p = ctx.Process(target=_worker, args=(host, port, options, app, os.getpid()),
                        name="skewless-worker")
        p.start()
        return p

    procs = [start() for _ in range(workers)]
    deaths: list[float] = []
    try:
        while not stopping:
            time.sleep(0.2)
            for i, p in enumerate(procs):
                if p.is_alive() or stopping:
                    continue
                if not restart:
                    log.error("worker %s died (exit code %s): stopping", p.pid, p.exitcode)
                    return 1
                now = time.monotonic()
                deaths = [t for t in deaths if now - t < CRASH_WINDOW_S] + [now]
                if len(deaths) > 2 * workers:  # a crash loop (cannot bind, app fails to start)
                    log.error("workers keep dying (%d deaths in %d s, last exit code %s): stopping",
                              len(deaths), CRASH_WINDOW_S, p.exitcode)
                    return 1
                log.warning("worker %s died (exit code %s): starting another", p.pid, p.exitcode)
                procs[i] = start()
    finally:
        for p in procs:
            if p.is_alive() and p.pid is not None:
                p.terminate()  # SIGTERM: uvicorn's graceful shutdown
        deadline = time.monotonic() + 30
        for p in procs:
            p.join(max(0.0, deadline - time.monotonic()))
            if p.is_alive():
                p.kill()
                p.join(5)
        for s, h in previous.items():
            signal.signal(s, h)
    return 0
