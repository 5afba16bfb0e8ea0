"""The backlog a worker sees: messages waiting in each queue it consumes, asked of the
broker when the worker's metrics are scraped.

A web process counts the refresh tasks it sends and a worker the ones it runs, but neither
sees the tasks in between: a queue that grows because the workers cannot keep up shows only
here. One passive declare per queue and scrape (RabbitMQ's message count, a Redis list's
length), never on the read path or in a task. A broker that cannot be reached leaves the
series out of that scrape rather than failing it: the other metrics still matter then.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Iterator

from kombu.connection import Connection
from kombu.exceptions import ChannelError
from kombu.transport.virtual import Transport as VirtualTransport
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from refresher.ops.metrics.families import QUEUE_MESSAGES, QUEUE_MESSAGES_HELP

if TYPE_CHECKING:
    from celery import Celery

log = logging.getLogger("refresher")


class QueueCollector(Collector):
    def __init__(self, app: Celery, queues: list[str]) -> None:
        self.app = app
        self.queues = queues

    def collect(self) -> Iterator[Metric]:
        gauge = GaugeMetricFamily(QUEUE_MESSAGES, QUEUE_MESSAGES_HELP, labels=("queue",))
        try:
            with self.app.connection_for_read() as connection:
                # One attempt: kombu's default retries forever, and its first retry waits 2 s
                connection.ensure_connection(max_retries=0)
                for queue in self.queues:
                    gauge.add_metric([queue], waiting(connection, queue))
        except Exception as exc:  # a scrape without the backlog beats a failed scrape
            log.debug("refresher: could not read the queues' backlog: %s", exc)
        yield gauge


def waiting(connection: Connection, queue: str) -> int:
    """The messages in `queue`, by a passive declare on a channel of its own (on AMQP a
    failed declare closes its channel). A virtual transport's queue (a Redis list) exists
    only while it holds messages, so there "no such queue" means none waiting."""
    channel = connection.channel()  # type: ignore[no-untyped-call]  # kombu leaves Connection.channel unannotated
    try:
        return int(channel.queue_declare(queue=queue, passive=True)[1])
    except ChannelError:
        if isinstance(connection.transport, VirtualTransport):
            return 0
        raise
    finally:
        channel.close()
