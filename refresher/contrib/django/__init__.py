"""refresher in a Django project (docs/django.md).

    INSTALLED_APPS = [..., "refresher.contrib.django"]
    REFRESHER = {"REDIS_URL": "redis://...", "CELERY_APP": "proj.celery.app"}

    # catalog/loaders.py, imported by the app once every app is ready
    from refresher.contrib.django import cache, invalidate_on

    @cache.loader(ttl=300)
    def product(product_id: int) -> dict | None: ...

    invalidate_on(Product, loader=product, keys=lambda p: [(p.pk,)])

`cache` is the project's Refresher, built from settings.REFRESHER on first use (settings
must be configured; the apps need not be ready yet).
"""

from __future__ import annotations

import threading

from refresher.api.client import Refresher
from refresher.contrib.django.invalidation import invalidate_after_commit, invalidate_on
from refresher.contrib.django.setup import build

__all__ = ["cache", "invalidate_after_commit", "invalidate_on"]

_built: list[Refresher] = []
_building = threading.Lock()


def __getattr__(name: str) -> Refresher:
    if name == "cache":
        with _building:  # one Refresher per process, however many threads ask first
            if not _built:
                _built.append(build())
        return _built[0]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
