"""refresher/io/lean.py on whichever redis-py this venv holds (make test runs this file on
redis-py 5 (oldest pins), 6 and 7 (test-majors) and 8): the lean connection where redis-py's
internals are the ones it knows, redis-py's own elsewhere, and either way a frozen cache costs
a command one socket timeout, and a connection with a stray reply is never reused; and no
other module reads redis-py's internals."""

from __future__ import annotations

import ast
import os
import signal
import time
from pathlib import Path
from typing import Any, Iterator

import pytest
import redis

from refresher import CacheUnavailable, Refresher
from refresher.io import lean
from tests.support.servers import RedisServer
from tests.support.waiting import until

SOCKET_TIMEOUT = 0.5
SOURCE = Path(lean.__file__).parent.parent
OTHER_LIBRARIES_PRIVATES = {"_fields": "NamedTuple's, documented", "_create_waker": "kombu's Hub, asked with hasattr"}
pytestmark = pytest.mark.standalone_only  # it freezes its own server


@pytest.fixture
def cache(own_redis: RedisServer) -> Iterator[Refresher]:
    c = Refresher(own_redis.url, socket_timeout=SOCKET_TIMEOUT, breaker_cooldown=0.3)
    yield c
    c.close()


def test_the_lean_connection_is_used_exactly_where_redis_py_has_the_internals_it_reads(cache: Refresher) -> None:
    """redis-py 5 to 7 look ahead in `_next_response`; 8 keeps what it read in the hiredis
    reader alone: both shapes are known, so the cache's client makes 3 system calls a command."""
    major = int(redis.__version__.split(".")[0])
    assert lean.PARSER_SHAPE == ("look-ahead" if major < 8 else "reader")
    assert isinstance(cache.redis, redis.Redis)
    assert cache.redis.connection_pool.connection_class is lean.TimedConnection
    assert type(cache.redis.connection_pool) is lean.ForkAwarePool  # no getpid() per command


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this platform")
def test_a_forked_child_reads_on_connections_of_its_own(cache: Refresher) -> None:
    """The pool learns of a fork from the interpreter's fork hook, not from getpid(): a child
    still drops the parent's connections (whose replies the parent reads) before its first command."""
    client = cache.redis
    assert isinstance(client, redis.Redis)
    client.set("t", "v")
    pool = client.connection_pool
    parents = list(pool._available_connections)
    assert parents
    pid = os.fork()
    if pid == 0:  # the child: whatever happens, it exits here with what it found
        code = 1
        try:
            got = client.get("t")
            mine = pool.pid == os.getpid() and not any(c in parents for c in pool._available_connections)
            code = 0 if got == b"v" and mine else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert client.get("t") == b"v" and pool.pid == os.getpid()


def test_a_frozen_cache_fails_a_read_within_the_socket_timeout(own_redis: RedisServer, cache: Refresher) -> None:
    @cache.loader(ttl=60, name="lean.frozen")
    def load(n: int) -> int:
        return n

    assert load.get(1) == 1
    assert own_redis.proc is not None
    own_redis.proc.send_signal(signal.SIGSTOP)
    try:
        started = time.perf_counter()
        with pytest.raises(CacheUnavailable):
            load.get(1)
        assert SOCKET_TIMEOUT * 0.9 <= time.perf_counter() - started < 2 * SOCKET_TIMEOUT
    finally:
        own_redis.proc.send_signal(signal.SIGCONT)

    def answered() -> bool:
        try:
            return load.get(1) == 1  # its own answer, not a late reply to the timed-out read
        except CacheUnavailable:  # the breaker is open: one read per cool-down goes to Redis
            return False

    # Thawed. No near cache and few reads: no tracker PINGs this Redis, so the first probe read
    # answered closes the breaker.
    until(answered, "a probe read closes the breaker", 5)
    assert not cache.breaker.open


def test_a_pooled_connection_holding_a_stray_reply_is_replaced(cache: Refresher) -> None:
    client = cache.redis
    assert isinstance(client, redis.Redis)
    client.set("t", "v")
    pool = client.connection_pool
    # redis-py 5.0 wants a command name, which later ones deprecate; its methods are untyped.
    connection: Any = pool.get_connection() if int(redis.__version__[0]) > 5 else pool.get_connection("PING")
    connection.send_command("PING")
    connection.send_command("ECHO", "stray")
    assert connection.can_read(timeout=5)
    time.sleep(0.05)  # both replies on the socket: the first read buffers the second
    assert connection.read_response() == b"PONG"
    assert connection.can_read() is True  # the second reply, in the parser's buffer
    pool.release(connection)
    assert client.get("t") == b"v"  # its own reply: the pool replaced the connection


def test_a_hit_whose_pooled_connection_the_server_closed_is_served_on_a_new_one(
        own_redis: RedisServer, cache: Refresher) -> None:
    """A hit's GET takes a pooled connection itself (lean.getter): one the server has closed
    since is replaced before the command, as redis-py's client would, and the hit is served."""
    @cache.loader(ttl=60, name="lean.killed")
    def load(n: int) -> int:
        return n

    assert load.get(1) == 1 and load.get(1) == 1
    hits, loads = cache.stats["hit"], cache.stats["load"]
    admin = redis.Redis.from_url(own_redis.url)
    try:
        me = admin.client_id()
        data = [c["id"] for c in admin.client_list() if not c["name"] and int(c["id"]) != me]
        assert data
        for client_id in data:
            admin.client_kill_filter(_id=client_id)
    finally:
        admin.close()
    assert load.get(1) == 1
    assert (cache.stats["hit"], cache.stats["load"]) == (hits + 1, loads)  # from Redis, not loaded again


def test_redis_pys_internals_are_read_in_lean_py_only() -> None:
    """Issue 20: one module isolates them, so a new redis-py major breaks (or falls back) in
    one place. A private name read elsewhere (an attribute, getattr or hasattr, a module
    under `redis._`) that refresher does not define itself is another library's."""
    defined: set[str] = set()
    read: list[tuple[str, str]] = []
    for path in SOURCE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            defined |= _defines(node)
            read += [(path.name, name) for name in _reads(node) if _private(name)]
    foreign = {(module, name) for module, name in read if name not in defined}
    assert {name for module, name in foreign if module != "lean.py"} == set(OTHER_LIBRARIES_PRIVATES)
    assert {"redis._parsers.hiredis", "_sock", "_reader"} <= {name for module, name in foreign if module == "lean.py"}


def _defines(node: ast.AST) -> set[str]:
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return {node.name}
    if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
        return {node.id}
    if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
        return {node.attr}
    if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__slots__" for t in node.targets):
        return {elt.value for elt in getattr(node.value, "elts", []) if isinstance(elt, ast.Constant) and isinstance(elt.value, str)}
    return set()


def _reads(node: ast.AST) -> list[str]:
    if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Load):
        return [node.attr]
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("getattr", "hasattr"):
        return [arg.value for arg in node.args[1:2] if isinstance(arg, ast.Constant) and isinstance(arg.value, str)]
    if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.startswith("redis."):
        return [node.value]  # a module imported by name
    if isinstance(node, ast.ImportFrom) and node.module:
        return [node.module]
    return []


def _private(name: str) -> bool:
    return any(part.startswith("_") and not part.startswith("__") for part in name.split("."))
