"""A user's own Celery project, as a team would lay it out, that also runs refresher's
tasks: its app (celery.py), one task of its own (tasks.py) and a loader (loaders.py)."""

from tests.support.userproj.celery import app

__all__ = ["app"]
