"""A worker's metrics show the backlog of the queue it consumes (refresher_queue_messages),
on RabbitMQ and on Redis: refresh tasks published and not yet taken, which neither the
readers' count of tasks sent nor the workers' count of tasks run can show. The worker stops
consuming (Celery's cancel_consumer), five tasks wait, then it consumes again and the
backlog drains to 0."""

from __future__ import annotations

import time
import uuid

from celery import Celery

from tests.support.brokers import Broker
from tests.support.metrics import Scrape
from tests.support.servers import WorkerProcess, free_port
from tests.support.waiting import until

WAITING = 5


def test_a_worker_exports_the_backlog_of_the_queue_it_consumes(broker: Broker, redis_url: str) -> None:
    port, queue = free_port(), f"backlog-{uuid.uuid4().hex[:8]}"
    worker = WorkerProcess(redis_url, extra_env={"REFRESHER_BROKER_URL": broker.url, "REFRESHER_QUEUE": queue,
                                                 "REFRESHER_METRICS_PORT": str(port)}).start()
    app = Celery("backlog-test", broker=broker.url, set_as_current=False)
    url = f"http://127.0.0.1:{port}/metrics"

    def backlog() -> float:
        scrape = Scrape(url)
        assert ("refresher_queue_messages", (("queue", queue),)) in scrape.samples, "no backlog series"
        return scrape.value("refresher_queue_messages", queue=queue)

    try:
        assert backlog() == 0
        assert app.control.cancel_consumer(queue, reply=True, timeout=10)  # the worker answered
        for n in range(WAITING):
            app.send_task("refresher.refresh", args=["tests.windowed", [n], {}, time.time()], queue=queue)
        until(lambda: backlog() == WAITING, f"the backlog never showed {WAITING} tasks", timeout=10, every=0.1)
        assert app.control.add_consumer(queue, reply=True, timeout=10)
        until(lambda: backlog() == 0, "the worker never drained its queue", timeout=30, every=0.1)
        assert worker.log is not None
        worker.log.wait_for(r"refresher\.refresh\[\S+\] succeeded", count=WAITING)
    finally:
        app.close()
        worker.discard()
