"""The Django app: `INSTALLED_APPS = [..., "refresher.contrib.django"]`."""

from __future__ import annotations

from django.apps import AppConfig

from refresher.contrib.django.setup import config, import_loaders


class RefresherConfig(AppConfig):
    """Imports the loader modules in `ready()`, when every app's models can be used: in
    runserver, in gunicorn and in a Celery worker (whose Django fixup calls django.setup()
    before consuming), without the `apps.ready` guard that raised "populate() isn't
    reentrant" when a loader module was imported while apps were loading."""

    name = "refresher.contrib.django"
    label = "refresher"
    verbose_name = "refresher"

    def ready(self) -> None:
        config()  # a misspelt key fails at start, not at the first read
        import_loaders()
