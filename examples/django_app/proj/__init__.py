"""The project package. Importing the Celery app here (the layout Celery's Django guide
recommends) makes `shared_task`s use it and `celery -A examples.django_app.proj` find it."""

from examples.django_app.proj.celery import app as celery_app

__all__ = ["celery_app"]
