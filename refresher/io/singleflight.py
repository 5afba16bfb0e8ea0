"""In-process coalescing: concurrent callers with the same key share one call.

The Python shape of Go's golang.org/x/sync/singleflight, for threads and asyncio tasks
at once: `do` (a thread) and `ado` (a task) join the same flights, so a sync reader and
an async reader of one key in one process make one load. `do`/`ado` return the result
and whether this caller led; a raised exception reaches every caller of that flight. A
leader that is cancelled (or interrupted) hands the flight over: its waiters start again
and one of them leads. `follow`/`afollow` only join: a caller that finds no flight goes
its own way (a read sends its GET) rather than start one.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any, Awaitable, Callable, Generic, TypeVar

from refresher.core.relay import Relay

T = TypeVar("T")

NONE_RUNNING: tuple[bool, Any] = (False, None)  # what `follow` returns when there was no flight to join


class _Flight:
    __slots__ = ("done", "result", "error", "abandoned", "futures", "loop", "waiters", "followed")

    def __init__(self, loop: asyncio.AbstractEventLoop | None, followed: bool) -> None:
        self.done = Relay()  # its threads wake one another in turn
        self.followed = followed  # `follow` may join it
        self.result: Any = None
        self.error: BaseException | None = None
        self.abandoned = False
        self.futures: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []
        self.loop = loop  # the leader's event loop, if the leader is a task
        self.waiters = 0


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class Group(Generic[T]):
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._flights: dict[str, _Flight] = {}

    def running(self, key: str) -> bool:
        """Whether a call for `key` is in flight (a hint, read without the lock)."""
        return key in self._flights

    def do(self, key: str, fn: Callable[[], T], followed: bool = True) -> tuple[T, bool]:
        """Run `fn` unless a call for `key` is in flight; then wait for that one instead.
        Not `followed`: `follow` does not join this call."""
        while True:
            flight, leader = self._join(key, None, followed)
            if leader:
                return self._lead(key, flight, fn), True
            self._wait_here(key, flight)
            if not flight.abandoned:
                return self._outcome(flight), False

    def follow(self, key: str) -> tuple[bool, Any]:
        """(True, the outcome) of the call for `key` in flight, waited for; NONE_RUNNING
        when there is none (or none `followed`), or its leader gave it up."""
        flight = self._joined(key)
        if flight is None:
            return NONE_RUNNING
        self._wait_here(key, flight)
        return NONE_RUNNING if flight.abandoned else (True, self._outcome(flight))

    async def afollow(self, key: str) -> tuple[bool, Any]:
        """`follow` for a task."""
        flight = self._joined(key)
        if flight is None:
            return NONE_RUNNING
        await self._wait(flight, asyncio.get_running_loop())
        return NONE_RUNNING if flight.abandoned else (True, self._outcome(flight))

    async def ado(self, key: str, fn: Callable[[], Awaitable[T]], followed: bool = True) -> tuple[T, bool]:
        """`do` for a task: a cancelled waiter leaves the shared load running."""
        loop = asyncio.get_running_loop()
        while True:
            flight, leader = self._join(key, loop, followed)
            if leader:
                try:
                    result = await fn()
                except BaseException as exc:
                    self._finish(key, flight, None, exc)
                    raise
                self._finish(key, flight, result, None)
                return result, True
            await self._wait(flight, loop)
            if not flight.abandoned:
                return self._outcome(flight), False

    def _joined(self, key: str) -> _Flight | None:
        with self._lock:
            flight = self._flights.get(key)
            if flight is None or not flight.followed:
                return None
            flight.waiters += 1
            return flight

    @staticmethod
    def _wait_here(key: str, flight: _Flight) -> None:
        """Block this thread until the flight lands (never the leader's own event loop)."""
        if flight.loop is not None and flight.loop is _running_loop():
            raise RuntimeError(
                f"a sync read of {key} inside the event loop would wait for a task of that same "
                "loop forever: use `await loader.aget(...)` in async code"
            )
        flight.done.wait()

    def _join(self, key: str, loop: asyncio.AbstractEventLoop | None, followed: bool) -> tuple[_Flight, bool]:
        with self._lock:
            flight = self._flights.get(key)
            if flight is None:
                flight = self._flights[key] = _Flight(loop, followed)
                return flight, True
            flight.waiters += 1
            return flight, False

    async def _wait(self, flight: _Flight, loop: asyncio.AbstractEventLoop) -> None:
        future: asyncio.Future[None] = loop.create_future()
        with self._lock:
            if flight.done.is_set():
                return
            flight.futures.append((loop, future))
        await future

    def _lead(self, key: str, flight: _Flight, fn: Callable[[], T]) -> T:
        try:
            result = fn()
        except BaseException as exc:
            self._finish(key, flight, None, exc)
            raise
        self._finish(key, flight, result, None)
        return result

    def _finish(self, key: str, flight: _Flight, result: Any, error: BaseException | None) -> None:
        with self._lock:
            if self._flights.get(key) is flight:
                del self._flights[key]
            flight.result, flight.error = result, error
            flight.abandoned = error is not None and not isinstance(error, Exception)
            flight.done.set()
            futures, flight.futures = flight.futures, []
        for loop, future in futures:
            try:
                loop.call_soon_threadsafe(_wake, future)
            except RuntimeError:  # that loop has closed: nobody is waiting there any more
                pass

    @staticmethod
    def _outcome(flight: _Flight) -> Any:
        if flight.error is not None:
            raise flight.error
        return flight.result

    def forget(self, key: str) -> None:
        """Let the next caller for `key` start a new call rather than join the current one."""
        with self._lock:
            self._flights.pop(key, None)
