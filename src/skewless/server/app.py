"""The HTTP feature server: thin routes over ``FeatureStore`` (Starlette, orjson).

Routes (``docs/server.md`` documents each; ``GET /openapi.json`` is the full contract):

- ``POST /get-online-features``: Feast's request and response, through
  ``FeatureStore.get_online_features`` so the SDK and the server behave identically.
- ``POST /push``: rows to a push source, through ``FeatureStore.push``.
- ``GET /health`` (liveness), ``GET /ready`` (readiness: ``FeatureStore.readiness``, rendered),
  ``GET /metrics`` (Prometheus), ``GET /openapi.json`` and ``GET /docs``.

The server calls ``FeatureStore`` only (never ``skewless.services``). Its feature-level
metrics come from a lifecycle hook it registers on the store (``metrics.MetricsHook``,
docs/hooks.md); the HTTP-level ones are counted here.

Every error is a JSON body ``{"code", "message", "hint"}`` with the error's HTTP status
(``SkewlessError.http_status``); a 500 only ever means a bug, and its body says so.

The hot path, ``POST /get-online-features``, is answered straight from the ASGI messages
(``ServerApp``): no router, request or response objects. The store is called on the event loop
thread: an online read is a sub-millisecond batched call, and a thread hop would cost more than
the read. The requests that reach the read in the same turn of the loop are read together, one
store round trip for all (``FeatureStore.get_online_features_many``). When a read is slow (a
store timing out), the worker reads in threads for a while, so queued requests do not wait for
each other's timeouts. Readiness probes and pushes, which write files, always run in threads
(pushes one at a time per process), and so do large requests (see LARGE_BODY_BYTES), so that
one of them never stalls ``/health`` or the other requests of a worker. A request over
``serving.max_entities_per_request`` entity rows is refused with a 413 before any work.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from skewless.errors import RequestTooLargeError, SkewlessError, UnknownObjectError
from skewless.monitoring import results
from skewless.server import metrics as M
from skewless.server.columns import ColumnCache
from skewless.server.openapi import DOCS_HTML, openapi_document
from skewless.server.protocol import (OnlineRequest, dumps, encode_online_response, parse_online_request,
                                      parse_push_request)
from skewless.server.push import PushPreparer

if TYPE_CHECKING:
    from skewless.store import FeatureStore, OnlineResponse

log = logging.getLogger("skewless.server")

JSON = b"application/json"
MAX_BODY_BYTES = 64 * 1024 * 1024
Reply = tuple[int, bytes, bytes]   # status, body, content type
# A read that failed after more than SLOW_READ_S (a store timing out), or a store round trip
# over SLOW_STORE_S, switches the worker to reading in threads for DEGRADED_S: requests then
# wait for the store side by side, each within the store's timeout, instead of one after the
# other on the event loop (see FeatureServer._note_read_time).
SLOW_READ_S = 0.05
SLOW_STORE_S = 0.25
MAX_READ_BATCH = 128   # requests whose store reads are combined into one (FeatureServer._read_together)
DEGRADED_S = 5.0
# A large request (a body over LARGE_BODY_BYTES, or over LARGE_REQUEST_ENTITIES entity rows) is
# decoded, read and encoded in a thread, not on the event loop: on a single worker, /health and
# the other requests keep being answered while it is processed (docs/server.md). Small requests,
# the usual traffic, stay on the loop, where a thread hop would cost more than the work.
LARGE_BODY_BYTES = 256 * 1024
LARGE_REQUEST_ENTITIES = 2_000


def _error_body(code: str, message: str, hint: str | None) -> bytes:
    return dumps({"code": code, "message": message, "hint": hint})


class BodyTooLarge(RequestTooLargeError):
    """A request body over MAX_BODY_BYTES."""


async def read_body(receive: Receive) -> bytes:
    """The whole request body from the ASGI ``receive`` channel, at most MAX_BODY_BYTES."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        chunk = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                raise BodyTooLarge(f"the request body is over {MAX_BODY_BYTES:,} bytes",
                                   hint="split the request into smaller batches")
            chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


class FeatureServer:
    """The endpoints and their shared state: the store and the per-process caches. Each
    endpoint returns (status, body, content type); ``call`` times it, turns errors into JSON
    bodies and counts both."""

    def __init__(self, store: FeatureStore) -> None:
        self.store = store
        # both follow the store's serving snapshot (the last good one while the registry
        # cannot be read): the serving path's one registry cache
        self.columns = ColumnCache(store)
        self.push_prep = PushPreparer(store)
        self.push_lock = threading.Lock()
        self._degraded_until = 0.0
        self._was_ready = False        # the last /ready verdict (readiness: a stale registry)
        self._registry_seen: tuple[Any, Any] = (None, None)
        self._pending: list[tuple[OnlineRequest, asyncio.Future[OnlineResponse]]] = []
        self.tally = M.Tally()  # per-request metrics, written to prometheus-client once a second
        # the feature-level metrics: a lifecycle hook on the store (one per store: a server
        # built again over the same store takes over the counting)
        self.metrics_hook = M.MetricsHook(self.tally, store.clock)
        for hook in store.hooks:
            if isinstance(hook, M.MetricsHook):
                store.remove_hook(hook)
        store.add_hook(self.metrics_hook)
        # the monitor and audit results, read from their files on scrape (never run here)
        M.export_results(store.config.resolve(results.MONITORING_DIR))
        cache = getattr(store, "cache", None)
        self.cache_counters = M.CacheCounters(cache) if cache is not None else None

    # --- plumbing ----------------------------------------------------------------------------
    async def call(self, endpoint: str, fn: Callable[..., Awaitable[Reply]], *args: Any) -> Reply:
        t0 = time.perf_counter()
        if self.metrics_hook.loop is None:   # the first request: the hook counts on this loop
            self.metrics_hook.bind()
        try:
            reply = await fn(*args)
        except SkewlessError as e:
            reply = (e.http_status, dumps(e.to_dict()), JSON)
            self.tally.inc(M.ERRORS, (endpoint, e.code))
        except ClientDisconnect:
            reply = (400, _error_body("client_disconnected", "the client went away", None), JSON)
        except Exception as e:  # noqa: BLE001 - a bug: logged, answered as JSON
            log.exception("%s: unexpected error", endpoint)
            reply = (500, _error_body("internal", f"internal server error ({type(e).__name__}); this is a bug",
                                      "the server log has the traceback; please report it"), JSON)
            self.tally.inc(M.ERRORS, (endpoint, "internal"))
        tally = self.tally
        tally.schedule_flush()
        tally.observe(M.REQUEST_SECONDS, (endpoint,), time.perf_counter() - t0)
        tally.inc(M.REQUESTS, (endpoint, str(reply[0])))
        return reply

    def _note_registry(self, force: bool = False) -> None:
        """Set the registry gauges when the serving snapshot was re-read or failed to be
        (two attribute reads per request otherwise)."""
        store = self.store
        seen = (getattr(store, "_registry_read_at", None), getattr(store, "_registry_error", None))
        if force or seen[0] is not self._registry_seen[0] or seen[1] is not self._registry_seen[1]:
            self._registry_seen = seen
            M.set_registry_health(store.registry_health())

    # --- endpoints ---------------------------------------------------------------------------
    async def get_online_features(self, receive: Receive) -> Reply:
        body = await read_body(receive)
        limit = self.store.config.serving.max_entities_per_request
        if len(body) > LARGE_BODY_BYTES:   # decoding it takes a while: not on the event loop
            req = await run_in_threadpool(parse_online_request, body, limit)
        else:
            req = parse_online_request(body, limit)
        large = len(req.entity_rows) > LARGE_REQUEST_ENTITIES
        store = self.store
        t0 = time.perf_counter()
        try:
            # a large request (reading and assembling it takes a while), or a slow store: the
            # read runs in a thread, so it does not block the loop
            if large or t0 < self._degraded_until:
                resp: Any = None
                self.tally.observe(M.READ_BATCH, (), 1)
                try:
                    resp = await run_in_threadpool(store.get_online_features, req.target, req.entity_rows,
                                                   req.full_feature_names)
                finally:
                    self._note_read_time(t0, True, resp)
            else:
                resp = await self._read_together(req)
        except UnknownObjectError as e:
            # an unknown name in "features" is a bad request; an unknown service is not found
            # (answered here, so counted here: ``call`` counts the errors that reach it)
            self.tally.inc(M.ERRORS, ("/get-online-features", e.code))
            return (400 if req.features is not None else 404), dumps(e.to_dict()), JSON
        tally = self.tally
        if self.cache_counters is not None:
            self.cache_counters.update(tally)
        self._note_registry()
        groups = resp.groups
        types = self.columns.get(req.target, req.full_feature_names, resp.keys, resp.values)
        if large:
            body = await run_in_threadpool(encode_online_response, resp.keys, resp.values, groups, types,
                                           resp.store_error)
        else:
            body = encode_online_response(resp.keys, resp.values, groups, types, resp.store_error)
        return 200, body, JSON

    def _read_together(self, req: OnlineRequest) -> asyncio.Future[OnlineResponse]:
        """The store read of ``req``, done together with the reads of every request that reached
        this point in the same turn of the event loop: one ``get_online_features_many`` call, so
        one store round trip for all of them. Requests that arrive together (a burst, or a queue
        built up while the worker was busy) then cost one round trip instead of one each, which
        is what lets a worker catch up; a lone request waits one loop turn (microseconds)."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[OnlineResponse] = loop.create_future()
        self._pending.append((req, fut))
        if len(self._pending) == 1:
            loop.call_soon(self._read_pending)
        return fut

    def _read_pending(self) -> None:
        batch, self._pending = self._pending[:MAX_READ_BATCH], self._pending[MAX_READ_BATCH:]
        if self._pending:  # a long queue: the rest in the next turn, so no read grows unbounded
            asyncio.get_running_loop().call_soon(self._read_pending)
        self.tally.observe(M.READ_BATCH, (), len(batch))
        t0 = time.perf_counter()
        answers: list[Any]
        try:
            answers = self.store.get_online_features_many(
                [(r.target, r.entity_rows, r.full_feature_names) for r, _ in batch])
        except Exception as e:  # noqa: BLE001 - a bug: every request of the batch answers 500
            answers = [e] * len(batch)
        resp = None
        for (_, fut), answer in zip(batch, answers):
            if isinstance(answer, Exception):
                if not fut.done():  # done: the request was cancelled
                    fut.set_exception(answer)
            else:
                resp = answer
                if not fut.done():
                    fut.set_result(answer)
        self._note_read_time(t0, False, resp)

    def _note_read_time(self, t0: float, degraded: bool, resp: Any) -> None:
        """Switch to reading in threads for DEGRADED_S after a read that failed slowly (timed
        out), or whose store round trip took over SLOW_STORE_S while on the loop (a struggling
        store). Only failures extend the switch: a read in a thread may have waited for the CPU
        rather than the store, and under overload that would keep the worker in threads, which
        cost more per request, for good. Neither a busy CPU nor a garbage collection makes a
        round trip that slow (measured under overload on 2 cores: at most ~50 ms)."""
        elapsed = time.perf_counter() - t0
        if elapsed <= SLOW_READ_S:
            return
        failed = resp is None or bool(resp.store_error)
        if failed or (not degraded and resp.read_seconds > SLOW_STORE_S):
            if not degraded:
                log.warning("online store read took %.0f ms%s: reading in threads for %g s",
                            elapsed * 1e3, " and failed" if failed else "", DEGRADED_S)
            self._degraded_until = time.perf_counter() + DEGRADED_S

    async def push(self, receive: Receive) -> Reply:
        req = parse_push_request(await read_body(receive))
        columns = self.push_prep.columns(req)

        def run() -> Any:
            with self.push_lock:  # one push at a time per process: each writes a file
                return self.store.push(req.push_source_name, columns, to=req.to, batch_id=req.batch_id)
        report = await run_in_threadpool(run)   # the rows are counted by the metrics hook
        return 200, dumps({"push_source_name": req.push_source_name, "to": req.to, "rows": report.rows,
                           "offline_rows": report.offline_rows, "online_records": report.online_records,
                           "seconds": report.seconds, "batch_id": report.batch_id,
                           "duplicate": report.duplicate, "pending_rows": report.pending_rows}), JSON

    async def health(self, receive: Receive) -> Reply:
        return 200, b'{"status":"ok"}', JSON

    async def ready(self, receive: Receive) -> Reply:
        # in a thread: a hung store must not block the loop
        ok, body = await run_in_threadpool(readiness, self.store, self._was_ready)
        self._was_ready = ok
        self._note_registry()
        if not ok:
            self.tally.inc(M.ERRORS, ("/ready", str(body.get("code"))))
        return (200 if ok else 503), dumps(body), JSON

    async def metrics(self, receive: Receive) -> Reply:
        self.tally.flush()  # this worker's figures are exact; the others' at most a second old
        self._note_registry(force=True)
        data, ctype = M.render()
        return 200, data, ctype.encode()

    async def openapi(self, receive: Receive) -> Reply:
        return 200, OPENAPI_BYTES, JSON

    async def docs(self, receive: Receive) -> Reply:
        return 200, DOCS_HTML.encode(), b"text/html; charset=utf-8"

    def route(self, path: str, fn: Callable[[Receive], Awaitable[Reply]], method: str) -> Route:
        async def endpoint(request: Request) -> Response:
            status, body, ctype = await self.call(path, fn, request.receive)
            return Response(body, status_code=status, media_type=ctype.decode())
        return Route(path, endpoint, methods=[method])


OPENAPI_BYTES = dumps(openapi_document())


class ServerApp:
    """The ASGI app: ``POST /get-online-features`` is answered straight from the ASGI messages
    (no router, request or response objects: the hot path), everything else by Starlette."""

    def __init__(self, server: FeatureServer, starlette: Starlette) -> None:
        self.server = server
        self.starlette = starlette

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/get-online-features" and scope["method"] == "POST":
            status, body, ctype = await self.server.call("/get-online-features",
                                                         self.server.get_online_features, receive)
            await send({"type": "http.response.start", "status": status,
                        "headers": [(b"content-type", ctype), (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})
            return
        await self.starlette(scope, receive, send)


def readiness(store: FeatureStore, was_ready: bool = False) -> tuple[bool, dict[str, Any]]:
    """``GET /ready``'s verdict and body: ``FeatureStore.readiness`` (docs/server.md#get-ready-and-get-health)."""
    verdict = store.readiness(was_ready)
    return verdict.ready, verdict.report


async def _http_error(request: Request, exc: Exception) -> Response:
    """Unknown paths and wrong methods, as JSON errors like every other error."""
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    code = {404: "not_found", 405: "method_not_allowed"}.get(status, "http_error")
    if status == 404:
        message, hint = f"no endpoint {request.url.path}", "see GET /openapi.json for the endpoints"
    elif status == 405:
        message, hint = f"{request.method} is not allowed on {request.url.path}", "see GET /openapi.json"
    else:
        message, hint = str(getattr(exc, "detail", exc)), None
    M.REQUESTS.labels("unmatched", str(status)).inc()
    M.ERRORS.labels("unmatched", code).inc()
    headers = getattr(exc, "headers", None)
    return Response(_error_body(code, message, hint), status_code=status, headers=headers,
                    media_type="application/json")


async def _internal_error(request: Request, exc: Exception) -> Response:
    log.exception("unexpected error outside a route", exc_info=exc)
    M.ERRORS.labels("unmatched", "internal").inc()
    return Response(_error_body("internal", f"internal server error ({type(exc).__name__}); this is a bug",
                                "the server log has the traceback; please report it"), status_code=500,
                    media_type="application/json")


def _freeze_survivors(phase: str, info: dict[str, int]) -> None:
    """After each full (generation 2) collection, move the survivors to the permanent
    generation (``gc.freeze``), so the next full collection scans only what was allocated since.

    The in-process cache keeps up to ``cache.max_entries`` records per view alive; without this,
    every full collection walks all of them and its pause grows with the cache (measured: from
    20 ms to 90 ms within seconds on 60k cached records, the whole p99 of a 100 x 50 request);
    with it, pauses stay at a few ms. Frozen objects are still freed by reference counting; what
    is never collected is a reference cycle among them that becomes garbage later (the serving
    state has none; at worst an exception being handled at that instant, a few objects)."""
    if phase == "stop" and info.get("generation") == 2:
        gc.freeze()


def create_app(store: FeatureStore, tune_gc: bool = True) -> ServerApp:
    """The ASGI app serving ``store``. ``tune_gc`` freezes long-lived objects after startup and
    after every full collection (see ``_freeze_survivors``): meant for a process that only
    serves; pass False when mounting the app in a process that does other work."""
    server = FeatureServer(store)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:  # warm up: the store's client, the definitions; a store that is down is not fatal
            store.online_store.ping()
            store.serving_snapshot()
        except SkewlessError as e:
            log.warning("feature server starting while not ready: %s", e.message)
        if tune_gc:
            gc.collect()
            gc.freeze()  # long-lived startup objects leave the collector's scans: steadier tail latency
            if _freeze_survivors not in gc.callbacks:
                gc.callbacks.append(_freeze_survivors)
        try:
            yield
        finally:
            server.tally.flush()
            store.close()   # writes the queued feature logs (docs/feature-logging.md)

    routes = [
        server.route("/get-online-features", server.get_online_features, "POST"),  # see ServerApp
        server.route("/push", server.push, "POST"),
        server.route("/health", server.health, "GET"),
        server.route("/ready", server.ready, "GET"),
        server.route("/metrics", server.metrics, "GET"),
        server.route("/openapi.json", server.openapi, "GET"),
        server.route("/docs", server.docs, "GET"),
    ]
    starlette = Starlette(routes=routes, lifespan=lifespan,
                          exception_handlers={HTTPException: _http_error, Exception: _internal_error})
    return ServerApp(server, starlette)


def app_from_env() -> ServerApp:
    """The app factory ``skewless serve`` runs in each worker: the repo comes from
    ``SKEWLESS_REPO`` (the serve command sets it)."""
    from skewless.store import FeatureStore
    return create_app(FeatureStore(Path(os.environ.get("SKEWLESS_REPO", "."))))
