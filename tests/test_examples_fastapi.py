"""examples/fastapi_app under uvicorn, driven over HTTP, next to a real refresh worker:
a cold stampede costs one origin query and never stalls the event loop, and a hot key is
refreshed by the worker alone, period after period."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Callable, Iterator

import httpx
import pytest
import redis
from prometheus_client import CONTENT_TYPE_LATEST

from examples.fastapi_app.loaders import ORIGIN_CALLS, load_user
from examples.userdb import USERS
from tests.support.metrics import Scrape, grew
from tests.support.servers import RedisServer, WorkerProcess
from tests.support.webapps import AppServer, Deployment, HealthProbe, example_env, stampede, uvicorn

APP = "examples.fastapi_app.main:app"
COLD_USER, HOT_USER = 42, 7
READERS = 200
QUERY_SECONDS = 0.2
HOT_TTL = 2.0  # short, so that a hot key goes through several refresh windows in seconds
PERIODS = 3
HOT_READERS = 8


class Apps(Deployment):
    """Two uvicorn servers of the example: `cold` with the default TTL (300 s), so a slow
    stampede on a busy machine never reaches the refresh window, and `hot` with a TTL of
    HOT_TTL and a refresh worker."""

    def __init__(self, cold: AppServer, hot: AppServer, worker: WorkerProcess, r: redis.Redis) -> None:
        super().__init__(worker, r, ORIGIN_CALLS)
        self.cold, self.hot = cold, hot


@pytest.fixture(scope="module")
def apps(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Apps]:
    folder = tmp_path_factory.mktemp("fastapi")
    query = str(QUERY_SECONDS)
    cold_env = example_env(redis_server.url, folder / "cold.sqlite3", EXAMPLES_QUERY_SECONDS=query)
    hot_env = example_env(redis_server.url, folder / "hot.sqlite3", EXAMPLES_QUERY_SECONDS=query,
                          EXAMPLES_PROFILE_TTL=str(HOT_TTL))
    r = redis.Redis.from_url(redis_server.url)
    cold = uvicorn(APP, cold_env, "--no-access-log")
    hot = uvicorn(APP, hot_env, "--no-access-log")
    try:  # the servers start while the worker does
        worker = WorkerProcess(redis_server.url, loaders="examples.fastapi_app.loaders", extra_env=hot_env).start()
        try:
            yield Apps(cold.wait_ready(), hot.wait_ready(), worker, r)
        finally:
            worker.discard()
    finally:
        cold.stop()
        hot.stop()
        r.close()


class Landing(threading.Thread):
    """Notes when a value is written to `key`, from Redis's keyspace notifications (the
    server's own news of a SET, whoever sent it), as it happens."""

    def __init__(self, r: redis.Redis, key: str) -> None:
        super().__init__(daemon=True)
        self.r = r
        self.flags = r.config_get("notify-keyspace-events")["notify-keyspace-events"]
        r.config_set("notify-keyspace-events", "K$")  # keyspace channel, string commands
        self.pubsub = r.pubsub()
        self.pubsub.subscribe(f"__keyspace@0__:{key}")
        assert self.pubsub.get_message(timeout=5) is not None  # the subscription is confirmed
        self.at: float | None = None

    def run(self) -> None:
        deadline = time.monotonic() + 60
        try:
            while self.at is None and time.monotonic() < deadline:
                message = self.pubsub.get_message(ignore_subscribe_messages=True, timeout=1)
                if message is not None and message["data"] == b"set":
                    self.at = time.monotonic()
        finally:
            self.pubsub.close()
            self.r.config_set("notify-keyspace-events", self.flags)


def test_a_cold_stampede_makes_one_origin_query_while_health_answers_at_once(apps: Apps) -> None:
    before = apps.origin_calls()
    landing = Landing(apps.r, load_user.keys(COLD_USER).value)
    landing.start()
    probe = HealthProbe(f"{apps.cold.url}/health")
    try:
        answers, started = stampede(apps.cold.url, f"/users/{COLD_USER}", READERS)
    finally:
        samples = probe.stop()
    landing.join(timeout=5)
    assert [(a.status, a.body) for a in answers] == [(200, USERS[COLD_USER - 1])] * READERS
    assert apps.origin_calls() - before == 1
    # /health while the reads waited on the origin: the query sleeps QUERY_SECONDS, so
    # during the last QUERY_SECONDS before the value landed it was running, and every read
    # waited on it. (Before that the loop is busy taking the 200 requests in.)
    assert landing.at is not None
    waiting = [took for at, took in samples if landing.at - QUERY_SECONDS <= at < landing.at]
    # A loop blocked by the query would hold every probe until the value landed: one or
    # two samples, each as slow as what is left of the query. This machine is shared, so
    # one stall of a process (the probe's or the server's) is allowed; no more.
    assert len(waiting) >= 5, f"too few /health samples during the wait: {waiting}"
    slow = [took for took in waiting if took >= 0.050]
    assert len(slow) <= 1, f"/health took 50 ms or more {len(slow)} times during the stampede: {slow}"
    print(f"\n/health during the wait: {len(waiting)} calls, max {max(waiting) * 1000:.1f} ms; "
          f"the value landed {(landing.at - started) * 1000:.0f} ms after the reads were sent")


async def read_until(url: str, path: str, stop: Callable[[], bool], deadline: float) -> list[httpx.Response]:
    """HOT_READERS concurrent readers of `path`, each about 50 reads a second, until
    `stop()` or the deadline (time.monotonic)."""
    async with httpx.AsyncClient(base_url=url, limits=httpx.Limits(max_connections=HOT_READERS), timeout=10) as client:

        async def reader() -> list[httpx.Response]:
            got = []
            while not stop() and time.monotonic() < deadline:
                got.append(await client.get(path))
                await asyncio.sleep(0.02)  # pacing, not synchronisation
            return got

        return [r for got in await asyncio.gather(*(reader() for _ in range(HOT_READERS))) for r in got]


def test_a_hot_key_is_refreshed_by_the_worker_and_never_loaded_inline(apps: Apps) -> None:
    def stats() -> dict[str, int]:
        return httpx.get(f"{apps.hot.url}/stats", timeout=10).json()  # type: ignore[no-any-return]

    origin, before, written = apps.origin_calls(), stats(), apps.written()
    # Read on until the worker has refreshed the key PERIODS times. Right after a refresh
    # the value is fresh for most of a TTL, so stopping then leaves no refresh in flight.
    def refreshed() -> bool:
        return apps.written() - written >= PERIODS

    deadline = time.monotonic() + (PERIODS + 2) * HOT_TTL
    responses = asyncio.run(read_until(apps.hot.url, f"/users/{HOT_USER}", refreshed, deadline))
    after = stats()
    assert apps.written() - written == PERIODS, f"{apps.written() - written} refreshes in {len(responses)} reads"
    assert all(r.status_code == 200 and r.json() == USERS[HOT_USER - 1] for r in responses)
    assert apps.origin_calls() - origin == 1 + PERIODS  # the first read's load, then the worker's refreshes
    delta = {k: after.get(k, 0) - before.get(k, 0) for k in ("load", "miss", "refresh_enqueued")}
    assert delta == {"load": 1, "miss": 1, "refresh_enqueued": PERIODS}  # one task per window, no inline load
    print(f"\n{len(responses)} reads over {PERIODS} TTLs: {PERIODS} refreshes by the worker, origin +{1 + PERIODS}")


def test_metrics_count_the_reads_by_loader(apps: Apps) -> None:
    """/metrics is what Prometheus scrapes: the same counts as /stats, per loader."""
    user, reads, loader = 11, 5, load_user.name
    url = f"{apps.cold.url}/metrics"
    before = Scrape(url)
    with httpx.Client(base_url=apps.cold.url, timeout=30) as client:
        assert [client.get(f"/users/{user}").json() for _ in range(reads)] == [USERS[user - 1]] * reads
        answer = client.get("/metrics")
    assert answer.headers["content-type"] == CONTENT_TYPE_LATEST  # Prometheus' text format
    after = Scrape(text=answer.text)
    assert grew(before, after, "refresher_reads_total", loader=loader, outcome="miss") == 1
    assert grew(before, after, "refresher_reads_total", loader=loader, outcome="hit") == reads - 1
    assert grew(before, after, "refresher_loads_total", loader=loader, result="ok") == 1
    assert grew(before, after, "refresher_load_duration_seconds_sum", loader=loader) >= QUERY_SECONDS
    assert after.value("refresher_publish_breaker_open") == 0
    assert {"refresher_near_cache_entries", "refresher_near_cache_bypassed"} <= after.names()


def test_every_uvicorn_worker_counts_in_every_scrape(redis_server: RedisServer, tmp_path: Path) -> None:
    """`uvicorn --workers 2` with PROMETHEUS_MULTIPROC_DIR: reads answered by both processes,
    then scrapes until each process has answered one; every scrape counts every read."""
    metrics_dir = tmp_path / "prometheus"
    metrics_dir.mkdir()
    env = example_env(redis_server.url, tmp_path / "users.sqlite3", EXAMPLES_QUERY_SECONDS="0",
                      PROMETHEUS_MULTIPROC_DIR=str(metrics_dir))
    server = uvicorn(APP, env, "--no-access-log", "--workers", "2")
    try:
        server.wait_ready()
        assert server.log is not None
        server.log.wait_for("Application startup complete", count=2)
        readers: set[str | None] = set()
        reads = 0
        while len(readers) < 2:
            assert reads < 400, f"every read went to one process: {readers}"
            answers, _ = stampede(server.url, "/users/9", 40)
            assert [(a.status, a.body) for a in answers] == [(200, USERS[8])] * 40
            readers |= {a.served_by for a in answers}
            reads += 40
        counts: dict[str | None, float] = {}
        for _ in range(200):
            if set(counts) == readers:
                break
            answer = httpx.get(f"{server.url}/metrics", timeout=10)
            counts[answer.headers["X-Served-By"]] = Scrape(text=answer.text).total("refresher_reads_total",
                                                                                   loader=load_user.name)
    finally:
        server.stop()
    assert counts == dict.fromkeys(readers, reads), counts
