"""A Celery task that does nothing: what one task message costs a worker process, the
ceiling of any one-task-per-key refresh. The many-keys scenario's workers import it
(REFRESHER_LOADERS=bench.loaders,bench.noop), which registers it on the workers' app."""

from __future__ import annotations

from workers.app import app

NOOP_TASK = "bench.noop"


@app.task(name=NOOP_TASK, ignore_result=True)  # type: ignore[untyped-decorator]
def noop() -> None:
    """Nothing at all."""
