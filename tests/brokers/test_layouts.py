"""The stampede tests again, with the broker elsewhere: RabbitMQ, or a Redis of its own.

These are tests/test_stampede.py's own test functions, collected here a second time with
this module's fixtures: `broker` (parametrised over the layouts) puts REFRESHER_BROKER_URL
in the environment, which the spawned reader processes inherit (tests/support/loaders.py
reads it at import) and the worker subprocess gets. Their bodies name no broker, so
nothing is copied.

One driver only: sync and async readers hand refreshes to the same publisher, which is
the part that changes with the broker; tests/test_stampede.py covers both drivers.
"""

from __future__ import annotations

from typing import Iterator

import pytest

from tests.support.brokers import Broker, connected, end
from tests.support.reading import Reading
from tests.support.servers import WorkerProcess
from tests.test_stampede import test_cold_stampede_calls_the_origin_once as test_cold_stampede
from tests.test_stampede import test_hot_key_is_refreshed_ahead_and_no_reader_waits as test_hot_key

__all__ = ["test_cold_stampede", "test_hot_key"]


@pytest.fixture(autouse=True)
def broker_url(broker: Broker, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("REFRESHER_BROKER_URL", broker.url)
    return broker.url


@pytest.fixture
def reading() -> Reading:
    return Reading("sync")


@pytest.fixture
def worker_process(redis_url: str, broker: Broker, broker_url: str) -> Iterator[WorkerProcess]:
    # As recommended, heartbeat on: with no timer of its own, a worker on AMQP takes 10 s
    # to notice a SIGTERM (its event loop sleeps up to 10 s), one on Redis 1 s.
    proc = WorkerProcess(redis_url, flags=(), extra_env={"REFRESHER_BROKER_URL": broker_url}).start()
    assert proc.log is not None
    proc.log.wait_for(connected(broker), timeout=1)  # consuming from this layout's broker
    yield proc
    end(proc, broker)
