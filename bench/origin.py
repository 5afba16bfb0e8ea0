"""The slow origin every strategy loads from.

Each call is counted in Redis (INCR), so counts hold across reader processes and worker
subprocesses; in single-key scenarios its start and end times are logged (RPUSH) too,
for the hot-key time series. `fetch` is the origin of sync loaders (time.sleep),
`afetch` that of `async def` loaders (asyncio.sleep, counted through redis.asyncio).
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
import weakref
from typing import Any, cast

import redis
import redis.asyncio

from bench.workloads import Workload

# A value the size of a typical cached record (about 300 bytes of JSON).
RECORD: dict[str, Any] = {
    "name": "Ada Lovelace",
    "email": "ada@example.com",
    "roles": ["admin", "editor", "viewer"],
    "settings": {"theme": "dark", "locale": "en_GB", "timezone": "Europe/London", "beta": True},
    "counters": {"logins": 1815, "posts": 42, "followers": 1843},
    "bio": "Wrote the first published algorithm intended to be carried out by a machine.",
}

_local = threading.local()
# One redis.asyncio client per event loop: a client's connections belong to the loop that made them.
_aclients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, redis.asyncio.Redis] = weakref.WeakKeyDictionary()


def control() -> redis.Redis:
    """This process's connection to the bench's Redis, apart from any strategy's pool."""
    client: redis.Redis | None = getattr(_local, "client", None)
    if client is None:
        client = _local.client = redis.Redis.from_url(os.environ["REFRESHER_REDIS_URL"])
    return client


def calls_key(series: str) -> str:
    return f"bench:calls:{series}"


def log_key(series: str) -> str:
    return f"bench:log:{series}"


def fetch(workload: Workload, key: str) -> dict[str, Any]:
    """Load `key` from the origin: sleep the workload's delay, then count the call."""
    start = time.time()
    if workload.delay:
        time.sleep(workload.delay)
    end = time.time()
    pipe = control().pipeline(transaction=False)
    _count(pipe, workload, key, start, end)
    pipe.execute()
    return _record(key, start)


async def afetch(workload: Workload, key: str) -> dict[str, Any]:
    """`fetch` for `async def` loaders: the delay is an asyncio.sleep, and the call is
    counted over this event loop's redis.asyncio client, so the loop never blocks."""
    start = time.time()
    if workload.delay:
        await asyncio.sleep(workload.delay)
    end = time.time()
    loop = asyncio.get_running_loop()
    client = _aclients.get(loop)
    if client is None:
        client = _aclients[loop] = redis.asyncio.Redis.from_url(os.environ["REFRESHER_REDIS_URL"])
    async with client.pipeline(transaction=False) as pipe:
        _count(pipe, workload, key, start, end)
        await pipe.execute()
    return _record(key, start)


async def aclose() -> None:
    """Close the running loop's client, if `afetch` made one."""
    client = _aclients.pop(asyncio.get_running_loop(), None)
    if client is not None:
        await client.aclose()


def _count(pipe: Any, workload: Workload, key: str, start: float, end: float) -> None:
    series = workload.series(key)
    pipe.incr(calls_key(series))
    if workload.per_key:  # single-key scenarios want call times; 100,000 keys want only a count
        pipe.rpush(log_key(series), f"{start:.6f} {end:.6f}")


def _record(key: str, start: float) -> dict[str, Any]:
    return {"key": key, "loaded_at": round(start, 6), **RECORD}


def calls(series: str) -> int:
    return int(cast(bytes | None, control().get(calls_key(series))) or 0)


def call_times(series: str) -> list[tuple[float, float]]:
    """(start, end) of every logged call, in start order."""
    raw = cast(list[bytes], control().lrange(log_key(series), 0, -1))
    return sorted((float(s), float(e)) for s, e in (item.split() for item in raw))
