"""refresher itself, through the loaders in bench/loaders.py that the bench's Celery
workers also import; the loader carries the policy (the default Window, or XFetch)."""

from __future__ import annotations

from typing import Any, Sequence

import redis

from refresher import Loader

class RefresherStrategy:
    def __init__(self, loader: Loader[Any, Any]) -> None:
        self.loader = loader
        self.cache = loader.cache
        self.redis: redis.Redis = self.cache.redis
        # The cache and its counters are per process and outlive one strategy: count from here.
        self._base = self.cache.stats.snapshot()

    def warm(self) -> None:
        """What the first read does anyway: start the publisher, which connects to the broker."""
        self.cache.publisher.start()
        self.redis.ping()

    def get(self, key: str) -> Any:
        return self.loader.get(key)

    def get_many(self, keys: Sequence[str]) -> list[Any]:
        return self.loader.get_many(keys)

    def stored_key(self, key: str) -> str:
        return self.loader.keys(key).value

    def counters(self) -> dict[str, int]:
        now = self.cache.stats.snapshot()
        counts = {event: now.get(event, 0) - self._base.get(event, 0) for event in now}
        return {"background": counts.get("refresh_enqueued", 0), "inline": counts.get("load", 0), **counts}

    def flush(self) -> None:
        self.cache.flush()

    def close(self) -> None:
        """The module's cache stays open: the next strategy in this process shares it."""
