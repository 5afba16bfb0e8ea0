"""The two tested broker layouts, with the cache on the session's redis-server:
refresh tasks through RabbitMQ (`amqp://`), or through a second redis-server.

One RabbitMQ node serves the whole session (it takes seconds to start); a test that stops,
kills or restarts it leaves it to the next test's `broker` fixture to start it again.
"""

from __future__ import annotations

from typing import Iterator

import pytest

from tests.support.brokers import Broker, purge, running
from tests.support.rabbitmq import RabbitServer
from tests.support.servers import RedisServer

LAYOUTS = ["amqp", "redis"]
QUEUE = "refresher"


@pytest.fixture(scope="session")
def rabbitmq() -> Iterator[RabbitServer]:
    server = RabbitServer()
    server.start()
    yield server
    server.close()


@pytest.fixture(scope="session")
def redis_broker() -> Iterator[RedisServer]:
    server = RedisServer()
    server.start()
    yield server
    server.stop()


def ready(server: Broker) -> Broker:
    """The server running, its refresh queue empty: nothing left from an earlier test."""
    if isinstance(server, RabbitServer):
        server.ensure_running()
    elif not running(server):
        server.start()
    purge(server.url, QUEUE)
    return server


@pytest.fixture(params=LAYOUTS)
def broker(request: pytest.FixtureRequest) -> Broker:
    return ready(request.getfixturevalue("rabbitmq" if request.param == "amqp" else "redis_broker"))


@pytest.fixture
def amqp_broker(rabbitmq: RabbitServer) -> RabbitServer:
    ready(rabbitmq)
    return rabbitmq
