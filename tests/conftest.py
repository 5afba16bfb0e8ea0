"""Fixtures with real parts: a redis-server per session, a Celery worker per test.

`REFRESHER_TEST_CACHE=cluster` runs the same tests with the cache on a real Redis Cluster
(3 masters, 3 replicas) and the broker, and the tests' own counters, on the plain
redis-server: `make test` runs the core and fault tests that way too.
"""

from __future__ import annotations

import gc
import os
import signal
import sys
from typing import Iterator

import pytest
import redis
from hypothesis import settings as hypothesis_settings
from redis.cluster import RedisCluster

from tests.support.cluster import RedisClusterServers
from tests.support.inprocess import in_process_worker
from tests.support.reading import MODES, Reading
from tests.support.servers import RedisServer, WorkerProcess, free_port

# The property tests draw their examples from a fixed seed, so `make test` (and CI) pass or
# fail the same way every run; REFRESHER_HYPOTHESIS_RANDOM=1 explores new examples, as it
# should now and then (a random run found the '%' in a key that broke a log line).
hypothesis_settings.register_profile("fixed", derandomize=True, database=None)
if os.environ.get("REFRESHER_HYPOTHESIS_RANDOM") != "1":
    hypothesis_settings.load_profile("fixed")

ON_CLUSTER = os.environ.get("REFRESHER_TEST_CACHE") == "cluster"
CLUSTER = RedisClusterServers() if ON_CLUSTER else None  # ports chosen now, started by redis_server


def pytest_configure(config: pytest.Config) -> None:
    # Decided before any test module is imported, so loaders defined at import time
    # (tests/support/loaders.py, and in spawned reader processes) see the test servers.
    port = free_port()
    plain = f"redis://127.0.0.1:{port}/0"
    os.environ["REFRESHER_TEST_REDIS_PORT"] = str(port)
    os.environ["REFRESHER_TEST_CONTROL_URL"] = plain  # the tests' counters and gates
    if CLUSTER is not None:
        # Started before collection: a RedisCluster client (made when a test module's
        # loaders are defined) discovers the cluster as soon as it is created.
        CLUSTER.start()
        os.environ["REFRESHER_REDIS_URL"] = CLUSTER.url
        os.environ["REFRESHER_BROKER_URL"] = plain
    else:
        os.environ["REFRESHER_REDIS_URL"] = plain
        os.environ.pop("REFRESHER_BROKER_URL", None)
    config.addinivalue_line("markers", "standalone_only: needs the cache on the plain redis-server")
    config.addinivalue_line("markers", "bench: runs a benchmark end to end (make bench-smoke, not make test)")


def pytest_unconfigure(config: pytest.Config) -> None:
    if CLUSTER is not None:
        close_session_refreshers()
        CLUSTER.stop()


def close_session_refreshers() -> None:
    """Before the session's servers stop: the loaders' modules hold Refreshers for the whole
    session, and a tracker that sees its server go is right to warn (issue 25). Refreshers
    tests dropped are collected first (their trackers end with them)."""
    from refresher import Refresher

    gc.collect()
    for name, module in list(sys.modules.items()):
        if name.startswith(("tests.", "examples.")):
            for held in list(vars(module).values()):
                if isinstance(held, Refresher):
                    held.close()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if CLUSTER is not None:
        items[:] = [item for item in items if item.get_closest_marker("standalone_only") is None]


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """The plain redis-server: the cache, or with a Cluster cache, the broker."""
    server = RedisServer(int(os.environ["REFRESHER_TEST_REDIS_PORT"]))
    server.start()
    yield server
    close_session_refreshers()
    server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The cache's URL, every database clean (the server restarted if a test stopped it)."""
    if redis_server.proc is None or redis_server.proc.poll() is not None:
        redis_server.start()
    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    # One more round trip: Redis writes the flush's invalidation pushes in the same event-loop
    # turn as the FLUSHALL's reply, so once a later reply is back, every tracking socket of
    # this process holds its push and the test's first read applies it. Without it that read
    # could serve the previous test's near-cache copy, a few microseconds before the push.
    client.ping()
    client.close()
    if CLUSTER is not None:
        cluster = cluster_client()
        cluster.flushall(target_nodes=RedisCluster.PRIMARIES)
        cluster.close()
    return os.environ["REFRESHER_REDIS_URL"]


@pytest.fixture(scope="session")
def cluster() -> Iterator[RedisClusterServers]:
    """A Redis Cluster of the session's own (3 masters, 3 replicas), for the tests that
    kill its nodes or load it with a fleet; started on first use."""
    servers = RedisClusterServers()
    servers.start()
    yield servers
    servers.stop()


def cluster_client() -> RedisCluster:
    assert CLUSTER is not None
    return RedisCluster(host="127.0.0.1", port=CLUSTER.nodes[0].port)


@pytest.fixture
def broker_url(redis_url: str, redis_server: RedisServer) -> str:
    return redis_server.url


@pytest.fixture
def r(redis_url: str) -> Iterator[redis.Redis]:
    """A client of the cache (a RedisCluster one on a Cluster)."""
    client = cluster_client() if CLUSTER is not None else redis.Redis.from_url(redis_url)
    yield client  # type: ignore[misc]
    client.close()


@pytest.fixture
def broker(broker_url: str) -> Iterator[redis.Redis]:
    """A client of the broker, to look at the refresh queue."""
    client = redis.Redis.from_url(broker_url)
    yield client
    client.close()


@pytest.fixture
def worker(broker_url: str) -> Iterator[object]:
    """A real Celery worker in this process (threads pool), consuming the refresher queue.

    It shares this process's loader registry, so loaders defined in a test are refreshable.
    """
    with in_process_worker(broker_url) as running:
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

    def shown(self, count: int, timeout: float = 20.0) -> list[str]:
        """Each task as Flower shows it: its result, or (a FAILURE) its exception's repr."""
        return [result if isinstance(result, str) else repr(result) for result in self.wait(count, timeout)]


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
    proc.discard()


@pytest.fixture(params=os.environ.get("REFRESHER_TEST_MODES", ",".join(MODES)).split(","))
def reading(request: pytest.FixtureRequest) -> Reading:
    """Reads, sets and invalidations through the sync driver, then the async one."""
    return Reading(request.param)


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    """A redis-server of the test's own, to stop, freeze (SIGSTOP) and restart."""
    server = RedisServer()
    server.start()
    yield server
    if server.proc is not None:
        server.proc.send_signal(signal.SIGCONT)
    server.stop()
