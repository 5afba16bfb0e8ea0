"""Fault 8: the cache Redis is down, hangs, restarts empty, or is flushed.

Reads raise one exception type, refresher.CacheUnavailable, and never wait longer than
the socket timeout; with fail_open=True they call the loader directly, coalesced across
the process's threads. After a restart or a FLUSHALL, the app and a running worker carry
on without being restarted.
"""

from __future__ import annotations

import select
import signal
import socket
import struct
import threading
import time
import uuid
from typing import Any, Callable, Iterator

import pytest
import redis

from refresher import CacheUnavailable, Loader, Refresher
from refresher.io import lean
from tests.support import fault_loaders as fl
from tests.support.ageing import expire_in
from tests.support.servers import RedisServer, WorkerProcess
from tests.support.reading import Reading
from tests.support.waiting import until

SOCKET_TIMEOUT = 0.5
WRITTEN = r"refresher\.refresh\[\S+\] succeeded in \S+ 'written'"


pytestmark = pytest.mark.standalone_only  # it stops, freezes and flushes the cache server itself

@pytest.fixture
def cache_server(own_redis: RedisServer) -> RedisServer:
    return own_redis


@pytest.fixture
def cache(cache_server: RedisServer) -> Iterator[Refresher]:
    c = Refresher(cache_server.url, socket_timeout=SOCKET_TIMEOUT, breaker_cooldown=0.3)
    yield c
    c.close()


def counted(cache: Refresher, **options: Any) -> tuple[Loader[..., Any], list[int]]:
    calls: list[int] = []

    @cache.loader(ttl=60, name="faults.t" + uuid.uuid4().hex[:10], **options)
    def load(n: int) -> dict[str, int]:
        calls.append(n)
        return {"n": n, "call": len(calls)}

    return load, calls


def timed(op: Callable[[], object]) -> tuple[BaseException | None, float]:
    started = time.perf_counter()
    try:
        op()
    except BaseException as exc:  # noqa: BLE001 - the test looks at what it was
        return exc, time.perf_counter() - started
    return None, time.perf_counter() - started


def test_a_stopped_cache_raises_cache_unavailable_for_every_operation(
    reading: Reading, cache_server: RedisServer, cache: Refresher
) -> None:
    load, calls = counted(cache)
    assert reading.get(load, 1) == {"n": 1, "call": 1}
    cache_server.stop()  # connection refused from now on
    operations: list[Callable[[], object]] = [
        lambda: reading.get(load, 1), lambda: reading.get(load, 2), lambda: reading.get_many(load, [1, 2]),
        lambda: reading.set(load, 1, {"n": 1}), lambda: reading.invalidate(load, 1),
    ]
    for op in operations:
        error, seconds = timed(op)
        assert isinstance(error, CacheUnavailable), error
        assert seconds < SOCKET_TIMEOUT
    assert calls == [1]  # a miss did not call the origin: without fail_open, it raises
    assert cache.stats["cache_unavailable"] == 5


def test_a_hung_cache_costs_a_read_one_socket_timeout_and_no_more(
    reading: Reading, cache_server: RedisServer, cache: Refresher
) -> None:
    load, calls = counted(cache)
    assert reading.get(load, 1) == {"n": 1, "call": 1}
    assert cache_server.proc is not None
    cache_server.proc.send_signal(signal.SIGSTOP)  # accepts connections, never answers
    try:
        error, seconds = timed(lambda: reading.get(load, 1))
        assert isinstance(error, CacheUnavailable), error
        assert SOCKET_TIMEOUT * 0.9 <= seconds < 2 * SOCKET_TIMEOUT, seconds
        error, seconds = timed(lambda: reading.get(load, 2))  # the breaker is open: no second wait
        assert isinstance(error, CacheUnavailable), error
        assert seconds < 0.05, seconds
    finally:
        cache_server.proc.send_signal(signal.SIGCONT)
    # Thawed. No near cache and few reads: no tracker PINGs this Redis, so the breaker lets one
    # read per cool-down (0.3 s) go to it, and the first one answered closes it.
    until(lambda: timed(lambda: reading.get(load, 2))[0] is None, "a probe read closes the breaker", 5)
    assert not cache.breaker.open
    # The reads get their own answers, not the late replies to the timed-out ones.
    assert reading.get(load, 2) == {"n": 2, "call": 2}
    assert reading.get(load, 1) == {"n": 1, "call": 1}
    assert calls == [1, 2]


def test_the_kernel_keeps_the_socket_timeout_and_a_frozen_cache_still_times_out_once(
    cache_server: RedisServer, cache: Refresher
) -> None:
    """Where refresher/io/lean.py applies (a hiredis parser it knows, real sockets), the sync
    client's sockets are blocking (no poll() before each send and recv) with SO_RCVTIMEO/SO_SNDTIMEO
    set; elsewhere they are redis-py's own, with Python's timeout. Either way a
    frozen server fails a command within the socket timeout, as a timeout (not a connection
    error, which the client would retry)."""
    client = cache.redis
    assert isinstance(client, redis.Redis)
    client.set("t", "v")
    connection = client.connection_pool.get_connection()
    try:
        sock = connection._sock
        assert sock is not None
        if isinstance(connection, lean.LeanSocket):
            assert sock.gettimeout() is None
            for option in (socket.SO_RCVTIMEO, socket.SO_SNDTIMEO):
                assert struct.unpack("@ll", sock.getsockopt(socket.SOL_SOCKET, option, 16)) == (0, SOCKET_TIMEOUT * 1e6)
        else:
            assert not lean.PARSER_KNOWN and sock.gettimeout() == SOCKET_TIMEOUT
    finally:
        client.connection_pool.release(connection)
    assert cache_server.proc is not None
    cache_server.proc.send_signal(signal.SIGSTOP)
    try:
        for op in (lambda: client.get("t"), lambda: client.set("t", "w")):  # the pooled connection, then a new one
            error, seconds = timed(op)
            assert isinstance(error, redis.TimeoutError), error
            assert SOCKET_TIMEOUT * 0.9 <= seconds < 1.5 * SOCKET_TIMEOUT, seconds
    finally:
        cache_server.proc.send_signal(signal.SIGCONT)
    assert client.get("t") == b"v"  # its own answer, not a late reply to a timed-out command


def test_a_pooled_connection_with_bytes_waiting_or_closed_by_the_server_is_replaced(
    cache_server: RedisServer, cache: Refresher
) -> None:
    """The pool asks `can_read()` before each command; the client answers with one poll(),
    so it must still see a reply nobody read, one already in the parser's buffer, and a
    connection the server closed."""
    client = cache.redis
    assert isinstance(client, redis.Redis)
    client.set("t", "v")
    pool = client.connection_pool
    connection: Any = pool.get_connection()  # redis-py's Connection methods are untyped
    assert connection.can_read() is False
    connection.send_command("PING")
    connection.send_command("ECHO", "stray")
    assert connection._sock is not None and select.select([connection._sock], [], [], 5)[0]
    time.sleep(0.05)  # both replies on the socket: the first read buffers the second
    assert connection.read_response() == b"PONG"
    assert connection.can_read() is True  # the second reply, in the parser's buffer
    pool.release(connection)
    assert client.get("t") == b"v"  # its own reply: the pool replaced the connection
    with redis.Redis.from_url(cache_server.url) as admin:
        assert admin.client_kill_filter(_type="normal", skipme=True) >= 1  # closes the pooled connection
    connection = pool.get_connection()  # the pool found it closed and connected again
    try:
        assert connection.can_read() is False
        assert connection.send_command("GET", "t") is None and connection.read_response() == b"v"
    finally:
        pool.release(connection)


def test_fail_open_calls_the_loader_directly_once_for_all_threads(
    reading: Reading, cache_server: RedisServer, cache: Refresher
) -> None:
    entered, release = threading.Event(), threading.Event()
    calls: list[int] = []

    @cache.loader(ttl=60, name="faults.t" + uuid.uuid4().hex[:10], fail_open=True)
    def load(n: int) -> dict[str, int]:
        calls.append(n)
        entered.set()
        release.wait(10)
        return {"n": n}

    cache_server.stop()
    results: list[Any] = []
    threads = [threading.Thread(target=lambda: results.append(reading.get(load, 7))) for _ in range(8)]
    for t in threads:
        t.start()
    assert entered.wait(10)
    flight_key = load.keys(7).value
    deadline = time.monotonic() + 10
    while cache.sync.flights._flights[flight_key].waiters < 7:  # every other thread joined the call
        assert time.monotonic() < deadline
        threading.Event().wait(0.001)
    release.set()
    for t in threads:
        t.join(10)
    assert results == [{"n": 7}] * 8
    assert calls == [7]
    assert cache.stats["cache_unavailable"] == 8


def test_the_app_and_a_worker_recover_from_a_cache_restart(
    reading: Reading, redis_server: RedisServer, r: redis.Redis, key: str, spawn_worker: Callable[..., WorkerProcess]
) -> None:
    """The session's redis-server is the cache and the broker here: restarted, it comes
    back empty, and every pooled connection, the worker's included, is broken."""
    cache = Refresher(redis_server.url, breaker_cooldown=0.3)
    try:
        loader, stats = fl.bound_to(fl.steady, cache), cache.stats
        worker = spawn_worker()
        assert worker.log is not None
        assert reading.get(loader, key) == {"key": key, "call": 1}

        redis_server.restart()
        assert reading.get(loader, key) == {"key": key, "call": 1}  # loaded again (counters restarted too)
        assert stats["miss"] == 2
        expire_in(r, loader.keys(key), 20_000)
        assert reading.get(loader, key) == {"key": key, "call": 1}  # asks for a refresh ...
        assert cache.flush()
        assert stats["refresh_enqueued"] == 1 and stats["publish_failed"] == 0  # ... on a new connection
        worker.log.wait_for(r"Connected to redis://", count=2)  # the worker reconnected by itself
        worker.log.wait_for(WRITTEN)
        assert reading.get(loader, key) == {"key": key, "call": 2}
    finally:
        cache.close()


def test_the_app_and_a_worker_recover_from_a_flushall(
    reading: Reading, r: redis.Redis, key: str, spawn_worker: Callable[..., WorkerProcess]
) -> None:
    loader, stats = fl.steady, fl.steady.cache.stats
    worker = spawn_worker()
    assert worker.log is not None
    assert reading.get(loader, key) == {"key": key, "call": 1}
    misses = stats["miss"]

    r.flushall()  # values, markers, the task queue and kombu's bindings: all gone
    assert reading.get(loader, key) == {"key": key, "call": 1}  # loaded again (counters went too)
    assert stats["miss"] == misses + 1
    expire_in(r, loader.keys(key), 20_000)
    assert reading.get(loader, key) == {"key": key, "call": 1}
    assert loader.cache.flush()
    worker.log.wait_for(WRITTEN)
    assert reading.get(loader, key) == {"key": key, "call": 2}
