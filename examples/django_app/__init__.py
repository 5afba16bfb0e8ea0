"""The Django example: a project whose `catalog` app declares its loaders in loaders.py.

    python -m examples.django_app.manage migrate
    python -m examples.django_app.manage runserver
    DJANGO_SETTINGS_MODULE=examples.django_app.settings \
        REFRESHER_LOADERS=examples.django_app.catalog.loaders celery -A workers worker
"""
