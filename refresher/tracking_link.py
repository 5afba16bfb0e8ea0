"""One master's tracking connection, read without blocking, and what its pushes name."""

from __future__ import annotations

import time
from typing import Any, Iterable

import hiredis
from redis.connection import ConnectionPool

CLIENT_NAME = "refresher-near-cache"  # as CLIENT LIST shows it
PING_EVERY = 0.1
DEAD_AFTER = 0.5  # an unanswered PING this old: the server is gone or frozen


class Link:
    """One master's tracking connection, which redis-py connects (TLS, auth, Sentinel's
    master) and whose socket is then read directly, without blocking; and a second
    connection that only the tracker's thread uses, to PING the master. Replies to PINGs
    on the tracking connection would wake every reader that sees them to drain nothing."""

    def __init__(self, pool: ConnectionPool, prefixes: list[str]) -> None:
        # Made like the pool's connections, outside its count: the user's max_connections
        # budgets their data. RESP3: pushes arrive on the connection that asked for them.
        self.connection: Any = pool.connection_class(**{**pool.connection_kwargs, "protocol": 3, "client_name": CLIENT_NAME})
        self.connection.connect()
        self.connection.send_command("CLIENT", "TRACKING", "ON", "BCAST", *(part for prefix in prefixes for part in ("PREFIX", prefix)))
        reply = self.connection.read_response()
        if reply not in (b"OK", "OK"):
            raise ConnectionError(f"CLIENT TRACKING was refused: {reply!r}")
        sock = self.connection._sock  # noqa: SLF001  redis-py keeps it private
        if sock is None:
            raise ConnectionError("the tracking connection closed during set-up")
        self.sock: Any = sock  # a socket, or an SSLSocket
        self.sock.settimeout(0)
        self.fd: int = sock.fileno()
        self.tls = hasattr(sock, "pending")
        self.reader: hiredis.Reader = hiredis.Reader()
        self.pinger: Any = pool.connection_class(**{**pool.connection_kwargs, "client_name": CLIENT_NAME})
        self.pinger.connect()
        self.ping_sent: float | None = None
        self.last_ping: float = time.monotonic()

    def read(self) -> Iterable[Any]:
        """Everything that has arrived, parsed."""
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

    def beat(self, now: float) -> None:
        """Take the answer to the last PING if it came, send the next when due, and raise
        if one has gone unanswered for DEAD_AFTER (the tracker's thread only)."""
        if self.ping_sent is not None:
            if self.pinger.can_read(timeout=0):
                self.pinger.read_response()
                self.ping_sent = None
            elif now - self.ping_sent > DEAD_AFTER:
                raise ConnectionError(f"no answer to PING for {DEAD_AFTER:g} s: the server is frozen or gone")
        if self.ping_sent is None and now - self.last_ping >= PING_EVERY:
            self.pinger.send_command("PING")
            self.ping_sent = self.last_ping = now

    def close(self) -> None:
        self.connection.disconnect()
        self.pinger.disconnect()


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
