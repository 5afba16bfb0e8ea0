"""Loaders shared by the multi-process tests and the subprocess worker
(REFRESHER_LOADERS=tests.support.loaders). Each counts its calls in Redis, so counts hold
across processes, and `gated` lets a test hold a load in progress."""

from __future__ import annotations

import os
import time
from typing import Any

import redis

from refresher import Refresher
from tests.support import readers

cache = Refresher()  # REFRESHER_REDIS_URL, set by tests/conftest.py
control = redis.Redis.from_url(os.environ.get("REFRESHER_TEST_CONTROL_URL") or cache.redis_url)  # counters, gates


def count_call(name: str) -> None:
    control.incr(f"test:calls:{name}")
    control.rpush(f"test:call_times:{name}", repr(time.time()))


def subscribers(channel: str) -> int:
    """How many connections (one per waiting process) are subscribed to a signal channel."""
    client = cache.redis
    if isinstance(client, redis.RedisCluster):  # asked of the node that owns the channel's slot
        replies = client.pubsub_shardnumsub(channel, target_nodes=client.get_node_from_key(channel))
    else:
        replies = client.pubsub_shardnumsub(channel)
    return sum(int(count) for _, count in replies)


def calls(name: str) -> int:
    return int(control.get(f"test:calls:{name}") or 0)


def call_times(name: str) -> list[float]:
    """When each call started, in order, from every process."""
    return [float(t) for t in control.lrange(f"test:call_times:{name}", 0, -1)]


@cache.loader(ttl=30, name="tests.slow_user")
def slow_user(user_id: int) -> dict[str, Any]:
    count_call("slow_user")
    readers.waited_for(lambda: subscribers(slow_user.keys(user_id).signal), timeout=10)  # every reader process met it
    time.sleep(0.2)
    return {"id": user_id, "name": f"user {user_id}"}


# lock_ttl: the default (a third of the 0.4 s window, 133 ms) is barely longer than the 0.1 s
# load; on a loaded machine a late watchdog extension let the warm-up's lock lapse, a reader
# took it and the warm-up's commit was refused (every reader missed once).
@cache.loader(ttl=2, refresh_window=0.2, lock_ttl=0.3, name="tests.hot")
def hot(key: str) -> dict[str, Any]:
    count_call("hot")
    time.sleep(0.1)
    return {"key": key, "loaded_at": time.time()}


@cache.loader(ttl=60, refresh_window=0.5, name="tests.windowed")
def windowed(n: int) -> int:
    count_call("windowed")
    return n * 2


@cache.loader(ttl=60, lock_ttl=2, name="tests.gated")
def gated(n: int) -> dict[str, Any]:
    """Announces itself on test:entered, then waits for the test to push test:gate."""
    count_call("gated")
    control.rpush("test:entered", n)
    if control.blpop(["test:gate"], timeout=20) is None:
        raise TimeoutError("the test never opened the gate")
    return {"n": n, "version": int(control.get("test:version") or 0)}


@cache.loader(ttl=60, name="tests.failing")
def failing(n: int) -> int:
    count_call("failing")
    time.sleep(0.1)
    raise RuntimeError(f"origin down for {n}")
