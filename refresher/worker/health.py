"""A worker's health as files a probe can read (Kubernetes `exec` probes, docs/celery.md).

Celery's own answers say too little: a worker whose every pool slot is stuck in a loader
still answers `inspect ping` (its consumer is fine), and one with no loaders registered, or
with the cache unreachable, reports ready and then rejects or fails every task. So a
thread in the worker's main process, which tracks every running task whatever the pool,
checks every REFRESHER_HEALTH_INTERVAL seconds (default 5) and keeps two files:

- REFRESHER_READY_FILE while loaders are registered and every cache they use answers PING;
- REFRESHER_LIVE_FILE, touched on every check while no refresh task has run past its hard
  time limit (from the loader's max_load_time). The threads pool cannot stop such a task
  (Celery enforces time limits only on prefork), so there the file goes stale and the
  probe restarts the worker.

`python -m refresher.worker.probe ready|live` reads them.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

from celery.worker import state as worker_state

from refresher.api import registry
from refresher.io.broker import REFRESH_MANY_TASK, REFRESH_TASK

log = logging.getLogger("refresher")
TASKS = frozenset({REFRESH_TASK, REFRESH_MANY_TASK})


def interval() -> float:
    return float(os.environ.get("REFRESHER_HEALTH_INTERVAL") or 5.0)


def unready_because() -> str | None:
    """Why this worker cannot do its job yet, or None when it can."""
    names = registry.names()
    if not names:
        return "no loaders registered: every refresh task would be rejected (set REFRESHER_LOADERS or import them)"
    caches = {id(loader.cache): loader.cache for loader in map(registry.lookup, names)}
    for cache in caches.values():
        try:
            cache.redis.ping()
        except Exception as exc:  # any failure to answer is "not ready"
            return f"the cache at {cache.redis_url} does not answer: {type(exc).__name__}: {exc}"
    return None


def stuck_tasks(now: float) -> list[str]:
    """Refresh tasks running past their hard time limit (which prefork would have ended)."""
    stuck = []
    for request in list(worker_state.active_requests):
        hard = request.time_limits[0]
        if request.name in TASKS and hard and request.time_start and now - request.time_start > hard:
            stuck.append(f"{request.name}[{request.id}] for {now - request.time_start:.0f}s (limit {hard:g}s)")
    return stuck


class Health(threading.Thread):
    def __init__(self) -> None:
        super().__init__(name="refresher-health", daemon=True)
        self.ready_file = _path("REFRESHER_READY_FILE")
        self.live_file = _path("REFRESHER_LIVE_FILE")
        self.stopped = threading.Event()
        self._said: tuple[str | None, bool] | None = None  # what was last logged

    def run(self) -> None:
        while True:
            self.check()
            if self.stopped.wait(interval()):
                return

    def check(self) -> None:
        why, stuck = unready_because(), stuck_tasks(time.time())
        _keep(self.ready_file, why is None)
        _keep(self.live_file, not stuck)
        if (why, bool(stuck)) != self._said:  # a change is logged once, not every check
            if why is not None:
                log.error("refresher: worker not ready: %s", why)
            if stuck:
                log.error("refresher: worker not live: stuck in loaders: %s", "; ".join(stuck))
            if why is None and not stuck:
                log.info("refresher: worker ready and live")
            self._said = (why, bool(stuck))

    def stop(self, **_: Any) -> None:
        self.stopped.set()
        _keep(self.ready_file, False)
        _keep(self.live_file, False)


def _path(variable: str) -> Path | None:
    value = os.environ.get(variable, "").strip()
    return Path(value) if value else None


def _keep(path: Path | None, ok: bool) -> None:
    """Touch the file while `ok`, remove it otherwise."""
    if path is None:
        return
    if ok:
        path.touch()
    else:
        path.unlink(missing_ok=True)
