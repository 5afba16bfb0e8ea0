"""Refreshing one key on a worker: the whole job of the Celery task, kept apart from Celery."""

from __future__ import annotations

from typing import Any

from refresher import registry
from refresher.core.refresh import refresh


def refresh_key(name: str, args: list[Any], kwargs: dict[str, Any], enqueued_at: float, seen: int | None = None) -> str:
    """Refresh the value of loader `name` for these arguments, at most once however often
    the task is delivered (see refresher.core.refresh). Returns what happened, which
    Flower shows as the task's result. `args` and `kwargs` are the call's wire form
    (typed arguments tagged in JSON), rebuilt here from the loader's own annotations."""
    loader = registry.lookup(name)
    return loader.run_steps(refresh(loader.spec, loader.call.from_wire([args, kwargs]), enqueued_at, seen))
