"""The raw limit of the HTTP server rows of ``bench/compare.py``: the same stack, no skewless.

A plain ASGI callable, run by uvicorn with the settings ``skewless serve`` uses (uvloop,
httptools, no access log, keep-alive 75 s, backlog 4096) and, with several workers, the same
process layout (one spawned process per worker, each on its own SO_REUSEPORT socket, made by
``skewless.server.workers._listen``). It answers ``POST /get-online-features`` by:

1. parsing the JSON body with orjson (``features`` "view:feature", ``entities`` join key -> values);
2. building the Redis keys exactly as skewless's Redis store lays them out,
   ``sk:{generation}:{msgpack([key values])}``, each view's generation resolved once at start-up
   from the ``sk:@tables`` hash (table ``{project}.{view}``: ``skewless.online.table_name``);
3. one MGET (redis-py with hiredis, synchronous on the event loop, as skewless reads);
4. answering the raw records base64-encoded in one JSON list (orjson), view by view, entity by
   entity: no decoding, no statuses, no metrics, no validation beyond what the parse needs.

``GET /health`` answers the worker's pid (the launcher waits until every worker answered).

    .venv/bin/python bench/raw_server.py --port 6570 --workers 2 --project P [--redis 127.0.0.1:6379]

``measure_for_compare(job)`` is bench/compare.py's hook: start it on a free loopback port, check
20 sampled answers (non-null, and decoded here -- not in the server -- for compare.py's value
check), run bench/_load.py's sequential and closed-loop runs, stop it.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent

# = skewless.cli.serve's uvicorn options (log level as bench/server.py starts it)
OPTIONS: dict[str, Any] = {"loop": "uvloop", "http": "httptools", "access_log": False, "log_level": "warning",
                           "timeout_keep_alive": 75, "backlog": 4096}


def app_from_env() -> Any:
    """The ASGI app; RAW_SERVER_REDIS (host:port) and RAW_SERVER_PROJECT from the environment."""
    import orjson
    import redis
    from msgpack import packb

    host, _, port = os.environ.get("RAW_SERVER_REDIS", "127.0.0.1:6379").partition(":")
    project = os.environ["RAW_SERVER_PROJECT"]
    r = redis.Redis(host=host, port=int(port or 6379))
    prefix = f"{project}.".encode()
    tables: dict[bytes, bytes] = r.hgetall(b"sk:@tables")  # type: ignore[assignment]
    prefixes = {t[len(prefix):].decode(): b"sk:" + g + b":" for t, g in tables.items() if t.startswith(prefix)}
    if not prefixes:
        raise SystemExit(f"raw_server: no table of project {project!r} in sk:@tables")
    mget = r.mget
    loads, dumps, b64 = orjson.loads, orjson.dumps, base64.b64encode
    pid = str(os.getpid()).encode()
    json_headers = [(b"content-type", b"application/json")]

    async def reply(send: Any, status: int, body: bytes) -> None:
        await send({"type": "http.response.start", "status": status,
                    "headers": json_headers + [(b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                msg = await receive()
                if msg["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif msg["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        path = scope["path"]
        if path == "/health":
            await reply(send, 200, pid)
            return
        if path != "/get-online-features" or scope["method"] != "POST":
            await reply(send, 404, b'{"error":"not found"}')
            return
        msg = await receive()
        body: bytes = msg.get("body", b"")
        while msg.get("more_body"):
            msg = await receive()
            body += msg.get("body", b"")
        req = loads(body)
        views = dict.fromkeys(f.partition(":")[0] for f in req["features"])
        cols = list(req["entities"].values())
        ks = [packb(list(k), use_bin_type=True) for k in zip(*cols)]
        keys = [p + k for p in (prefixes[v] for v in views) for k in ks]
        vals = mget(keys)
        await reply(send, 200, dumps([None if v is None else b64(v).decode() for v in vals]))  # type: ignore[arg-type]

    return app


def serve(host: str, port: int, workers: int) -> int:
    """One worker: uvicorn here. Several: skewless's own supervisor (one SO_REUSEPORT socket
    per worker), without restarts: a benchmark run fails instead of measuring one."""
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit("raw_server listens on loopback only")
    if workers <= 1:
        import uvicorn
        uvicorn.run(app_from_env, factory=True, host=host, port=port, **OPTIONS)
        return 0
    from skewless.server.workers import run
    return run(host, port, workers, dict(OPTIONS), app="raw_server:app_from_env", restart=False)


# --- compare.py's hook ---------------------------------------------------------------------
sys.path.insert(0, str(HERE))
from _common import stop_process  # noqa: E402


class RawServerProcess:
    def __init__(self, redis: str, project: str, workers: int, log: Path) -> None:
        from server import free_port
        self.port, self.workers, self.log = free_port(), workers, log
        env = {**os.environ, "RAW_SERVER_REDIS": redis, "RAW_SERVER_PROJECT": project}
        with open(log, "wb") as out:
            self.proc = subprocess.Popen([sys.executable, str(Path(__file__)), "--port", str(self.port),
                                          "--workers", str(workers)], stdout=out, stderr=subprocess.STDOUT, env=env)
        self.url = f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Until every worker answered /health (new connections spread by the kernel's hash)."""
        seen: set[bytes] = set()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"raw_server exited:\n{self.log.read_text()[-3000:]}")
            try:
                c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                c.request("GET", "/health")
                r = c.getresponse()
                if r.status == 200:
                    seen.add(r.read())
                c.close()
                if len(seen) >= self.workers:
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"raw_server: {len(seen)}/{self.workers} workers ready within {timeout} s:\n"
                           f"{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        stop_process(self.proc)


def decode(records: list[str | None], views: list[str], entities: int, layouts: dict[bytes, list[str]]
           ) -> dict[str, list[Any]]:
    """The check's side (not the server's): feature -> values, from the base64 records."""
    from msgpack import unpackb
    out: dict[str, list[Any]] = {}
    for i, v in enumerate(views):
        for j in range(entities):
            rec = records[i * entities + j]
            if rec is None:
                continue
            raw = base64.b64decode(rec)
            names = layouts[raw[16:24]]
            for n, x in zip(names, unpackb(raw[24:], raw=False)):
                out.setdefault(n, [None] * entities)[j] = x
    return out


def measure_for_compare(job: dict[str, Any]) -> dict[str, Any]:
    """job: redis, project, views, entities_per_request, entities, seed, round, workers,
    seq_requests, seq_budget_s, conc_connections, conc_requests, conc_budget_s, work.
    The requests of online.requests (as skewless's and Feast's servers get them)."""
    import redis as redis_py

    import _load

    reqs, _, texts = _load.compare_requests(job)
    work = Path(job["work"])
    work.mkdir(parents=True, exist_ok=True)
    log = work / f"raw-server-{os.getpid()}-{job.get('round', 0)}.log"
    server = RawServerProcess(job["redis"], job["project"], job["workers"], log)
    try:
        server.wait_ready()
        answers = _load.post_bodies(server.port, texts, 20, "raw_server")
        seq, conc = _load.compare_runs(server.url, texts, job)
    except Exception as e:
        raise RuntimeError(f"{e!r}; raw_server's log ({log}):\n{log.read_text()[-2000:]}") from None
    finally:
        server.stop()
    log.unlink(missing_ok=True)
    host, _, port = job["redis"].partition(":")
    rc = redis_py.Redis(host=host, port=int(port or 6379))
    stored: dict[bytes, bytes] = rc.hgetall(b"sk:@layouts")  # type: ignore[assignment]
    layouts = {fp: v.decode().split("\x1f") for fp, v in stored.items()}
    rc.close()
    nulls = sum(x is None for a in answers for x in a)
    expected = len(job["views"]) * job["entities_per_request"]
    problems = [f"request {i}: {len(a)} records, expected {expected}" for i, a in enumerate(answers) if len(a) != expected]
    if nulls:
        problems.append(f"{nulls} null records in {len(answers)} sampled answers")
    sample = [{"entities": reqs[i], "values": decode(a, job["views"], len(reqs[i]), layouts)}
              for i, a in enumerate(answers)]
    return {"method": "raw_server", "workers": job["workers"],
            "load_generator": "bench/_load.py (sequential; closed loop)", "sequential": seq, "concurrent": conc,
            "check": {"ok": not problems, "problems": problems[:5], "records": sum(len(a) for a in answers),
                      "nulls": nulls}, "sample": sample,
            "server_cmd": f"bench/raw_server.py --workers {job['workers']} (uvicorn {OPTIONS})"}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--project", help="the skewless project (else RAW_SERVER_PROJECT)")
    p.add_argument("--redis", help="host:port (else RAW_SERVER_REDIS, default 127.0.0.1:6379)")
    a = p.parse_args(argv)
    if a.project:
        os.environ["RAW_SERVER_PROJECT"] = a.project
    if a.redis:
        os.environ["RAW_SERVER_REDIS"] = a.redis
    if not os.environ.get("RAW_SERVER_PROJECT"):
        p.error("--project (or RAW_SERVER_PROJECT) is required")
    return serve(a.host, a.port, a.workers)


if __name__ == "__main__":
    raise SystemExit(main())
