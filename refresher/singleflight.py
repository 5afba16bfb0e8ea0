"""In-process coalescing: concurrent callers with the same key share one call.

The Python shape of Go's golang.org/x/sync/singleflight: `do` returns the result and
whether it was shared; a raised exception reaches every caller of that flight.
"""

from __future__ import annotations

import threading
from typing import Callable, Generic, TypeVar

T = TypeVar("T")


class _Flight(Generic[T]):
    __slots__ = ("done", "result", "error", "waiters")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.result: T | None = None
        self.error: BaseException | None = None
        self.waiters = 0


class Group(Generic[T]):
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._flights: dict[str, _Flight[T]] = {}

    def do(self, key: str, fn: Callable[[], T]) -> tuple[T, bool]:
        """Run `fn` unless a call for `key` is in flight; then wait for that one instead."""
        with self._lock:
            flight = self._flights.get(key)
            leader = flight is None
            if flight is None:
                flight = self._flights[key] = _Flight()
            else:
                flight.waiters += 1
        if not leader:
            flight.done.wait()
            if flight.error is not None:
                raise flight.error
            return flight.result, True  # type: ignore[return-value]
        try:
            flight.result = fn()
        except BaseException as exc:
            flight.error = exc
            raise
        finally:
            self.forget(key, flight)
            flight.done.set()
        return flight.result, flight.waiters > 0

    def forget(self, key: str, flight: _Flight[T] | None = None) -> None:
        """Let the next caller for `key` start a new call rather than join the current one."""
        with self._lock:
            if flight is None or self._flights.get(key) is flight:
                self._flights.pop(key, None)
