"""The Celery side of refresher: `REFRESHER_LOADERS=myapp.loaders celery -A workers worker`."""

from workers import tasks
from workers.app import app

__all__ = ["app", "tasks"]
