from __future__ import annotations

from celery import shared_task


@shared_task(name="userproj.add")  # type: ignore[untyped-decorator]
def add(a: int, b: int) -> int:
    """The project's own task: its result goes to the project's result backend."""
    return a + b
