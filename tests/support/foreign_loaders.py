"""Loaders for tests/test_foreign_bytes.py, importable by the spawned processes that write
to them (another process's `set`) or read them (waiters for a big value). Each origin
counts its calls in the control Redis, so counts hold across processes."""

from __future__ import annotations

import os
import time
from typing import Any

import redis

from refresher import Refresher
from tests.support.readers import CTX

cache = Refresher(near_cache=1000, queue="foreign-tests")  # a queue no worker reads
control = redis.Redis.from_url(os.environ["REFRESHER_TEST_CONTROL_URL"])
BIG_BYTES = 5 * 1024 * 1024


@cache.loader(ttl=60, name="tests.foreign.profile", tags=lambda n: [f"profile:{n}"])
def profile(n: int) -> dict[str, Any]:
    return {"n": n, "load": control.incr("foreign:calls:profile")}


@cache.loader(ttl=60, name="tests.foreign.big", max_value_bytes=2 * BIG_BYTES)
def big(n: int) -> str:
    control.incr("foreign:calls:big")
    time.sleep(0.3)  # long enough for the other processes to be waiting on the signal channel
    return str(n) * BIG_BYTES


def calls(name: str) -> int:
    return int(control.get(f"foreign:calls:{name}") or 0)


def _set(n: int, value: dict[str, Any]) -> None:
    profile.set(n, value)
    cache.close()


def set_elsewhere(n: int, value: dict[str, Any]) -> float:
    """`profile.set(n, value)` in another OS process; when it returned (time.monotonic())."""
    process = CTX.Process(target=_set, args=(n, value))
    process.start()
    process.join(60)
    assert process.exitcode == 0, f"the writer process failed ({process.exitcode})"
    return time.monotonic()
