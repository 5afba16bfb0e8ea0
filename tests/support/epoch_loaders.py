"""Loaders for the invalidate_all / invalidate_tag / version tests (tests/test_invalidation.py),
shared with the worker subprocess (REFRESHER_LOADERS=tests.support.epoch_loaders) and the
reader processes. The origin's "generation" is a number in the control Redis that a test
raises before it invalidates, so every value says which side of the invalidation it is."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from typing import Any

import redis

from refresher import Refresher

cache = Refresher(queue="epochs")  # REFRESHER_REDIS_URL, set by tests/conftest.py
control = redis.Redis.from_url(os.environ["REFRESHER_TEST_CONTROL_URL"])
KEYS = 100


def generation() -> int:
    return int(control.get("epoch:generation") or 0)


@cache.loader(ttl=30, name="tests.epoch.profile")
def profile(n: int) -> dict[str, int]:
    control.hincrby("epoch:calls", str(n))
    return {"n": n, "generation": generation()}


def _user(kind: str, user_id: int) -> dict[str, Any]:
    control.hincrby("epoch:tag_calls", f"{kind}:{user_id}")
    return {"user": user_id, "kind": kind, "generation": generation()}


def _user_tags(user_id: int) -> list[str]:
    return [f"user:{user_id}"]


@cache.loader(ttl=60, name="tests.epoch.user_profile", tags=_user_tags)
def user_profile(user_id: int) -> dict[str, Any]:
    return _user("profile", user_id)


@cache.loader(ttl=60, name="tests.epoch.user_posts", tags=_user_tags)
def user_posts(user_id: int) -> dict[str, Any]:
    return _user("posts", user_id)


@cache.loader(ttl=60, name="tests.epoch.user_badges", tags=lambda user_id: [f"user:{user_id}", "badges"])
def user_badges(user_id: int) -> dict[str, Any]:
    return _user("badges", user_id)


def read_all(mode: str, seconds: float, ready: Any, go: Any, out: Any) -> None:
    """A reader process: 2 threads (or tasks) read the KEYS keys round-robin for `seconds`;
    reports each read as (monotonic start, n, generation), errors, and its stats."""
    reads: list[tuple[float, int, int]] = []
    errors: list[str] = []
    lock = threading.Lock()

    def record(started: float, value: dict[str, int]) -> None:
        with lock:
            reads.append((started, value["n"], value["generation"]))

    def threads() -> None:
        def run(offset: int) -> None:
            deadline, n = time.monotonic() + seconds, offset
            while time.monotonic() < deadline:
                started = time.monotonic()
                try:
                    record(started, profile.get(n % KEYS))
                except Exception as exc:  # noqa: BLE001  reported to the test
                    errors.append(repr(exc))
                n += 1

        workers = [threading.Thread(target=run, args=(i * 50,)) for i in range(2)]
        go.wait()
        for w in workers:
            w.start()
        for w in workers:
            w.join()

    async def tasks() -> None:
        async def run(offset: int) -> None:
            deadline, n = time.monotonic() + seconds, offset
            while time.monotonic() < deadline:
                started = time.monotonic()
                try:
                    record(started, await profile.aget(n % KEYS))
                except Exception as exc:  # noqa: BLE001  reported to the test
                    errors.append(repr(exc))
                n += 1

        await asyncio.to_thread(go.wait)
        await asyncio.gather(*(run(i * 50) for i in range(2)))

    profile.get(0)  # connected, and the tracker started
    cache.tracker.wait_live(10)
    ready.set()
    if mode == "async":
        asyncio.run(tasks())
    else:
        threads()
    cache.flush()
    out.put((reads, errors, cache.stats.snapshot()))
