"""The FastAPI example's loaders: `async def`, over SQLite through aiosqlite.

The app and its refresh worker both import this module
(`REFRESHER_LOADERS=examples.fastapi_app.loaders celery -A workers worker`), so both build
the same Refresher from the same REFRESHER_* environment and agree on every key.
"""

from __future__ import annotations

import asyncio

import aiosqlite
import redis.asyncio

from examples.userdb import PROFILE_TTL, QUERY_SECONDS, REFRESH_WINDOW, SELECT_USER, User, db_path, origin_calls_key, user
from refresher import Refresher

cache = Refresher()
ORIGIN_CALLS = origin_calls_key(cache.namespace, "fastapi")


async def query_user(user_id: int) -> User | None:
    """The origin: `SELECT ... WHERE id = ?`, made slow, counted in Redis first."""
    # A connection per query suits an origin that is meant to be called rarely, and
    # binds nothing to one event loop (the app and the worker each run their own).
    async with redis.asyncio.Redis.from_url(cache.redis_url) as counter:
        await counter.incr(ORIGIN_CALLS)
    async with aiosqlite.connect(db_path()) as db:
        await asyncio.sleep(QUERY_SECONDS)
        async with db.execute(SELECT_USER, (user_id,)) as rows:
            row = await rows.fetchone()
    return user(row)


@cache.loader(ttl=PROFILE_TTL, refresh_window=REFRESH_WINDOW)
async def load_user(user_id: int) -> User | None:
    """A user, or None for an unknown id (cached too, so unknown ids spare the database)."""
    return await query_user(user_id)
