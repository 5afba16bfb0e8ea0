"""One master's tracking connection, read without blocking, and what its pushes name.

BCAST, not the default mode: no tracking on the pooled data connections (any of which may
have read a key), and its cost, a push for keys this process never read, is a dict miss.
"""

from __future__ import annotations

import logging
import math
import select
import selectors
import threading
import time
from typing import Any, Callable, Iterable

import hiredis
from redis.connection import ConnectionPool
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from refresher.io.breaker import Breakers
from refresher.io.lean import socket_of

log = logging.getLogger("refresher")
CLIENT_NAME = "refresher-near-cache"  # as CLIENT LIST shows it
PING_EVERY = 0.1
DEAD_AFTER = 0.5  # an unanswered PING this old: the server is gone or frozen
INVALIDATIONS = b"__redis__:invalidate"
PING = b"*1\r\n$4\r\nPING\r\n"
PONG = [b"pong", b""]  # PING's answer on a RESP2 connection in subscribe mode


class Frozen(ConnectionError):
    """A PING went unanswered for DEAD_AFTER: the server is frozen or unreachable."""


OUTAGE = (OSError, RedisConnectionError, RedisTimeoutError)  # unreachable (not refusing): copies kept
FROZEN = (Frozen, RedisTimeoutError)  # and each read would wait a timeout: the breaker held open


class Link:
    """One master's tracking connection, which redis-py connects (TLS, auth, Sentinel's
    master) and whose socket is then read directly, without blocking. The tracker's thread
    PINGs the master on it too, one connection per master, not two: the answer comes after
    every push sent before it, and wakes readers to drain it 1 / PING_EVERY times a second."""

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
        self.ping_sent: float | None = None
        self.answered = -math.inf  # when the PING answered since the last beat was sent (set by a drain)
        # Until a PING is answered: now. The tracker flushes every copy after this, so whatever
        # is served from here on was read after every write acknowledged before it.
        self.caught_up = self.last_ping = time.monotonic()

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
            elif reply == PONG and self.ping_sent is not None:
                # Pushes come in order: every invalidation sent before this answer was yielded,
                # and applied by the drain, before the generator resumed to read it.
                self.answered = self.caught_up = self.ping_sent
                self.ping_sent = None

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
        """Under the tracker's lock, after a drain (which takes the answers): send the next
        PING when due, and raise if one has gone unanswered for DEAD_AFTER. Returns when
        the PING answered since the last beat was sent (-inf: none)."""
        answered, self.answered = self.answered, -math.inf
        if self.ping_sent is not None and now - self.ping_sent > DEAD_AFTER:
            raise Frozen(f"no answer to PING for {DEAD_AFTER:g} s: the server is frozen or gone")
        if self.ping_sent is None and now - self.last_ping >= PING_EVERY:
            if self.sock is None:
                self.connection.send_command("PING", check_health=False)
            else:  # 14 bytes on a connection that sends nothing else: a full buffer is an outage
                self.sock.sendall(PING)
            self.ping_sent = self.last_ping = now
        return answered

    def close(self) -> None:
        self.connection.disconnect()


def close_answered(breakers: Breakers, answered: list[tuple[str, float]]) -> None:
    """A read's failure is over where a PING sent after it was answered: that master's
    breaker closes (`answered`: each link's name, and what its `beat` returned)."""
    for name, at in answered if breakers.open else ():
        if (breaker := breakers.node(name)) is not None and breaker.open and at > breaker.tripped:
            breaker.succeeded()


def answer_by(links: list[Link]) -> float:
    """When the oldest unanswered PING makes the tracker dead (inf: none is waiting)."""
    return min((link.ping_sent for link in links if link.ping_sent is not None), default=math.inf) + DEAD_AFTER


def horizon(links: list[Link], default: float | None) -> float | None:
    """The coherence horizon (monotonic s): every write Redis acknowledged before it has had
    its invalidation applied in this process. Pushes and PING answers come in order on one
    connection, so on each link that is when the PING last answered was sent (or when the
    link was made: the tracker flushes after); over the masters, the earliest (`default`
    without links)."""
    return min((link.caught_up for link in links), default=default)


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
