"""The Celery side of refresher: `REFRESHER_LOADERS=myapp.loaders celery -A workers worker`."""

from workers import metrics, tasks
from workers.app import app

__all__ = ["app", "metrics", "tasks"]
