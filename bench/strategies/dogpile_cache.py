"""dogpile.cache's Redis backend with a distributed lock and background regeneration.

Its documented setup for this: `distributed_lock=True` (a redis-py lock per key, polled
every `lock_sleep` = 0.1 s), `thread_local_lock=False` so another thread may release it,
and an `async_creation_runner` that regenerates an expired value in a thread while
readers keep getting the old one. Redis keeps values for twice the TTL so there is an
old one to serve; a value that is not there at all (a cold key) blocks on the lock.
"""

from __future__ import annotations

import math
import threading
from typing import Any, Callable, Sequence

import redis
from dogpile.cache import make_region

from bench.strategies.base import Counted

LOCK_TIMEOUT_S = 10


class DogpileCache(Counted):

    def __init__(self, url: str, load: Callable[[str], Any], ttl: float) -> None:
        super().__init__()
        self.load = load
        self._background = threading.local()
        self.region = make_region(
            async_creation_runner=self._regenerate_in_thread,
            key_mangler=lambda key: f"dogpile:{key}",
        ).configure(
            "dogpile.cache.redis",
            expiration_time=ttl,
            arguments={
                "url": url,
                "redis_expiration_time": math.ceil(ttl * 2),
                "distributed_lock": True,
                "thread_local_lock": False,
                "lock_timeout": LOCK_TIMEOUT_S,
            },
        )
        self.redis: redis.Redis = self.region.backend.reader_client

    def _regenerate_in_thread(self, cache: Any, key: str, creator: Callable[[], Any], mutex: Any) -> None:
        """The runner from dogpile's documentation, counted."""
        self._count("background")

        def run() -> None:
            self._background.active = True
            try:
                cache.set(key, creator())
            finally:
                mutex.release()

        self._start(run)

    def _create(self, key: str) -> Any:
        if not getattr(self._background, "active", False):
            self._count("inline")
        return self.load(key)

    def get(self, key: str) -> Any:
        return self.region.get_or_create(key, lambda: self._create(key))

    def get_many(self, keys: Sequence[str]) -> list[Any]:
        return list(self.region.get_or_create_multi(keys, lambda *missing: [self._create(k) for k in missing]))

    def stored_key(self, key: str) -> str:
        return f"dogpile:{key}"
