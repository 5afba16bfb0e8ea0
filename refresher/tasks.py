"""The refresh tasks as Celery shared tasks: thin wrappers over refresher.worker.run.

Any Celery app finds them the Celery way, `Celery(..., include=[..., "refresher.tasks"])`
or `app.autodiscover_tasks(["refresher"])`, and so does the ready-made app
(`celery -A refresher.worker worker`). Being shared tasks, they belong to whichever app
runs them; nothing here makes an app the current one. Each task sets what refresher needs
of it whatever the app's defaults: JSON, no result, acknowledged on receipt (a refresh
lost with its worker costs nothing: its pending marker lapses and the next read asks
again).
"""

from __future__ import annotations

from typing import Any

from celery import shared_task

from refresher.io.broker import REFRESH_MANY_TASK, REFRESH_TASK
from refresher.errors import RefreshFailed, TaskRejected
from refresher.worker.run import refresh_keys, refresh_task
import refresher.worker.signals  # noqa: F401  (what any worker running these tasks does at start)

__all__ = ["refresh", "refresh_many"]
# `throws`: a failed load or a rejected task is an expected FAILURE, which Celery's worker
# logs as one INFO line instead of an ERROR with a traceback (refresher logged it already).
TASK_OPTIONS: dict[str, Any] = {"ignore_result": True, "acks_late": False, "serializer": "json",
                                "throws": (RefreshFailed, TaskRejected)}


@shared_task(name=REFRESH_TASK, **TASK_OPTIONS)  # type: ignore[untyped-decorator]  # celery ships no type hints
def refresh(name: str, args: list[Any], kwargs: dict[str, Any], enqueued_at: float, seen: int | None = None,
            version: int | None = None) -> str:
    """Ends FAILURE if the load raised (RefreshFailed) or the task cannot run here
    (TaskRejected), else SUCCESS with the outcome (`written`, `fresh`, ...: an Outcome of
    refresher.core.protocol.outcomes) as result. No
    Celery retries: a failed refresh backs off through the key's pending marker.
    `version` is the asking reader's loader version (none for an unversioned loader).
    The arguments are a stranger's until refresher.core.wire has checked them."""
    return refresh_task(name, args, kwargs, enqueued_at, seen, version)


@shared_task(name=REFRESH_MANY_TASK, **TASK_OPTIONS)  # type: ignore[untyped-decorator]  # celery ships no type hints
def refresh_many(items: list[list[Any]]) -> str:
    """Several keys in one message, sent by a publisher with a backlog: each item is a
    `refresh` task's arguments. Every key is processed; the result names each key and
    its outcome, raised as RefreshFailed or TaskRejected if any key failed or was
    rejected (see refresher.worker.run.refresh_keys)."""
    return refresh_keys(items)
