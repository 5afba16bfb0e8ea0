"""What the publisher hands to the broker: one key's refresh (a job), and where a loader's
refresh tasks go (its route)."""

from __future__ import annotations

from typing import Any, Callable, NamedTuple


class Route(NamedTuple):
    """Where a loader's refresh tasks go, and how long a worker may spend on one.

    `queue` None: the Refresher's queue, unless the Celery app's task_routes route the
    task. The time limits come from the loader's max_load_time: the soft one raises
    SoftTimeLimitExceeded in the loader (a failed load: the key backs off), the hard one,
    a little later, ends a prefork child stuck where no exception reaches."""

    queue: str | None
    soft_limit: float

    @property
    def hard_limit(self) -> float:
        return self.soft_limit + max(1.0, self.soft_limit / 10)


DEFAULT_SOFT_LIMIT = 300.0  # a task for a loader this process has not registered (the CLI's)


class _Job(NamedTuple):
    loader: str
    key: str
    args: list[Any]
    kwargs: dict[str, Any]
    enqueued_at: float
    seen: int  # the version of the value the reader saw: the one to replace
    expires_s: float
    on_failure: Callable[[], object]
    version: int | None = None

    @property
    def wire(self) -> list[Any]:
        """The one-key task's arguments. A versioned loader's tasks carry its version: a
        worker on another drops them."""
        return [self.loader, self.args, self.kwargs, self.enqueued_at, self.seen,
                *([self.version] if self.version is not None else [])]
