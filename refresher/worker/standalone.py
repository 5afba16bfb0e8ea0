"""The ready-made Celery app: `REFRESHER_LOADERS=myapp.loaders celery -A refresher.worker worker`.

Configured from the environment (REFRESHER_BROKER_URL, else REFRESHER_REDIS_URL;
REFRESHER_QUEUE), then from a Celery settings module if REFRESHER_CELERY_CONFIG names one
(`broker_transport_options` for a Sentinel, `broker_use_ssl`, `task_routes`, ...): the
worker, Flower and any Refresher(celery_app=app) then share one configuration. It imports
the modules listed in REFRESHER_LOADERS so that their loaders are registered. It is never
made the current app: a process that imports it keeps its own (docs/celery.md).
"""

from __future__ import annotations

import importlib
import logging
import os
from typing import Any

from celery import Celery
from celery.app.defaults import DEFAULTS
from celery.signals import after_setup_logger, after_setup_task_logger

from refresher.ops import flower
from refresher.io.broker import DEFAULT_QUEUE, celery_settings
from refresher.io.connect import DEFAULT_REDIS_URL
from refresher.core.logs import json_asked, use_json
from refresher.worker.settings import TASKS_MODULE, configure, import_loaders

__all__ = ["app"]
# `celery -A refresher.worker flower` (or `-A workers`), from any directory, reads
# refresher/ops/flowerconfig.py (Flower takes FLOWER_CONF as --conf): it refuses to start
# without credentials.
os.environ.setdefault("FLOWER_CONF", flower.CONFIG_FILE)


def _broker_url() -> str:
    return (
        os.environ.get("REFRESHER_BROKER_URL")
        or os.environ.get("REFRESHER_REDIS_URL")
        or DEFAULT_REDIS_URL
    )


def json_logs(logger: logging.Logger, **_: Any) -> None:
    """REFRESHER_LOG_FORMAT=json: the worker's log lines, Celery's too, as JSON objects."""
    if json_asked():
        use_json(logger)


after_setup_logger.connect(json_logs)
after_setup_task_logger.connect(json_logs)


def _settings_module() -> dict[str, Any]:
    """The Celery settings in the module REFRESHER_CELERY_CONFIG names (lower-case names,
    as Celery spells them), over the environment's: Celery's own config_from_object would
    rank them below any default set in code."""
    name = os.environ.get("REFRESHER_CELERY_CONFIG", "").strip()
    if not name:
        return {}
    module = importlib.import_module(name)
    return {key: value for key, value in vars(module).items() if key in DEFAULTS}


app = Celery("refresher", include=[TASKS_MODULE], set_as_current=False)
app.conf.update(
    celery_settings(_broker_url(), os.environ.get("REFRESHER_QUEUE") or DEFAULT_QUEUE, timeout=5.0),
    # Off by default: events cost a worker about a fifth of its refresh throughput.
    # Start workers with `-E` when Flower watches them.
    task_acks_late=False,
    worker_hijack_root_logger=False,
    **_settings_module(),
)
configure(app)
import_loaders()
