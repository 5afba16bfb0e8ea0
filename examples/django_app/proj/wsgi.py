"""The example as a WSGI app for gunicorn: `gunicorn examples.django_app.proj.wsgi`."""

from __future__ import annotations

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "examples.django_app.proj.settings")
application = get_wsgi_application()
