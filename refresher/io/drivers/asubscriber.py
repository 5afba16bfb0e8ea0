"""The asyncio driver's waits: one pub/sub connection per node and event loop, shared by
every task of that loop that waits there, and read by a task of its own (see board.py)."""

from __future__ import annotations

import contextlib
import asyncio
from typing import Any

from redis.exceptions import TimeoutError as RedisTimeoutError

from refresher.io.drivers.board import SUBSCRIBED, Link, Subscribers, last_unsubscribe
from refresher.io.drivers.subscriber import IDLE_CHECK

Inbox = asyncio.Queue[Any]


class _Link(Link[Inbox]):
    def __init__(self, connection: Any) -> None:
        super().__init__(connection)
        self.opening: asyncio.Future[None] = asyncio.get_running_loop().create_future()  # done once connected
        self.task: asyncio.Task[None] | None = None  # connects, then reads


class Subscription:
    __slots__ = ("_subscriber", "_link", "_channel", "_inbox")

    def __init__(self, subscriber: Subscriber, link: Link[Inbox], channel: bytes, inbox: Inbox) -> None:
        self._subscriber, self._link, self._channel, self._inbox = subscriber, link, channel, inbox

    async def listen(self, timeout: float) -> bytes | None:
        """The next message's data, or None when `timeout` passes first."""
        try:
            item = await asyncio.wait_for(self._inbox.get(), timeout) if timeout > 0 else self._inbox.get_nowait()
        except (asyncio.TimeoutError, asyncio.QueueEmpty):
            return None
        if isinstance(item, BaseException):
            raise item
        return None if item is SUBSCRIBED else item

    async def close(self) -> None:
        await self._subscriber.leave(self._link, self._channel, self._inbox)


class Subscriber(Subscribers[Inbox]):
    async def subscribe(self, channel: str) -> Subscription:
        """A subscription to `channel`, confirmed by the server (within the socket timeout)."""
        name, inbox = channel.encode(), Inbox()
        link = await self._open()
        send, wait = link.board.join(name, inbox)
        subscription = Subscription(self, link, name, inbox)
        try:
            if send:
                await self._send(link, self._subscribe, name)
            if wait:
                try:
                    item = await asyncio.wait_for(inbox.get(), self._timeout)
                except asyncio.TimeoutError:
                    item = RedisTimeoutError(f"{self._subscribe} {channel} was not confirmed within {self._timeout:g} s")
                if item is not SUBSCRIBED:
                    raise item
        except BaseException:  # cancelled too: the channel must not stay subscribed for nobody
            await subscription.close()
            raise
        return subscription

    async def _open(self) -> Link[Inbox]:
        """The current link, connected (a new one if there is none)."""
        while True:
            link = self._link
            if link is None:
                link = self._link = _Link(self._make())
                link.task = asyncio.create_task(self._run(link))
            assert isinstance(link, _Link)
            try:
                await asyncio.shield(link.opening)
            except BaseException:
                if self._link is link:
                    self._link = None
                raise
            if link is self._link:
                return link

    async def leave(self, link: Link[Inbox], channel: bytes, inbox: Inbox) -> None:
        if not link.board.leave(channel, inbox) or link is not self._link:
            return
        if link.board.empty:
            link.board.closing, self._link = True, None
        with contextlib.suppress(Exception):  # a link that broke has told its waiters already
            await self._send(link, self._unsubscribe, channel)

    async def _send(self, link: Link[Inbox], *args: Any) -> None:
        try:
            await link.connection.send_command(*args, check_health=False)
        except Exception as exc:
            self._fail(link, exc)
            raise

    async def _run(self, link: _Link) -> None:
        connection = link.connection
        try:
            await connection.connect()
        except Exception as exc:
            link.opening.set_exception(exc)
            return
        link.opening.set_result(None)
        try:
            while True:
                reply = await connection.read_response(timeout=IDLE_CHECK)
                if reply is None:
                    if link.board.closing:
                        return
                    continue
                waiters, item = link.board.heard(reply)
                for inbox in waiters:
                    inbox.put_nowait(item)
                if link.board.closing and link.board.empty and last_unsubscribe(reply):
                    return
        except Exception as exc:
            self._fail(link, exc)
        finally:
            await connection.disconnect()
