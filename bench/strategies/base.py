"""The interface every strategy shares, so each scenario drives them all the same way:
`Strategy` for threads, `AsyncStrategy` for asyncio tasks (the same methods, awaited)."""

from __future__ import annotations

import asyncio
import threading
from typing import Any, Protocol, Sequence, runtime_checkable

import redis
import redis.asyncio

FLUSH_TIMEOUT_S = 10.0


@runtime_checkable
class Strategy(Protocol):
    """One way of reading through a Redis cache, built fresh in each reader process."""

    redis: redis.Redis  # the client its reads use: the hit-path baseline runs on the same pool

    def warm(self) -> None:
        """Connect ahead of the measured reads, as a long-running app already has."""

    def get(self, key: str) -> Any:
        """Serve `key`, loading it from the origin however this strategy does."""

    def stored_key(self, key: str) -> str:
        """The Redis key that holds `key`'s value (for MEMORY USAGE)."""

    def counters(self) -> dict[str, int]:
        """This process's loads so far: `background` (off the read path) and `inline`."""

    def flush(self) -> None:
        """Wait until background work this process asked for is handed over or done."""

    def close(self) -> None: ...


@runtime_checkable
class BulkStrategy(Strategy, Protocol):
    """A strategy with a many-keys read (not every pattern has one)."""

    def get_many(self, keys: Sequence[str]) -> list[Any]: ...


class Counted:
    """What the comparison strategies share: counted loads, background threads to wait
    for, and a client to close. `stored_key` is the key itself unless overridden."""

    redis: redis.Redis

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts = {"background": 0, "inline": 0}
        self._threads: list[threading.Thread] = []

    def warm(self) -> None:
        self.redis.ping()

    def _count(self, kind: str) -> None:
        with self._lock:
            self._counts[kind] += 1

    def _start(self, target: Any) -> None:
        thread = threading.Thread(target=target, daemon=True)
        thread.start()
        with self._lock:
            self._threads.append(thread)

    def stored_key(self, key: str) -> str:
        return key

    def counters(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)

    def flush(self) -> None:
        with self._lock:
            threads, self._threads = self._threads, []
        for thread in threads:
            thread.join()

    def close(self) -> None:
        self.redis.close()


@runtime_checkable
class AsyncStrategy(Protocol):
    """A strategy read by asyncio tasks: built inside the event loop it is read from
    (its connections belong to that loop), one loop per reader process."""

    redis: redis.asyncio.Redis  # the client its reads use: the hit-path baseline runs on the same pool

    async def warm(self) -> None:
        """Connect ahead of the measured reads, as a long-running app already has."""

    async def get(self, key: str) -> Any:
        """Serve `key`, loading it from the origin however this strategy does."""

    def counters(self) -> dict[str, int]:
        """This process's loads so far: `background` (off the read path) and `inline`."""

    async def flush(self) -> None:
        """Wait until background work this process asked for is handed over or done."""

    async def close(self) -> None: ...


class AsyncCounted:
    """`Counted` for asyncio strategies: counted loads and a client to close. Background
    work is whatever other tasks the loop runs (a library's own refresh tasks included),
    which `flush` waits for. One event loop, so no lock."""

    redis: redis.asyncio.Redis

    def __init__(self) -> None:
        self._counts = {"background": 0, "inline": 0}

    async def warm(self) -> None:
        await self.redis.ping()

    def _count(self, kind: str) -> None:
        self._counts[kind] += 1

    def counters(self) -> dict[str, int]:
        return dict(self._counts)

    async def flush(self) -> None:
        """Wait (up to FLUSH_TIMEOUT_S) for every other task on this loop: call it once the readers are done."""
        deadline = asyncio.get_running_loop().time() + FLUSH_TIMEOUT_S
        while others := asyncio.all_tasks() - {asyncio.current_task()}:
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                return
            await asyncio.wait(others, timeout=left)

    async def close(self) -> None:
        await self.redis.aclose()
