"""The refresh task: a thin wrapper over refresher.refresh.refresh_key."""

from __future__ import annotations

import logging
from typing import Any

from refresher.errors import UnknownLoader
from refresher.publish import REFRESH_TASK
from refresher.refresh import refresh_key
from workers.app import app

log = logging.getLogger("refresher")


@app.task(name=REFRESH_TASK, ignore_result=True)  # type: ignore[untyped-decorator]
def refresh(name: str, args: list[Any], kwargs: dict[str, Any], enqueued_at: float, seen: int | None = None) -> str:
    """No Celery retries: a failed refresh backs off through the key's pending marker."""
    try:
        return refresh_key(name, args, kwargs, enqueued_at, seen)
    except (UnknownLoader, TypeError) as exc:
        log.error("refresher: rejected a refresh task: %s", exc)
        return "rejected"
