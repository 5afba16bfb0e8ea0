"""The Flask example: sync loaders over SQLite, served by gunicorn's forked workers.

    gunicorn -w 3 --preload examples.flask_app.app:app
    REFRESHER_LOADERS=examples.flask_app.loaders celery -A workers worker
"""
