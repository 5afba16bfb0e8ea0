"""A worker survives broker restarts: ten in a row, for each broker, while refresh tasks
flow, and after each one it refreshes again.

The worker runs as Compose runs it: the prefork pool, heartbeat on, no --without flags.
The traffic matters: the crash refresher/worker/consumer.py guards against (`Consumer`) needs messages
received but not yet acknowledged when the broker goes, and prefork holds them for a
moment. With the worker as it was before that guard, this test failed in 3 of 3 runs on
Redis, the worker dead at the 4th, 6th or 8th restart ("Unrecoverable error:
AttributeError(\"'NoneType' object has no attribute 'hostname'\")"; docs/brokers.md).

A Redis broker is restarted with SIGTERM and SIGKILL in turn. RabbitMQ is restarted inside
its Erlang VM (`rabbitmqctl stop_app` / `start_app`: every connection closed, the listener
down, queues restarted), 1 s where a node restart takes 7 to 8 s;
tests/brokers/test_amqp_faults.py kills and restarts the whole node once.
"""

from __future__ import annotations

import signal
import threading
import uuid
from typing import Any, Iterator

import pytest
import redis

from refresher import Loader, Refresher
from refresher.core.protocol.layout import NOTHING_READ
from refresher.io.publish import Publisher
from refresher.core.stats import Stats
from tests.support import fault_loaders as fl
from tests.support.ageing import expire_in
from tests.support.brokers import Broker, connected, end, read_until
from tests.support.rabbitmq import RabbitServer
from tests.support.servers import WorkerProcess

RESTARTS = 10
WRITTEN = r"refresher\.refresh\[\S+\] succeeded in \S+ 'written'"


def restart(broker: Broker, n: int) -> None:
    if isinstance(broker, RabbitServer):
        broker.restart_app()
    else:
        broker.stop(signal.SIGKILL if n % 2 else signal.SIGTERM)
        broker.start()


class Traffic:
    """Refresh tasks for a key that is stored, about 20 a second, through refresher's own
    publisher: each asks to replace a version the key does not have, so the worker answers
    'fresh' at once. Messages are in flight at every restart."""

    def __init__(self, broker_url: str, loader: Loader[..., Any], key: str) -> None:
        loader.set(key, {"key": key, "call": 0})
        self.publisher = Publisher(broker_url, "refresher", timeout=0.5, cooldown=0.05, stats=Stats())
        self._stop = threading.Event()
        self._loader, self._key, self._cache_key = loader.name, key, loader.keys(key).value
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.05):  # the pacing of simulated traffic
            self.publisher.submit(self._loader, [self._key], {}, NOTHING_READ, 30.0, on_failure=lambda: None,
                                  key=self._cache_key)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.publisher.close()


@pytest.fixture
def cache(redis_url: str, broker: Broker) -> Iterator[Refresher]:
    c = Refresher(redis_url, broker.url, publish_timeout=1.0, breaker_cooldown=0.2)
    yield c
    c.close()


@pytest.fixture
def worker(redis_url: str, broker: Broker) -> Iterator[WorkerProcess]:
    w = WorkerProcess(redis_url, loaders="tests.support.fault_loaders", pool="prefork", concurrency=2,
                      flags=(), extra_env={"REFRESHER_BROKER_URL": broker.url}).start()
    yield w
    end(w, broker)


def test_the_worker_survives_ten_broker_restarts_and_keeps_refreshing(
    r: redis.Redis, broker: Broker, cache: Refresher, worker: WorkerProcess,
) -> None:
    assert worker.log is not None and worker.proc is not None
    loader = fl.bound_to(fl.steady, cache)
    key = "k" + uuid.uuid4().hex[:10]
    loader.set(key, {"key": key, "call": 0})
    traffic = Traffic(broker.url, loader, key + "-traffic")
    try:
        for n in range(1, RESTARTS + 1):
            restart(broker, n)
            worker.log.wait_for(connected(broker), count=n + 1, timeout=40)
            # A refresh asked for after this restart: only the reconnected worker can do it.
            expire_in(r, loader.keys(key), 20_000)
            refreshed = {"key": key, "call": n}
            served = read_until(lambda: loader.get(key), lambda value: value != {"key": key, "call": n - 1}, 40)
            assert served[-1] == refreshed and fl.calls(loader, key) == n
            assert worker.proc.poll() is None, f"the worker died after restart {n}"
    finally:
        traffic.close()
    assert cache.stats["load"] == 0  # every refresh was the worker's; no reader loaded
    assert worker.log.count(WRITTEN) >= RESTARTS
    assert worker.log.count(r"'fresh'") > RESTARTS  # the traffic's tasks were consumed too
    assert worker.log.count("Unrecoverable") == 0
