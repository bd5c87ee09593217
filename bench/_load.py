"""A small HTTP load generator for the feature server benchmarks, loopback only.

Bounded in count and time; raw keep-alive HTTP/1.1 over sockets (pre-built requests, minimal
response parsing), so the generator costs a fraction of what the server does per request:

- ``sequential``: one connection, one request at a time (blocking socket): latency p50/p95/p99.
- ``closed``: ``concurrency`` connections, each sending its next request as soon as the previous
  answer arrives (asyncio + uvloop): the sustained rate and its latency.
- ``open``: requests scheduled at a fixed ``rate`` (uniform arrivals) over up to ``connections``
  connections; latency counts from the *scheduled* send time, so a stalled server shows up as
  latency instead of silently lowering the rate (no coordinated omission).

Every mode returns a dict: requests, errors (non-200 answers, failed or unanswered requests),
statuses, seconds, rps, p50/p95/p99/p999/max/mean in ms, and the generator's own CPU seconds.

Run it in its own process (``run_in_child``) so it does not share an interpreter with the
caller: ``python bench/_load.py`` reads a JSON spec on stdin and prints the result as JSON.
"""

from __future__ import annotations

import asyncio
import json
import resource
import socket
import subprocess
import sys
import time
from collections import Counter
from typing import Any
from urllib.parse import urlsplit

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _address(url: str) -> tuple[str, int]:
    u = urlsplit(url)
    host = u.hostname or "127.0.0.1"
    if host not in LOOPBACK:
        raise ValueError(f"the load generator only targets loopback, not {host}")
    return host, u.port or 80


def build_request(path: str, body: bytes, host: str = "127.0.0.1") -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


def percentiles(lat_ns: list[int]) -> dict[str, float]:
    """Nearest-rank percentiles in milliseconds."""
    if not lat_ns:
        return {k: float("nan") for k in ("p50_ms", "p95_ms", "p99_ms", "p999_ms", "max_ms", "mean_ms")}
    s = sorted(lat_ns)
    n = len(s)

    def q(p: float) -> float:
        return s[min(n - 1, max(0, -(-int(p * 1000) * n // 1000) - 1))] / 1e6
    return {"p50_ms": q(0.50), "p95_ms": q(0.95), "p99_ms": q(0.99), "p999_ms": q(0.999),
            "max_ms": s[-1] / 1e6, "mean_ms": sum(s) / n / 1e6}


def _content_length(head: bytes) -> int:
    i = head.lower().find(b"\r\ncontent-length:")
    if i < 0:
        return 0
    j = head.find(b"\r\n", i + 2)
    return int(head[i + 17:j if j >= 0 else len(head)].strip())


# --- sequential: a blocking socket ----------------------------------------------------------
def sequential(url: str, requests: list[bytes], count: int, max_seconds: float, warmup: int = 200
               ) -> dict[str, Any]:
    host, port = _address(url)
    sock = socket.create_connection((host, port), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    buf = bytearray()

    def one(req: bytes) -> int:
        sock.sendall(req)
        while True:
            end = buf.find(b"\r\n\r\n")
            if end >= 0:
                break
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError("server closed the connection")
            buf.extend(chunk)
        head = bytes(buf[:end])
        need = end + 4 + _content_length(head)
        while len(buf) < need:
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError("server closed the connection")
            buf.extend(chunk)
        del buf[:need]
        return int(head[9:12])

    for i in range(min(warmup, count)):
        one(requests[i % len(requests)])
    lat: list[int] = []
    statuses: Counter[int] = Counter()
    errors = 0
    cpu0, t0 = _cpu(), time.perf_counter()
    deadline = t0 + max_seconds
    pc = time.perf_counter_ns
    for i in range(count):
        req = requests[i % len(requests)]
        s = pc()
        try:
            status = one(req)
        except OSError:
            errors += 1
            break
        lat.append(pc() - s)
        statuses[status] += 1
        if status != 200:
            errors += 1
        if (i & 63) == 0 and time.perf_counter() > deadline:
            break
    seconds = time.perf_counter() - t0
    sock.close()
    return {"mode": "sequential", "requests": len(lat), "errors": errors,
            "statuses": {str(k): v for k, v in statuses.items()}, "seconds": seconds,
            "rps": len(lat) / seconds if seconds else 0.0, **percentiles(lat),
            "generator_cpu_s": _cpu() - cpu0}


# --- asyncio modes -------------------------------------------------------------------------
class _Conn:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def call(self, req: bytes) -> int:
        self.writer.write(req)
        head = await self.reader.readuntil(b"\r\n\r\n")
        n = _content_length(head)
        if n:
            await self.reader.readexactly(n)
        return int(head[9:12])


async def _connect(host: str, port: int) -> _Conn:
    reader, writer = await asyncio.open_connection(host, port, limit=1 << 22)
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return _Conn(reader, writer)


async def _closed(url: str, requests: list[bytes], concurrency: int, count: int, max_seconds: float,
                  warmup_seconds: float) -> dict[str, Any]:
    host, port = _address(url)
    conns = [await _connect(host, port) for _ in range(concurrency)]
    lat: list[int] = []
    statuses: Counter[int] = Counter()
    errors = 0
    issued = 0
    measuring = False
    pc = time.perf_counter_ns
    stop_at = 0.0

    async def worker(c: _Conn, k: int) -> None:
        nonlocal issued, errors
        i = k
        while True:
            if measuring:
                if issued >= count or time.perf_counter() > stop_at:
                    return
                issued += 1
            elif time.perf_counter() > stop_at:
                return
            req = requests[i % len(requests)]
            i += concurrency
            s = pc()
            try:
                status = await c.call(req)
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
                errors += 1
                return
            if measuring:
                lat.append(pc() - s)
                statuses[status] += 1
                if status != 200:
                    errors += 1

    if warmup_seconds > 0:  # same connections, results dropped
        stop_at = time.perf_counter() + warmup_seconds
        await asyncio.gather(*(worker(c, k) for k, c in enumerate(conns)))
    measuring = True
    cpu0, t0 = _cpu(), time.perf_counter()
    stop_at = t0 + max_seconds
    try:
        await asyncio.wait_for(asyncio.gather(*(worker(c, k) for k, c in enumerate(conns))),
                               timeout=max_seconds + 10)
    except asyncio.TimeoutError:
        errors += concurrency  # requests that never came back
    seconds = time.perf_counter() - t0
    for c in conns:
        c.writer.close()
    return {"mode": "closed", "concurrency": concurrency, "requests": len(lat), "errors": errors,
            "statuses": {str(k): v for k, v in statuses.items()}, "seconds": seconds,
            "rps": len(lat) / seconds if seconds else 0.0, **percentiles(lat),
            "generator_cpu_s": _cpu() - cpu0}


async def _open(url: str, requests: list[bytes], rate: float, count: int, connections: int,
                max_seconds: float) -> dict[str, Any]:
    host, port = _address(url)
    conns = [await _connect(host, port) for _ in range(connections)]
    total = min(count, int(rate * max_seconds))
    lat: list[int] = []
    statuses: Counter[int] = Counter()
    failed = bad = late = 0
    next_i = 0
    pc = time.perf_counter_ns
    interval_ns = int(1e9 / rate)
    t0_ns = pc() + 20_000_000

    async def worker(c: _Conn) -> None:
        nonlocal next_i, failed, bad, late
        while True:
            i = next_i
            if i >= total:
                return
            next_i += 1
            due = t0_ns + i * interval_ns
            wait = due - pc()
            if wait > 0:
                await asyncio.sleep(wait / 1e9)
            elif wait < -1_000_000:
                late += 1  # every connection was busy: this one starts late, and the wait counts
            try:
                status = await c.call(requests[i % len(requests)])
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
                failed += 1
                return
            lat.append(pc() - due)
            statuses[status] += 1
            if status != 200:
                bad += 1

    cpu0, t0 = _cpu(), time.perf_counter()
    try:
        await asyncio.wait_for(asyncio.gather(*(worker(c) for c in conns)), timeout=max_seconds + 10)
    except asyncio.TimeoutError:
        pass
    seconds = time.perf_counter() - t0
    unanswered = max(0, total - len(lat) - failed)
    for c in conns:
        c.writer.close()
    return {"mode": "open", "target_rps": rate, "connections": connections, "requests": len(lat),
            "scheduled": total, "errors": failed + bad + unanswered, "started_late": late,
            "statuses": {str(k): v for k, v in statuses.items()}, "seconds": seconds,
            "rps": len(lat) / seconds if seconds else 0.0, **percentiles(lat),
            "generator_cpu_s": _cpu() - cpu0}


def _run_async(coro: Any) -> dict[str, Any]:
    try:
        import uvloop
        return uvloop.run(coro)  # type: ignore[no-any-return]
    except ImportError:
        return asyncio.run(coro)


def run(spec: dict[str, Any]) -> dict[str, Any]:
    """Run one load spec in this process: ``{"mode", "url", "path", "bodies": [str, ...], ...}``."""
    host, _ = _address(spec["url"])
    requests = [build_request(spec.get("path", "/get-online-features"), b.encode(), host)
                for b in spec["bodies"]]
    mode = spec["mode"]
    count = int(spec.get("count", 10_000))
    max_seconds = float(spec.get("max_seconds", 10.0))
    if mode == "sequential":
        return sequential(spec["url"], requests, count, max_seconds, int(spec.get("warmup", 200)))
    if mode == "closed":
        return _run_async(_closed(spec["url"], requests, int(spec.get("concurrency", 32)), count,
                                  max_seconds, float(spec.get("warmup_seconds", 1.0))))
    if mode == "open":
        return _run_async(_open(spec["url"], requests, float(spec["rate"]), count,
                                int(spec.get("connections", 64)), max_seconds))
    raise ValueError(f"unknown mode {mode!r}")


def run_in_child(spec: dict[str, Any], timeout: float | None = None) -> dict[str, Any]:
    """Run a load spec in a fresh Python process (its own interpreter and GIL)."""
    limit = timeout or float(spec.get("max_seconds", 10.0)) + 60
    proc = subprocess.run([sys.executable, __file__], input=json.dumps(spec), capture_output=True,
                          text=True, timeout=limit)
    if proc.returncode != 0:
        raise RuntimeError(f"load generator failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


if __name__ == "__main__":
    print(json.dumps(run(json.loads(sys.stdin.read()))))


def compare_requests(job: dict[str, Any]) -> tuple[list[list[Any]], list[str], list[str]]:
    """The request sequence of ``bench/compare.py``'s server metrics (``online.requests``, as
    every side gets it): entity ids per request, feature refs, and the JSON bodies."""
    import online as onl
    rq = {"seed": job["seed"], "round": job.get("round", 0),
          "entities_per_request": job["entities_per_request"], "entities": job["entities"],
          "iters": 4096}
    reqs = onl.requests(rq)
    refs = [f"{v}:{f}" for v in job["views"] for f, _ in onl.feature_names(v)]
    return reqs, refs, [json.dumps({"features": refs, "entities": {onl.KEY: ids}}) for ids in reqs]


def post_bodies(port: int, texts: list[str], n: int, who: str) -> list[Any]:
    """POST the first ``n`` bodies to /get-online-features one by one; their parsed answers
    (an answer other than 200 is an error naming ``who``)."""
    import http.client
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    answers = []
    try:
        for text in texts[:n]:
            conn.request("POST", "/get-online-features", text, {"Content-Type": "application/json"})
            r = conn.getresponse()
            body = r.read()
            if r.status != 200:
                raise RuntimeError(f"{who} answered {r.status}: {body[:500]!r}")
            answers.append(json.loads(body))
    finally:
        conn.close()
    return answers


def compare_runs(url: str, texts: list[str], job: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The sequential and closed-loop runs of a server metric of ``bench/compare.py``."""
    base = {"url": url, "path": "/get-online-features", "bodies": texts}
    seq = run_in_child({**base, "mode": "sequential", "count": job["seq_requests"],
                        "max_seconds": job["seq_budget_s"], "warmup": 500})
    conc = run_in_child({**base, "mode": "closed", "concurrency": job["conc_connections"],
                         "count": job["conc_requests"], "max_seconds": job["conc_budget_s"],
                         "warmup_seconds": 1.0})
    return seq, conc
