"""One master's tracking connection, read without blocking, and what its pushes name."""

from __future__ import annotations

import atexit
import logging
import math
import select
import selectors
import socket
import threading
import time
import weakref
from typing import Any, Callable, Iterable, Protocol

import hiredis
from redis.connection import ConnectionPool
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoPermissionError
from redis.exceptions import TimeoutError as RedisTimeoutError

log = logging.getLogger("refresher")
CLIENT_NAME = "refresher-near-cache"  # as CLIENT LIST shows it
PING_EVERY = 0.1
DEAD_AFTER = 0.5  # an unanswered PING this old: the server is gone or frozen
INVALIDATIONS = b"__redis__:invalidate"


class Frozen(ConnectionError):
    """A PING went unanswered for DEAD_AFTER: the server is frozen or unreachable."""


OUTAGE = (OSError, RedisConnectionError, RedisTimeoutError)  # unreachable (not refusing): copies kept
FROZEN = (Frozen, RedisTimeoutError)  # and each read would wait a timeout: the breaker held open


def socket_of(connection: Any) -> socket.socket | None:
    """The connected socket of a redis-py connection, or None.

    The one use of a redis-py private: no public API hands out a connection's socket, and
    redis-py 5.x to 8.x all keep it in `_sock`. Should a release stop doing so, a link
    falls back to the connection's public `can_read` and `read_response` (slower: a parser
    call per link on every read, where the socket gives one poll for every master)."""
    sock = getattr(connection, "_sock", None)
    return sock if isinstance(sock, socket.socket) else None  # an SSLSocket is one too


class Link:
    """One master's tracking connection, which redis-py connects (TLS, auth, Sentinel's
    master) and whose socket is then read directly, without blocking; and a second
    connection that only the tracker's thread uses, to PING the master. Replies to PINGs
    on the tracking connection would wake every reader that sees them to drain nothing."""

    def __init__(self, pool: ConnectionPool, prefixes: list[str], raw: bool = True) -> None:
        # Made like the pool's connections, outside its count: the user's max_connections
        # budgets their data. RESP2 and redirected to itself, so invalidations arrive as
        # messages on __redis__:invalidate, which redis-py's public read_response returns
        # as they are (RESP3 pushes would go to a hook of its private parser).
        settings = {**pool.connection_kwargs, "protocol": 2, "decode_responses": False, "client_name": CLIENT_NAME}
        self.name = master_name(pool)
        self.connection: Any = pool.connection_class(**settings)
        self.connection.connect()
        self.connection.send_command("CLIENT", "ID")
        own_id = self.connection.read_response()
        self.connection.send_command("CLIENT", "TRACKING", "ON", "REDIRECT", own_id, "BCAST",
                                     *(part for prefix in prefixes for part in ("PREFIX", prefix)))
        if (reply := self.connection.read_response()) != b"OK":
            raise ConnectionError(f"CLIENT TRACKING was refused: {reply!r}")
        self.connection.send_command("SUBSCRIBE", INVALIDATIONS)
        self.connection.read_response()  # the confirmation (an error raises)
        self.sock: Any = socket_of(self.connection) if raw else None  # a socket, an SSLSocket, or None
        if self.sock is not None:
            self.sock.settimeout(0)
        self.tls = hasattr(self.sock, "pending")
        self.reader: hiredis.Reader = hiredis.Reader()
        self.pinger: Any = pool.connection_class(**{**pool.connection_kwargs, "client_name": CLIENT_NAME})
        self.pinger.connect()
        self.ping_sent: float | None = None
        self.last_ping: float = time.monotonic()

    def waiting(self) -> bool:
        """Whether anything has arrived (what `arrivals` asks of a link without a socket)."""
        return bool(self.connection.can_read(timeout=0))

    def read(self) -> Iterable[Any]:
        """The key names of each invalidation that has arrived (None: every key)."""
        for reply in self._replies():
            if isinstance(reply, hiredis.ReplyError):
                raise ConnectionError(f"tracking connection: {reply}")
            if isinstance(reply, list) and len(reply) == 3 and reply[:2] == [b"message", INVALIDATIONS]:
                yield reply[2]

    def _replies(self) -> Iterable[Any]:
        if self.sock is None:
            while self.connection.can_read(timeout=0):
                yield self.connection.read_response()
            return
        while True:
            try:
                data = self.sock.recv(65536)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:
                if type(exc).__name__ == "SSLWantReadError":
                    break
                raise
            if not data:
                raise ConnectionError("the server closed the tracking connection")
            self.reader.feed(data)
        while (reply := self.reader.gets()) is not False:
            yield reply

    def beat(self, now: float) -> float:
        """Take the answer to the last PING if it came, send the next when due, and raise
        if one has gone unanswered for DEAD_AFTER (the tracker's thread only). Returns when
        the PING answered now was sent (-inf: none answered now)."""
        answered = -math.inf
        if self.ping_sent is not None:
            if self.pinger.can_read(timeout=0):
                self.pinger.read_response()
                answered, self.ping_sent = self.ping_sent, None
            elif now - self.ping_sent > DEAD_AFTER:
                raise Frozen(f"no answer to PING for {DEAD_AFTER:g} s: the server is frozen or gone")
        if self.ping_sent is None and now - self.last_ping >= PING_EVERY:
            self.pinger.send_command("PING")
            self.ping_sent = self.last_ping = now
        return answered

    def close(self) -> None:
        self.connection.disconnect()
        self.pinger.disconnect()


def connect(pools: list[ConnectionPool], prefixes: list[str], trying: Callable[[str], None]) -> list[Link]:
    """A link per master (`trying` told which is being made), or none: a failure closes
    the links made so far and is raised."""
    links: list[Link] = []
    try:
        for pool in pools:
            trying(master_name(pool))
            links.append(Link(pool, prefixes))
    except Exception:
        for link in links:
            link.close()
        raise
    return links


def master_name(pool: ConnectionPool) -> str:
    """The master a pool connects to, named as redis-py's Cluster names its nodes
    ("host:port"; "" for a pool that finds its master itself, as Sentinel's does)."""
    host, port = pool.connection_kwargs.get("host"), pool.connection_kwargs.get("port")
    return f"{host}:{port}" if host and port else ""


def names(keys: Any) -> list[bytes] | None:
    """The key names of an invalidation push that can be ours: a name that is not UTF-8
    (another app's) is skipped; a push not shaped as Redis sends them drops everything."""
    if not isinstance(keys, list):
        return None
    return [key for key in keys if isinstance(key, bytes) and (key.isascii() or _is_utf8(key))]


def _is_utf8(name: bytes) -> bool:
    try:
        name.decode()
    except UnicodeDecodeError:
        return False
    return True


def arrivals(links: list[Link]) -> tuple[Callable[[float, int], Any], Callable[[], None]]:
    """A check whether anything has arrived on any of the links (called with 0 and 1: it
    runs on every near hit, so one call for every master, and one event is answer enough),
    and how to close it.

    select.epoll where the platform has it and no monkey-patching has removed it (its poll(0)
    takes 0.24 us against 0.41 for selectors' select(0); poll(0, 1) 0.06 us less again, as
    it allocates room for one event, not 1023); elsewhere the selectors module's
    DefaultSelector (kqueue on macOS, and what gevent and eventlet patch to cooperate); for
    links without a socket, each connection's own can_read."""
    if any(link.sock is None for link in links):
        return (lambda *_: any(link.waiting() for link in links)), (lambda: None)
    if hasattr(select, "epoll"):
        epoll = select.epoll()
        for link in links:
            epoll.register(link.sock.fileno(), select.EPOLLIN | select.EPOLLRDHUP)
        return epoll.poll, epoll.close
    selector = selectors.DefaultSelector()
    for link in links:
        selector.register(link.sock, selectors.EVENT_READ)
    polling = threading.Lock()  # a poll() object refuses two threads at once (PollSelector)

    def anything(timeout: float, _most: int = 1) -> Any:
        """Another thread polling means something may have arrived: the caller drains,
        which is always safe, and costs a failed recv when nothing has."""
        if not polling.acquire(blocking=False):
            return True
        try:
            return selector.select(timeout)
        finally:
            polling.release()

    return anything, selector.close


def not_on(exc: Exception, quiet: bool) -> None:
    """Say why tracking is off: at WARNING once (the caller knows), then at DEBUG."""
    if isinstance(exc, NoPermissionError) or "NOPERM" in str(exc):
        message = ("refresher: near cache off: the Redis user may not turn on tracking (%s); grant it with "
                   "`ACL SETUSER <user> +client|tracking +client|id +subscribe &__redis__:invalidate`. "
                   "Until then every read fetches its loader's epochs.")
    else:
        message = "refresher: near cache off (epochs fetched on every read) until tracking is on: %s"
    log.log(logging.DEBUG if quiet else logging.WARNING, message, exc)


class Turning(Protocol):
    def _step(self) -> float: ...


AT_EXIT: weakref.WeakSet[threading.Event] = weakref.WeakSet()  # trackers' `closed`, set when the process exits


def turns(owner: weakref.ref[Turning], closed: threading.Event) -> None:
    """A tracker's thread. It holds its tracker for a turn only, so a Refresher nobody
    holds is collected (and its thread ends, quietly) rather than kept for the process's life."""
    while not closed.is_set():
        held = owner()
        if held is None:
            return
        pause = held._step()
        del held
        closed.wait(pause)


@atexit.register
def _exiting() -> None:
    """The process is ending (after its non-daemon threads): its servers may be stopped
    with it, and that is no loss to warn of. atexit, not a daemon thread's luck."""
    for closed in list(AT_EXIT):
        closed.set()
