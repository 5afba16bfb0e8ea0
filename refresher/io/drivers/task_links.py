"""How the asyncio driver's waits open and read a node's shared pub/sub link (see board.py):
a task per link connects it, then reads it. thread_links.py is the sync twin; what both
do alike is written once, in asubscriber.py."""

from __future__ import annotations

import asyncio
from contextlib import AbstractAsyncContextManager, nullcontext
from typing import Any

from refresher.io.drivers.board import IDLE_CHECK, Link, Subscribers, last_unsubscribe

Inbox = asyncio.Queue[Any]


async def next_item(inbox: Inbox, timeout: float) -> Any:
    """The inbox's next item, or None when `timeout` passes first."""
    try:
        return await asyncio.wait_for(inbox.get(), timeout) if timeout > 0 else inbox.get_nowait()
    except (asyncio.TimeoutError, asyncio.QueueEmpty):
        return None


class _Link(Link[Inbox]):
    def __init__(self, connection: Any) -> None:
        super().__init__(connection)
        self.opening: asyncio.Future[None] = asyncio.get_running_loop().create_future()  # done once connected
        self.task: asyncio.Task[None] | None = None  # connects, then reads


class TaskLinks(Subscribers[Inbox]):
    def _locked(self) -> AbstractAsyncContextManager[None]:
        """One loop's tasks change the link's bookkeeping one at a time already."""
        return nullcontext()

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
