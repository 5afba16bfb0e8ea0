"""The interface every strategy shares, so each scenario drives them all the same way."""

from __future__ import annotations

import threading
from typing import Any, Protocol, Sequence, runtime_checkable

import redis


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
