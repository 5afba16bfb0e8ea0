"""The one place refresher leans on redis-py internals, to save system calls on the hit path
and to poll the tracker's sockets, and the checks that fall back to redis-py's public
connection classes and calls when it cannot.

A redis-py connection with a socket timeout makes 7 system calls per command on redis-py 5
to 7 and 5 on redis-py 8: the pool's `can_read()` (5 to 7: a recv that fails, between two
ioctl switching the socket to non-blocking and back; 8: one poll), then the send and the recv,
before each of which Python's timeout mode polls (4). LeanSocket makes 3. It needs the
connected socket (`_connect`, `_sock`) and, to know that nothing is buffered, redis-py's
hiredis parser (`_reader`, and on redis-py 5 to 7 its look-ahead `_next_response`): none of
them public. So it is used only where it is known to
hold, and redis-py's own classes (Python's socket timeouts) everywhere else:

- the sockets are monkey-patched by gevent or eventlet: a green socket is non-blocking, so a
  kernel timeout (SO_RCVTIMEO) never fires and only Python's own timeout bounds a read;
- the hiredis parser is not one of the two shapes LeanSocket knows; TLS; a Cluster's node
  clients.
"""

from __future__ import annotations

import importlib
import inspect
import os
import select
import socket
import struct
import sys
from typing import Any, Callable

import redis.sentinel
from redis.connection import AbstractConnection, BlockingConnectionPool, Connection, ConnectionPool, UnixDomainSocketConnection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError



def _private_parsers() -> Any:
    """redis-py's private hiredis parser module, or None: its shape is checked, never assumed."""
    try:
        return importlib.import_module("redis._parsers.hiredis")
    except ImportError:
        return None


PARSERS = _private_parsers()


def green_sockets() -> bool:
    """Whether gevent or eventlet replaced the socket module (their own public checks)."""
    gevent_monkey = sys.modules.get("gevent.monkey")
    if gevent_monkey is not None and gevent_monkey.is_module_patched("socket"):
        return True
    eventlet_patcher = sys.modules.get("eventlet.patcher")
    return eventlet_patcher is not None and bool(eventlet_patcher.is_monkey_patched("socket"))


def _parser_shape() -> str | None:
    """Which hiredis parser redis-py has, read from its code: "look-ahead" (redis-py 5 to 7:
    `can_read` reads ahead into `_next_response`), "reader" (redis-py 8: nothing buffered
    outside the hiredis `_reader`, which `can_read` asks `has_data()`), or None (unknown)."""
    if PARSERS is None or not hasattr(select, "poll") or not getattr(PARSERS, "HIREDIS_AVAILABLE", False):
        return None
    names = PARSERS._HiredisParser.can_read.__code__.co_names
    if "_next_response" in names and "NOT_ENOUGH_DATA" in names and "_reader" in names:
        return "look-ahead"
    reads = PARSERS._HiredisParser.read_from_socket.__code__.co_names
    if "has_data" in names and "_reader" in names and "_next_response" not in names + reads:
        return "reader"
    return None


PARSER_SHAPE = _parser_shape()
LOOK_AHEAD = PARSER_SHAPE == "look-ahead"
PARSER_KNOWN = PARSER_SHAPE is not None


class LeanSocket(AbstractConnection):
    """A redis-py connection that makes 3 system calls per command (a poll, the send, the
    recv), keeping what the others protect.

    The socket timeout is kept by the kernel (SO_RCVTIMEO, SO_SNDTIMEO) on a blocking
    socket. A send or recv that times out fails with EAGAIN, which redis-py reports as a
    ConnectionError (after dropping the connection, as it does on a timeout); it is raised
    here as the TimeoutError it is, so the retry on connection errors never pays a timeout
    twice. Before each command one poll() answers the pool's `can_read()` when nothing is
    waiting on the socket or in the parser; otherwise redis-py's own check runs.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.kernel_timeout = self.socket_timeout
        self.socket_timeout = None  # redis-py leaves the connected socket blocking
        self._poller = select.poll()

    def _connect(self) -> socket.socket:
        sock: socket.socket = super()._connect()  # type: ignore[safe-super]  # redis-py declares _connect abstract on the base Connection implements
        if self.kernel_timeout is not None:
            timeval = struct.pack("@ll", *divmod(max(1, round(self.kernel_timeout * 1e6)), 1_000_000))  # 0 is no timeout
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, timeval)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, timeval)
        self._poller = select.poll()  # the old socket's descriptor may be reused by now
        self._poller.register(sock, select.POLLIN)
        return sock

    def can_read(self, timeout: float = 0) -> bool:
        if timeout == 0 and self._sock is not None and not self._poller.poll(0) and not _buffered(self._parser):
            return False
        return bool(super().can_read(timeout))

    def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        try:
            super().send_packed_command(command, check_health)
        except RedisConnectionError as exc:
            if isinstance(exc.__context__, BlockingIOError):
                raise RedisTimeoutError("Timeout writing to socket") from None
            raise

    def read_response(self, *args: Any, **kwargs: Any) -> Any:  # each base's own defaults
        try:
            return super().read_response(*args, **kwargs)
        except RedisConnectionError as exc:
            if isinstance(exc.__context__, BlockingIOError):
                raise RedisTimeoutError(f"Timeout reading from {self._host_error()}") from None
            raise


def socket_of(connection: Any) -> socket.socket | None:
    """The connected socket of a redis-py connection, or None.

    For the tracker, which reads its links' sockets itself: no public API hands out a
    connection's socket, and redis-py 5.x to 8.x all keep it in `_sock`. Should a release
    stop doing so, a link falls back to the connection's public `can_read` and
    `read_response` (slower: a parser call per link on every read, where the socket gives
    one poll for every master)."""
    sock = getattr(connection, "_sock", None)
    return sock if isinstance(sock, socket.socket) else None  # an SSLSocket is one too


def _buffered(parser: Any) -> bool:
    """Whether the parser may hold bytes already read (anything but an empty hiredis reader,
    and in redis-py 5 to 7 no reply read ahead)."""
    if PARSERS is None or not isinstance(parser, PARSERS._HiredisParser):
        return True
    reader = getattr(parser, "_reader", None)
    if reader is None:
        return True
    return (LOOK_AHEAD and getattr(parser, "_next_response", None) is not PARSERS.NOT_ENOUGH_DATA) or reader.has_data()


class TimedConnection(LeanSocket, Connection):
    pass


class TimedUnixConnection(LeanSocket, UnixDomainSocketConnection):
    pass


class TimedSentinelConnection(LeanSocket, redis.sentinel.SentinelManagedConnection):
    pass


def connection_class(kind: str, url: str, tls: bool) -> type[AbstractConnection] | None:
    """The sync client's connections for a cache of this kind, or None for redis-py's own."""
    if not PARSER_KNOWN or green_sockets() or tls or kind == "cluster" or url.startswith("rediss://"):
        return None
    if kind == "sentinel":
        return TimedSentinelConnection
    return TimedUnixConnection if url.startswith("unix://") else TimedConnection


def _pid_checked() -> bool:
    """Whether redis-py's pool notices a fork by comparing its `pid` with os.getpid() in
    `_checkpid`, and the interpreter can say when this process forks instead."""
    check = getattr(ConnectionPool, "_checkpid", None)
    return hasattr(os, "register_at_fork") and check is not None and "getpid" in check.__code__.co_names


PID_CHECKED = _pid_checked()
_pid = os.getpid()  # this process's, kept by the fork hook below


def _forked() -> None:
    global _pid
    _pid = os.getpid()


if PID_CHECKED:
    os.register_at_fork(after_in_child=_forked)


class ForkAwarePool(ConnectionPool):
    """redis-py's pool, which asks getpid() (a system call) as each command takes and returns
    its connection, to notice a fork: here the fork hook keeps the process id, and redis-py's
    own check (and reset) runs once the pool's is not this process's."""

    def _checkpid(self) -> None:
        if self.pid != _pid:
            super()._checkpid()


class ForkAwareBlockingPool(ForkAwarePool, BlockingConnectionPool):
    """The same for a bounded pool (`max_connections=`), which waits for a free connection."""


def pool_class(connection: type[AbstractConnection] | None, bounded: bool = False) -> type[ConnectionPool]:
    """The sync client's pool, for these connections (None: redis-py's own); `bounded`: one
    that waits for a free connection once it holds its max_connections (io/pools.py)."""
    if connection is not None and PID_CHECKED:
        return ForkAwareBlockingPool if bounded else ForkAwarePool
    return BlockingConnectionPool if bounded else ConnectionPool


# redis-py 5.0 names the command it takes a connection for; 5.3 on deprecate the name.
_NAMED = inspect.signature(ConnectionPool.get_connection).parameters["command_name"].default is inspect.Parameter.empty


def getter(client: Any) -> Callable[[str], Any]:
    """The GET a hit sends. On a client with the lean pool: the command on a pooled connection,
    retried as the client retries (its connections' Retry, disconnecting before each retry),
    without the ~3 µs of redis-py's per-command dispatch (option handling, response callbacks,
    its OpenTelemetry hooks, which therefore do not see these GETs); elsewhere the client's own."""
    pool = getattr(client, "connection_pool", None)
    if not isinstance(pool, ForkAwarePool) or getattr(client, "connection", None) is not None:
        return client.get
    take, release = (lambda: pool.get_connection("GET")) if _NAMED else pool.get_connection, pool.release

    def get(key: str) -> Any:
        connection = take()
        try:
            return connection.retry.call_with_retry(lambda: _get(connection, key), lambda _: connection.disconnect())
        finally:
            release(connection)

    return get


def _get(connection: Any, key: str) -> Any:
    connection.send_command("GET", key)
    return connection.read_response()
