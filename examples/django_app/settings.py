"""Settings for the Django example: the catalog app, SQLite, and refresher's settings.

The REFRESHER_* settings come from the environment, because a refresh worker reads its
broker and queue from there (REFRESHER_BROKER_URL, REFRESHER_QUEUE, see the README): one
source keeps the app and its worker on the same Redis, keys and queue.
"""

from __future__ import annotations

import os
import tempfile

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "an example, not a secret")
DEBUG = os.environ.get("DJANGO_DEBUG") == "1"
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]
INSTALLED_APPS = ["examples.django_app.catalog"]
MIDDLEWARE: list[str] = []
ROOT_URLCONF = "examples.django_app.urls"
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("EXAMPLES_DB") or os.path.join(tempfile.gettempdir(), "refresher-examples.sqlite3"),
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
TIME_ZONE = "UTC"

REFRESHER_REDIS_URL = os.environ.get("REFRESHER_REDIS_URL", "redis://localhost:6379/0")
REFRESHER_NAMESPACE = os.environ.get("REFRESHER_NAMESPACE", "refresher")
REFRESHER_QUEUE = os.environ.get("REFRESHER_QUEUE", "refresher")
CATALOG_PRODUCT_TTL = float(os.environ.get("CATALOG_PRODUCT_TTL", "300"))  # seconds
