"""Shared-Redis plumbing for the server tests: availability (the CI_REQUIRE_REDIS rule of
tests/integration/test_redis_store.py) and namespace clean-up."""

from __future__ import annotations

import os
import shutil

import pytest

ADDRESS = "127.0.0.1:6379"


def shared_redis_or_skip() -> None:
    """Skip the module without a Redis on 6379, unless CI_REQUIRE_REDIS=1 (then fail)."""
    redis = pytest.importorskip("redis")
    try:
        up = bool(redis.Redis("127.0.0.1", 6379, socket_connect_timeout=0.5).ping())
    except redis.exceptions.RedisError:
        up = False
    if not up:
        if os.environ.get("CI_REQUIRE_REDIS"):
            raise RuntimeError("CI_REQUIRE_REDIS is set but no Redis answers on 127.0.0.1:6379")
        pytest.skip("no Redis on 127.0.0.1:6379 (start one: redis-server --port 6379)",
                    allow_module_level=True)


def redis_server_or_skip() -> None:
    """Skip the module without a ``redis-server`` binary, unless CI_REQUIRE_REDIS=1."""
    pytest.importorskip("redis")
    if shutil.which("redis-server") is None:
        if os.environ.get("CI_REQUIRE_REDIS"):
            raise RuntimeError("CI_REQUIRE_REDIS is set but redis-server is not on PATH")
        pytest.skip("needs redis-server on PATH", allow_module_level=True)


def purge_namespace(project: str) -> list[bytes]:
    """Delete every key of ``project`` from the shared Redis; returns what is left (nothing)."""
    import redis
    r = redis.Redis("127.0.0.1", 6379)
    try:
        tables = [t for t in r.hkeys("sk:@tables") if t.decode().startswith(project + "__")]
        if tables:
            gens = r.hmget("sk:@tables", tables)
            r.hdel("sk:@tables", *tables)
            r.unlink(*[b"sk:@count:" + g for g in gens if g])
        for pattern in (f"sk:{project}__*", f"sk:@count:{project}__*"):
            keys = list(r.scan_iter(match=pattern, count=1000))
            if keys:
                r.unlink(*keys)
        return list(r.scan_iter(match=f"*{project}*", count=1000))
    finally:
        r.close()
