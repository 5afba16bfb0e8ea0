"""Fault 5: publishing the refresh task fails after a reader has set the pending marker.

The publisher frees the marker (only if it is still the one it set) so that a later read
asks again, and the breaker keeps the broker from being retried on every read.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from typing import Iterator

import pytest
import redis

from refresher import Refresher
from tests.support import fault_loaders as fl
from tests.support.ageing import expire_in
from tests.support.servers import RedisServer, free_port
from tests.support.reading import Reading

PUBLISH_TIMEOUT = 1.0
COOLDOWN = 0.3


def wait_until_closed(cache: Refresher, timeout: float = 5.0) -> None:
    """Wait out the breaker's cool-down (a timer: there is no event to wait on)."""
    deadline = time.monotonic() + timeout
    while not cache.publisher.available():
        assert time.monotonic() < deadline, "the breaker never closed"
        threading.Event().wait(0.01)


@pytest.fixture
def broker_port() -> int:
    return free_port()  # nothing listens here until a test starts a broker on it


@pytest.fixture
def cache(redis_url: str, broker_port: int) -> Iterator[Refresher]:
    c = Refresher(redis_url, f"redis://127.0.0.1:{broker_port}/0",
                  publish_timeout=PUBLISH_TIMEOUT, breaker_cooldown=COOLDOWN)
    yield c
    c.close()


def test_a_failed_publish_frees_the_marker_and_a_later_read_asks_again(
    reading: Reading, r: redis.Redis, key: str, broker_port: int, cache: Refresher, caplog: pytest.LogCaptureFixture
) -> None:
    loader = fl.bound_to(fl.steady, cache)
    keys = loader.keys(key)
    old = {"key": key, "call": 0}
    reading.set(loader, key, old)
    expire_in(r, keys, 20_000)

    with caplog.at_level(logging.WARNING, logger="refresher"):
        started = time.monotonic()
        assert reading.get(loader, key) == old  # served at once; the publish fails in the background
        # The failure is over within about one publish timeout (no hidden broker retries).
        assert cache.flush(timeout=5)
        assert time.monotonic() - started < 2 * PUBLISH_TIMEOUT
    assert cache.stats["publish_failed"] == 1
    assert f"loader={loader.name} key={keys.value} publishing a refresh failed" in caplog.text
    assert r.get(keys.pending) is None  # the marker was freed

    # While the breaker is open, reads are served and publish nothing.
    assert reading.get(loader, key) == old
    assert cache.stats["publish_skipped"] == 1 and r.get(keys.pending) is None

    broker = RedisServer(broker_port)
    broker.start()
    try:
        wait_until_closed(cache)
        assert reading.get(loader, key) == old  # the next read asks again ...
        assert r.get(keys.pending) is not None
        assert cache.flush(timeout=5)
        assert cache.stats["refresh_enqueued"] == 1  # ... and this time the task lands
        assert redis.Redis.from_url(broker.url).llen(cache.queue) == 1
    finally:
        broker.stop()
    assert fl.calls(loader, key) == 0  # nobody loaded inline: the reads were all served


def test_a_failed_publish_never_frees_a_marker_another_reader_holds(
    reading: Reading, r: redis.Redis, key: str, broker_port: int, cache: Refresher
) -> None:
    loader = fl.bound_to(fl.steady, cache)
    keys = loader.keys(key)
    reading.set(loader, key, {"key": key, "call": 0})
    expire_in(r, keys, 20_000)
    broker = RedisServer(broker_port)
    broker.start()
    assert broker.proc is not None
    try:
        broker.proc.send_signal(signal.SIGSTOP)  # the broker hangs: a publish takes its full timeout
        reading.get(loader, key)  # claims the marker; the publish is now stuck for PUBLISH_TIMEOUT
        # Meanwhile our marker lapses and another reader claims the key.
        r.set(keys.pending, b"another reader's token", px=10_000)
        assert cache.flush(timeout=5)
        assert cache.stats["publish_failed"] == 1
        assert r.get(keys.pending) == b"another reader's token"
    finally:
        broker.proc.send_signal(signal.SIGCONT)
        broker.stop()
