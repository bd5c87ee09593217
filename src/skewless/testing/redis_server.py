"""Redis for tests.

A throwaway ``redis-server`` owned by a test (:func:`redis_server`): started on a free loopback
port, stopped (or killed mid-test, to simulate an outage) by its pid; it never touches the
shared Redis on 6379.

The shared Redis (``.ci/run`` starts one on 127.0.0.1:6379): :func:`require_shared_redis` and
:func:`require_redis_server_binary` skip a test (or a whole module) when what it needs is
missing, unless the environment sets ``CI_REQUIRE_REDIS`` (CI does), where they raise instead;
:func:`purge_project` deletes every key of a project's namespace afterwards.

pytest is imported only by the functions that skip (it is a ``dev`` dependency), redis-py only
by those that talk to a server.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

SHARED_REDIS = "127.0.0.1:6379"
"""The shared Redis the integration tests use, each under a project namespace of its own."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@dataclass
class RedisServer:
    """``data_dir``: where ``SAVE`` writes its snapshot (``dump.rdb``), which a restart loads
    (None: the working directory; tests that save give one)."""

    port: int
    proc: subprocess.Popen[bytes] | None = None
    data_dir: str | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 5.0) -> None:
        exe = shutil.which("redis-server")
        if exe is None:
            raise RuntimeError("redis-server is not on PATH")
        self.proc = subprocess.Popen(
            [exe, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--daemonize", "no", "--loglevel", "warning",
             *(["--dir", self.data_dir] if self.data_dir is not None else [])],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while not _answers(self.port):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"redis-server did not start on port {self.port}")
            time.sleep(0.02)

    def kill(self) -> None:
        """SIGKILL: the server vanishes as in a crash, its data with it."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        self.proc = None


@contextmanager
def redis_server(data_dir: str | None = None) -> Iterator[RedisServer]:
    server = RedisServer(free_port(), data_dir=data_dir)
    server.start()
    try:
        yield server
    finally:
        server.kill()


# --- the shared Redis ---------------------------------------------------------------------------

def _skip_or_raise(problem: str, skip_reason: str, module_level: bool) -> None:
    """Raise ``RuntimeError`` when ``CI_REQUIRE_REDIS`` is set, else skip the test (the module
    with ``module_level``)."""
    if os.environ.get("CI_REQUIRE_REDIS"):
        raise RuntimeError(f"CI_REQUIRE_REDIS is set but {problem}")
    import pytest
    pytest.skip(skip_reason, allow_module_level=module_level)


def _redis_py_or_skip(module_level: bool) -> None:
    try:
        import redis  # noqa: F401
    except ImportError:
        _skip_or_raise("redis-py is not installed",
                       'redis-py is not installed (pip install "skewless[redis]")', module_level)


def _client(address: str, **options: Any) -> Any:
    """A redis-py client for a connection string as the Redis online store reads it
    (``host:port[,db=1,...]`` or a ``redis://`` URL)."""
    import redis

    from skewless.online.redis import parse_connection_string
    url, kwargs, _ = parse_connection_string(address)
    if url is not None:
        return redis.Redis.from_url(url, **options)
    return redis.Redis(**kwargs, **options)


def require_shared_redis(address: str = SHARED_REDIS, module_level: bool = False) -> None:
    """Return when a Redis answers PING at ``address`` (and redis-py is installed); otherwise
    skip the calling test, or its whole module when called at module level with
    ``module_level=True``. With ``CI_REQUIRE_REDIS`` set, raise ``RuntimeError`` instead of
    skipping, so CI cannot pass by skipping the Redis tests."""
    _redis_py_or_skip(module_level)
    from redis.exceptions import RedisError
    try:
        client = _client(address, socket_connect_timeout=0.5)
        try:
            up = bool(client.ping())
        finally:
            client.close()
    except RedisError:
        up = False
    if not up:
        from skewless.online.redis import parse_connection_string
        port = parse_connection_string(address)[1].get("port", 6379)
        _skip_or_raise(f"no Redis answers on {address}",
                       f"no Redis on {address} (start one: redis-server --port {port})", module_level)


def require_redis_server_binary(module_level: bool = False) -> None:
    """Return when a ``redis-server`` binary is on PATH (and redis-py is installed), for tests
    that start their own server with :func:`redis_server`; otherwise skip or, with
    ``CI_REQUIRE_REDIS`` set, raise ``RuntimeError`` (as :func:`require_shared_redis`)."""
    _redis_py_or_skip(module_level)
    if shutil.which("redis-server") is None:
        _skip_or_raise("redis-server is not on PATH", "needs redis-server on PATH", module_level)


def purge_project(project: str, address: str = SHARED_REDIS) -> list[bytes]:
    """Delete every key of ``project``'s namespace from the Redis at ``address``: its entries
    in ``sk:@tables`` (tables named ``{project}.{key}``: ``skewless.online.table_name``, and
    their staging tables), their ``sk:@count:{generation}`` counters, and the keys matching
    ``sk:{project}.*`` and ``sk:@count:{project}.*``.

    Returns the keys still matching ``*{project}*`` afterwards: empty unless something wrote
    outside the online store's key layout (tests assert it is empty)."""
    r = _client(address)
    try:
        tables = [t for t in r.hkeys("sk:@tables") if t.decode().startswith(project + ".")]
        if tables:
            gens = r.hmget("sk:@tables", tables)
            r.hdel("sk:@tables", *tables)
            counters = [b"sk:@count:" + g for g in gens if g]
            if counters:
                r.unlink(*counters)
        for pattern in (f"sk:{project}.*", f"sk:@count:{project}.*"):
            keys = list(r.scan_iter(match=pattern, count=1000))
            if keys:
                r.unlink(*keys)
        return list(r.scan_iter(match=f"*{project}*", count=1000))
    finally:
        r.close()
