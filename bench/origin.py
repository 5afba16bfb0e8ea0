"""The slow origin every strategy loads from.

Each call is counted in Redis (INCR), so counts hold across reader processes and worker
subprocesses; in single-key scenarios its start and end times are logged (RPUSH) too,
for the hot-key time series.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any, cast

import redis

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
    series = workload.series(key)
    pipe = control().pipeline(transaction=False)
    pipe.incr(calls_key(series))
    if workload.per_key:  # single-key scenarios want call times; 100,000 keys want only a count
        pipe.rpush(log_key(series), f"{start:.6f} {end:.6f}")
    pipe.execute()
    return {"key": key, "loaded_at": round(start, 6), **RECORD}


def calls(series: str) -> int:
    return int(cast(bytes | None, control().get(calls_key(series))) or 0)


def call_times(series: str) -> list[tuple[float, float]]:
    """(start, end) of every logged call, in start order."""
    raw = cast(list[bytes], control().lrange(log_key(series), 0, -1))
    return sorted((float(s), float(e)) for s, e in (item.split() for item in raw))
