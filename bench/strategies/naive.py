"""Cache-aside with no protection: GET; on a miss load, then SET with the TTL.

Every reader that misses calls the origin: the stampede the other strategies prevent.
TTLs are set in milliseconds (PX) so sub-second and fractional TTLs stay exact.
`AsyncNaive` is the same pattern over redis.asyncio, with an `async def` loader.
"""

from __future__ import annotations

import json
from typing import Any, Awaitable, Callable, Sequence, cast

import redis
import redis.asyncio

from bench.strategies.base import AsyncCounted, Counted


def _encode(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


class Naive(Counted):

    def __init__(self, client: redis.Redis, load: Callable[[str], Any], ttl: float) -> None:
        super().__init__()
        self.redis = client
        self.load = load
        self.px = int(ttl * 1000)

    def get(self, key: str) -> Any:
        raw = cast(bytes | None, self.redis.get(key))
        if raw is not None:
            return json.loads(raw)
        return self._fill(key)

    def get_many(self, keys: Sequence[str]) -> list[Any]:
        """MGET, then cache-aside for each miss."""
        return [json.loads(raw) if raw is not None else self._fill(key)
                for key, raw in zip(keys, cast(list[bytes | None], self.redis.mget(keys)))]

    def _fill(self, key: str) -> Any:
        value = self.load(key)
        self.redis.set(key, _encode(value), px=self.px)
        self._count("inline")
        return value


class AsyncNaive(AsyncCounted):

    def __init__(self, client: redis.asyncio.Redis, load: Callable[[str], Awaitable[Any]], ttl: float) -> None:
        super().__init__()
        self.redis = client
        self.load = load
        self.px = int(ttl * 1000)

    async def get(self, key: str) -> Any:
        raw = cast(bytes | None, await self.redis.get(key))
        if raw is not None:
            return json.loads(raw)
        value = await self.load(key)
        await self.redis.set(key, _encode(value), px=self.px)
        self._count("inline")
        return value
