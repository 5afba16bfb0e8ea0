"""cashews, the asyncio cache, in its two documented anti-stampede setups, with its Redis
backend (`cache.setup("redis://...")`, default settings) on the bench's redis-server.

- **lock**: `@cache(ttl=ttl, lock=True)`. Every call, hits included, runs inside
  `cache.lock`: SET NX of a lock key, retried at once (`check_interval=0`, a PING each
  turn) while another process holds it; the cached read (GET) inside; a Lua compare-and-
  delete to unlock. Concurrent calls of one key in one process share one task
  (`protected=True`, the default).
- **early**: `@cache.early(ttl=ttl, early_ttl=0.9 * ttl)`. A value carries an early expiry
  at 90% of its TTL; the first reader past it takes a lock (SET NX) and recomputes in a
  background task while every reader keeps getting the old value. A cold key takes no
  lock: each process loads it once (its calls are coalesced in-process).
"""

from __future__ import annotations

import asyncio
from typing import Any, Awaitable, Callable, Literal

import redis.asyncio
from cashews import Cache

from bench.strategies.base import AsyncCounted

Mode = Literal["lock", "early"]
EARLY_SHARE = 0.9  # early_ttl = 0.9 x ttl: the recompute starts in the last 10% of the TTL, like refresher's window


def _in_early_refresh() -> bool:
    """Whether this load is cashews early's background recompute. It runs in a task of its
    own, made from cashews' `_get_result_for_early`; a blocking (cold) load does not."""
    task = asyncio.current_task()
    return task is not None and getattr(task.get_coro(), "__name__", "") == "_get_result_for_early"


class Cashews(AsyncCounted):

    def __init__(self, url: str, load: Callable[[str], Awaitable[Any]], ttl: float, mode: Mode) -> None:
        super().__init__()
        self.cache = Cache()  # an instance of its own, not the module-level `cashews.cache`
        self.backend = self.cache.setup(url)
        self.load = load

        async def load_value(key: str) -> Any:
            self._count("background" if _in_early_refresh() else "inline")
            return await self.load(key)

        if mode == "lock":
            self.read = self.cache(ttl=ttl, lock=True)(load_value)
        else:
            self.read = self.cache.early(ttl=ttl, early_ttl=EARLY_SHARE * ttl)(load_value)

    async def warm(self) -> None:
        await self.cache.init()
        self.redis: redis.asyncio.Redis = getattr(self.backend, "_client")  # cashews' own client, after init
        await self.redis.ping()

    async def get(self, key: str) -> Any:
        return await self.read(key)

    async def close(self) -> None:
        await self.cache.close()
