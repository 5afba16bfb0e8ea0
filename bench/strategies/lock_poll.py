"""The textbook distributed lock from the seed lesson, kept as written there.

A miss takes `SET <key>:lock 1 NX EX 10`; the holder loads, SETs and frees the lock with a
plain DEL; everybody else polls GET every 100 ms, up to 50 times, then loads itself.
"""

from __future__ import annotations

import json
import time
from typing import Any, Callable, cast

import redis

from bench.strategies.base import Counted

POLL_S = 0.1
POLLS = 50
LOCK_TTL_S = 10


class LockPoll(Counted):

    def __init__(self, client: redis.Redis, load: Callable[[str], Any], ttl: float) -> None:
        super().__init__()
        self.redis = client
        self.load = load
        self.px = int(ttl * 1000)

    def get(self, key: str) -> Any:
        raw = cast(bytes | None, self.redis.get(key))
        if raw is not None:
            return json.loads(raw)
        lock_key = f"{key}:lock"
        if self.redis.set(lock_key, "1", nx=True, ex=LOCK_TTL_S):
            try:
                value = self._load(key)
                self.redis.set(key, json.dumps(value, separators=(",", ":")), px=self.px)
                return value
            finally:
                self.redis.delete(lock_key)
        for _ in range(POLLS):
            time.sleep(POLL_S)
            raw = cast(bytes | None, self.redis.get(key))
            if raw is not None:
                return json.loads(raw)
        return self._load(key)

    def _load(self, key: str) -> Any:
        self._count("inline")
        return self.load(key)
