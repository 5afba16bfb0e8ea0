"""The seed lesson's probabilistic early refresh, with no deduplication.

A hit makes a second round trip for the remaining TTL; in the last 10% of the TTL each
reader refreshes in a background thread with probability rising linearly to 1. The
lesson's `TTL` call returns whole seconds, which at a 1-2 s TTL would make every read of
the last half-second refresh; PTTL keeps the lesson's rule at the scale it was meant for.
"""

from __future__ import annotations

import json
import random
from typing import Any, Callable, cast

import redis

from bench.strategies.base import Counted

WINDOW = 0.1


class Probabilistic(Counted):

    def __init__(self, client: redis.Redis, load: Callable[[str], Any], ttl: float) -> None:
        super().__init__()
        self.redis = client
        self.load = load
        self.ttl_ms = int(ttl * 1000)

    def get(self, key: str) -> Any:
        raw = cast(bytes | None, self.redis.get(key))
        if raw is not None:
            data = json.loads(raw)
            remaining_ms = self.redis.pttl(key)
            window_ms = self.ttl_ms * WINDOW
            if 0 <= remaining_ms < window_ms and random.random() < 1 - remaining_ms / window_ms:
                self._refresh_async(key)
            return data["value"]
        self._count("inline")
        value = self.load(key)
        self._store(key, value)
        return value

    def _refresh_async(self, key: str) -> None:
        self._count("background")
        self._start(lambda: self._store(key, self.load(key)))

    def _store(self, key: str, value: Any) -> None:
        self.redis.set(key, json.dumps({"value": value}, separators=(",", ":")), px=self.ttl_ms)
