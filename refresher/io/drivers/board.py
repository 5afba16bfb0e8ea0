"""Who listens to which signal channel on one shared pub/sub connection: the bookkeeping
both drivers' subscribers share, with no I/O.

A process opens one pub/sub connection per Redis node while any of its reads waits there,
and every waiting read of that node shares it: the first waiter of a channel subscribes it,
the last one to leave unsubscribes it, and each message goes to every waiter of its channel.
Those connections are made outside the user's pool (its count never sees them), so waits
never take the connections a pool's `max_connections` budgets for data.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Generic, Protocol, TypeVar


class Inbox(Protocol):
    def put_nowait(self, item: Any) -> None: ...


W = TypeVar("W", bound=Inbox)

IDLE_CHECK = 1.0  # how often a link's reader with nothing to read looks whether the link was closed
SUBSCRIBED = "subscribed"  # put in a waiter's queue when its channel's SSUBSCRIBE is confirmed


def pubsub_kwargs(connection_kwargs: dict[str, Any]) -> dict[str, Any]:
    """A pool's connection settings (address, TLS, credentials, timeouts) for a pub/sub
    connection: RESP2 and bytes, whatever the user's data connections decode to."""
    return {**connection_kwargs, "protocol": 2, "decode_responses": False}


# The replies of sharded pub/sub, and of the plain kind a Redis before 7.0 has, alike.
_KINDS = {b"ssubscribe": b"ssubscribe", b"subscribe": b"ssubscribe", b"smessage": b"smessage",
          b"message": b"smessage", b"sunsubscribe": b"sunsubscribe", b"unsubscribe": b"sunsubscribe"}


def last_unsubscribe(reply: Any) -> bool:
    """The server's word that the connection listens to nothing any more."""
    return isinstance(reply, list) and len(reply) == 3 and _KINDS.get(reply[0]) == b"sunsubscribe" and reply[2] == 0


class Board(Generic[W]):
    def __init__(self) -> None:
        self._listeners: dict[bytes, list[W]] = {}
        self._confirmed: set[bytes] = set()
        self._outstanding: Counter[bytes] = Counter()  # SSUBSCRIBEs sent and not yet confirmed
        self.closing = False  # failed, or its last waiter left: its connection is never used again

    def join(self, channel: bytes, waiter: W) -> tuple[bool, bool]:
        """Add `waiter`: (send SSUBSCRIBE now, wait for the confirmation)."""
        listeners = self._listeners.setdefault(channel, [])
        listeners.append(waiter)
        first = len(listeners) == 1
        if first:
            self._outstanding[channel] += 1
        return first, channel not in self._confirmed

    def leave(self, channel: bytes, waiter: W) -> bool:
        """Remove `waiter`: True when it was the channel's last (send SUNSUBSCRIBE now)."""
        listeners = self._listeners.get(channel, [])
        if waiter in listeners:
            listeners.remove(waiter)
        if listeners:
            return False
        self._listeners.pop(channel, None)
        self._confirmed.discard(channel)
        return True

    @property
    def empty(self) -> bool:
        return not self._listeners

    def heard(self, reply: Any) -> tuple[list[W], Any]:
        """Who gets what of a reply read from the connection: SUBSCRIBED when the
        channel's latest SSUBSCRIBE is confirmed, a message's data, or nothing."""
        if not isinstance(reply, list) or len(reply) != 3 or not isinstance(reply[1], bytes):
            return [], None
        kind, channel, body = _KINDS.get(reply[0]), reply[1], reply[2]
        if kind == b"ssubscribe":
            self._outstanding[channel] -= 1
            if self._outstanding[channel] > 0:
                return [], None  # a re-subscription after an unsubscribe is still on its way
            del self._outstanding[channel]
            if channel not in self._listeners or channel in self._confirmed:
                return [], None
            self._confirmed.add(channel)
            return list(self._listeners[channel]), SUBSCRIBED
        if kind == b"smessage" and isinstance(body, bytes) and channel in self._confirmed:
            return list(self._listeners[channel]), body
        return [], None

    def fail(self) -> list[W]:
        """The connection broke: everyone waiting, who must be told."""
        self.closing = True
        return [waiter for listeners in self._listeners.values() for waiter in listeners]


class Link(Generic[W]):
    """One connection's life: a link that failed or emptied is never used again."""

    def __init__(self, connection: Any) -> None:
        self.connection = connection
        self.board: Board[W] = Board()


class Subscribers(Generic[W]):
    """The current link of a node's shared subscription, and the news that it broke.
    Not `sharded` (a single Redis before 7.0): SUBSCRIBE and UNSUBSCRIBE instead."""

    def __init__(self, make_connection: Any, timeout: float, *, sharded: bool = True) -> None:
        self._make = make_connection
        self._timeout = timeout
        self._link: Link[W] | None = None
        self._subscribe, self._unsubscribe = ("SSUBSCRIBE", "SUNSUBSCRIBE") if sharded else ("SUBSCRIBE", "UNSUBSCRIBE")

    def _fail(self, link: Link[W], exc: BaseException) -> None:
        """(Under the lock, with threads.)"""
        if self._link is link:
            self._link = None
        for inbox in link.board.fail():
            inbox.put_nowait(exc)
