"""The Flask example's loaders: plain functions over SQLite (the standard sqlite3).

The app and its refresh worker both import this module
(`REFRESHER_LOADERS=examples.flask_app.loaders celery -A workers worker`), so both build
the same Refresher from the same REFRESHER_* environment and agree on every key.
"""

from __future__ import annotations

import sqlite3
import time
from contextlib import closing

import redis

from examples.userdb import PROFILE_TTL, QUERY_SECONDS, REFRESH_WINDOW, SELECT_USER, User, db_path, origin_calls_key, user
from refresher import Refresher

cache = Refresher()
ORIGIN_CALLS = origin_calls_key(cache.namespace, "flask")
_counter = redis.Redis.from_url(cache.redis_url)  # redis-py reconnects in a forked child by itself


def query_user(user_id: int) -> User | None:
    """The origin: `SELECT ... WHERE id = ?`, made slow, counted in Redis first."""
    _counter.incr(ORIGIN_CALLS)
    with closing(sqlite3.connect(db_path())) as db:
        time.sleep(QUERY_SECONDS)
        return user(db.execute(SELECT_USER, (user_id,)).fetchone())


@cache.loader(ttl=PROFILE_TTL, refresh_window=REFRESH_WINDOW)
def load_user(user_id: int) -> User | None:
    """A user, or None for an unknown id (cached too, so unknown ids spare the database)."""
    return query_user(user_id)
