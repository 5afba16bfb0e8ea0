"""Refreshing one key on a worker: the whole job of the Celery task, kept apart from Celery."""

from __future__ import annotations

import time
from typing import Any

from refresher import registry
from refresher.core.refresh import refresh
from refresher.logs import about


def refresh_key(name: str, args: list[Any], kwargs: dict[str, Any], enqueued_at: float, seen: int | None = None) -> str:
    """Refresh the value of loader `name` for these arguments, at most once however often
    the task is delivered (see refresher.core.refresh). Returns what happened, which
    Flower shows as the task's result. `args` and `kwargs` are the call's wire form
    (typed arguments tagged in JSON), rebuilt here from the loader's own annotations.
    Logs one line with the outcome at INFO (a failed load's exception is logged at ERROR
    where it is caught), or one at ERROR with what the refresh raised."""
    loader = registry.lookup(name)
    call = loader.call.from_wire([args, kwargs])
    keylog, started = about(name, call.keys.value), time.monotonic()
    try:
        outcome = loader.run_steps(refresh(loader.spec, call, enqueued_at, seen))
    except Exception as exc:  # Redis unreachable, say: Celery records the task as failed
        keylog.error("refresh raised %s: %s", type(exc).__name__, exc,
                     extra={"outcome": "error", "error_type": type(exc).__name__})
        loader.spec.stats.incr("task_error")
        raise
    loader.spec.stats.incr(f"task_{outcome}")  # one per task: refresher_refresh_tasks_total{outcome=...}
    keylog.info("refresh %s in %.3fs", outcome, time.monotonic() - started, extra={"outcome": outcome})
    return outcome


def same_version(name: str, version: int | None) -> bool:
    """Whether this worker's loader `name` writes values of the asking reader's version;
    if not, the task is dropped (logged): its values would not be served there."""
    loader = registry.lookup(name)
    if loader.settings.version == version:
        return True
    about(name, None).warning("version_mismatch: the task is for version %s, this worker's loader is version %s",
                              version, loader.settings.version, extra={"outcome": "version_mismatch"})
    loader.spec.stats.incr("task_version_mismatch")
    return False
