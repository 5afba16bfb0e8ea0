"""`celery -A workers worker`, kept working: the ready-made app now lives in the library
as refresher.worker (`celery -A refresher.worker worker` from any install)."""

from refresher.worker import app

__all__ = ["app"]
