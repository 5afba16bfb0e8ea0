"""The driver's waits, written once for asyncio (scripts/unasync.py generates the sync
subscriber.py from this file): one pub/sub connection per node, shared by every waiting
read of the process (of the event loop, with asyncio), read by a thread or task of its own
(see board.py). How a link is opened and read differs: task_links.py, thread_links.py."""

from __future__ import annotations

import contextlib
from typing import Any

from redis.exceptions import TimeoutError as RedisTimeoutError

from refresher.io.drivers.board import SUBSCRIBED, Link
from refresher.io.drivers.task_links import Inbox, TaskLinks, next_item


class Subscription:
    """One waiting read's handle on its channel, for as long as its step runs."""

    __slots__ = ("_subscriber", "_link", "_channel", "_inbox")

    def __init__(self, subscriber: Subscriber, link: Link[Inbox], channel: bytes, inbox: Inbox) -> None:
        self._subscriber, self._link, self._channel, self._inbox = subscriber, link, channel, inbox

    async def listen(self, timeout: float) -> bytes | None:
        """The next message's data, or None when `timeout` passes first."""
        item = await next_item(self._inbox, timeout)
        if isinstance(item, BaseException):
            raise item
        return None if item is SUBSCRIBED else item

    async def close(self) -> None:
        await self._subscriber.leave(self._link, self._channel, self._inbox)


class Subscriber(TaskLinks):
    async def subscribe(self, channel: str) -> Subscription:
        """A subscription to `channel`, confirmed by the server (within the socket timeout)."""
        name, inbox = channel.encode(), Inbox()
        subscription = None
        try:
            async with self._locked():
                link = await self._open()
                send, wait = link.board.join(name, inbox)
                subscription = Subscription(self, link, name, inbox)
                if send:
                    await self._send(link, self._subscribe, name)
            if wait:
                item = await next_item(inbox, self._timeout)
                if item is None:
                    item = RedisTimeoutError(f"{self._subscribe} {channel} was not confirmed within {self._timeout:g} s")
                if item is not SUBSCRIBED:
                    raise item
            return subscription
        except BaseException:  # cancelled too: the channel must not stay subscribed for nobody
            if subscription is not None:
                await subscription.close()
            raise

    async def leave(self, link: Link[Inbox], channel: bytes, inbox: Inbox) -> None:
        async with self._locked():
            if not link.board.leave(channel, inbox) or link is not self._link:
                return
            if link.board.empty:  # before the send: a new waiter opens a new link, not this closing one
                link.board.closing, self._link = True, None
            with contextlib.suppress(Exception):  # a link that broke has told its waiters already
                await self._send(link, self._unsubscribe, channel)

    async def _send(self, link: Link[Inbox], *args: Any) -> None:
        """(Under the lock, with threads.) A failed send is the link's failure: every
        waiter hears it, and the link is never used again."""
        try:
            await link.connection.send_command(*args, check_health=False)
        except Exception as exc:
            self._fail(link, exc)
            raise
