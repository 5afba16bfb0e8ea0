"""Noticing, from the publishing side, a refresh queue that no worker reads.

A Refresher whose queue (or broker, or a loader's `queue=`) differs from what the workers
consume fails in silence: reads are served, refreshes are asked for, and the tasks pile
up unread until their values expire. So the publishing thread looks at each queue it
published to, at most once per `every` seconds, with a passive declare (one round trip,
never on the read path): unread is no consumer at all on AMQP (RabbitMQ counts them), or,
on Redis (which cannot), a backlog that has not shrunk since the previous look. Each such
look logs a warning and counts `queue_unread` for the loaders that published there
(`cache.stats["queue_unread"]`, refresher_refresh_queue_unread_total).
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict

from refresher.io.broker import Link, is_amqp
from refresher.core.stats import Stats

log = logging.getLogger("refresher")


class QueueWatch:
    def __init__(self, link: Link, stats: Stats, every: float = 60.0) -> None:
        self.link = link
        self.stats = stats
        self.every = every
        self._published: defaultdict[str, set[str]] = defaultdict(set)  # queue -> loaders, since the last look
        self._backlog: dict[str, int] = {}
        self._next = time.monotonic() + every

    def published(self, queue: str, loaders: list[str]) -> None:
        """Called by the publishing thread after each publish."""
        self._published[queue].update(loaders)
        if time.monotonic() >= self._next:
            self._next = time.monotonic() + self.every
            published, self._published = self._published, defaultdict(set)
            for name, by in published.items():
                self._look(name, sorted(by))

    def _look(self, queue: str, loaders: list[str]) -> None:
        try:
            _, waiting, consumers = self.link.producer().channel.queue_declare(queue=queue, passive=True)
        except Exception as exc:  # a look is worth nothing next to a publish: never fail one
            log.debug("refresher: could not look at the queue %r: %s", queue, exc)
            return
        before, self._backlog[queue] = self._backlog.get(queue, 0), waiting
        amqp = is_amqp(self.link.app.conf.broker_url or "")
        if (consumers == 0) if amqp else (0 < before <= waiting):
            for loader in loaders:
                self.stats.loader(loader).incr("queue_unread")
            log.warning("refresher: no worker reads the refresh queue %r (%d tasks waiting%s); loaders %s publish "
                        "there: start a worker with -Q %s, or check REFRESHER_QUEUE and the broker URL",
                        queue, waiting, ", no consumer" if amqp else ", not shrinking", ", ".join(loaders), queue)
