"""Fixtures with real parts: a redis-server per session, a Celery worker per test."""

from __future__ import annotations

import os
from typing import Iterator

import pytest
import redis

from tests.support.reading import MODES, Reading
from tests.support.servers import RedisServer, WorkerProcess, free_port


def pytest_configure(config: pytest.Config) -> None:
    # Decided before any test module is imported, so loaders defined at import time
    # (tests/support/loaders.py, and in spawned reader processes) see the test server.
    port = free_port()
    os.environ["REFRESHER_TEST_REDIS_PORT"] = str(port)
    os.environ["REFRESHER_REDIS_URL"] = f"redis://127.0.0.1:{port}/0"
    os.environ.pop("REFRESHER_BROKER_URL", None)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer(int(os.environ["REFRESHER_TEST_REDIS_PORT"]))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """A clean database on the session's server (restarted if a test stopped it)."""
    if redis_server.proc is None or redis_server.proc.poll() is not None:
        redis_server.start()
    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    client.close()
    return redis_server.url


@pytest.fixture
def r(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture
def worker(redis_url: str) -> Iterator[object]:
    """A real Celery worker in this process (threads pool), consuming the refresher queue.

    It shares this process's loader registry, so loaders defined in a test are refreshable.
    """
    from celery.contrib.testing.worker import start_worker

    from workers.app import app

    app.conf.broker_url = redis_url
    with start_worker(app, pool="threads", concurrency=2, perform_ping_check=False,
                      loglevel="WARNING", shutdown_timeout=10) as running:
        yield running


class TaskLog:
    """Celery's task_postrun signal, as something a test can wait on."""

    def __init__(self) -> None:
        import threading

        self.results: list[object] = []
        self._cond = threading.Condition()

    def record(self, sender: object = None, retval: object = None, **_: object) -> None:
        with self._cond:
            self.results.append(retval)
            self._cond.notify_all()

    def wait(self, count: int, timeout: float = 20.0) -> list[object]:
        with self._cond:
            assert self._cond.wait_for(lambda: len(self.results) >= count, timeout), (
                f"only {len(self.results)} of {count} tasks finished: {self.results}"
            )
            return list(self.results)


@pytest.fixture
def tasks_done() -> Iterator[TaskLog]:
    from celery.signals import task_postrun

    log = TaskLog()
    task_postrun.connect(log.record, weak=False)
    yield log
    task_postrun.disconnect(log.record)


@pytest.fixture
def worker_process(redis_url: str) -> Iterator[WorkerProcess]:
    """`celery -A workers worker` as a subprocess with the test loaders registered."""
    proc = WorkerProcess(redis_url).start()
    yield proc
    proc.stop()


@pytest.fixture(params=MODES)
def reading(request: pytest.FixtureRequest) -> Reading:
    """Reads, sets and invalidations through the sync driver, then the async one."""
    return Reading(request.param)
