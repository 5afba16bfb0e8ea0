"""The project's Refresher, from settings.REFRESHER, and the loader modules to import.

Keys of settings.REFRESHER (all optional):
    REDIS_URL, BROKER_URL, NAMESPACE, QUEUE: as Refresher's arguments (each falls back
        to its REFRESHER_* environment variable, then the default);
    CELERY_APP: a dotted path ("proj.celery.app" or "proj.celery:app") to the project's
        Celery app: refresh tasks are published through it (its broker, TLS, transport
        options and task_routes), and BROKER_URL must then be left out;
    LOADERS: modules to import once every app is ready, besides each installed app's
        own `loaders` module;
    OPTIONS: further Refresher keyword arguments (near_cache=, loader defaults, ...).
"""

from __future__ import annotations

import importlib
from typing import Any

from django.conf import settings
from django.utils.module_loading import autodiscover_modules, import_string

from refresher.api.client import Refresher

KNOWN = frozenset({"REDIS_URL", "BROKER_URL", "NAMESPACE", "QUEUE", "CELERY_APP", "LOADERS", "OPTIONS"})


def config() -> dict[str, Any]:
    found = getattr(settings, "REFRESHER", {})
    if not isinstance(found, dict):
        raise TypeError(f"settings.REFRESHER must be a dict, got {type(found).__name__}")
    if unknown := sorted(set(found) - KNOWN):
        raise ValueError(f"settings.REFRESHER has unknown keys {unknown}; known: {sorted(KNOWN)}")
    return found


def build() -> Refresher:
    found = config()
    app = found.get("CELERY_APP")
    return Refresher(
        redis_url=found.get("REDIS_URL"),
        broker_url=found.get("BROKER_URL"),
        namespace=found.get("NAMESPACE"),
        queue=found.get("QUEUE"),
        celery_app=import_string(app.replace(":", ".")) if isinstance(app, str) else app,
        **found.get("OPTIONS", {}),
    )


def import_loaders() -> None:
    """Each installed app's `loaders` module, then the LOADERS listed: in the web process
    and in a worker alike, so both register the same loaders."""
    autodiscover_modules("loaders")
    for module in config().get("LOADERS", []):
        importlib.import_module(module)
