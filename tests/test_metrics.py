"""Prometheus metrics: a prefork worker's children counted through one HTTP server on
REFRESHER_METRICS_PORT (multiprocess mode), and per-loader counts, errors, an unreachable
cache and an open circuit breaker as this process's collector exports them. (The Flask
example's /metrics, over three gunicorn processes, is in test_examples_flask.py.)"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import pytest
import redis
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from refresher import CacheUnavailable, Refresher
from refresher.metrics.collector import StatsCollector
from tests.support import loaders
from tests.support.ageing import into_window
from tests.support.metrics import Scrape, grew
from tests.support.servers import WorkerProcess, free_port
from tests.support.webapps import WRITTEN

REFRESHES = 4


@pytest.fixture
def prefork_worker(redis_url: str, tmp_path: Path) -> Iterator[tuple[WorkerProcess, str]]:
    port = free_port()
    worker = WorkerProcess(redis_url, pool="prefork", concurrency=2, extra_env={
        "REFRESHER_METRICS_PORT": str(port), "REFRESHER_METRICS_ADDR": "127.0.0.1",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}).start()
    yield worker, f"http://127.0.0.1:{port}/metrics"
    worker.stop()


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


def collected() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """This process's metrics as a scrape would see them, through the collector alone."""
    registry = CollectorRegistry()
    registry.register(StatsCollector())
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(generate_latest(registry).decode())
            for s in family.samples}


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
        metrics = collected()

        def value(name: str, **labels: Any) -> float:
            return metrics.get((name, tuple(sorted(labels.items()))), 0.0)

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
