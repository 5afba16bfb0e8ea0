"""Cache-aside with no protection: GET; on a miss load, then SET with the TTL.

Every reader that misses calls the origin: the stampede the other strategies prevent.
TTLs are set in milliseconds (PX) so sub-second and fractional TTLs stay exact.
"""

from __future__ import annotations

import json
from typing import Any, Callable, Sequence, cast

import redis

from bench.strategies.base import Counted


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
        self.redis.set(key, json.dumps(value, separators=(",", ":")), px=self.px)
        self._count("inline")
        return value
