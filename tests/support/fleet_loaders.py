"""The fleet test's loader, shared with its workers and reader processes
(REFRESHER_LOADERS=tests.support.fleet_loaders). The cache and broker come from the
environment (REFRESHER_REDIS_URL, REFRESHER_BROKER_URL), which tests/test_fleet.py points at
its Redis Cluster and the plain redis-server; every load is counted per key in the
control Redis, whichever process ran it."""

from __future__ import annotations

import os

import redis

from refresher import Refresher

QUEUE = "fleet"
LOADS = "fleet:loads"  # a hash: key argument -> loads so far
TTL = 8.0
WINDOW = 0.2  # refreshes come at least 6.4 s apart: at most one per TTL period, +1

cache = Refresher(queue=QUEUE)
control = redis.Redis.from_url(os.environ.get("REFRESHER_TEST_CONTROL_URL") or cache.redis_url)


@cache.loader(ttl=TTL, refresh_window=WINDOW, lock_ttl=0.5, name="fleet.hot")
def hot(n: int) -> dict[str, int]:
    return {"n": n, "load": int(control.hincrby(LOADS, str(n)))}


def loads() -> dict[int, int]:
    """Loads so far, per key argument."""
    return {int(n): int(count) for n, count in control.hgetall(LOADS).items()}
