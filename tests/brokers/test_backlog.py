"""A worker's metrics show the backlog of the queue it consumes (refresher_queue_messages),
on RabbitMQ and on Redis: refresh tasks published and not yet taken, which neither the
readers' count of tasks sent nor the workers' count of tasks run can show. The worker stops
consuming (Celery's cancel_consumer), five tasks wait, then it consumes again and the
backlog drains to 0. With the broker down a scrape still answers, without the backlog."""

from __future__ import annotations

import time
import uuid

from celery import Celery
from kombu import Connection

from tests.brokers.conftest import ready as running
from tests.support.brokers import Broker, end
from tests.support.metrics import Scrape
from tests.support.servers import RedisServer, WorkerProcess, free_port
from tests.support.waiting import until

WAITING = 5


def start_worker(broker: Broker, redis_url: str) -> tuple[WorkerProcess, str, str]:
    """A worker on `broker` consuming a queue of its own, with its metrics: (it, its
    metrics URL, the queue). Heartbeat on, as recommended: with no timer of its own, a worker
    on AMQP takes 10 s to notice a SIGTERM (its event loop sleeps up to 10 s)."""
    port, queue = free_port(), f"backlog-{uuid.uuid4().hex[:8]}"
    env = {"REFRESHER_BROKER_URL": broker.url, "REFRESHER_QUEUE": queue, "REFRESHER_METRICS_PORT": str(port)}
    worker = WorkerProcess(redis_url, flags=(), extra_env=env).start()
    return worker, f"http://127.0.0.1:{port}/metrics", queue


def ready(broker_url: str, queue: str) -> int:
    """The messages waiting in `queue`, as the broker answers a passive declare."""
    with Connection(broker_url) as connection, connection.channel() as channel:
        return int(channel.queue_declare(queue, passive=True).message_count)


def backlog(url: str, queue: str) -> float | None:
    """The queue's backlog as one scrape shows it; None when the scrape has no such series."""
    sample = ("refresher_queue_messages", (("queue", queue),))
    return Scrape(url).samples.get(sample)


def test_a_worker_exports_the_backlog_of_the_queue_it_consumes(broker: Broker, redis_url: str) -> None:
    worker, url, queue = start_worker(broker, redis_url)
    app = Celery("backlog-test", broker=broker.url, set_as_current=False)
    try:
        assert backlog(url, queue) == 0
        # Addressed to the worker alone, a control call returns with its reply; addressed to
        # every worker, it waits out its whole timeout for any others' (10 s a call).
        assert app.control.cancel_consumer(queue, destination=[worker.node], reply=True, timeout=10)  # it answered
        for n in range(WAITING):
            app.send_task("refresher.refresh", args=["tests.windowed", [n], {}, time.time()], queue=queue)
        # What the broker itself counts as waiting: on RabbitMQ a task may reach the worker
        # before its cancel lands (and wait there, unacked), leaving fewer than five.
        until(lambda: 0 < (waiting := ready(broker.url, queue)) and backlog(url, queue) == waiting,
              "the backlog never showed the tasks waiting", 10, every=0.1)
        assert app.control.add_consumer(queue, destination=[worker.node], reply=True, timeout=10)
        until(lambda: backlog(url, queue) == 0, "the worker never drained its queue", 30, every=0.1)
        assert worker.log is not None
        worker.log.wait_for(r"refresher\.refresh\[\S+\] succeeded", count=WAITING)
    finally:
        app.close()
        end(worker, broker)


def test_with_the_broker_down_a_scrape_answers_without_the_backlog(redis_broker: RedisServer, redis_url: str) -> None:
    worker, url, queue = start_worker(running(redis_broker), redis_url)
    try:
        assert backlog(url, queue) == 0
        redis_broker.stop()
        started = time.monotonic()
        scrape = Scrape(url)
        assert time.monotonic() - started < 1  # the scrape is not held up by the broker (kombu's retry waited 2 s)
        assert "refresher_publish_breaker_open" in scrape.names()  # the other metrics are there
        assert not [name for name, labels in scrape.samples if name == "refresher_queue_messages"]
    finally:
        worker.discard()
        redis_broker.start()
