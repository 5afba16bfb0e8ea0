"""Sending refresh tasks to Celery without letting the broker stall a read.

A publish has a short timeout, and after a failure a circuit breaker skips publishing for
a cool-down, so during a broker outage reads pay the timeout once, not every time.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from celery import Celery

from refresher.stats import Stats

REFRESH_TASK = "refresher.refresh"
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
        "worker_prefetch_multiplier": 1,
        "broker_connection_timeout": timeout,
        "broker_transport_options": {
            "socket_timeout": timeout,
            "socket_connect_timeout": timeout,
        },
    }


class Publisher:
    def __init__(self, broker_url: str, queue: str, timeout: float, cooldown: float, stats: Stats) -> None:
        self.broker_url = broker_url
        self.queue = queue
        self.timeout = timeout
        self.cooldown = cooldown
        self.stats = stats
        self._app: Celery | None = None
        self._app_lock = threading.Lock()
        self._open_until = 0.0

    @property
    def app(self) -> Celery:
        with self._app_lock:
            if self._app is None:
                app = Celery("refresher-client", set_as_current=False)
                app.conf.update(celery_settings(self.broker_url, self.queue, self.timeout))
                self._app = app
            return self._app

    def available(self) -> bool:
        """False while the breaker is open after a failed publish."""
        return time.monotonic() >= self._open_until

    def send(self, loader: str, args: list[Any], kwargs: dict[str, Any], expires_s: float) -> bool:
        try:
            self.app.send_task(
                REFRESH_TASK,
                args=[loader, args, kwargs, time.time()],
                queue=self.queue,
                expires=expires_s,
                retry=False,
                ignore_result=True,
            )
        except Exception as exc:  # any broker failure; a read must still be served
            self._open_until = time.monotonic() + self.cooldown
            self.stats.incr("publish_failed")
            log.warning(
                "refresher: publishing a refresh of %s failed (%s: %s); not publishing for %.1fs",
                loader, type(exc).__name__, exc, self.cooldown,
            )
            return False
        self.stats.incr("refresh_enqueued")
        return True

    def close(self) -> None:
        with self._app_lock:
            if self._app is not None:
                self._app.close()
                self._app = None
