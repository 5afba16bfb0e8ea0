"""One event loop per process, in a daemon thread, for sync code that must run
coroutines: a Celery worker refreshing `async def` loaders reuses it across tasks
rather than paying for `asyncio.run` (a new loop, new connections) per task."""

from __future__ import annotations

import asyncio
import os
import threading
from typing import Awaitable, Callable, TypeVar

T = TypeVar("T")

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None
_pid = 0


def _running() -> asyncio.AbstractEventLoop:
    global _loop, _pid
    with _lock:
        if _loop is None or _pid != os.getpid():  # a forked child inherits no threads
            _loop, _pid = asyncio.new_event_loop(), os.getpid()
            threading.Thread(target=_loop.run_forever, name="refresher-loop", daemon=True).start()
        return _loop


def run(make: Callable[[], Awaitable[T]]) -> T:
    """Run `make()` on the process's loop and wait for its result in this thread."""

    async def go() -> T:
        return await make()

    return asyncio.run_coroutine_threadsafe(go(), _running()).result()
