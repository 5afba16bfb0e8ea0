"""What the tests need to know about a Celery broker, whichever it is: a second
redis-server (`RedisServer`) or RabbitMQ (`RabbitServer`)."""

from __future__ import annotations

import sys
import threading
import time
from typing import Any, Callable, Protocol

from kombu.connection import Connection

from tests.support.rabbitmq import RabbitServer
from tests.support.servers import WorkerProcess


class Broker(Protocol):
    port: int

    @property
    def url(self) -> str: ...

    def start(self) -> None: ...

    def stop(self, sig: int = ...) -> None: ...


def running(broker: Broker) -> bool:
    proc = getattr(broker, "proc", None)
    return proc is not None and proc.poll() is None


def connected(broker: Broker) -> str:
    """The line a Celery worker logs each time it has (re)connected to `broker`."""
    return rf"Connected to \w+://\S*:{broker.port}/"


def queued(url: str, queue: str) -> int:
    """How many messages wait in `queue`, on any kombu broker."""
    with Connection(url, connect_timeout=5) as conn:  # type: ignore[no-untyped-call]
        return int(conn.default_channel.queue_declare(queue, passive=True).message_count)


def purge(url: str, queue: str) -> None:
    """Empty `queue`, if it exists, so that no task from an earlier test is delivered."""
    with Connection(url, connect_timeout=5) as conn:  # type: ignore[no-untyped-call]
        try:
            conn.default_channel.queue_purge(queue)
        except conn.channel_errors:  # no such queue yet (AMQP says 404)
            pass


def read_until(read: Callable[[], Any], done: Callable[[Any], bool], timeout: float = 20.0) -> list[Any]:
    """Call `read()` every 10 ms, as traffic would, until `done(value just read)`; return
    every value read."""
    deadline = time.monotonic() + timeout
    values = [read()]
    while not done(values[-1]):
        assert time.monotonic() < deadline, f"timed out after {len(values)} reads; last: {values[-1]!r}"
        threading.Event().wait(0.01)
        values.append(read())
    return values


def end(worker: WorkerProcess, broker: Broker) -> None:
    """After a test: a worker on RabbitMQ stops warmly, one on Redis is discarded. RabbitMQ
    requeues what a killed consumer held once it notices the closed socket, which may come
    after the next test purged the queue; Redis keeps a killed consumer's unacknowledged
    messages out of the queue for the visibility timeout, an hour.

    On AMQP a worker sees the SIGTERM only when its event loop next wakes: at its next timer,
    up to 2 s later (the event heartbeat's interval; 10 s with --without-heartbeat). A ping
    addressed to it is a message on its connection, which wakes the loop at once."""
    if isinstance(broker, RabbitServer):
        worker.stop(nudge=lambda: wake(worker, broker))
    else:
        worker.discard()


def wake(worker: WorkerProcess, broker: RabbitServer) -> None:
    """Ping `worker` (its answer is not needed); if the broker is down, it stops as slowly as before."""
    if not running(broker) or broker.app_stopped:
        return
    try:
        worker.ping(timeout=0.01)
    except Exception as exc:
        sys.stderr.write(f"could not wake the worker for its warm stop: {exc!r}\n")
