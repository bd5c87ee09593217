"""Redis online store: one Redis string per (table, entity key), one MGET per read.

Key layout (docs/online-stores.md has the full story):

- ``sk:@tables`` hash: table -> its active *generation*, ``"{table}:g{N}"`` (N from ``sk:@seq``).
- ``sk:@version``: incremented by every create, swap and drop (any change of ``sk:@tables``).
- ``sk:@id``: the store's identity (``StoreIdentity``, JSON), set by the first create on a
  Redis without one. A restarted empty Redis has none (then a new one): the counters above
  start again from nothing, the identity never repeats.
- ``sk:{generation}:{key bytes}``: a record, a 16-byte header (event and created time,
  order-preserving), the 8-byte fingerprint of its layout, then the values as a msgpack array.
- ``sk:@layouts`` hash: layout fingerprint -> the field names of the array, joined by 0x1f.
- ``sk:@count:{generation}``: the number of records of a generation (exact: the write script
  increments it only when it creates a key).
- ``sk:@trash`` set: generations whose keys are being deleted (after a swap or a drop).

Readers cache the table -> generation map and send ``sk:@version`` and ``sk:@id`` in the same
MGET as the records: one round trip, and a reader never uses a stale map (if the version or the
identity moved, it reloads the map and reads again; the identity catches a Redis restarted
empty whose version counter came back to the number the reader cached). Writers run a Lua script that checks the generation is still active
and keeps each record unless the stored one is newer by (event_ts, created_ts), atomically.
"""

from __future__ import annotations

import hashlib
import re
import struct
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from msgpack import unpackb as _unpackb
from pydantic import Field, field_validator

from skewless.backends import Backend, BackendSettings
from skewless.errors import ConfigError, MissingExtraError, OnlineStoreError
from skewless.online.base import LEGACY, OnlineCapabilities, RecordUpdate, StoreIdentity
from skewless.online.codec import FINGERPRINT_SIZE, Layouts, Record, pack_vals, restored

if TYPE_CHECKING:
    import redis
    from redis.backoff import ExponentialBackoff
    from redis.retry import Retry

    from skewless.config import RepoConfig


def _import_driver() -> None:
    """redis-py, imported by the first store made (not with the config): a missing package
    names the extra to install."""
    global redis, ExponentialBackoff, Retry
    try:
        import redis
        from redis.backoff import ExponentialBackoff
        from redis.retry import Retry
    except ImportError:  # pragma: no cover - exercised by a test that hides the package
        raise MissingExtraError("redis", "redis") from None


# --- the backend: settings, capabilities, factory ----------------------------------------------
class RedisOnlineConfig(BackendSettings):
    """Redis (or a Redis-compatible server). ``connection_string`` as Feast writes it:
    ``host:port[,db=1,password=...,ssl=true]``, or a ``redis://`` / ``rediss://`` URL."""

    type: Literal["redis"]
    connection_string: str = "localhost:6379"
    connect_timeout_seconds: float = Field(default=1.0, gt=0)
    timeout_seconds: float = Field(default=1.0, gt=0)
    max_connections: int | None = Field(default=None, ge=1)
    retry_after_seconds: float = Field(default=1.0, ge=0)

    @field_validator("connection_string")
    @classmethod
    def _connection_string(cls, value: str) -> str:
        """Parsed now (the parser the store uses), not at the first online read."""
        try:
            parse_connection_string(value)
        except ConfigError as e:
            message = e.message.removeprefix("online_store.connection_string").lstrip(": ")
            raise ValueError(message + (f" ({e.hint})" if e.hint else "")) from None
        return value


CAPABILITIES = OnlineCapabilities(atomic_swap=True, persistent=True, shared=True, aggregations=True)


def _make(config: RepoConfig, opts: RedisOnlineConfig) -> RedisOnlineStore:
    return RedisOnlineStore(opts.connection_string, opts.connect_timeout_seconds,
                            opts.timeout_seconds, opts.max_connections, opts.retry_after_seconds)


BACKEND = Backend("online_store", "redis", RedisOnlineConfig, _make, CAPABILITIES,
                  testing="skewless.testing.backends:REDIS",
                  description="one Redis (or Redis-compatible) server, shared by every process")
# -------------------------------------------------------------------------------------------------

TABLES = b"sk:@tables"
VERSION = b"sk:@version"
SEQ = b"sk:@seq"
TRASH = b"sk:@trash"
COUNT = b"sk:@count:"
LAYOUTS = b"sk:@layouts"
IDENTITY = b"sk:@id"
WRITES = b"sk:@writes"

_SEP = "\x1f"

_HEADER = struct.Struct(">QQ")
_BIAS = 1 << 63  # int64 -> uint64 preserving order
HEADER_SIZE = _HEADER.size
_HEAD = struct.Struct(f">QQ{FINGERPRINT_SIZE}s")  # header + layout fingerprint
VALUES_AT = _HEAD.size

UPDATE_KEYS = 200        # keys per WATCH/MULTI transaction of update_batch
WRITE_KEYS = 1000        # records per script call (the script blocks Redis for ~1 ms)
PIPELINE_KEYS = 20_000   # records per pipeline execute (one round trip)
MAX_ATTEMPTS = 8         # map reloads before giving up (a swap storm)
PURGE_SCAN = 2000        # keyspace slots per SCAN step when deleting a generation (~1 ms each)

_TABLE_NAME = re.compile(r"^[A-Za-z0-9_.\-]+$")

# KEYS: tables hash, count key, record keys...   ARGV: table, generation, records...
# Returns the number of new keys, or -1 when the generation is no longer the table's.
_WRITE = """
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return -1 end
local added = 0
local fresh = true  -- was the previous key new? then try SET NX first (bulk loads)
for i = 3, #KEYS do
  local rec = ARGV[i]
  if fresh and redis.call('SET', KEYS[i], rec, 'NX') then
    added = added + 1
  else
    local old = redis.call('GETRANGE', KEYS[i], 0, 15)
    if old == '' then
      redis.call('SET', KEYS[i], rec)
      added = added + 1
      fresh = true
    else
      fresh = false
      local a1, a2, a3, a4 = struct.unpack('>I4I4I4I4', rec)
      local b1, b2, b3, b4 = struct.unpack('>I4I4I4I4', old)
      if a1 > b1 or (a1 == b1 and (a2 > b2 or (a2 == b2 and (a3 > b3 or (a3 == b3 and a4 >= b4))))) then
        redis.call('SET', KEYS[i], rec)
      end
    end
  end
end
if added > 0 then redis.call('INCRBY', KEYS[2], added) end
return added
"""

# KEYS: tables hash, version, seq, identity.   ARGV: the identity to claim if there is none
# (fresh, then adopted: the same id), tables to create. Returns 1 if anything changed.
_CREATE = """
local changed = 0
if redis.call('EXISTS', KEYS[4]) == 0 then
  if redis.call('EXISTS', KEYS[1]) == 1 then
    redis.call('SET', KEYS[4], ARGV[2])
  else
    redis.call('SET', KEYS[4], ARGV[1])
  end
  changed = 2
end
for i = 3, #ARGV do
  if redis.call('HEXISTS', KEYS[1], ARGV[i]) == 0 then
    local n = redis.call('INCR', KEYS[3])
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i] .. ':g' .. n)
    changed = 1
  end
end
if changed == 1 then redis.call('INCR', KEYS[2]) end
return changed > 0 and 1 or 0
"""

# KEYS: tables hash, version, trash.   ARGV: table, staging.
# Returns the replaced generation (or false), or -1 when staging does not exist.
_SWAP = """
local src = redis.call('HGET', KEYS[1], ARGV[2])
if not src then return -1 end
local old = redis.call('HGET', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[1], ARGV[1], src)
redis.call('HDEL', KEYS[1], ARGV[2])
redis.call('INCR', KEYS[2])
if old then redis.call('SADD', KEYS[3], old) end
return old
"""

# KEYS: tables hash, version, trash.   ARGV: tables to drop.
_DROP = """
local changed = 0
for i = 1, #ARGV do
  local g = redis.call('HGET', KEYS[1], ARGV[i])
  if g then
    redis.call('HDEL', KEYS[1], ARGV[i])
    redis.call('SADD', KEYS[3], g)
    changed = 1
  end
end
if changed == 1 then redis.call('INCR', KEYS[2]) end
return changed
"""


# KEYS: tables hash.   ARGV: table, count key prefix.   The table's record count (0 if none).
_COUNT = """
local g = redis.call('HGET', KEYS[1], ARGV[1])
if not g then return 0 end
return tonumber(redis.call('GET', ARGV[2] .. g) or '0')
"""


@dataclass(frozen=True)
class _Script:
    source: str
    sha: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "sha", hashlib.sha1(self.source.encode()).hexdigest())


WRITE, CREATE, SWAP, DROP, COUNT_OF = (_Script(_WRITE), _Script(_CREATE), _Script(_SWAP),
                                      _Script(_DROP), _Script(_COUNT))

_OPTIONS = {"db": int, "password": str, "username": str, "ssl": bool, "ssl_ca_certs": str,
            "ssl_cert_reqs": str, "client_name": str}


def header(rec: Record) -> bytes:
    """16 bytes whose byte order is the (event_ts, created_ts) order."""
    return _HEADER.pack(rec.event_ts + _BIAS, rec.created_ts + _BIAS)


def encode_record(rec: Record, fp: bytes) -> bytes:
    return header(rec) + fp + pack_vals(rec.vals)


def _to_bool(name: str, raw: str) -> bool:
    low = raw.strip().lower()
    if low in ("true", "1", "yes", "on"):
        return True
    if low in ("false", "0", "no", "off"):
        return False
    raise ConfigError(f"online_store.connection_string: option '{name}={raw}' is not a boolean",
                      hint=f"write {name}=true or {name}=false")


def parse_connection_string(conn: str) -> tuple[str | None, dict[str, Any], str]:
    """``(url, kwargs, address)``: a redis:// URL is passed to redis-py as is; a Feast-style
    ``host:port[,db=1,password=...,ssl=true]`` becomes connection kwargs. ``address`` names the
    server in messages (never the password)."""
    conn = conn.strip()
    if "://" in conn:
        parts = urlsplit(conn)
        if parts.scheme not in ("redis", "rediss", "unix"):
            raise ConfigError(f"online_store.connection_string: unknown scheme '{parts.scheme}://'",
                              hint="use host:port, redis://host:port/db, rediss:// or unix://")
        address = f"{parts.hostname or ''}:{parts.port or 6379}{parts.path}" if parts.scheme != "unix" \
            else parts.path
        return conn, {}, address
    items = [p.strip() for p in conn.split(",") if p.strip()]
    hosts = [p for p in items if "=" not in p]
    if len(hosts) != 1:
        raise ConfigError(
            f"online_store.connection_string '{conn}' must name exactly one host:port, got {len(hosts)}",
            hint="e.g. connection_string: \"localhost:6379,db=0\" (Redis Cluster is not supported)")
    host, port = hosts[0], 6379
    if host.startswith("["):  # [::1]:6379
        end = host.find("]")
        rest, host = host[end + 1:], host[1:end]
        if rest.startswith(":"):
            port = _port(rest[1:], conn)
    elif host.count(":") == 1:
        host, p = host.split(":")
        port = _port(p, conn)
    kwargs: dict[str, Any] = {"host": host, "port": port}
    for item in items:
        if "=" not in item:
            continue
        name, raw = (s.strip() for s in item.split("=", 1))
        kind = _OPTIONS.get(name)
        if kind is None:
            raise ConfigError(f"online_store.connection_string: unknown option '{name}'",
                              hint="valid options: " + ", ".join(sorted(_OPTIONS)))
        if kind is bool:
            kwargs[name] = _to_bool(name, raw)
        elif kind is int:
            try:
                kwargs[name] = int(raw)
            except ValueError:
                raise ConfigError(f"online_store.connection_string: option '{name}={raw}' is not an "
                                  "integer") from None
        else:
            kwargs[name] = raw
    address = f"{host}:{port}" + (f"/{kwargs['db']}" if kwargs.get("db") else "")
    return None, kwargs, address


def _port(raw: str, conn: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"online_store.connection_string '{conn}': port '{raw}' is not a number",
                          hint="e.g. localhost:6379") from None


_Chunk = tuple[str, list[bytes], list[bytes]]  # table, entity keys, encoded records


def _groups(rows: Mapping[str, Sequence[tuple[bytes, Record]]], fps: Mapping[tuple[str, ...], bytes]
            ) -> Iterator[list[_Chunk]]:
    """Encoded records in chunks of WRITE_KEYS (one script call), grouped by PIPELINE_KEYS
    (one round trip), encoded lazily."""
    group: list[_Chunk] = []
    size = 0
    for table, items in rows.items():
        for i in range(0, len(items), WRITE_KEYS):
            part = items[i:i + WRITE_KEYS]
            if group and size + len(part) > PIPELINE_KEYS:
                yield group
                group, size = [], 0
            group.append((table, [k for k, _ in part], [encode_record(r, fps[r.names]) for _, r in part]))
            size += len(part)
    if group:
        yield group


class _Unreachable(OnlineStoreError):
    """Redis refused the connection or timed out (as opposed to answering with an error)."""


def _check_table(table: str) -> bytes:
    if not _TABLE_NAME.match(table):
        raise OnlineStoreError(f"online table name {table!r} is not valid for Redis keys",
                               hint="table names are letters, digits, '_', '.' and '-'")
    return table.encode()


class RedisOnlineStore:
    name = "redis"
    capabilities = CAPABILITIES

    def __init__(self, connection_string: str = "localhost:6379", connect_timeout: float = 1.0,
                 timeout: float = 1.0, max_connections: int | None = None,
                 retry_after: float = 1.0) -> None:
        _import_driver()
        url, kwargs, self.address = parse_connection_string(connection_string)
        common: dict[str, Any] = dict(
            socket_connect_timeout=connect_timeout, socket_timeout=timeout,
            # one quick retry of a dropped connection (a pooled socket the server closed); a
            # timeout is not retried, so a hung server costs one timeout, not several
            retry=Retry(ExponentialBackoff(cap=0.1, base=0.01), 1,
                        supported_errors=(redis.exceptions.ConnectionError,)),
            health_check_interval=30)
        if max_connections is not None:
            common["max_connections"] = max_connections
        if url is not None:
            self._pool = redis.ConnectionPool.from_url(url, **common)
        else:
            if kwargs.pop("ssl", False):
                kwargs["connection_class"] = redis.SSLConnection
            self._pool = redis.ConnectionPool(**kwargs, **common)
        self._r = redis.Redis(connection_pool=self._pool)
        self._timeout, self._connect_timeout = timeout, connect_timeout
        # (table -> generation, version of sk:@tables and identity it was read at); None until
        # first use
        self._meta: tuple[dict[str, bytes], bytes | None, bytes | None] | None = None
        self._write_loaded = False
        self._moved = False   # a write saw another identity than the cached one: resave layouts
        self._sender: ThreadPoolExecutor | None = None  # sends pipelines while the caller encodes
        self._layouts = Layouts(self._load_layouts, self._save_layouts)
        # read-side circuit breaker: after a read could not reach Redis (refused or timed out),
        # reads fail at once for ``retry_after`` seconds instead of each waiting for a timeout;
        # the first read after that tries Redis again
        self._retry_after = retry_after
        self._down: tuple[float, str] | None = None   # (monotonic time, error message)

    # --- errors and plumbing -----------------------------------------------------------------
    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except redis.exceptions.AuthenticationError as e:
            raise OnlineStoreError(
                f"the Redis online store at {self.address} refused the credentials: {e}",
                hint="check password= / username= in online_store.connection_string") from None
        except redis.exceptions.TimeoutError as e:
            what = "connect" if "connect" in str(e).lower() else "answer"
            limit, key = ((self._connect_timeout, "connect_timeout_seconds") if what == "connect"
                          else (self._timeout, "timeout_seconds"))
            raise _Unreachable(
                f"the Redis online store at {self.address} did not {what} within {limit:g} s",
                hint=f"check that Redis is up and not overloaded, or raise online_store.{key}"
            ) from None
        except redis.exceptions.ConnectionError as e:
            raise _Unreachable(
                f"cannot reach the Redis online store at {self.address}: {e}",
                hint="check that Redis is running there and that online_store.connection_string "
                "in feature_store.yaml (or SKEWLESS_ONLINE_STORE__CONNECTION_STRING) points to it"
            ) from None
        except redis.exceptions.RedisError as e:
            raise OnlineStoreError(
                f"the Redis online store at {self.address} failed: {e}",
                hint="check that online_store.connection_string points to a Redis server, and its log"
            ) from None

    def _script(self, script: _Script, keys: Sequence[bytes], args: Sequence[Any]) -> Any:
        try:
            return self._r.evalsha(script.sha, len(keys), *keys, *args)
        except redis.exceptions.NoScriptError:
            self._r.script_load(script.source)
            return self._r.evalsha(script.sha, len(keys), *keys, *args)

    def _reload(self) -> tuple[dict[str, bytes], bytes | None, bytes | None]:
        pipe = self._r.pipeline(transaction=True)
        pipe.hgetall(TABLES)
        pipe.get(VERSION)
        pipe.get(IDENTITY)
        gens, version, ident = pipe.execute()
        if self._meta is not None and self._meta[2] != ident:
            self._layouts.forget_saved()   # another Redis (restarted empty): save layouts again
        meta = ({k.decode(): v for k, v in gens.items()}, version, ident)
        self._meta = meta
        return meta

    def _cached(self) -> tuple[dict[str, bytes], bytes | None, bytes | None]:
        return self._meta if self._meta is not None else self._reload()

    def _save_layouts(self, layouts: dict[bytes, tuple[str, ...]]) -> None:
        self._r.hset(LAYOUTS, mapping={fp: _SEP.join(names) for fp, names in layouts.items()})

    def _load_layouts(self, fps: list[bytes]) -> dict[bytes, tuple[str, ...]]:
        with self._errors():
            found = self._r.hmget(LAYOUTS, fps)
        return {fp: tuple((v.decode() if isinstance(v, bytes) else v).split(_SEP)) if v else ()
                for fp, v in zip(fps, found) if v is not None}

    # --- protocol ----------------------------------------------------------------------------
    def ping(self) -> None:
        with self._errors():
            self._r.ping()

    def identity(self) -> StoreIdentity | None:
        with self._errors():
            pipe = self._r.pipeline(transaction=True)
            pipe.get(IDENTITY)
            pipe.exists(TABLES)
            pipe.get(WRITES)
            raw, has_tables, writes = pipe.execute()
        if raw is not None:
            return replace(StoreIdentity.decode(raw), writes=int(writes or 0))
        return LEGACY if has_tables else None

    def set_aside_if_unreadable(self) -> str | None:
        return None

    def create(self, tables: Sequence[str]) -> None:
        names = [_check_table(t) for t in tables]
        if not names:
            return
        claim = StoreIdentity.new(adopted=False)
        with self._errors():
            if self._script(CREATE, [TABLES, VERSION, SEQ, IDENTITY],
                            [claim.encode(), StoreIdentity(claim.id, adopted=True).encode(), *names]):
                self._reload()
            elif any(t not in self._cached()[0] for t in tables):
                self._reload()

    def drop(self, tables: Sequence[str]) -> None:
        names = [_check_table(t) for t in tables]
        if not names:
            return
        with self._errors():
            self._script(DROP, [TABLES, VERSION, TRASH], names)
            self._reload()
            self._purge()

    def write_batch(self, rows: Mapping[str, Sequence[tuple[bytes, Record]]]) -> int:
        tables = [t for t, items in rows.items() if items]
        for t in rows:
            _check_table(t)
        n = sum(len(items) for items in rows.values())
        if not n:
            return 0
        with self._errors():
            gens = self._ensure(tables)
            fps = self._layouts.encode(r.names for items in rows.values() for _, r in items)
            groups = _groups(rows, fps)
            if n <= PIPELINE_KEYS:
                redo = self._send(next(groups), gens)
            else:
                redo = self._send_overlapped(groups, gens)
            for _ in range(MAX_ATTEMPTS):
                if not redo:
                    if self._moved:
                        # Redis restarted empty and was refilled under the same generation
                        # names: the layouts it lost are saved again (forget_saved in _reload)
                        self._moved = False
                        self._reload()
                        self._layouts.encode(r.names for items in rows.values() for _, r in items)
                    # counted once every record is stored: a copy of Redis (a snapshot, a
                    # replica) holding this count holds them (StoreIdentity.writes)
                    self._r.incr(WRITES)
                    return n
                self._reload()  # a swap or drop moved a table to another generation
                gens = self._ensure(list(dict.fromkeys(t for t, _, _ in redo)))
                # Redis may have restarted empty: layouts it lost are saved again
                self._layouts.encode(r.names for items in rows.values() for _, r in items)
                redo = [c for i in range(0, len(redo), PIPELINE_KEYS // WRITE_KEYS)
                        for c in self._send(redo[i:i + PIPELINE_KEYS // WRITE_KEYS], gens)]
        raise OnlineStoreError(f"the Redis online store at {self.address}: tables "
                               f"{sorted({t for t, _, _ in redo})} kept changing generation while "
                               "being written", hint="retry when rebuild-online has finished")

    def _send_overlapped(self, groups: Iterator[list[_Chunk]], gens: dict[str, bytes]) -> list[_Chunk]:
        """Encode the next group here while a worker thread sends the previous one (Redis
        time and Python time overlap); at most two groups wait for the worker."""
        if self._sender is None:
            self._sender = ThreadPoolExecutor(1, thread_name_prefix="skewless-redis-writer")
        redo: list[_Chunk] = []
        pending: list[Future[list[_Chunk]]] = []
        try:
            for group in groups:
                pending.append(self._sender.submit(self._send, group, gens))
                if len(pending) > 2:
                    redo += pending.pop(0).result()
            while pending:
                redo += pending.pop(0).result()
        finally:
            for f in pending:
                f.cancel()
            wait(pending)
        return redo

    def _ensure(self, tables: Sequence[str]) -> dict[str, bytes]:
        gens = self._cached()[0]
        if any(t not in gens for t in tables):
            gens = self._reload()[0]
            missing = [t for t in tables if t not in gens]
            if missing:
                self.create(missing)
                gens = self._cached()[0]
        return gens

    def _send(self, batch: list[_Chunk], gens: dict[str, bytes]) -> list[_Chunk]:
        """One pipeline: a write script call per chunk. Returns the chunks to redo (their
        table's generation changed under them)."""
        for _ in range(2):
            pipe = self._r.pipeline(transaction=False)
            loading = not self._write_loaded
            if loading:  # first write of this store: load the script in the same round trip
                pipe.script_load(WRITE.source)
            for table, keys, recs in batch:
                gen = gens[table]
                prefix = b"sk:" + gen + b":"
                pipe.execute_command("EVALSHA", WRITE.sha, len(keys) + 2, TABLES, COUNT + gen,
                                     *[prefix + k for k in keys], table, gen, *recs)
            pipe.get(IDENTITY)   # did Redis restart under a map that still fits? (see write_batch)
            results = pipe.execute(raise_on_error=False)
            ident = results.pop()
            meta = self._meta
            if meta is not None and ident != meta[2]:
                self._moved = True
            if loading:
                results = results[1:]
                self._write_loaded = True
            if not any(isinstance(r, redis.exceptions.NoScriptError) for r in results):
                break
            self._write_loaded = False  # Redis restarted or SCRIPT FLUSH: load, resend
        redo = []
        for chunk, res in zip(batch, results):
            if isinstance(res, Exception):
                raise res
            if res == -1:
                redo.append(chunk)
        return redo

    def update_batch(self, table: str, keys: Sequence[bytes], update: RecordUpdate) -> int:
        """Optimistic transactions of UPDATE_KEYS keys: WATCH the tables hash and the keys,
        read them (one MGET), compute, then MULTI/SET/EXEC; a conflict (another writer touched
        a key, or a swap or drop moved the table) makes EXEC fail, and that chunk is read and
        computed again (``update`` may run more than once per key)."""
        name = _check_table(table)
        uniq = list(dict.fromkeys(keys))
        if not uniq:
            return 0
        n = 0
        with self._errors():
            for i in range(0, len(uniq), UPDATE_KEYS):
                n += self._update_chunk(table, name, uniq[i:i + UPDATE_KEYS], update)
            if n:
                self._r.incr(WRITES)
        return n

    def _update_chunk(self, table: str, name: bytes, keys: list[bytes], update: RecordUpdate) -> int:
        for _ in range(MAX_ATTEMPTS * 4):
            gen = self._ensure([table])[table]
            prefix = b"sk:" + gen + b":"
            full = [prefix + k for k in keys]
            with self._r.pipeline(transaction=True) as pipe:
                try:
                    pipe.watch(TABLES, *full)
                    if pipe.hget(TABLES, name) != gen:   # swapped or dropped meanwhile
                        pipe.unwatch()
                        self._reload()
                        continue
                    values = pipe.mget(full)
                    out: list[tuple[bytes, Record]] = []
                    added = 0
                    for k, v in zip(keys, values):
                        rec = update(k, None if v is None else self._decode(v, table))  # type: ignore[arg-type]
                        if rec is not None:
                            out.append((k, rec))
                            added += v is None
                    if not out:
                        pipe.unwatch()
                        return 0
                    fps = self._layouts.encode(r.names for _, r in out)   # saved before the records
                    pipe.multi()
                    for k, rec in out:
                        pipe.set(prefix + k, encode_record(rec, fps[rec.names]))
                    if added:
                        pipe.incrby(COUNT + gen, added)
                    pipe.execute()
                    return len(out)
                except redis.exceptions.WatchError:
                    continue
        raise OnlineStoreError(f"the Redis online store at {self.address}: records of table {table} "
                               "kept changing while being updated", hint="retry")

    def _decode(self, v: bytes, table: str) -> Record:
        try:
            ev, cr, fp = _HEAD.unpack_from(v)
            return Record(ev - _BIAS, cr - _BIAS, self._layouts.names(fp),
                          _unpackb(v[VALUES_AT:], raw=False, use_list=False, ext_hook=restored))
        except (ValueError, TypeError, struct.error) as e:   # msgpack errors are ValueErrors
            raise OnlineStoreError(
                f"the Redis online store at {self.address}: a record of table {table} "
                f"does not decode ({type(e).__name__}: {e})",
                hint="something other than skewless wrote under sk:*; run "
                "`skewless rebuild-online`") from None

    def read_batch(self, keys: Mapping[str, Sequence[bytes]]) -> dict[str, list[Record | None]]:
        down = self._down
        if down is not None:
            since = time.monotonic() - down[0]
            if since < self._retry_after:
                raise OnlineStoreError(
                    f"{down[1]} ({since:.2f} s ago; reads fail at once until it has been "
                    f"{self._retry_after:g} s)",
                    hint="the store is retried automatically; raise or lower "
                    "online_store.retry_after_seconds to change how often")
        try:
            out = self._read(keys)
        except _Unreachable as e:
            self._down = (time.monotonic(), e.message)
            raise
        self._down = None
        return out

    def _read(self, keys: Mapping[str, Sequence[bytes]]) -> dict[str, list[Record | None]]:
        with self._errors():
            for _ in range(MAX_ATTEMPTS):
                gens, version, ident = self._cached()
                flat: list[bytes] = [VERSION, IDENTITY]
                for table, ks in keys.items():
                    gen = gens.get(table)
                    if gen is not None and ks:
                        prefix = b"sk:" + gen + b":"
                        flat.extend([prefix + k for k in ks])
                values = self._r.execute_command("MGET", *flat)
                if values[0] != version or values[1] != ident:
                    # a create, swap or drop happened, or Redis restarted: reload, read again
                    self._reload()
                    continue
                out: dict[str, list[Record | None]] = {}
                pos = 2
                head, names_of = _HEAD.unpack_from, self._layouts.names
                for table, ks in keys.items():
                    if table in gens and ks:
                        recs: list[Record | None] = []
                        try:
                            for v in values[pos:pos + len(ks)]:
                                if v is None:
                                    recs.append(None)
                                else:
                                    ev, cr, fp = head(v)
                                    recs.append(Record(ev - _BIAS, cr - _BIAS, names_of(fp),
                                                       _unpackb(v[VALUES_AT:], raw=False, use_list=False, ext_hook=restored)))
                        except (ValueError, TypeError, struct.error) as e:   # msgpack errors are ValueErrors
                            raise OnlineStoreError(
                                f"the Redis online store at {self.address}: a record of table {table} "
                                f"does not decode ({type(e).__name__}: {e})",
                                hint="something other than skewless wrote under sk:*; run "
                                "`skewless rebuild-online`") from None
                        out[table] = recs
                        pos += len(ks)
                    else:
                        out[table] = [None] * len(ks)
                return out
        raise OnlineStoreError(f"the Redis online store at {self.address}: tables kept changing "
                               "while being read", hint="retry the request")

    def count(self, table: str) -> int:
        """Exact: the generation's counter, which the write script increments only when it
        creates a key (records are never deleted one by one)."""
        name = _check_table(table)
        with self._errors():
            return int(self._script(COUNT_OF, [TABLES], [name, COUNT]))

    def scan_keys(self, table: str, limit: int) -> list[bytes]:
        _check_table(table)
        if limit <= 0:
            return []
        with self._errors():
            gen = self._reload()[0].get(table)
            if gen is None:
                return []
            prefix = b"sk:" + gen + b":"
            out: list[bytes] = []
            for key in self._r.scan_iter(match=prefix + b"*", count=1000):
                out.append(key[len(prefix):])
                if len(out) >= limit:
                    break
            return out

    def swap(self, table: str, staging: str) -> None:
        args = [_check_table(table), _check_table(staging)]
        if table == staging:
            return
        with self._errors():
            res = self._script(SWAP, [TABLES, VERSION, TRASH], args)
            if res == -1:
                raise OnlineStoreError(
                    f"cannot swap '{staging}' into '{table}' on the Redis online store at "
                    f"{self.address}: '{staging}' does not exist",
                    hint="create and fill the staging table first (rebuild-online does)")
            self._reload()
            self._purge()

    def _purge(self) -> None:
        """Delete the keys of every generation in the trash (SCAN + UNLINK, each UNLINK sent
        with the next SCAN step). Readers and writers never touch a trashed generation: the map
        they use is checked against ``sk:@version`` (reads) or inside the write script
        (writes). A purge cut short is finished by the next swap or drop."""
        trash: set[bytes] = self._r.smembers(TRASH)  # type: ignore[assignment]
        for gen in trash:
            pattern = b"sk:" + gen + b":*"
            cursor, doomed = 0, list[bytes]()
            while True:
                pipe = self._r.pipeline(transaction=False)
                if doomed:
                    pipe.unlink(*doomed)
                pipe.scan(cursor, match=pattern, count=PURGE_SCAN)
                cursor, doomed = pipe.execute()[-1]
                if cursor == 0:
                    break
            pipe = self._r.pipeline(transaction=False)
            if doomed:
                pipe.unlink(*doomed)
            pipe.unlink(COUNT + gen)
            pipe.srem(TRASH, gen)
            pipe.execute()

    def close(self) -> None:
        if self._sender is not None:
            self._sender.shutdown()
            self._sender = None
        self._pool.disconnect()
