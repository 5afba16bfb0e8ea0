"""Faults 5 and 7 (docs/reliability.md) with RabbitMQ as the broker.

tests/faults/test_publish_failure.py and test_broker_down.py show these for a Redis
broker, and their bodies are Redis-specific (a redis-server started in the test body, the
queue's LLEN, the worker's "Connected to redis://" line), so they cannot take an AMQP URL;
these tests make the same claims through tests/support/brokers.py, which works for any
broker.

What differs with AMQP: a publish is a write to a socket, which "succeeds" into the
kernel's buffer of a hung broker. Publisher confirms (refresher/io/publish.py, `bounded`)
make the publish wait for the broker's ack, at most the publish timeout: a hung broker
is then a failed publish, which frees the pending marker and opens the breaker.
"""

from __future__ import annotations

import logging
import signal
import time
import uuid
from typing import Any, Iterator

import pytest
import redis

from refresher import Loader, Refresher
from tests.support import fault_loaders as fl
from tests.support.ageing import expire_in
from tests.support.brokers import connected, end, queued, read_until
from tests.support.rabbitmq import RabbitServer
from tests.support.servers import WorkerProcess

PUBLISH_TIMEOUT = 1.5
COOLDOWN = 0.5
WRITTEN = r"refresher\.refresh\[\S+\] succeeded in \S+ 'written'"


@pytest.fixture
def key() -> str:
    return "k" + uuid.uuid4().hex[:10]


@pytest.fixture
def cache(redis_url: str, amqp_broker: RabbitServer) -> Iterator[Refresher]:
    c = Refresher(redis_url, amqp_broker.url, publish_timeout=PUBLISH_TIMEOUT, breaker_cooldown=COOLDOWN)
    yield c
    c.close()


@pytest.fixture
def loader(cache: Refresher) -> Loader[..., Any]:
    return fl.bound_to(fl.steady, cache)


def in_window(r: redis.Redis, loader: Loader[..., Any], key: str, call: int) -> dict[str, Any]:
    """Store {"key", "call"} for `key`, 20 s before its TTL runs out: in its window."""
    value = {"key": key, "call": call}
    loader.set(key, value)
    expire_in(r, loader.keys(key), 20_000)
    return value


def test_a_failed_amqp_publish_frees_the_marker_and_a_later_read_asks_again(
    r: redis.Redis, key: str, amqp_broker: RabbitServer, cache: Refresher, loader: Loader[..., Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    keys = loader.keys(key)
    old = in_window(r, loader, key, 0)
    amqp_broker.stop_app()  # the node runs, nothing listens: connections are refused
    with caplog.at_level(logging.WARNING, logger="refresher"):
        started = time.monotonic()
        assert loader.get(key) == old  # served at once; the publish fails in the background
        assert cache.flush(timeout=5)
        assert time.monotonic() - started < PUBLISH_TIMEOUT  # refused: no waiting for the timeout
    assert cache.stats["publish_failed"] == 1
    assert f"loader={loader.name} key={loader.keys(key).value} publishing a refresh failed" in caplog.text
    assert r.get(keys.pending) is None  # the marker was freed

    assert loader.get(key) == old  # the breaker is open: served, nothing handed over
    assert cache.stats["publish_skipped"] == 1 and r.get(keys.pending) is None

    amqp_broker.start_app()
    read_until(lambda: loader.get(key), lambda _: r.get(keys.pending) is not None)  # a later read asks again
    assert cache.flush(timeout=5)
    assert cache.stats["refresh_enqueued"] == 1  # ... and this time the task lands
    assert queued(amqp_broker.url, cache.queue) == 1
    assert fl.calls(loader, key) == 0  # nobody loaded inline: every read was served


def test_reads_are_served_through_an_amqp_outage_and_refreshes_resume_after_it(
    r: redis.Redis, redis_url: str, key: str, amqp_broker: RabbitServer, cache: Refresher, loader: Loader[..., Any],
) -> None:
    stats, keys = cache.stats, loader.keys(key)
    worker = WorkerProcess(redis_url, loaders="tests.support.fault_loaders", flags=(),
                           extra_env={"REFRESHER_BROKER_URL": amqp_broker.url}).start()
    try:
        assert worker.log is not None
        in_window(r, loader, key, 0)
        current = {"key": key, "call": 1}
        assert read_until(lambda: loader.get(key), lambda value: value == current)[-1] == current
        worker.log.wait_for(WRITTEN)  # all well: the worker refreshed it through RabbitMQ
        assert r.get(keys.pending) is None  # the commit cleared the marker
        expire_in(r, keys, 20_000)  # due for a refresh again

        # 1. The broker hangs: the publish waits for its confirm, the whole timeout, and fails;
        #    the read that asked does not wait at all.
        amqp_broker.freeze()
        started = time.perf_counter()
        assert loader.get(key) == current
        read_s = time.perf_counter() - started
        assert cache.flush(timeout=10)
        publish_s = time.perf_counter() - started
        assert stats["publish_failed"] == 1 and r.get(keys.pending) is None
        assert PUBLISH_TIMEOUT * 0.9 <= publish_s < PUBLISH_TIMEOUT * 1.5 and read_s < PUBLISH_TIMEOUT / 2, (
            read_s, publish_s)
        skipped = stats["publish_skipped"]  # the breaker is open: reads hand nothing over
        assert [loader.get(key) for _ in range(5)] == [current] * 5
        assert stats["publish_skipped"] == skipped + 5

        # 2. The broker dies. Misses still load inline; one read per cool-down tries again.
        amqp_broker.stop(signal.SIGKILL)
        assert loader.get(key + "-other") == {"key": key + "-other", "call": 1}
        served = read_until(lambda: loader.get(key), lambda _: stats["publish_failed"] == 2)
        assert served == [current] * len(served) and len(served) > 2
        assert stats["refresh_enqueued"] == 1  # still only the first, pre-outage one

        # 3. The broker is back at the same address: the worker reconnects by itself, the
        #    publisher opens a new connection, refreshes resume. Nothing was restarted.
        amqp_broker.start()
        worker.log.wait_for(connected(amqp_broker), count=2, timeout=40)
        expire_in(r, keys, 20_000)
        refreshed = {"key": key, "call": 2}
        served = read_until(lambda: loader.get(key), lambda value: value != current)
        assert served == [current] * (len(served) - 1) + [refreshed]
        worker.log.wait_for(WRITTEN, count=2)  # the worker refreshed it
        assert stats["refresh_enqueued"] == 2
        assert worker.proc is not None and worker.proc.poll() is None
    finally:
        end(worker, amqp_broker)
