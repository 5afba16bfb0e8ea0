"""A loader whose refresh tasks go through the project's own app."""

from __future__ import annotations

import os

import redis

from refresher import Refresher
from tests.support.userproj.celery import app

cache = Refresher(celery_app=app, namespace=os.environ.get("USERPROJ_NAMESPACE") or "userproj")
_control = redis.Redis.from_url(os.environ["REFRESHER_REDIS_URL"])
LOADS = f"{cache.namespace}:test:loads"


@cache.loader(ttl=60, name="userproj.version")
def version(n: int) -> dict[str, int]:
    """Counts its calls in Redis, so the test sees the worker's too."""
    return {"n": n, "version": int(_control.incr(LOADS))}
