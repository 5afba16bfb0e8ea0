"""The sync driver's waits: one pub/sub connection per node, shared by every thread of the
process that waits there, and read by a thread of its own (see board.py)."""

from __future__ import annotations

import contextlib
import queue
import threading
from typing import Any, Callable

from redis.exceptions import TimeoutError as RedisTimeoutError

from refresher.io.drivers.board import SUBSCRIBED, Link, Subscribers, last_unsubscribe

IDLE_CHECK = 1.0  # how often a reader with nothing to read looks whether its link was closed

Inbox = queue.SimpleQueue[Any]


class Subscription:
    """One waiting read's handle on its channel, for as long as its step runs."""

    __slots__ = ("_subscriber", "_link", "_channel", "_inbox")

    def __init__(self, subscriber: Subscriber, link: Link[Inbox], channel: bytes, inbox: Inbox) -> None:
        self._subscriber, self._link, self._channel, self._inbox = subscriber, link, channel, inbox

    def listen(self, timeout: float) -> bytes | None:
        """The next message's data, or None when `timeout` passes first."""
        try:
            item = self._inbox.get(timeout=timeout) if timeout > 0 else self._inbox.get_nowait()
        except queue.Empty:
            return None
        if isinstance(item, BaseException):
            raise item
        return None if item is SUBSCRIBED else item

    def close(self) -> None:
        self._subscriber.leave(self._link, self._channel, self._inbox)


class Subscriber(Subscribers[Inbox]):
    def __init__(self, make_connection: Callable[[], Any], timeout: float, *, sharded: bool = True) -> None:
        super().__init__(make_connection, timeout, sharded=sharded)
        self._lock = threading.Lock()

    def subscribe(self, channel: str) -> Subscription:
        """A subscription to `channel`, confirmed by the server (within the socket timeout)."""
        name, inbox = channel.encode(), Inbox()
        with self._lock:
            link = self._link
            if link is None:
                connection = self._make()
                connection.connect()
                link = self._link = Link(connection)
                threading.Thread(target=self._read, args=(link,), name="refresher-waits", daemon=True).start()
            send, wait = link.board.join(name, inbox)
            subscription = Subscription(self, link, name, inbox)
            if send:
                self._send(link, self._subscribe, name)
        if wait:
            try:
                item = inbox.get(timeout=self._timeout)
            except queue.Empty:
                item = RedisTimeoutError(f"{self._subscribe} {channel} was not confirmed within {self._timeout:g} s")
            if item is not SUBSCRIBED:
                subscription.close()
                raise item
        return subscription

    def leave(self, link: Link[Inbox], channel: bytes, inbox: Inbox) -> None:
        with self._lock:
            if link.board.leave(channel, inbox) and link is self._link:
                with contextlib.suppress(Exception):  # a link that broke has told its waiters already
                    self._send(link, self._unsubscribe, channel)
                if link.board.empty:
                    link.board.closing, self._link = True, None

    def _send(self, link: Link[Inbox], *args: Any) -> None:
        """Under the lock. A failed send is the reader's to report (its read fails too)."""
        try:
            link.connection.send_command(*args, check_health=False)
        except Exception as exc:  # the connection is gone: every waiter hears it
            self._fail(link, exc)
            raise

    def _read(self, link: Link[Inbox]) -> None:
        connection = link.connection
        try:
            while True:
                if not connection.can_read(timeout=IDLE_CHECK):
                    if link.board.closing:
                        return
                    continue
                reply = connection.read_response()
                with self._lock:
                    waiters, item = link.board.heard(reply)
                    if link.board.closing and link.board.empty and last_unsubscribe(reply):
                        return
                for inbox in waiters:
                    inbox.put(item)
        except Exception as exc:
            with self._lock:
                self._fail(link, exc)
        finally:
            connection.disconnect()
