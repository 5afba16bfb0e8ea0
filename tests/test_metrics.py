"""Prometheus metrics: a prefork worker's children counted through one HTTP server on
REFRESHER_METRICS_PORT (multiprocess mode), and per-loader counts, errors, an unreachable
cache and an open circuit breaker as this process's collector exports them. (The Flask
example's /metrics, over three gunicorn processes, is in test_examples_flask.py.)"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest
import redis

from refresher import CacheUnavailable, Refresher
from refresher.core.near import ENTRY_OVERHEAD
from tests.support import loaders
from tests.support.ageing import into_window
from tests.support.metrics import Scrape, collected, grew
from tests.support.reading import Reading
from tests.support.readers import CTX
from tests.support.servers import ROOT, RedisServer, WorkerProcess, free_port
from tests.support.waiting import lead_and_wait, until
from tests.support.webapps import WRITTEN, example_env, gunicorn

REFRESHES = 4


@pytest.fixture
def prefork_worker(redis_url: str, tmp_path: Path) -> Iterator[tuple[WorkerProcess, str]]:
    port = free_port()
    worker = WorkerProcess(redis_url, pool="prefork", concurrency=2, extra_env={
        "REFRESHER_METRICS_PORT": str(port), "REFRESHER_METRICS_ADDR": "127.0.0.1",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}).start()
    yield worker, f"http://127.0.0.1:{port}/metrics"
    worker.discard()


def test_a_prefork_worker_exports_what_its_children_refreshed(
    prefork_worker: tuple[WorkerProcess, str], r: redis.Redis
) -> None:
    worker, url = prefork_worker
    mine = loaders.cache.stats.loader(loaders.windowed.name)
    before, asked = Scrape(url), mine["refresh_asked"]
    for n in range(REFRESHES):
        assert loaders.windowed.get(n) == n * 2
        into_window(r, loaders.windowed.keys(n))
        assert loaders.windowed.get(n) == n * 2  # asks the worker for a refresh
    assert loaders.cache.flush()
    assert worker.log is not None
    worker.log.wait_for(WRITTEN, count=REFRESHES)
    after = Scrape(url)
    name = loaders.windowed.name
    assert grew(before, after, "refresher_refresh_tasks_total", loader=name, outcome="written") == REFRESHES
    assert grew(before, after, "refresher_loads_total", loader=name, result="ok") == REFRESHES
    assert grew(before, after, "refresher_load_duration_seconds_count", loader=name) == REFRESHES
    assert after.value("refresher_publish_breaker_open") == 0
    assert mine["refresh_asked"] - asked == REFRESHES  # this process's count of that loader
    assert loaders.cache.stats.by_loader()[name]["refresh_asked"] == mine["refresh_asked"]


def test_per_loader_counts_add_up_and_errors_are_exported(redis_url: str) -> None:
    down = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    cache = Refresher(redis_url, broker_url=down, publish_timeout=0.5, breaker_cooldown=60)
    unreachable = Refresher(down, broker_url=down)
    try:
        @cache.loader(ttl=60, name="tests.metrics.ok")
        def ok(n: int) -> int:
            return n

        @cache.loader(ttl=60, name="tests.metrics.broken")
        def broken(n: int) -> int:
            raise ValueError("origin down")

        @unreachable.loader(ttl=60, name="tests.metrics.unreachable")
        def elsewhere(n: int) -> int:
            return n

        for n in (1, 1, 1, 2):
            ok.get(n)
        for fails in (broken.get, elsewhere.get):
            with pytest.raises((ValueError, CacheUnavailable)):
                fails(1)
        into_window(redis.Redis.from_url(redis_url), ok.keys(1))
        ok.get(1)  # asks for a refresh: the publish fails and opens the breaker
        assert cache.flush()
        assert cache.stats.by_loader() == {
            "tests.metrics.ok": {"miss": 2, "load": 2, "hit": 2, "refresh_asked": 1, "publish_failed": 1},
            "tests.metrics.broken": {"load_failed": 1, "error": 1},
        }
        assert cache.stats["load"] == 2 and cache.stats["error"] == 1  # the process's: both loaders
        value = collected().value
        reads = "refresher_reads_total"
        assert value(reads, loader="tests.metrics.ok", outcome="hit") == 2
        assert value(reads, loader="tests.metrics.ok", outcome="refresh_asked") == 1
        assert value(reads, loader="tests.metrics.ok", outcome="miss") == 2
        assert value(reads, loader="tests.metrics.broken", outcome="error") == 1
        assert value(reads, loader="tests.metrics.unreachable", outcome="error") == 1
        assert value("refresher_loads_total", loader="tests.metrics.broken", result="error") == 1
        assert value("refresher_load_duration_seconds_count", loader="tests.metrics.ok") == 2
        assert value("refresher_cache_unavailable_total", loader="tests.metrics.unreachable") == 1
        assert value("refresher_publishes_total", loader="tests.metrics.ok", result="failed") == 1
        assert value("refresher_publish_breaker_open") == 1
    finally:
        cache.close()
        unreachable.close()


def test_a_read_that_waits_for_another_process_load_is_counted(reading: Reading, redis_url: str) -> None:
    leader, waiter = Refresher(redis_url), Refresher(redis_url)  # two processes' Refreshers
    try:
        before = collected()
        assert lead_and_wait(reading, leader, waiter, lambda n: {"n": n}, 5, ttl=60) == ({"n": 5}, {"n": 5})
        name = next(iter(waiter.stats.by_loader()))
        after = collected()
        assert grew(before, after, "refresher_lock_waits_total", loader=name) == 1
        assert grew(before, after, "refresher_lock_wait_duration_seconds_count", loader=name) == 1
        assert grew(before, after, "refresher_lock_wait_duration_seconds_sum", loader=name) > 0
        assert grew(before, after, "refresher_load_duration_seconds_count", loader=name) == 1  # the leader's
    finally:
        leader.close()
        waiter.close()


def test_the_near_cache_size_invalidations_and_bypass_are_read_when_scraped() -> None:
    """In a process of its own: the figures are the sum of every near cache in the process,
    and a pytest process holds others (module-level loaders' on the session server, which
    other tests freeze) whose trackers go down and reconnect whenever they will."""
    child = CTX.Process(target=scrape_one_near_cache)
    child.start()
    child.join(60)
    assert child.exitcode == 0, "the near cache's figures were not what the scrape said (its traceback is above)"


def scrape_one_near_cache() -> None:
    server = RedisServer(free_port())
    server.start()
    cache = Refresher(server.url, queue="metrics-near", near_cache=100)
    try:
        assert cache.near is not None and cache.near.tracker.wait_live(5)

        @cache.loader(ttl=60, name="tests.metrics.near")
        def doubled(n: int) -> int:
            return n * 2

        before = collected()
        for n in (1, 2, 3):
            assert [doubled.get(n) for _ in range(3)] == [n * 2] * 3  # load, from Redis (kept), from memory
        after = collected()
        assert grew(before, after, "refresher_near_cache_entries") == 3 == len(cache.near)
        assert grew(before, after, "refresher_near_cache_bytes") == cache.near.size_bytes >= 3 * ENTRY_OVERHEAD
        assert after.value("refresher_reads_total", loader=doubled.name, outcome="near_hit") == 3
        assert after.value("refresher_near_cache_bypassed") == before.value("refresher_near_cache_bypassed")
        redis.Redis.from_url(server.url).delete(doubled.keys(1).value)  # another client's write
        until(lambda: grew(before, collected(), "refresher_near_cache_entries") == 2, "the invalidation was applied")
        assert grew(after, collected(), "refresher_near_cache_invalidations_total") >= 1
        server.stop()  # tracking is lost: the near cache is bypassed, its copies kept for stale_if_down
        until(lambda: grew(before, collected(), "refresher_near_cache_bypassed") == 1, "the near cache was bypassed")
        lost = collected()
        assert grew(before, lost, "refresher_near_cache_entries") == 2
        assert grew(after, lost, "refresher_near_cache_flushes_total") == 0  # they go when tracking is back
    finally:
        cache.close()
        server.stop()


def test_forked_web_workers_sample_their_near_caches_into_one_scrape(redis_url: str, r: redis.Redis,
                                                                      tmp_path: Path) -> None:
    """The Flask example under gunicorn (two workers forked after install(), multiprocess
    mode): each worker's near cache reaches /metrics, whichever worker is scraped, and a
    write by another client empties them all."""
    from examples.flask_app.loaders import load_user

    env = example_env(redis_url, tmp_path / "users.sqlite3", REFRESHER_NEAR_CACHE="1000",
                      PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "metrics"))
    (tmp_path / "metrics").mkdir()
    server = gunicorn("examples.flask_app.app:app", env, 2, "-c", str(ROOT / "examples/flask_app/gunicorn.conf.py"))
    try:
        server.wait_ready()
        users, served = range(1, 11), set()
        with httpx.Client(base_url=server.url, timeout=30) as client:
            for _ in range(3):
                for user in users:
                    answer = client.get(f"/users/{user}")
                    assert answer.status_code == 200
                    served.add((answer.headers["X-Served-By"], user))
        url = f"{server.url}/metrics"
        until(lambda: Scrape(url).value("refresher_near_cache_entries") > 0, "no near-cache entry was sampled")
        held = Scrape(url)
        assert held.value("refresher_near_cache_entries") <= len(served)  # a copy per process that read the user
        assert held.value("refresher_near_cache_bytes") >= held.value("refresher_near_cache_entries") * ENTRY_OVERHEAD
        assert held.value("refresher_near_cache_bypassed") == 0
        assert 0 < held.value("refresher_near_cache_lag_seconds") < 0.5  # the worst tracking worker's (livemax)
        assert held.value("refresher_reads_total", loader=load_user.name, outcome="near_hit") > 0
        r.delete(*(load_user.keys(user).value for user in users))
        until(lambda: Scrape(url).value("refresher_near_cache_entries") == 0, "the near caches were not emptied")
        assert grew(held, Scrape(url), "refresher_near_cache_invalidations_total") >= len(users)
    finally:
        server.stop()
