"""Sending refresh tasks to Celery without letting the broker stall a read.

Publishing happens off the read path, with a short timeout; after a failure a circuit
breaker skips publishing for a cool-down, so a broker outage costs reads nothing and
the publisher one timeout per cool-down. The timeout bounds every broker: Redis through
its socket timeouts, AMQP (RabbitMQ) through publisher confirms and read/write timeouts
(see docs/brokers.md).
"""

from __future__ import annotations

import logging
import os
import queue as queue_module
import threading
import time
import weakref
from typing import Any, Callable

from celery import Celery
from refresher.io.breaker import Breaker
from refresher.io.broker import REFRESH_MANY_TASK, REFRESH_TASK, Link, bounded_options, celery_settings
from refresher.core.calls import MAX_REPR, call_repr
from refresher.io.jobs import DEFAULT_SOFT_LIMIT, Route, _Job
from refresher.core.logs import about
from refresher.core.stats import Stats
from refresher.io.watch import QueueWatch

__all__ = ["REFRESH_MANY_TASK", "REFRESH_TASK", "Publisher", "Route"]
log = logging.getLogger("refresher")


class Publisher:
    """Publishes refresh tasks from a background thread, so no read ever waits on the broker.

    A read that wins a key's pending marker hands the task over and returns at once. If
    the publish fails, `on_failure` frees the marker (so a later read can ask again) and
    the breaker stays open for `cooldown` seconds, during which nothing is handed over.
    """

    QUEUE_SIZE = 10_000
    # With this many refreshes or more waiting to be published, they go several to a
    # message (refresher.refresh_many), up to BATCH keys each: a worker refreshes a
    # batch's keys several times faster than one task per key. With fewer waiting, each
    # key gets a one-key task at once.
    BACKLOG = 8
    BATCH = 32

    def __init__(self, broker_url: str, queue: str, timeout: float, cooldown: float, stats: Stats,
                 celery_app: Celery | None = None) -> None:
        self.broker_url = broker_url
        self.queue = queue
        self.timeout = timeout
        self.breaker = Breaker(cooldown)
        self.stats = stats
        self.routes: dict[str, Route] = {}  # by loader name
        self._lock = threading.Lock()
        self.link = Link(celery_app or self._own_app, queue, timeout, owned=celery_app is None)
        self.watch = QueueWatch(self.link, stats)
        self._jobs: queue_module.Queue[_Job] = queue_module.Queue(self.QUEUE_SIZE)
        self._idle = threading.Condition()
        self._unfinished = 0
        self.started = False
        alive = weakref.ref(self)

        def after_fork() -> None:
            publisher = alive()
            if publisher is not None:
                publisher._forked()

        if hasattr(os, "register_at_fork"):  # not on Windows, which has no fork either
            os.register_at_fork(after_in_child=after_fork)

    @property
    def app(self) -> Celery:
        return self.link.app

    def _own_app(self) -> Celery:
        """Bounded in its settings too, for the CLI's direct sends (`refresher warm`)."""
        app = Celery("refresher-client", set_as_current=False)
        app.conf.update(celery_settings(self.broker_url, self.queue, self.timeout))
        app.conf.broker_transport_options = bounded_options(self.broker_url, app.conf.broker_transport_options,
                                                            self.timeout)
        return app

    def available(self) -> bool:
        """False while the breaker is open after a failed publish."""
        return self.breaker.available()

    def submit(self, loader: str, args: list[Any], kwargs: dict[str, Any], seen: int, expires_s: float,
               on_failure: Callable[[], object], key: str, version: int | None = None) -> bool:
        """Queue a refresh task for publishing; False (and nothing queued) if the breaker
        is open or the backlog is full."""
        if not self.available():
            return False
        if not self.started:
            self.start()
        with self._idle:
            self._unfinished += 1
        try:
            self._jobs.put_nowait(_Job(loader, key, args, kwargs, time.time(), seen, expires_s, on_failure, version))
        except queue_module.Full:
            self._done()
            self.stats.loader(loader).incr("publish_dropped")
            return False
        return True

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until everything handed over so far is published (or has failed)."""
        with self._idle:
            return self._idle.wait_for(lambda: self._unfinished == 0, timeout)

    def start(self) -> None:
        """Start the publishing thread, which connects to the broker ahead of need.
        Readers call this on their first read, so the first refresh is not slow."""
        with self._lock:
            if not self.started:
                self._jobs = queue_module.Queue(self.QUEUE_SIZE)
                self._unfinished = 0
                threading.Thread(target=self._run, args=(self._jobs,), name="refresher-publisher", daemon=True).start()
                self.started = True

    def _forked(self) -> None:
        # A forked child (gunicorn, Celery prefork) inherits no threads: it starts its own.
        self.started = False
        self._lock = threading.Lock()
        self._idle = threading.Condition()
        self.link.forget()  # the parent's connection: the child opens its own

    def _run(self, jobs: queue_module.Queue[_Job]) -> None:
        self.link.connect()
        while True:
            batch = self._take(jobs)
            try:
                self._publish(batch)
            finally:
                for _ in batch:
                    self._done()

    def _take(self, jobs: queue_module.Queue[_Job]) -> list[_Job]:
        """The next job (waiting for one), and the ones behind it if BACKLOG or more are."""
        batch = [jobs.get()]
        if jobs.qsize() >= self.BACKLOG:
            while len(batch) < self.BATCH and not jobs.empty():
                batch.append(jobs.get_nowait())
        return batch

    def _done(self) -> None:
        with self._idle:
            self._unfinished -= 1
            self._idle.notify_all()

    def _publish(self, batch: list[_Job]) -> None:
        """One key: a one-key task. Several: one refresh_many task of their one-key
        arguments, which expires when the last of them stops being servable (the worker
        checks each key's freshness anyway). One message per destination queue."""
        queues: dict[str | None, list[_Job]] = {}
        for job in batch:
            queues.setdefault(self.route_of(job.loader).queue, []).append(job)
        for jobs in queues.values():
            self._send(jobs)

    def _send(self, batch: list[_Job]) -> None:
        if not self.available():  # the breaker is open, perhaps after this batch's first message
            for skipped in batch:
                self.stats.loader(skipped.loader).incr("publish_skipped")
                self._give_back(skipped)
            return
        job = batch[0]
        destination = self._destination(REFRESH_TASK, job.loader)
        shown = ", ".join(call_repr(j.loader, j.args, j.kwargs) for j in batch)  # what Flower shows
        name = REFRESH_TASK if len(batch) == 1 else REFRESH_MANY_TASK
        soft = sum(self.route_of(j.loader).soft_limit for j in batch)
        try:
            self.app.send_task(
                name,
                producer=self.link.producer(),
                args=job.wire if len(batch) == 1 else [[j.wire for j in batch]],
                argsrepr=shown if len(shown) <= MAX_REPR else shown[:MAX_REPR - 3] + "...",
                expires=max(j.expires_s for j in batch),
                soft_time_limit=soft,
                time_limit=Route(None, soft).hard_limit,
                serializer="json",  # whatever the app's task_serializer: never pickle
                retry=False,
                ignore_result=True,
                queue=destination,
                timeout=self.timeout,  # AMQP: the write, then the broker's confirm
                confirm_timeout=self.timeout,
            )
        except Exception as exc:  # any broker failure: reads go on, the marker is freed
            self.link.drop()  # the next publish, after the cool-down, opens a new one
            self.breaker.trip()
            self.stats.breaker_opened(self.breaker.cooldown, time.monotonic())
            about(job.loader, job.key).warning(
                "publishing a refresh failed (%s: %s); not publishing for %.1fs",
                type(exc).__name__, exc, self.breaker.cooldown, extra={"error_type": type(exc).__name__},
            )
            for failed in batch:
                self.stats.loader(failed.loader).incr("publish_failed")
                self._give_back(failed)
            return
        self.breaker.succeeded()
        for sent in batch:
            self.stats.loader(sent.loader).incr("refresh_enqueued")
        self.watch.published(destination, [sent.loader for sent in batch])

    def route_of(self, loader: str) -> Route:
        return self.routes.get(loader) or Route(None, DEFAULT_SOFT_LIMIT)

    def _destination(self, task: str, loader: str) -> str:
        """The loader's own queue; else the app's task_routes' queue, when they route the
        task; else the Refresher's queue."""
        queue = self.route_of(loader).queue
        router = self.app.amqp.router
        if queue is None and router.routes and router.lookup_route(task, [], {}, {}, None) is not None:
            routed: str = router.route({}, task)["queue"].name
            return routed
        return queue or self.queue

    def _give_back(self, job: _Job) -> None:
        try:
            job.on_failure()
        except Exception as exc:  # the marker then lapses by its TTL instead
            about(job.loader, job.key).warning("could not free the pending marker: %s", exc)

    def close(self) -> None:
        self.flush(self.timeout)
        with self._lock:
            self.link.close()
