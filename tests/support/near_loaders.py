"""A loader read through the near cache by one process while another rewrites it
(tests/test_near.py). Its origin is a counter in the control Redis, so a load after an
invalidation returns the writer's latest number."""

from __future__ import annotations

import os
import time

import redis

from refresher import Refresher

cache = Refresher(near_cache=1000, queue="near-tests")  # a queue no worker reads
control = redis.Redis.from_url(os.environ["REFRESHER_TEST_CONTROL_URL"])


@cache.loader(ttl=60, name="tests.near.counter")
def counter(key: str) -> dict[str, int]:
    return {"n": int(control.get(f"near:origin:{key}") or 0)}


def write(key: str, writes: int, ready: object, go: object) -> None:
    """The writer process: `set` then `invalidate`, alternately, each write a higher
    number; when each returned goes to the control Redis as (n, time)."""
    ready.set()  # type: ignore[attr-defined]
    go.wait()  # type: ignore[attr-defined]
    for n in range(1, writes + 1):
        if n % 2:
            counter.set(key, {"n": n})
        else:
            control.set(f"near:origin:{key}", n)
            counter.invalidate(key)
        control.rpush(f"near:written:{key}", f"{n} {time.time()!r}")
    cache.close()
