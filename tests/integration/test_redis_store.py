"""The Redis online store against a real Redis at 127.0.0.1:6379 (``.ci/run`` starts one).

Every test works in its own project namespace and deletes its keys afterwards, so runs can
share a Redis with other users. Without a Redis the tests are skipped, unless
CI_REQUIRE_REDIS=1 (set by CI), where they fail.
"""

from __future__ import annotations

import itertools
import subprocess
import sys
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest

from skewless.testing.redis_server import SHARED_REDIS, purge_project, require_shared_redis

require_shared_redis(module_level=True)

import redis  # noqa: E402

from skewless import Entity, FeatureStore, FeatureView, Field, FileSource  # noqa: E402
from skewless import types as T  # noqa: E402
from skewless.errors import ConfigError, MissingExtraError, OnlineStoreError  # noqa: E402
from skewless.online import make_online_store, table_name  # noqa: E402
from skewless.online.codec import OLDEST, Record, encode_key, micros, restore  # noqa: E402
from skewless.online.redis import PIPELINE_KEYS, RedisOnlineStore, parse_connection_string  # noqa: E402

from .conftest import pair_view, spend_view, user, pair  # noqa: E402

ADDRESS = SHARED_REDIS


@pytest.fixture
def raw() -> redis.Redis:
    r = redis.Redis("127.0.0.1", 6379)
    yield r
    r.close()


@pytest.fixture
def project() -> str:
    name = "t" + uuid.uuid4().hex[:12]
    yield name
    left = purge_project(name)
    assert not left, f"keys left behind: {left[:5]}"


@pytest.fixture
def store() -> RedisOnlineStore:
    s = RedisOnlineStore(ADDRESS)
    yield s
    s.close()


def rec(event: int, created: int = OLDEST, **values) -> Record:
    return Record.of(event, created, values)


def keys_of(raw: redis.Redis, table: str) -> list[bytes]:
    return list(raw.scan_iter(match=f"sk:{table}:*", count=1000))


# --- values ------------------------------------------------------------------------------------

def test_round_trip_of_every_value_type(store, project):
    t = table_name(project, "v")
    ts = datetime(2024, 5, 1, 12, 30, 15, 123456, tzinfo=timezone.utc)
    values = {"i32": -(2**31), "i64": 2**62 + 7, "f32": 1.5, "f64": 3.141592653589793,
              "s": "héllo ✓", "b": True, "b2": False, "by": b"\x00\xff\x80", "ts": ts,
              "arr_f": [0.25, -1.0], "arr_s": ["a", ""], "arr_i": [1, 2**40], "arr_empty": [],
              "null": None}
    dtypes = {"i32": T.Int32, "i64": T.Int64, "f32": T.Float32, "f64": T.Float64, "s": T.String,
              "b": T.Bool, "b2": T.Bool, "by": T.Bytes, "ts": T.UnixTimestamp,
              "arr_f": T.Array(T.Float32), "arr_s": T.Array(T.String), "arr_i": T.Array(T.Int64),
              "arr_empty": T.Array(T.Int64), "null": T.String}
    store.create([t])
    key = encode_key(["u1", 42])
    assert store.write_batch({t: [(key, Record.of(micros(ts), micros(ts) + 1, values))]}) == 1
    got = store.read_batch({t: [key, encode_key(["u1", 43])]})[t]
    assert got[1] is None
    assert got[0] is not None and (got[0].event_ts, got[0].created_ts) == (micros(ts), micros(ts) + 1)
    back = {k: restore(v, dtypes[k]) for k, v in got[0].values.items()}
    assert back == values
    assert type(back["b"]) is bool and type(back["by"]) is bytes and type(back["i64"]) is int


# --- only if newer -----------------------------------------------------------------------------

def test_older_write_is_ignored_and_created_breaks_ties(store, project):
    t = table_name(project, "v")
    k = encode_key([1])
    store.write_batch({t: [(k, rec(100, 5, v="a"))]})
    store.write_batch({t: [(k, rec(99, 999, v="older event"))]})
    assert store.read_batch({t: [k]})[t][0].values == {"v": "a"}
    store.write_batch({t: [(k, rec(100, 4, v="older created"))]})
    assert store.read_batch({t: [k]})[t][0].values == {"v": "a"}
    store.write_batch({t: [(k, rec(100, 5, v="same pair"))]})  # same fact: rewritten
    assert store.read_batch({t: [k]})[t][0].values == {"v": "same pair"}
    store.write_batch({t: [(k, rec(100, 6, v="newer created"))]})
    assert store.read_batch({t: [k]})[t][0].values == {"v": "newer created"}
    store.write_batch({t: [(k, rec(101, OLDEST, v="newer event"))]})
    got = store.read_batch({t: [k]})[t][0]
    assert got.values == {"v": "newer event"} and (got.event_ts, got.created_ts) == (101, OLDEST)
    assert store.count(t) == 1


# (event, created) pairs around the header's sign and 32-bit boundaries
TRICKY = [(-(2**62), OLDEST), (-1, 0), (0, -1), (0, 0), (0, OLDEST), (2**32 - 1, 0), (2**32, 0),
          (2**32, -(2**32)), (1_700_000_000_000_000, 1), (1_700_000_000_000_000, 2**31),
          (1_700_000_000_000_000, 2**32 + 1), (2**62, 2**62), (2**63 - 1, 2**63 - 1), (-(2**63), -(2**63))]


def test_order_independence(store, project):
    t = table_name(project, "v")
    cases = list(itertools.permutations(TRICKY[:6]))[::37] + [tuple(TRICKY), tuple(reversed(TRICKY))]
    for n, order in enumerate(cases):
        k = encode_key([n])
        for ev, cr in order:  # one write per record, in this order
            store.write_batch({t: [(k, rec(ev, cr, tag=[ev, cr]))]})
        # the same records in one batch, in this order
        k2 = encode_key([n, "batch"])
        store.write_batch({t: [(k2, rec(ev, cr, tag=[ev, cr])) for ev, cr in order]})
        want = list(max(order))
        for key in (k, k2):
            got = store.read_batch({t: [key]})[t][0]
            assert got.values == {"tag": tuple(want)} and [got.event_ts, got.created_ts] == want, order
    assert store.count(t) == 2 * len(cases)


def test_every_pair_compares_like_python(store, project):
    t = table_name(project, "v")
    pairs = list(itertools.permutations(TRICKY, 2))
    store.write_batch({t: [(encode_key(list(a) + list(b)), rec(*a, first=True)) for a, b in pairs]})
    store.write_batch({t: [(encode_key(list(a) + list(b)), rec(*b, first=False)) for a, b in pairs]})
    got = store.read_batch({t: [encode_key(list(a) + list(b)) for a, b in pairs]})[t]
    for (a, b), r in zip(pairs, got):
        assert r.values["first"] is (not b > a), (a, b)


# --- reads -------------------------------------------------------------------------------------

class SendCounter:
    """Counts the requests sent to Redis: one send_packed_command is one round trip."""

    def __init__(self, monkeypatch) -> None:
        self.sent: list[bytes] = []
        orig = redis.connection.Connection.send_packed_command

        def counting(conn, command, check_health=True):
            chunks = command if isinstance(command, (list, tuple)) else [command]
            self.sent.append(b"".join(bytes(c) for c in chunks))
            return orig(conn, command, check_health)

        monkeypatch.setattr(redis.connection.Connection, "send_packed_command", counting)


def test_many_tables_are_read_in_one_round_trip(store, project, monkeypatch):
    tables = [table_name(project, f"v{i}") for i in range(5)]
    store.create(tables)
    for i, t in enumerate(tables):
        store.write_batch({t: [(encode_key([k]), rec(k, v=f"{i}-{k}")) for k in range(0, 100, 2)]})
    keys = {t: [encode_key([k]) for k in range(100)] for t in tables}
    keys[table_name(project, "never_created")] = [encode_key([1])]
    keys[table_name(project, "empty_request")] = []
    store.read_batch(keys)  # warm the table map
    counter = SendCounter(monkeypatch)
    out = store.read_batch(keys)
    assert len(counter.sent) == 1 and b"MGET" in counter.sent[0]
    for i, t in enumerate(tables):
        assert [r.values["v"] if r else None for r in out[t]] == \
               [f"{i}-{k}" if k % 2 == 0 else None for k in range(100)]
    assert out[table_name(project, "never_created")] == [None]
    assert out[table_name(project, "empty_request")] == []


def test_a_table_created_elsewhere_is_seen_at_once(project):
    reader, writer = RedisOnlineStore(ADDRESS), RedisOnlineStore(ADDRESS)
    t = table_name(project, "late")
    k = encode_key([1])
    assert reader.read_batch({t: [k]})[t] == [None]   # caches a map without the table
    writer.write_batch({t: [(k, rec(1, v=1))]})
    assert reader.read_batch({t: [k]})[t][0].values == {"v": 1}
    reader.close(), writer.close()


def test_two_projects_do_not_see_each_other(store, project):
    other = project + "b"
    try:
        a, b = table_name(project, "user_spend"), table_name(other, "user_spend")
        k = encode_key(["u1"])
        store.write_batch({a: [(k, rec(1, v="a"))], b: [(k, rec(1, v="b"))]})
        assert store.read_batch({a: [k], b: [k]}) == {a: [rec(1, v="a")], b: [rec(1, v="b")]}
        assert store.count(a) == store.count(b) == 1
        store.drop([b])
        assert store.read_batch({a: [k], b: [k]}) == {a: [rec(1, v="a")], b: [None]}
    finally:
        purge_project(other)  # leftovers would match *{project}*: the project fixture checks


# --- count, scan_keys, drop ----------------------------------------------------------------------

def test_count_is_exact_and_scan_keys_samples(store, project):
    t = table_name(project, "v")
    assert store.count(t) == 0 and store.scan_keys(t, 10) == []
    store.create([t])
    assert store.count(t) == 0 and store.scan_keys(t, 10) == []
    rows = [(encode_key([i]), rec(i, v=i)) for i in range(2500)]
    store.write_batch({t: rows + rows[:100]})      # duplicates within a batch
    store.write_batch({t: rows[::3]})              # rewrites (ignored: not newer)
    store.write_batch({t: [(k, rec(r.event_ts + 1, v=-1)) for k, r in rows[:10]]})  # updates
    assert store.count(t) == 2500
    sample = store.scan_keys(t, 10)
    assert len(sample) == 10 and set(sample) <= {k for k, _ in rows}
    assert sorted(store.scan_keys(t, 10_000)) == sorted(k for k, _ in rows)


def test_drop_removes_every_key(store, project, raw):
    t, kept = table_name(project, "gone"), table_name(project, "kept")
    k = encode_key([1])
    store.write_batch({t: [(encode_key([i]), rec(1, v=i)) for i in range(3000)], kept: [(k, rec(1, v=0))]})
    store.drop([t, table_name(project, "never_existed")])
    assert keys_of(raw, t) == [] and raw.get(f"sk:@count:{t}:g1") is None
    assert not [g for g in raw.smembers("sk:@trash") if g.startswith(t.encode())]
    assert store.count(t) == 0 and store.read_batch({t: [k]})[t] == [None]
    assert store.read_batch({kept: [k]})[kept][0].values == {"v": 0}
    store.write_batch({t: [(k, rec(1, v="again"))]})  # a write recreates the table
    assert store.read_batch({t: [k]})[t][0].values == {"v": "again"} and store.count(t) == 1


# --- swap ----------------------------------------------------------------------------------------

def test_swap_while_reading_never_shows_a_gap(project, raw):
    t, staging = table_name(project, "v"), table_name(project, "v") + "__rebuild__"
    keys = [encode_key([i]) for i in range(200)]
    builder, reader = RedisOnlineStore(ADDRESS), RedisOnlineStore(ADDRESS)
    builder.write_batch({t: [(k, rec(1, gen=0)) for k in keys]})
    stop, seen, errors = threading.Event(), [], []

    reads = threading.Condition()

    def read_loop() -> None:
        try:
            while not stop.is_set():
                got = reader.read_batch({t: keys})[t]
                gens = {r.values["gen"] if r else None for r in got}
                assert len(gens) == 1 and None not in gens, f"a read saw {sorted(map(str, gens))}"
                with reads:
                    seen.append(gens.pop())
                    reads.notify_all()
        except BaseException as e:  # reported by the main thread
            errors.append(e)
            with reads:
                reads.notify_all()

    def read_once_more() -> None:
        """Wait until a read that started after this call has finished (the reader is never
        starved by the scheduler: the test waits for it instead of sleeping)."""
        with reads:
            target = len(seen) + 2   # the read under way may have started before
            assert reads.wait_for(lambda: len(seen) >= target or errors, timeout=60), "reader stuck"

    thread = threading.Thread(target=read_loop)
    thread.start()
    try:
        for gen in range(1, 9):
            builder.drop([staging])
            builder.create([staging])
            builder.write_batch({staging: [(k, rec(1, gen=gen)) for k in keys]})
            read_once_more()          # reads run while the staging table is being built ...
            builder.swap(t, staging)
            read_once_more()          # ... and after each swap
            assert builder.count(t) == 200 and builder.count(staging) == 0
    finally:
        stop.set()
        thread.join()
    assert not errors, errors[0]
    assert seen == sorted(seen) and seen[-1] == 8 and set(seen) >= set(range(1, 9))
    assert reader.read_batch({t: keys[:1]})[t][0].values == {"gen": 8}
    live = raw.hget("sk:@tables", t)
    assert live.startswith(staging.encode() + b":g")  # a generation is named after its first table
    assert len(list(raw.scan_iter(match=f"sk:{project}.*", count=1000))) == 200  # old ones deleted
    assert not [g for g in raw.smembers("sk:@trash") if g.startswith(project.encode())]
    builder.close(), reader.close()


def test_a_write_racing_a_swap_lands_in_the_new_table(project):
    t, staging = table_name(project, "v"), table_name(project, "v__rebuild__")
    a, b = RedisOnlineStore(ADDRESS), RedisOnlineStore(ADDRESS)
    a.write_batch({t: [(encode_key([0]), rec(1, v="old"))]})  # a caches t's generation
    b.write_batch({staging: [(encode_key([0]), rec(1, v="rebuilt"))]})
    b.swap(t, staging)
    a.write_batch({t: [(encode_key([1]), rec(1, v="late write"))]})  # with a stale map
    got = b.read_batch({t: [encode_key([0]), encode_key([1])]})[t]
    assert [r.values["v"] for r in got] == ["rebuilt", "late write"] and b.count(t) == 2
    # the same with a write of several pipelines (sent by a worker thread)
    b.write_batch({staging: [(encode_key([0]), rec(2, v="rebuilt again"))]})
    b.swap(t, staging)
    many = 3 * PIPELINE_KEYS + 17
    a.write_batch({t: [(encode_key([i]), rec(3, v=i)) for i in range(many)]})
    assert b.count(t) == many
    assert b.read_batch({t: [encode_key([many - 1])]})[t][0].values == {"v": many - 1}
    a.close(), b.close()


def test_swap_with_a_missing_staging_table_changes_nothing(store, project):
    t = table_name(project, "v")
    store.write_batch({t: [(encode_key([1]), rec(1, v=1))]})
    with pytest.raises(OnlineStoreError, match="does not exist"):
        store.swap(t, t + "__rebuild__")
    assert store.read_batch({t: [encode_key([1])]})[t][0].values == {"v": 1}


# --- connections and errors ----------------------------------------------------------------------

@pytest.mark.parametrize("call", ["read", "write", "count", "create"])
def test_unreachable_redis_is_a_clear_error(call):
    s = RedisOnlineStore("127.0.0.1:1")
    ops = {"read": lambda: s.read_batch({"p__v": [b"k"]}),
           "write": lambda: s.write_batch({"p__v": [(b"k", rec(1))]}),
           "count": lambda: s.count("p__v"), "create": lambda: s.create(["p__v"])}
    t0 = time.perf_counter()
    with pytest.raises(OnlineStoreError) as e:
        ops[call]()
    assert time.perf_counter() - t0 < 2
    assert "127.0.0.1:1" in str(e.value) and "connection_string" in (e.value.hint or "")
    assert e.value.retryable and e.value.__cause__ is None and e.value.__suppress_context__


def test_unanswered_request_times_out_quickly():
    import socket
    with socket.socket() as silent:  # accepts connections, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        s = RedisOnlineStore(f"127.0.0.1:{silent.getsockname()[1]}", timeout=0.3)
        t0 = time.perf_counter()
        with pytest.raises(OnlineStoreError, match="did not answer within 0.3 s"):
            s.read_batch({"p__v": [b"k"]})
        assert time.perf_counter() - t0 < 1.5


class HungRedis:
    """A server that accepts connections but never answers: a hung Redis. ``received()`` says
    how many bytes clients have sent it, so a test can tell whether a client tried the store at
    all, rather than timing the client (which depends on the machine's load). On loopback a
    connect or a send is in the kernel's queues when the call returns, so reading them without
    blocking right after a client call sees all of it."""

    def __init__(self) -> None:
        import socket
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.sock.setblocking(False)
        self.address = f"127.0.0.1:{self.sock.getsockname()[1]}"
        self.total = 0
        self.conns: list[Any] = []

    def received(self) -> int:
        while True:
            try:
                conn, _ = self.sock.accept()
            except BlockingIOError:
                break
            conn.setblocking(False)
            self.conns.append(conn)
        for conn in self.conns:
            while True:
                try:
                    data = conn.recv(65536)
                except BlockingIOError:
                    break
                if not data:
                    break
                self.total += len(data)
        return self.total

    def close(self) -> None:
        for c in self.conns:
            c.close()
        self.sock.close()


def test_reads_fail_fast_after_a_timeout_then_retry():
    """After a read that timed out, reads fail at once without sending anything to the store
    (a circuit breaker) until ``retry_after`` has passed; then the store is tried again."""
    hung = HungRedis()
    try:
        s = RedisOnlineStore(hung.address, timeout=0.2, retry_after=0.5)

        def read() -> float:
            t0 = time.perf_counter()
            with pytest.raises(OnlineStoreError) as e:
                s.read_batch({"p__v": [b"k"]})
            took = time.perf_counter() - t0
            assert "did not answer within 0.2 s" in e.value.message
            return took

        assert read() >= 0.2                    # the first read waits for the timeout
        sent = hung.received()
        assert sent > 0                         # it did ask the store
        for _ in range(20):                     # then reads fail at once: the store is not asked
            read()
        assert hung.received() == sent
        time.sleep(0.5)                         # at least retry_after later
        assert read() >= 0.2                    # Redis is tried again
        assert hung.received() > sent
    finally:
        hung.close()


def test_a_dropped_connection_is_reopened(store, project, raw):
    t = table_name(project, "v")
    store.write_batch({t: [(encode_key([1]), rec(1, v=1))]})
    raw.client_kill_filter(_id=store._r.client_id())
    assert store.read_batch({t: [encode_key([1])]})[t][0].values == {"v": 1}


def test_connection_strings():
    assert parse_connection_string("localhost:6379") == (None, {"host": "localhost", "port": 6379},
                                                         "localhost:6379")
    assert parse_connection_string("redis-host") == (None, {"host": "redis-host", "port": 6379},
                                                     "redis-host:6379")
    url, kw, addr = parse_connection_string("r1:6380,db=2,password=s3cret,ssl=true,username=svc")
    assert url is None and addr == "r1:6380/2" and "s3cret" not in addr
    assert kw == {"host": "r1", "port": 6380, "db": 2, "password": "s3cret", "ssl": True, "username": "svc"}
    assert parse_connection_string("[::1]:7000")[1] == {"host": "::1", "port": 7000}
    url, kw, addr = parse_connection_string("rediss://:pw@cache.internal:6390/1")
    assert url == "rediss://:pw@cache.internal:6390/1" and addr == "cache.internal:6390/1"
    with pytest.raises(ConfigError, match="(?s)unknown option 'pasword'.*valid options"):
        parse_connection_string("localhost:6379,pasword=x")
    with pytest.raises(ConfigError, match="exactly one host"):
        parse_connection_string("a:1,b:2")
    with pytest.raises(ConfigError, match="not a number"):
        parse_connection_string("localhost:port")
    with pytest.raises(ConfigError, match="not a boolean"):
        parse_connection_string("localhost,ssl=maybe")


def test_db_option_selects_the_database(project):
    t = table_name(project, "v")
    k = encode_key([1])
    db1 = RedisOnlineStore("127.0.0.1:6379,db=1")
    db0 = RedisOnlineStore("redis://127.0.0.1:6379/0")
    try:
        db1.write_batch({t: [(k, rec(1, v="db1"))]})
        assert db1.read_batch({t: [k]})[t][0].values == {"v": "db1"}
        assert db0.read_batch({t: [k]})[t] == [None]
    finally:
        purge_project(project, "127.0.0.1:6379,db=1")
        db1.close(), db0.close()


def test_redis_is_imported_lazily_and_a_missing_package_names_the_extra(monkeypatch):
    code = "import sys, skewless, skewless.online; assert 'redis' not in sys.modules, 'redis imported'"
    subprocess.run([sys.executable, "-c", code], check=True)
    monkeypatch.setitem(sys.modules, "redis", None)   # as if not installed
    monkeypatch.delitem(sys.modules, "skewless.online.redis")
    from skewless.config import config_from_dict
    cfg = config_from_dict({"project": "p", "online_store": {"type": "redis"}}, environ={})
    with pytest.raises(MissingExtraError) as e:
        make_online_store(cfg)
    assert 'pip install "skewless[redis]"' in str(e.value)


# --- end to end ----------------------------------------------------------------------------------

ALL_TYPES = [Field("i32", T.Int32), Field("i64", T.Int64), Field("f32", T.Float32),
             Field("f64", T.Float64), Field("s", T.String), Field("b", T.Bool), Field("by", T.Bytes),
             Field("ts_value", T.UnixTimestamp), Field("emb", T.Array(T.Float32)),
             Field("tags", T.Array(T.String))]


def _typed_view(repo: Path) -> FeatureView:
    t = pd.Timestamp
    pd.DataFrame({
        "user_id": ["u1", "u1", "u2"],
        "ts": [t("2024-01-01", tz="UTC"), t("2024-01-02", tz="UTC"), t("2024-01-03", tz="UTC")],
        "i32": pd.array([1, 2, None], dtype="Int32"), "i64": [2**40, 5, 6],
        "f32": pd.array([0.5, 1.25, None], dtype="Float32"), "f64": [1.0, None, 3.5],
        "s": ["a", "é", None], "b": [True, False, None], "by": [b"\x00", b"\xff", None],
        "ts_value": [t("2023-12-31 10:00", tz="UTC"), t("2024-01-01 11:00:00.000001", tz="UTC"), None],
        "emb": [[0.1, 0.2], [0.5, -0.25], []], "tags": [["x"], ["y", "z"], None],
    }).astype({"emb": pd.ArrowDtype(pa.list_(pa.float32()))}).to_parquet(repo / "data/typed.parquet")
    return FeatureView("typed", [user], ALL_TYPES, FileSource("data/typed.parquet", "ts"))


def test_materialized_redis_serves_what_sqlite_serves(repo, raw):
    project = "t" + uuid.uuid4().hex[:12]
    base = {"project": project, "registry": "data/registry.db", "offline_store": {"type": "duckdb"}}
    clock = lambda: datetime(2024, 2, 9, tzinfo=timezone.utc)  # noqa: E731
    sqlite_fs = FeatureStore(repo, config={**base, "online_store": {"type": "sqlite", "path": "data/o.db"}},
                             clock=clock)
    redis_fs = FeatureStore(repo, config={**base, "online_store": {
        "type": "redis", "connection_string": ADDRESS}}, clock=clock)
    try:
        typed = _typed_view(repo)
        sqlite_fs.apply([user, pair, spend_view(ttl=timedelta(days=5)), pair_view(ttl=None), typed])
        end = datetime(2024, 2, 9, tzinfo=timezone.utc)
        for fs in (sqlite_fs, redis_fs):
            reports = fs.materialize(None, end)
            assert {r.view: r.rows for r in reports} == {"user_spend": 3, "pair_stats": 2, "typed": 2}
        assert redis_fs.online_store.count(table_name(project, "typed")) == 2
        rows = [{"user_id": u, "merchant_id": m} for u in ("u1", "u2", "u3", "u9") for m in ("m1", "m2")]
        refs = (["user_spend:amount", "user_spend:n_txn", "pair_stats:last_country"]
                + [f"typed:{f.name}" for f in ALL_TYPES])
        want = sqlite_fs.get_online_features(refs, rows).to_dict(True, True)
        got = redis_fs.get_online_features(refs, rows).to_dict(True, True)
        assert got == want
        assert got["amount"][:2] == [140.0, 140.0] and got["n_txn"][0] == 3
        assert got["i64"][0] == 5 and got["emb"][0] == [0.5, -0.25] and got["s"][0] == "é"
        assert got["ts_value"][0] == datetime(2024, 1, 1, 11, 0, 0, 1, tzinfo=timezone.utc)
        assert got["last_country__status"][:4] == ["PRESENT", "NOT_FOUND", "PRESENT", "NOT_FOUND"]
        assert got["amount__status"][::2] == ["PRESENT", "OUTSIDE_TTL", "PRESENT", "NOT_FOUND"]
        # rebuild-online on Redis: staging generation, swap, exact count, sampled values agree
        reports = redis_fs.rebuild_online()
        assert sorted((r.view, r.stored, r.ok) for r in reports) == \
               [("pair_stats", 2, True), ("typed", 2, True), ("user_spend", 3, True)]
        assert redis_fs.get_online_features(refs, rows).to_dict(True, True) == want
        assert len(list(raw.scan_iter(match=f"sk:{project}.*", count=1000))) == 7
    finally:
        redis_fs.online_store.close()
        purge_project(project)
