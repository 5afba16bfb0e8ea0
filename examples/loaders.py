"""Example loaders: user profiles whose origin is a slow "database".

Run a worker for them with `REFRESHER_LOADERS=examples.loaders celery -A workers worker`.
The database is simulated with a sleep, and every query is counted in Redis (per caller)
so that the demo can tell how often the origin was hit, whichever process hit it.

Settings come from the environment: REFRESHER_REDIS_URL, REFRESHER_NAMESPACE, ... for the
cache, EXAMPLES_PROFILE_TTL (seconds, default 300) and EXAMPLES_QUERY_SECONDS (default 0.2).
App processes and workers must see the same values, or they would disagree on the keys.
"""

from __future__ import annotations

import os
import time
from typing import Any, cast

import redis

from refresher import Refresher

cache = Refresher()
PROFILE_TTL = float(os.environ.get("EXAMPLES_PROFILE_TTL", "300"))
QUERY_SECONDS = float(os.environ.get("EXAMPLES_QUERY_SECONDS", "0.2"))
ORIGIN_CALLS = f"{cache.namespace}:examples:origin-calls"  # a hash: caller -> queries

_counters = redis.Redis.from_url(cache.redis_url, decode_responses=True)


def query_profile(user_id: int, caller: str) -> dict[str, Any]:
    """The slow origin, as a real app would `SELECT ... FROM users WHERE id = %s`."""
    _counters.hincrby(ORIGIN_CALLS, caller, 1)
    time.sleep(QUERY_SECONDS)
    return {"id": user_id, "name": f"user {user_id}", "plan": "pro" if user_id % 3 == 0 else "free",
            "loaded_at": time.time()}


def origin_calls() -> dict[str, int]:
    """Queries so far, per caller ("refresher", "naive"), across every process."""
    counts = cast(dict[str, str], _counters.hgetall(ORIGIN_CALLS))
    return {caller: int(n) for caller, n in counts.items()}


@cache.loader(ttl=PROFILE_TTL, refresh_window=0.2)
def user_profile(user_id: int) -> dict[str, Any]:
    """A user's profile, refreshed ahead by a worker during the last 20% of its TTL."""
    return query_profile(user_id, "refresher")
