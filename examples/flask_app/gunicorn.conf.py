"""gunicorn settings for the Flask example's metrics in multiprocess mode:
`PROMETHEUS_MULTIPROC_DIR=/path/to/empty/dir gunicorn -c examples/flask_app/gunicorn.conf.py ...`."""

from typing import Any

from prometheus_client import multiprocess


def child_exit(server: Any, worker: Any) -> None:
    """A worker that exits takes its live gauges with it (refresher_publish_breaker_open)."""
    multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]
