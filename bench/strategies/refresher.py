"""refresher itself, through the loaders in bench/loaders.py that the bench's Celery
workers also import; the loader carries the policy (the default Window, or XFetch).
`AsyncRefresherStrategy` reads the `async def` twins with `aget`, on the loop it is built in."""

from __future__ import annotations

import asyncio
from typing import Any, Sequence, cast

import redis
import redis.asyncio

from refresher import Loader


class _Counters:
    """The refresher counters both flavours report."""

    def __init__(self, loader: Loader[Any, Any]) -> None:
        self.loader = loader
        self.cache = loader.cache
        # The cache and its counters are per process and outlive one strategy: count from here.
        self._base = self.cache.stats.snapshot()

    def stored_key(self, key: str) -> str:
        return self.loader.keys(key).value

    def counters(self) -> dict[str, int]:
        now = self.cache.stats.snapshot()
        counts = {event: now.get(event, 0) - self._base.get(event, 0) for event in now}
        return {"background": counts.get("refresh_enqueued", 0), "inline": counts.get("load", 0), **counts}


class RefresherStrategy(_Counters):
    def __init__(self, loader: Loader[Any, Any]) -> None:
        super().__init__(loader)
        self.redis = cast(redis.Redis, self.cache.redis)  # the bench runs one redis-server

    def warm(self) -> None:
        """What the first read does anyway: start the publisher, which connects to the broker."""
        self.cache.publisher.start()
        self.redis.ping()

    def get(self, key: str) -> Any:
        return self.loader.get(key)

    def get_many(self, keys: Sequence[str]) -> list[Any]:
        return self.loader.get_many(keys)

    def flush(self) -> None:
        self.cache.flush()

    def close(self) -> None:
        """The module's cache stays open: the next strategy in this process shares it."""


class NearRefresherStrategy(RefresherStrategy):
    """refresher with its near cache on (bench/near_loaders.py)."""

    def warm(self) -> None:
        """Also wait for the near cache's tracking connection, as a long-running app has it."""
        super().warm()
        near = self.cache.near
        if near is None or not self.cache.tracker.wait_live(10):
            raise RuntimeError("the near cache's tracking is not on")


class AsyncRefresherStrategy(_Counters):
    def __init__(self, loader: Loader[Any, Any]) -> None:
        super().__init__(loader)
        self.redis = cast(redis.asyncio.Redis, self.cache.aio().redis)  # this loop's pool

    async def warm(self) -> None:
        """What the first read does anyway: the publisher is started with the loop's driver."""
        self.cache.publisher.start()
        await self.redis.ping()

    async def get(self, key: str) -> Any:
        return await self.loader.aget(key)

    async def flush(self) -> None:
        await asyncio.to_thread(self.cache.flush)

    async def close(self) -> None:
        """Close this loop's pool; the module's cache (and its publisher) stays for the next strategy."""
        await self.cache.aclose()
