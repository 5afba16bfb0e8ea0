"""Loaders for tests/faults, shared with subprocess workers
(REFRESHER_LOADERS=tests.support.fault_loaders).

Every loader runs `origin(name, key)`, which a test steers through Redis from another
process: `hold(key)` makes the next call wait until `release(key, call)`, `go_down(key)`
makes calls fail until `come_back(key)`. Each call is announced on a list (`entered`) and
time-stamped (`attempts`), so tests wait on events and count calls across processes.
"""

from __future__ import annotations

import os
import time
from typing import Any

import redis
from celery.exceptions import SoftTimeLimitExceeded

from refresher import Loader, Refresher
from refresher.core.envelope import Envelope
from refresher.core.protocol.layout import NOTHING_READ
from refresher.io.publish import REFRESH_TASK

cache = Refresher()  # REFRESHER_REDIS_URL, set by tests/conftest.py
# No socket timeout (redis-py 8 sets 5 s by default): its BLPOPs carry their own, up to 20 s.
control = redis.Redis.from_url(os.environ.get("REFRESHER_TEST_CONTROL_URL") or cache.redis_url, socket_timeout=None)
GATE_TIMEOUT = 20


def origin(name: str, key: str) -> dict[str, Any]:
    n = int(control.incr(f"faults:calls:{name}:{key}"))
    control.rpush(f"faults:attempts:{name}:{key}", repr(time.time()))
    held = control.lpop(f"faults:hold:{key}") is not None
    control.rpush(f"faults:entered:{key}", n)  # after taking the hold: a kill now cannot leave it behind
    if held:
        if control.blpop([f"faults:gate:{key}:{n}"], timeout=GATE_TIMEOUT) is None:
            raise TimeoutError("the test never released the load")
    if control.exists(f"faults:down:{key}"):
        raise ConnectionError(f"origin down for {key}")
    return {"key": key, "call": n}


# -- steering a load from the test ---------------------------------------------------


def hold(key: str) -> None:
    """The next call for `key` waits inside the loader until it is released."""
    control.rpush(f"faults:hold:{key}", 1)


def release(key: str, call: int) -> None:
    """Let held call number `call` (as `entered` returned it) go on."""
    control.rpush(f"faults:gate:{key}:{call}", 1)


def entered(key: str, timeout: float = 20.0) -> int:
    """Block until a call for `key` has started (in any process); return its number."""
    got = control.blpop([f"faults:entered:{key}"], timeout=timeout)
    assert got is not None, f"no loader call for {key} within {timeout}s"
    return int(got[1])


def go_down(key: str) -> None:
    control.set(f"faults:down:{key}", 1)


def come_back(key: str) -> None:
    control.delete(f"faults:down:{key}")


def calls(loader: Loader[..., Any], key: str) -> int:
    return int(control.get(f"faults:calls:{loader.name}:{key}") or 0)


def attempts(loader: Loader[..., Any], key: str) -> list[float]:
    """Start times of every call for `key`, in order, from every process."""
    return [float(t) for t in control.lrange(f"faults:attempts:{loader.name}:{key}", 0, -1)]


def stored_version(loader: Loader[..., Any], key: str) -> int:
    raw = loader.cache.redis.get(loader.keys(key).value)
    return Envelope.from_bytes(raw).version if raw is not None else NOTHING_READ


def send_refresh(loader: Loader[..., Any], key: str, task_id: str | None = None,
                 enqueued_at: float | None = None, seen: int | None = None) -> None:
    """Publish a refresh task by hand, as a duplicate or redelivered message would arrive:
    asking to replace version `seen` (default: the version stored now, as a reader would)."""
    call = loader.call((key,), {})
    loader.cache.publisher.app.send_task(
        REFRESH_TASK, args=[loader.name, call.args, call.kwargs, enqueued_at or time.time(),
                                   stored_version(loader, key) if seen is None else seen],
        queue=loader.cache.queue, task_id=task_id,
    )


def bound_to(loader: Loader[..., Any], other: Refresher) -> Loader[..., Any]:
    """The same loader read through another Refresher (another broker, other timeouts).
    Not registered: workers keep refreshing it under its own name."""
    return Loader(other, loader.fn, loader.name, loader.settings)


# -- the loaders ---------------------------------------------------------------------
# Long TTLs and wide windows, so that nothing expires by accident however slowly a test
# runs; a test places a value in its window or past its TTL with ageing.expire_in.


@cache.loader(ttl=60, refresh_window=0.5, lock_ttl=1, name="faults.steady")
def steady(key: str) -> dict[str, Any]:
    """Window 30 s, lock 1 s: a killed worker's lock lapses quickly."""
    return origin("faults.steady", key)


@cache.loader(ttl=60, refresh_window=0.5, lock_ttl=0.6, name="faults.slow")
def slow(key: str) -> dict[str, Any]:
    """A lock shorter than the loads the tests hold open: the watchdog must keep it."""
    return origin("faults.slow", key)


@cache.loader(ttl=60, refresh_window=0.5, lock_ttl=0.3, max_load_time=0.6, name="faults.capped")
def capped(key: str) -> dict[str, Any]:
    """The watchdog gives up after 0.6 s: a load held longer loses its lock."""
    return origin("faults.capped", key)


@cache.loader(ttl=60, refresh_window=0.5, lock_ttl=0.6, max_load_time=2, name="faults.hung")
def hung(key: str) -> dict[str, Any]:
    """Its refresh tasks carry a 2 s soft and a 3 s hard time limit; its lock is kept for 2 s."""
    return origin("faults.hung", key)


@cache.loader(ttl=60, refresh_window=0.5, lock_ttl=0.6, max_load_time=1, name="faults.stubborn")
def stubborn(key: str) -> dict[str, Any]:
    """Swallows the 1 s soft time limit, as an `except Exception` around a blocking call
    would, and waits on: only the hard limit, at 2 s, ends it (prefork kills the child)."""
    try:
        return origin("faults.stubborn", key)
    except SoftTimeLimitExceeded:
        control.blpop([f"faults:never:{key}"], timeout=GATE_TIMEOUT)
        raise


@cache.loader(ttl=60, refresh_window=0.5, lock_ttl=0.3, error_backoff=1, name="faults.fragile")
def fragile(key: str) -> dict[str, Any]:
    """No stale_ttl: after a failed refresh the old value lives until its TTL, no longer."""
    return origin("faults.fragile", key)


@cache.loader(ttl=60, refresh_window=0.5, lock_ttl=1, error_backoff=1, stale_ttl=30, name="faults.lenient")
def lenient(key: str) -> dict[str, Any]:
    """Window 30 s, stale_ttl 30 s, retried at most every 1 s while the origin is down.
    The lock lives 1 s: a holder starved of CPU for longer than a short lock's TTL (the
    watchdog starved with it) would lose the lock before it could record the back-off."""
    return origin("faults.lenient", key)


@cache.loader(ttl=60, error_backoff=10, stale_ttl=30, name="faults.patient")
def patient(key: str) -> dict[str, Any]:
    """A back-off far longer than any test step, for asserting what happens inside it."""
    return origin("faults.patient", key)
