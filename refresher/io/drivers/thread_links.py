"""How the sync driver's waits open and read a node's shared pub/sub link (see board.py):
a thread per link reads it, and a lock keeps the process's threads from changing the
link's bookkeeping, or writing on its connection, at once. task_links.py is the asyncio
twin; what both do alike is written once, in asubscriber.py."""

from __future__ import annotations

import queue
import threading
from typing import Any, Callable

from refresher.io.drivers.board import IDLE_CHECK, Link, Subscribers, last_unsubscribe

Inbox = queue.SimpleQueue[Any]


def next_item(inbox: Inbox, timeout: float) -> Any:
    """The inbox's next item, or None when `timeout` passes first."""
    try:
        return inbox.get(timeout=timeout) if timeout > 0 else inbox.get_nowait()
    except queue.Empty:
        return None


class ThreadLinks(Subscribers[Inbox]):
    def __init__(self, make_connection: Callable[[], Any], timeout: float, *, sharded: bool = True) -> None:
        super().__init__(make_connection, timeout, sharded=sharded)
        self._lock = threading.Lock()

    def _locked(self) -> threading.Lock:
        return self._lock

    def _open(self) -> Link[Inbox]:
        """(Under the lock.) The current link, connected (a new one, with its reader
        thread, if there is none)."""
        link = self._link
        if link is None:
            connection = self._make()
            connection.connect()
            link = self._link = Link(connection)
            threading.Thread(target=self._read, args=(link,), name="refresher-waits", daemon=True).start()
        return link

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
