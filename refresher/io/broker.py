"""The broker side of publishing: the Celery settings both sides share, and a connection
whose every step (connect, publish, confirm) fails within the publish timeout."""

from __future__ import annotations

import logging
import ssl
import threading
from typing import Any, Callable
from urllib.parse import parse_qs, urlsplit

from celery import Celery
from kombu.messaging import Producer

REFRESH_TASK = "refresher.refresh"
REFRESH_MANY_TASK = "refresher.refresh_many"  # several keys: a list of REFRESH_TASK's arguments
DEFAULT_QUEUE = "refresher"
log = logging.getLogger("refresher")


def celery_settings(broker_url: str, queue: str, timeout: float) -> dict[str, Any]:
    """The settings refresher's own apps use: JSON only, no results, one task prefetched at
    a time. A user's app keeps its own (see refresher.worker.configure)."""
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
        **verified_tls(broker_url),
    }


def verified_tls(broker_url: str) -> dict[str, Any]:
    """kombu takes a `rediss://` URL without `ssl_*` parameters as CERT_NONE (it only logs a
    warning): encrypted, but to whoever answers. refresher's apps verify the broker's
    certificate against the system's CAs instead, as redis-py does for the cache; a URL's own
    `ssl_cert_reqs=...` (even `none`) or a config module's `broker_use_ssl` still decides."""
    parts = urlsplit(broker_url)
    if parts.scheme.lower() != "rediss" or any(name.startswith("ssl_") for name in parse_qs(parts.query)):
        return {}
    return {"broker_use_ssl": {"ssl_cert_reqs": ssl.CERT_REQUIRED}}


def publishing_connection(app: Celery, timeout: float) -> Any:
    """A connection to `app`'s broker with the app's own URL, TLS and transport options
    (a Sentinel's master_name, say), bounded by `timeout` and tried once: kombu otherwise
    retries a refused connection every 2 s until broker_connection_timeout, so a publish to
    a dead broker took seconds whatever the publish timeout; the breaker, not kombu,
    decides when to try again."""
    options = bounded_options(app.conf.broker_write_url or app.conf.broker_url, app.conf.broker_transport_options,
                              timeout)
    return app.connection_for_write(connect_timeout=timeout, transport_options=options)


def bounded_options(url: str, transport_options: dict[str, Any], timeout: float) -> dict[str, Any]:
    """`transport_options` with refresher's bounds on top (see publishing_connection)."""
    options = {**transport_options, "socket_timeout": timeout, "socket_connect_timeout": timeout, "max_retries": 0}
    return bounded(url, options, timeout)


class Link:
    """The publishing thread's producer, on a connection of its own to the app's broker.

    Not one from Celery's pool: after a failed publish the pool closes its connection
    politely (a channel close, then a connection close), and to a hung AMQP broker each
    of those waits a whole read timeout, so one publish took three timeouts. This one is
    dropped without a goodbye instead (`drop`). `app` is a user's Celery app (never
    closed here) or a factory of refresher's own, built on first use and closed with it."""

    def __init__(self, app: Celery | Callable[[], Celery], queue: str, timeout: float, owned: bool) -> None:
        self._app = app if isinstance(app, Celery) else None
        self._make = app if not isinstance(app, Celery) else None
        self.queue = queue
        self.timeout = timeout
        self.owned = owned
        self._producer: Producer | None = None
        self._lock = threading.Lock()

    @property
    def app(self) -> Celery:
        with self._lock:
            if self._app is None:
                assert self._make is not None
                self._app = self._make()
            return self._app

    def connect(self) -> None:
        """Open the connection, declare the queue and load the result backend (Celery
        loads it lazily, per thread, on the first send: about 10 ms of imports under the
        GIL, which stalled an event loop's readers at the first refresh) before the first
        refresh is due, so that refresh is not the one that pays for them."""
        self.app.backend  # loaded for its side effect, in this (the publishing) thread
        try:
            self.app.amqp.queues[self.queue].bind(self.producer().channel).declare()
        except Exception as exc:  # the first publish will report it properly
            self.drop()
            log.debug("refresher: could not connect to the broker yet: %s", exc)

    def producer(self) -> Producer:
        if self._producer is None:
            connection = publishing_connection(self.app, self.timeout)
            connection.ensure_connection(max_retries=0)
            self._producer = self.app.amqp.Producer(connection)
        return self._producer

    def drop(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            try:
                producer.connection.collect()  # closes the socket, says nothing to the broker
            except Exception as exc:
                log.debug("refresher: dropping the broker connection: %s", exc)

    def forget(self) -> None:
        """In a forked child: the parent's connection is not ours to use or close."""
        self._producer = None
        self._lock = threading.Lock()

    def close(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            try:
                producer.connection.release()
            except Exception as exc:  # closing: a dead broker has nothing to hear
                log.debug("refresher: closing the broker connection: %s", exc)
        if self._app is not None and self.owned:
            self._app.close()
            self._app = None


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
