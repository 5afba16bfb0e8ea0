"""The strategies under test, built by name so reader processes can make their own.

NAMES are read by threads (`build`), ASYNC_NAMES by asyncio tasks (`build_async`, called
inside the event loop that will read through the strategy)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any, Callable

import redis
import redis.asyncio

from bench import origin
from bench.strategies.base import AsyncStrategy, BulkStrategy, Strategy
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
ASYNC_LABELS = {
    "naive-async": "naive (redis.asyncio)",
    "cashews-lock": "cashews lock=True",
    "cashews-early": "cashews early",
    "refresher-async": "refresher aget",
}
ASYNC_NAMES = tuple(ASYNC_LABELS)
LABELS.update(ASYNC_LABELS)
# Read only by the near-cache scenario (bench/scenarios/near.py), so in neither NAMES.
LABELS["refresher-near"] = "refresher + near cache"


@dataclass(frozen=True)
class Spec:
    """Which strategy, over which workload, on which Redis: picklable for spawned readers."""

    strategy: str
    workload: str
    redis_url: str

    @property
    def is_async(self) -> bool:
        return self.strategy in ASYNC_LABELS


def _refresher_loaders(spec: Spec) -> Any:
    from bench import loaders  # imported only here: it connects a Refresher

    if loaders.cache.redis_url != spec.redis_url:
        raise RuntimeError(f"bench.loaders uses {loaders.cache.redis_url}, not {spec.redis_url}")
    return loaders


def build(spec: Spec) -> Strategy:
    workload = by_name(spec.workload)
    load = partial(origin.fetch, workload)
    if spec.strategy == "refresher-near":
        from bench import near_loaders  # imported only here: it connects a Refresher with a near cache
        from bench.strategies.refresher import NearRefresherStrategy

        if near_loaders.cache.redis_url != spec.redis_url:
            raise RuntimeError(f"bench.near_loaders uses {near_loaders.cache.redis_url}, not {spec.redis_url}")
        return NearRefresherStrategy({"hot": near_loaders.hot}[workload.name])
    if spec.strategy in ("refresher", "refresher-xfetch"):
        from bench.strategies.refresher import RefresherStrategy

        policy = "xfetch" if spec.strategy == "refresher-xfetch" else "window"
        return RefresherStrategy(_refresher_loaders(spec).BY_POLICY[policy][workload.name])
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


def build_async(spec: Spec) -> AsyncStrategy:
    """Call inside the event loop the strategy will be read from."""
    workload = by_name(spec.workload)
    load = partial(origin.afetch, workload)
    if spec.strategy == "refresher-async":
        from bench.strategies.refresher import AsyncRefresherStrategy

        return AsyncRefresherStrategy(_refresher_loaders(spec).BY_POLICY["async"][workload.name])
    if spec.strategy in ("cashews-lock", "cashews-early"):
        from bench.strategies.cashews_cache import Cashews

        return Cashews(spec.redis_url, load, workload.ttl, "lock" if spec.strategy == "cashews-lock" else "early")
    from bench.strategies.naive import AsyncNaive

    if spec.strategy != "naive-async":
        raise ValueError(f"no asyncio strategy {spec.strategy!r}")
    return AsyncNaive(redis.asyncio.Redis.from_url(spec.redis_url), load, workload.ttl)


__all__ = ["ASYNC_LABELS", "ASYNC_NAMES", "LABELS", "NAMES", "AsyncStrategy", "BulkStrategy", "Spec", "Strategy",
           "build", "build_async"]
