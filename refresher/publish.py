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
from typing import Any, Callable, NamedTuple

from celery import Celery
from kombu.messaging import Producer

from refresher.calls import MAX_REPR, call_repr
from refresher.logs import about
from refresher.stats import Stats

REFRESH_TASK = "refresher.refresh"
REFRESH_MANY_TASK = "refresher.refresh_many"  # several keys: a list of REFRESH_TASK's arguments
log = logging.getLogger("refresher")


def celery_settings(broker_url: str, queue: str, timeout: float) -> dict[str, Any]:
    """The settings both sides need: JSON only, no results, one task prefetched at a time."""
    return {
        "broker_url": broker_url,
        "task_serializer": "json",
        "result_serializer": "json",
        "event_serializer": "json",
        "accept_content": ["json"],
        "result_backend": None,
        "task_ignore_result": True,
        "task_default_queue": queue,
        # A refresh task lost with the broker costs nothing (its pending marker lapses and
        # the next read asks again), so RabbitMQ need not write it to disk.
        "task_default_delivery_mode": "transient",
        "worker_prefetch_multiplier": 1,
        "broker_connection_timeout": timeout,
        "broker_transport_options": {
            "socket_timeout": timeout,
            "socket_connect_timeout": timeout,
        },
    }


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

    def __init__(self, broker_url: str, queue: str, timeout: float, cooldown: float, stats: Stats) -> None:
        self.broker_url = broker_url
        self.queue = queue
        self.timeout = timeout
        self.cooldown = cooldown
        self.stats = stats
        self._app: Celery | None = None
        self._producer: Producer | None = None  # the publishing thread's own
        self._lock = threading.Lock()
        self._open_until = 0.0
        self._jobs: queue_module.Queue[_Job] = queue_module.Queue(self.QUEUE_SIZE)
        self._idle = threading.Condition()
        self._unfinished = 0
        self.started = False
        alive = weakref.ref(self)

        def after_fork() -> None:
            publisher = alive()
            if publisher is not None:
                publisher._forked()

        os.register_at_fork(after_in_child=after_fork)

    @property
    def app(self) -> Celery:
        with self._lock:
            if self._app is None:
                app = Celery("refresher-client", set_as_current=False)
                app.conf.update(celery_settings(self.broker_url, self.queue, self.timeout))
                app.conf.broker_transport_options = bounded(
                    self.broker_url, _one_attempt(app.conf.broker_transport_options), self.timeout
                )
                self._app = app
            return self._app

    def available(self) -> bool:
        """False while the breaker is open after a failed publish."""
        return time.monotonic() >= self._open_until

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
        self._producer = None  # the parent's connection: the child opens its own

    def _run(self, jobs: queue_module.Queue[_Job]) -> None:
        self._connect()
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

    def _connect(self) -> None:
        """Open the broker connection, declare the queue and load the result backend
        (Celery loads it lazily, per thread, on the first send: about 10 ms of imports
        under the GIL, which stalled an event loop's readers at the first refresh) before
        the first refresh is due, so that refresh is not the one that pays for them."""
        self.app.backend  # loaded for its side effect, in this (the publishing) thread
        try:
            producer = self._connected()
            self.app.amqp.queues[self.queue].bind(producer.channel).declare()
        except Exception as exc:  # the first publish will report it properly
            self._drop_connection()
            log.debug("refresher: could not connect to the broker yet: %s", exc)

    def _connected(self) -> Producer:
        """The publishing thread's producer, on a connection of its own.

        Not one from Celery's pool: after a failed publish the pool closes its connection
        politely (a channel close, then a connection close), and to a hung AMQP broker each
        of those waits a whole read timeout, so one publish took three timeouts. This one
        is dropped without a goodbye instead (`_drop_connection`)."""
        if self._producer is None:
            connection = self.app.connection_for_write()
            connection.ensure_connection(max_retries=0)
            self._producer = self.app.amqp.Producer(connection)
        return self._producer

    def _drop_connection(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            try:
                producer.connection.collect()  # closes the socket, says nothing to the broker
            except Exception as exc:
                log.debug("refresher: dropping the broker connection: %s", exc)

    def _done(self) -> None:
        with self._idle:
            self._unfinished -= 1
            self._idle.notify_all()

    def _publish(self, batch: list[_Job]) -> None:
        """One key: a one-key task. Several: one refresh_many task of their one-key
        arguments, which expires when the last of them stops being servable (the worker
        checks each key's freshness anyway)."""
        if not self.available():
            for skipped in batch:
                self.stats.loader(skipped.loader).incr("publish_skipped")
                self._give_back(skipped)
            return
        job = batch[0]
        shown = ", ".join(call_repr(j.loader, j.args, j.kwargs) for j in batch)  # what Flower shows
        try:
            self.app.send_task(
                REFRESH_TASK if len(batch) == 1 else REFRESH_MANY_TASK,
                producer=self._connected(),
                args=job.wire if len(batch) == 1 else [[j.wire for j in batch]],
                argsrepr=shown if len(shown) <= MAX_REPR else shown[:MAX_REPR - 3] + "...",
                queue=self.queue,
                expires=max(j.expires_s for j in batch),
                retry=False,
                ignore_result=True,
                timeout=self.timeout,  # AMQP: the write, then the broker's confirm
                confirm_timeout=self.timeout,
            )
        except Exception as exc:  # any broker failure: reads go on, the marker is freed
            self._drop_connection()  # the next publish, after the cool-down, opens a new one
            self._open_until = time.monotonic() + self.cooldown
            self.stats.breaker_opened(self.cooldown)
            about(job.loader, job.key).warning(
                "publishing a refresh failed (%s: %s); not publishing for %.1fs",
                type(exc).__name__, exc, self.cooldown, extra={"error_type": type(exc).__name__},
            )
            for failed in batch:
                self.stats.loader(failed.loader).incr("publish_failed")
                self._give_back(failed)
            return
        for sent in batch:
            self.stats.loader(sent.loader).incr("refresh_enqueued")

    def _give_back(self, job: _Job) -> None:
        try:
            job.on_failure()
        except Exception as exc:  # the marker then lapses by its TTL instead
            about(job.loader, job.key).warning("could not free the pending marker: %s", exc)

    def close(self) -> None:
        self.flush(self.timeout)
        with self._lock:
            producer, self._producer = self._producer, None
            if producer is not None:
                try:
                    producer.connection.release()
                except Exception as exc:  # closing: a dead broker has nothing to hear
                    log.debug("refresher: closing the broker connection: %s", exc)
            if self._app is not None:
                self._app.close()
                self._app = None


def _one_attempt(transport_options: dict[str, Any]) -> dict[str, Any]:
    """One connection attempt per publish. Kombu otherwise retries a refused connection
    every 2 s until broker_connection_timeout, so a publish to a dead broker took seconds
    whatever the publish timeout; the breaker, not kombu, decides when to try again."""
    return {**transport_options, "max_retries": 0}


AMQP_SCHEMES = frozenset({"amqp", "amqps", "pyamqp"})


def is_amqp(broker_url: str) -> bool:
    return broker_url.split("://", 1)[0].lower() in AMQP_SCHEMES


def bounded(broker_url: str, transport_options: dict[str, Any], timeout: float) -> dict[str, Any]:
    """Make an AMQP publish fail within `timeout` when it did not reach the broker.

    An AMQP publish is a write to a socket: without confirms it "succeeds" into the
    kernel's buffer of a hung or dying broker and the task is lost unseen, with the
    pending marker held until it lapses. With publisher confirms the publish waits for the
    broker's ack (at most `confirm_timeout`), so a hung broker is a failed publish: the
    marker is freed and the breaker opens, as with Redis. The read and write timeouts bound
    the connection handshake and the queue declaration the same way. Redis needs none of
    this: its socket timeouts already bound every command."""
    if not is_amqp(broker_url):
        return transport_options
    return {**transport_options, "confirm_publish": True, "read_timeout": timeout, "write_timeout": timeout}


class _Job(NamedTuple):
    loader: str
    key: str
    args: list[Any]
    kwargs: dict[str, Any]
    enqueued_at: float
    seen: int  # the version of the value the reader saw: the one to replace
    expires_s: float
    on_failure: Callable[[], object]
    version: int | None = None

    @property
    def wire(self) -> list[Any]:
        """The one-key task's arguments. A versioned loader's tasks carry its version: a
        worker on another drops them."""
        return [self.loader, self.args, self.kwargs, self.enqueued_at, self.seen,
                *([self.version] if self.version is not None else [])]
