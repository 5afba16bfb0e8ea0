"""What every worker that runs refresher's tasks does at start, whatever app it belongs to:
say what it serves (queues, namespaces, loaders), warn of what it cannot bound, and keep
its health files (refresher.worker.health). Connected when refresher.tasks is imported."""

from __future__ import annotations

import logging
from typing import Any

from celery.signals import worker_ready, worker_shutdown

from refresher.api import registry
from refresher.worker.health import Health
from refresher.worker.metrics import forks  # and REFRESHER_METRICS_PORT's server, at worker_init

log = logging.getLogger("refresher")
_health: list[Health] = []


@worker_ready.connect  # type: ignore[untyped-decorator]  # celery ships no type hints
def announce(sender: Any, **_: Any) -> None:
    """One line naming what this worker serves, so a queue or namespace that differs from
    the clients' shows at start rather than as tasks piling up unread."""
    queues = sorted(queue.name for queue in sender.task_consumer.queues) if sender.task_consumer else []
    loaders = [registry.lookup(name) for name in registry.names()]
    namespaces = sorted({loader.cache.namespace for loader in loaders})
    log.info("refresher: worker serving queues=%s namespaces=%s loaders=%s",
             ",".join(queues), ",".join(namespaces) or "-", ",".join(loader.name for loader in loaders) or "-")
    wanted = sorted({loader.cache.publisher.route_of(loader.name).queue or loader.cache.queue for loader in loaders})
    if missing := [queue for queue in wanted if queue not in queues]:
        log.warning("refresher: this worker's loaders publish to %s, which it does not consume (add -Q %s)",
                    ",".join(missing), ",".join([*queues, *missing]))
    if not forks(sender.controller):
        log.warning("refresher: the %s pool cannot stop a task at its time limit: a hung loader keeps its "
                    "thread (its lock lapses after max_load_time and the key backs off); the liveness file "
                    "goes stale so a probe can restart the worker (docs/celery.md)",
                    sender.controller.pool_cls.__module__.rsplit(".", 1)[-1])
    health = Health()
    _health.append(health)
    health.start()


@worker_shutdown.connect  # type: ignore[untyped-decorator]  # celery ships no type hints
def stop_health(**_: Any) -> None:
    while _health:
        _health.pop().stop()
