"""The Celery app. `celery -A workers worker` finds it as `workers.app`.

It imports the modules listed in REFRESHER_LOADERS (comma-separated) so that their
loaders are registered; only those loaders can be refreshed.
"""

from __future__ import annotations

import importlib
import os

from celery import Celery

from refresher.client import DEFAULT_REDIS_URL
from refresher.publish import celery_settings


def _broker_url() -> str:
    return (
        os.environ.get("REFRESHER_BROKER_URL")
        or os.environ.get("REFRESHER_REDIS_URL")
        or DEFAULT_REDIS_URL
    )


def import_loaders(spec: str | None = None) -> list[str]:
    """Import each module named in REFRESHER_LOADERS; return their names."""
    spec = os.environ.get("REFRESHER_LOADERS", "") if spec is None else spec
    modules = [m.strip() for m in spec.split(",") if m.strip()]
    for module in modules:
        importlib.import_module(module)
    return modules


app = Celery("refresher", set_as_current=True)
app.conf.update(
    celery_settings(_broker_url(), os.environ.get("REFRESHER_QUEUE") or "refresher", timeout=5.0),
    # Off by default: events cost a worker about a fifth of its refresh throughput.
    # Start workers with `-E` when Flower watches them.
    task_acks_late=False,
    worker_hijack_root_logger=False,
    broker_connection_retry_on_startup=True,
)
import_loaders()
