"""The refresh task: a thin wrapper over refresher.refresh.refresh_key."""

from __future__ import annotations

from typing import Any

from refresher.errors import UnknownLoader
from refresher.logs import about
from refresher.publish import REFRESH_TASK
from refresher.refresh import refresh_key, same_version
from workers.app import app


@app.task(name=REFRESH_TASK, ignore_result=True)  # type: ignore[untyped-decorator]
def refresh(name: str, args: list[Any], kwargs: dict[str, Any], enqueued_at: float, seen: int | None = None,
            version: int | None = None) -> str:
    """No Celery retries: a failed refresh backs off through the key's pending marker.
    `version` is the asking reader's loader version (none for an unversioned loader)."""
    try:
        if not same_version(name, version):
            return "version_mismatch"
        return refresh_key(name, args, kwargs, enqueued_at, seen)
    except (UnknownLoader, TypeError) as exc:
        about(name, None).error("rejected a refresh task: %s", exc,
                                extra={"outcome": "rejected", "error_type": type(exc).__name__})
        return "rejected"
