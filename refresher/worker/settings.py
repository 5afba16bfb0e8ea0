"""The worker settings refresher needs, applied to the ready-made app or to a user's own."""

from __future__ import annotations

import importlib
import os
from typing import Any

from celery import Celery

TASKS_MODULE = "refresher.tasks"

WORKER_SETTINGS: dict[str, Any] = {
    # One task reserved at a time: a worker busy with a slow load leaves the rest to others.
    "worker_prefetch_multiplier": 1,
    # Survives broker restarts; gossip and mingle off (refresher.worker.consumer).
    "worker_consumer": "refresher.worker.consumer:Consumer",
    "broker_connection_retry_on_startup": True,
    # A worker keeps trying to reach a lost broker (every 2, 4, ... up to 30 s) instead of
    # exiting after 100 attempts (about 45 minutes): it holds no state a restart would save.
    "broker_connection_max_retries": None,
    # Cancels running acks_late tasks on a connection loss: refresher has none, and this
    # silences the deprecation warning Celery otherwise prints at every reconnect.
    "worker_cancel_long_running_tasks_on_connection_loss": True,
}


def configure(app: Celery) -> Celery:
    """Make `app`'s workers able to run refresher's tasks as refresher's own app would.

    Applied: the tasks (`refresher.tasks` added to `include`), JSON accepted, and
    WORKER_SETTINGS (prefetch 1, the broker-restart Consumer with gossip and mingle off,
    retrying a lost broker forever). These are worker-wide: the app's own tasks get them
    too; a team that needs gossip, mingle or a larger prefetch for its own tasks runs a
    second worker for the `refresher` queue with its own settings module.

    Not applied, on purpose:
    - task_serializer, result_backend, task_ignore_result, task_acks_late: the app's own
      tasks keep theirs. refresher's tasks carry their own (JSON, no result, acknowledged
      on receipt), and its publisher sends them as JSON whatever the app's default.
    - accept_content is widened to JSON, never narrowed: narrowing it would reject the
      app's own messages. refresher itself never sends pickle.
    - task_default_queue and task_routes: the app's tasks stay where they go; refresher
      publishes to its own queue (REFRESHER_QUEUE, default `refresher`, or a loader's
      `queue=`), which the worker must consume: `celery -A proj worker -Q celery,refresher`.
    - worker_hijack_root_logger and logging: the app's own.
    - Time limits: refresher's publisher puts a soft and a hard limit on each task from
      the loader's max_load_time, so no worker-wide limit is needed.
    """
    app.conf.update(WORKER_SETTINGS)
    accepted = list(app.conf.accept_content or [])
    if "json" not in accepted and "application/json" not in accepted:
        app.conf.accept_content = [*accepted, "json"]
    included = list(app.conf.include or [])
    if TASKS_MODULE not in included:
        app.conf.include = [*included, TASKS_MODULE]
    return app


def import_loaders(spec: str | None = None) -> list[str]:
    """Import each module named in REFRESHER_LOADERS (comma-separated), so that their
    loaders are registered: a worker refreshes only those. Returns their names.

    With DJANGO_SETTINGS_MODULE set, Django is set up first (its models usable, and
    refresher.contrib.django's AppConfig imports the project's loader modules), so the
    ready-made worker and the `refresher` CLI work in a Django project without a
    bootstrap module."""
    if os.environ.get("DJANGO_SETTINGS_MODULE"):
        _set_up_django()
    spec = os.environ.get("REFRESHER_LOADERS", "") if spec is None else spec
    modules = [m.strip() for m in spec.split(",") if m.strip()]
    for module in modules:
        importlib.import_module(module)
    return modules


def _set_up_django() -> None:
    import django
    from django.apps import apps

    if not apps.ready and not apps.loading:  # never from inside Django's own populate()
        django.setup()
