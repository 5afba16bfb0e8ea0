"""Settings for the Django example: the catalog app, SQLite, Celery and refresher.

One source for the web processes, the worker (`celery -A examples.django_app.proj worker`),
Flower and the CLI: the CELERY_* settings configure the project's Celery app, and
REFRESHER publishes through that app. The CATALOG_* environment variables are the
project's own (they let the tests point it at their servers); no process of the project
reads refresher's REFRESHER_* ones.
"""

from __future__ import annotations

import os
import tempfile

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "an example, not a secret")
DEBUG = os.environ.get("DJANGO_DEBUG") == "1"
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]
INSTALLED_APPS = ["examples.django_app.catalog", "refresher.contrib.django"]
MIDDLEWARE: list[str] = []
ROOT_URLCONF = "examples.django_app.proj.urls"
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("EXAMPLES_DB") or os.path.join(tempfile.gettempdir(), "refresher-examples.sqlite3"),
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
TIME_ZONE = "UTC"

REDIS_URL = os.environ.get("CATALOG_REDIS_URL", "redis://localhost:6379/0")
CELERY_BROKER_URL = os.environ.get("CATALOG_BROKER_URL", REDIS_URL)
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
REFRESHER = {
    "REDIS_URL": REDIS_URL,
    "NAMESPACE": os.environ.get("CATALOG_NAMESPACE", "refresher"),
    "QUEUE": os.environ.get("CATALOG_QUEUE", "refresher"),  # the worker consumes it: -Q celery,<QUEUE>
    "CELERY_APP": "examples.django_app.proj.celery.app",
}
CATALOG_PRODUCT_TTL = float(os.environ.get("CATALOG_PRODUCT_TTL", "300"))  # seconds
