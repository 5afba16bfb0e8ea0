"""The Django example, laid out as a standard Django + Celery project: `proj` (settings,
urls, the Celery app in proj/celery.py) and the `catalog` app, whose loaders.py declares
its loaders and tasks.py a task of its own. One worker runs both kinds of task:

    python -m examples.django_app.manage migrate
    python -m examples.django_app.manage runserver
    celery -A examples.django_app.proj worker -Q celery,refresher -l info
"""
