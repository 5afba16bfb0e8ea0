"""REFRESHER_METRICS_PORT: the worker's Prometheus metrics at http://ADDR:PORT/metrics, ADDR
being REFRESHER_METRICS_ADDR, by default 127.0.0.1: nothing listens beyond the machine
unless asked to (a scraper elsewhere: set it to the interface it reaches).

Started from Celery's `worker_init` signal, in the worker's main process, before it forks
any pool process. With the threads, solo or gevent pool, tasks run in that process and
its counts are read when scraped (refresher.ops.metrics, single-process). With the prefork
pool, tasks run in child processes: one HTTP server per child would need a port each, so
the children write to prometheus_client's shared files instead (multiprocess mode: set
PROMETHEUS_MULTIPROC_DIR to an empty directory before starting the worker; prometheus_client
reads it when first imported, which Celery's command line does when Flower is installed)
and the one server in the main process adds them up. The worker alone also exports the
backlog of the queues it consumes (refresher.ops.metrics.queues).
"""

from __future__ import annotations

import logging
import os
from typing import Any

from celery.concurrency import get_implementation
from celery.concurrency.prefork import TaskPool as PreforkPool
from celery.signals import worker_init, worker_process_shutdown

log = logging.getLogger("refresher")
DEFAULT_ADDRESS = "127.0.0.1"


def _port() -> int | None:
    port = os.environ.get("REFRESHER_METRICS_PORT", "").strip()
    return int(port) if port else None


def _address() -> str:
    return os.environ.get("REFRESHER_METRICS_ADDR", "").strip() or DEFAULT_ADDRESS


def forks(worker: Any) -> bool:
    """Whether the worker's pool runs tasks in child processes (prefork)."""
    pool = get_implementation(worker.pool_cls)
    return isinstance(pool, type) and issubclass(pool, PreforkPool)


@worker_init.connect  # type: ignore[untyped-decorator]  # celery ships no type hints
def serve_metrics(sender: Any, **_: Any) -> None:
    port = _port()
    if port is None:
        return
    if forks(sender) and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        log.error("refresher: no metrics on port %d: the prefork pool needs PROMETHEUS_MULTIPROC_DIR "
                  "(an empty directory) set before the worker starts, or use -P threads", port)
        return
    # Imported only when asked for: the prometheus extra is optional.
    from prometheus_client import start_http_server

    import refresher.ops.metrics
    from refresher.ops.metrics.queues import QueueCollector

    refresher.ops.metrics.install()  # inherited by the pool's children when they are forked
    registry = refresher.ops.metrics.registry()
    registry.register(QueueCollector(sender.app, sorted(sender.app.amqp.queues.consume_from)))
    start_http_server(port, _address(), registry)


@worker_process_shutdown.connect  # type: ignore[untyped-decorator]  # celery ships no type hints
def forget_process(pid: int | None = None, **_: Any) -> None:
    """A prefork child's live gauges go with it (prometheus_client's mark_process_dead)."""
    if _port() is not None and os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client.multiprocess import mark_process_dead

        mark_process_dead(pid or os.getpid())  # type: ignore[no-untyped-call]  # prometheus_client's multiprocess helpers are unannotated
