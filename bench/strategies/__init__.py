"""The strategies under test, built by name so reader processes can make their own."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any, Callable

import redis

from bench import origin
from bench.strategies.base import BulkStrategy, Strategy
from bench.workloads import by_name

LABELS = {
    "naive": "naive",
    "lock-poll": "lock-poll",
    "probabilistic": "probabilistic",
    "dogpile.cache": "dogpile.cache",
    "refresher": "refresher (Window)",
    "refresher-xfetch": "refresher (XFetch)",
}
NAMES = tuple(LABELS)


@dataclass(frozen=True)
class Spec:
    """Which strategy, over which workload, on which Redis: picklable for spawned readers."""

    strategy: str
    workload: str
    redis_url: str


def build(spec: Spec) -> Strategy:
    workload = by_name(spec.workload)
    load = partial(origin.fetch, workload)
    if spec.strategy in ("refresher", "refresher-xfetch"):
        from bench import loaders  # imported only here: it connects a Refresher
        from bench.strategies.refresher import RefresherStrategy

        if loaders.cache.redis_url != spec.redis_url:
            raise RuntimeError(f"bench.loaders uses {loaders.cache.redis_url}, not {spec.redis_url}")
        policy = "xfetch" if spec.strategy == "refresher-xfetch" else "window"
        return RefresherStrategy(loaders.BY_POLICY[policy][workload.name])
    if spec.strategy == "dogpile.cache":
        from bench.strategies.dogpile_cache import DogpileCache

        return DogpileCache(spec.redis_url, load, workload.ttl)
    from bench.strategies.lock_poll import LockPoll
    from bench.strategies.naive import Naive
    from bench.strategies.probabilistic import Probabilistic

    simple: dict[str, Callable[[redis.Redis, Callable[[str], Any], float], Strategy]] = {
        "naive": Naive, "lock-poll": LockPoll, "probabilistic": Probabilistic,
    }
    return simple[spec.strategy](redis.Redis.from_url(spec.redis_url), load, workload.ttl)


__all__ = ["LABELS", "NAMES", "BulkStrategy", "Spec", "Strategy", "build"]
