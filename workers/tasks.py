"""The refresh tasks: thin wrappers over refresher.refresh (refresh_task, refresh_keys)."""

from __future__ import annotations

from typing import Any

from refresher.publish import REFRESH_MANY_TASK, REFRESH_TASK
from refresher.refresh import refresh_keys, refresh_task
from workers.app import app


@app.task(name=REFRESH_TASK, ignore_result=True)  # type: ignore[untyped-decorator]
def refresh(name: str, args: list[Any], kwargs: dict[str, Any], enqueued_at: float, seen: int | None = None,
            version: int | None = None) -> str:
    """No Celery retries: a failed refresh backs off through the key's pending marker.
    `version` is the asking reader's loader version (none for an unversioned loader).
    The arguments are a stranger's until refresher.wire has checked them."""
    return refresh_task(name, args, kwargs, enqueued_at, seen, version)


@app.task(name=REFRESH_MANY_TASK, ignore_result=True)  # type: ignore[untyped-decorator]
def refresh_many(items: list[list[Any]]) -> str:
    """Several keys in one message, sent by a publisher with a backlog: each item is a
    `refresh` task's arguments. The result names each key and its outcome."""
    return refresh_keys(items)
