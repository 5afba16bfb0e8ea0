"""The project's Celery app, configured from Django's settings (the CELERY_* ones).

`autodiscover_tasks()` imports each installed app's `tasks` module: the catalog's own, and
refresher.contrib.django's, which registers refresher's refresh tasks. The worker sets
Django up (Celery's Django fix-up) before it consumes, and refresher's AppConfig then
imports the loader modules: no bootstrap module, no REFRESHER_LOADERS.
"""

from __future__ import annotations

import os

from celery import Celery

import refresher.worker

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "examples.django_app.proj.settings")

app = Celery("proj")
app.config_from_object("django.conf:settings", namespace="CELERY")
refresher.worker.configure(app)  # prefetch 1, the broker-restart consumer, refresher.tasks included
app.autodiscover_tasks()
