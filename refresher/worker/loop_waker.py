"""Waking a Celery worker's event loop when a pool thread hands it a callback (kombu < 5.7).

With the threads pool, a task's pool thread asks the consumer's event loop to acknowledge
the message (`Consumer.call_soon`: kombu's channels are not thread-safe). Before kombu 5.7
that only queued the callback: the loop ran it once poll() returned, up to 10 s later (its
next timer), and with the prefetch limit reached the worker fetched nothing meanwhile. A
refresh asked for in the window then sat in the queue until its key expired, and readers
missed (`make test-oldest`: celery 5.3.6 and kombu 5.3.7 took 10 s for twelve refresh tasks
that kombu 5.7 runs in 30 ms). kombu 5.7 wakes its loop itself (`Hub._create_waker`); on
older releases this consumer does the same: a pipe the loop polls, and a byte written to it
whenever a callback comes from a thread other than the loop's.
"""

from __future__ import annotations

import os
import threading
import weakref
from typing import Any

from celery.worker.consumer import Consumer as CeleryConsumer


def _close(fds: tuple[int, int]) -> None:
    for fd in fds:
        os.close(fd)


class WakingConsumer(CeleryConsumer):  # type: ignore[misc]  # celery ships no type hints: its Consumer is Any
    """Celery's consumer, whose event loop wakes at once for a callback from a pool thread.

    The pipe lives as long as the consumer, so no thread can write to a closed descriptor
    (or to a new file given its number): it is closed only once the consumer is collected,
    when no pool thread can reach it any more."""

    _wake_fds: tuple[int, int] | None = None
    _loop_thread: int | None = None

    def register_with_event_loop(self, hub: Any) -> None:
        """Called from the loop's own thread each time the loop starts (after every
        reconnection, on a hub whose readers were cleared)."""
        super().register_with_event_loop(hub)
        if hasattr(hub, "_create_waker"):  # kombu 5.7+: its call_soon wakes the loop
            return
        if self._wake_fds is None:
            fds = os.pipe()
            for fd in fds:
                os.set_blocking(fd, False)
            weakref.finalize(self, _close, fds)
            self._wake_fds = fds
        self._loop_thread = threading.get_ident()
        hub.add_reader(self._wake_fds[0], self._drain)

    def call_soon(self, p: Any, *args: Any, **kwargs: Any) -> Any:
        queued = super().call_soon(p, *args, **kwargs)
        fds = self._wake_fds
        if fds is not None and threading.get_ident() != self._loop_thread:
            try:
                os.write(fds[1], b"\0")
            except BlockingIOError:  # the pipe is full: the loop has wake-ups pending already
                pass
        return queued

    def _drain(self) -> None:
        assert self._wake_fds is not None
        try:
            while os.read(self._wake_fds[0], 4096):
                pass
        except BlockingIOError:
            pass
