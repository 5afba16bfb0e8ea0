"""Where Refresher(celery_app=app) sends refresh tasks, on RabbitMQ and on Redis: the app's
task_routes route them (with their priority), a loader's queue= overrides that; each task carries the time
limits its loader's max_load_time sets; and a queue no worker reads is reported (a
warning, a stat, a metric)."""

from __future__ import annotations

import logging
import uuid
from typing import Any

import pytest
import redis
from celery import Celery
from kombu import Connection
from prometheus_client import generate_latest

import refresher.ops.metrics
from refresher import Refresher
from refresher.io.watch import QueueWatch
from tests.support.ageing import into_window
from tests.support.brokers import Broker
from tests.support.metrics import Scrape


def waiting(url: str, queue: str) -> list[dict[str, Any]]:
    """The headers of every task waiting in `queue`, taken off it, with its priority."""
    found = []
    with Connection(url, connect_timeout=5) as conn:  # type: ignore[no-untyped-call]
        channel = conn.default_channel
        while (message := channel.basic_get(queue=queue, no_ack=True)) is not None:
            found.append({**message.headers, "priority": message.properties.get("priority")})
    return found


def test_the_apps_routes_and_a_loaders_queue_place_refreshes_and_an_unread_queue_is_reported(
    broker: Broker, redis_url: str, r: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    tag = uuid.uuid4().hex[:8]
    app = Celery(f"routed-{tag}", broker=broker.url, set_as_current=False)
    app.conf.task_routes = {"refresher.refresh": {"queue": f"routed-{tag}", "priority": 3}}
    refresher.ops.metrics.install()
    cache = Refresher(redis_url, celery_app=app)
    cache.publisher.watch = QueueWatch(cache.publisher.link, cache.stats, every=0)  # a look after each publish

    @cache.loader(ttl=60, name=f"t.routed.{tag}")
    def routed(n: int) -> int:
        return n

    @cache.loader(ttl=60, name=f"t.own.{tag}", queue=f"own-{tag}", max_load_time=12)
    def own(n: int) -> int:
        return n

    try:
        with caplog.at_level(logging.WARNING, logger="refresher"):
            for n in (1, 2):
                for loader in (routed, own):
                    loader.get(n)
                    into_window(r, loader.keys(n))
                    loader.get(n)  # asks for a refresh
                    assert cache.flush()
        assert cache.stats["refresh_enqueued"] == 4
        assert {loader: stats["queue_unread"] > 0 for loader, stats in cache.stats.by_loader().items()} == {
            routed.name: True, own.name: True}
        assert f"no worker reads the refresh queue 'own-{tag}'" in caplog.text
        scraped = Scrape(text=generate_latest(refresher.ops.metrics.registry()).decode())
        assert scraped.value("refresher_refresh_queue_unread_total", loader=own.name) > 0  # what an alert reads
    finally:
        cache.close()
        app.close()
    routed_tasks = waiting(broker.url, f"routed-{tag}")
    assert [(h["timelimit"], h["priority"]) for h in routed_tasks] == [([66, 60], 3)] * 2  # ttl: 60 s
    # a loader's queue= replaces the route's queue only: the route's priority still applies
    assert [(h["timelimit"], h["priority"]) for h in waiting(broker.url, f"own-{tag}")] == [([13.2, 12], 3)] * 2
    assert waiting(broker.url, "refresher") == []
