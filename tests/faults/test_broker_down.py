"""Fault 7: the broker (its own redis-server here) hangs, dies and comes back.

Cached reads are served all along and never wait for a publish (it runs in the
background; the breaker then skips publishing for a cool-down). Misses still load inline.
When the broker returns, refreshes resume with neither the app nor the worker restarted.
"""

from __future__ import annotations

import signal
import threading
import time
from typing import Any, Callable, Iterator

import pytest
import redis

from refresher import Loader, Refresher
from tests.support import fault_loaders as fl
from tests.support.ageing import expire_in
from tests.support.keyevents import KeyEvents
from tests.support.servers import RedisServer, WorkerProcess
from tests.support.reading import Reading

PUBLISH_TIMEOUT = 1.5
COOLDOWN = 1.0
WRITTEN = r"refresher\.refresh\[\S+\] succeeded in \S+ 'written'"


@pytest.fixture
def broker(own_redis: RedisServer) -> RedisServer:
    return own_redis


@pytest.fixture
def cache(redis_url: str, broker: RedisServer) -> Iterator[Refresher]:
    c = Refresher(redis_url, broker.url, publish_timeout=PUBLISH_TIMEOUT, breaker_cooldown=COOLDOWN)
    yield c
    c.close()


def read_until(
    reading: Reading, loader: Loader[..., Any], key: str, done: Callable[[Any], bool], timeout: float = 15.0
) -> list[Any]:
    """Read `key` every 10 ms, as traffic would, until `done(value just read)`.
    Returns every value read."""
    deadline = time.monotonic() + timeout
    values = [reading.get(loader, key)]
    while not done(values[-1]):
        assert time.monotonic() < deadline, f"timed out after {len(values)} reads"
        threading.Event().wait(0.01)
        values.append(reading.get(loader, key))
    return values


def test_reads_are_served_through_a_broker_outage_and_refreshes_resume_after_it(
    reading: Reading, r: redis.Redis, key: str, broker: RedisServer, cache: Refresher,
    spawn_worker: Callable[..., WorkerProcess], key_events: Callable[..., KeyEvents],
) -> None:
    loader, stats = fl.bound_to(fl.steady, cache), cache.stats
    keys = loader.keys(key)
    worker = spawn_worker(extra_env={"REFRESHER_BROKER_URL": broker.url})
    assert worker.log is not None and broker.proc is not None
    events = key_events(keys.pending)
    reading.set(loader, key, {"key": key, "call": 0})
    expire_in(r, keys, 20_000)
    reading.get(loader, key)
    worker.log.wait_for(WRITTEN)  # all well: a refresh goes through the broker
    current = {"key": key, "call": 1}
    assert reading.get(loader, key) == current
    expire_in(r, keys, 20_000)  # due for a refresh again ...
    assert events.wait(keys.pending, "del")  # ... the last refresh's commit cleared its marker

    # 1. The broker hangs: the publish takes its whole timeout; the read that asked does not.
    broker.proc.send_signal(signal.SIGSTOP)
    started = time.perf_counter()
    assert reading.get(loader, key) == current
    read_s = time.perf_counter() - started
    assert cache.flush(timeout=10)
    publish_s = time.perf_counter() - started
    assert stats["publish_failed"] == 1
    assert publish_s >= PUBLISH_TIMEOUT * 0.9 and read_s < PUBLISH_TIMEOUT / 2, (read_s, publish_s)
    # The breaker is open: the next reads are served and do not even hand a task over.
    skipped = stats["publish_skipped"]
    assert [reading.get(loader, key) for _ in range(5)] == [current] * 5
    assert stats["publish_skipped"] == skipped + 5

    # 2. The broker dies. Misses still load inline; after each cool-down one read tries again.
    broker.stop(signal.SIGKILL)
    assert reading.get(loader, key + "-other") == {"key": key + "-other", "call": 1}
    def hits() -> int:  # served from Redis or the near cache, having asked for a refresh or not
        return stats["hit"] + stats["near_hit"] + stats["refresh_asked"]

    before = hits()
    served = read_until(reading, loader, key, lambda _: stats["publish_failed"] == 2)
    assert served == [current] * len(served) and hits() == before + len(served)
    assert stats["refresh_enqueued"] == 1  # still only the first, pre-outage one
    assert len(served) > 2  # many reads, one more publish attempt: the breaker held the rest back

    # 3. The broker is back on the same address: no restart of anything, refreshes resume.
    broker.start()
    worker.log.wait_for(rf"Connected to redis://\S*:{broker.port}/", count=2)
    expire_in(r, keys, 20_000)  # still in the window, however long the outage took
    refreshed = {"key": key, "call": 2}
    served = read_until(reading, loader, key, lambda value: value != current)
    assert served == [current] * (len(served) - 1) + [refreshed]
    worker.log.wait_for(WRITTEN, count=2)  # it was the worker that refreshed it
    assert stats["refresh_enqueued"] == 2
    assert reading.get(loader, key) == refreshed
