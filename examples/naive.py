"""The cache-aside read most apps start with, for comparison: GET; on a miss, query the
origin and SET the result with a TTL. Every reader that misses queries the origin."""

from __future__ import annotations

import json
from typing import Any, cast

import redis

from examples.loaders import PROFILE_TTL, cache, query_profile

_redis = redis.Redis.from_url(cache.redis_url)


def key(user_id: int) -> str:
    return f"{cache.namespace}:examples:naive:user_profile:{user_id}"


def get_profile(user_id: int) -> dict[str, Any]:
    raw = cast(bytes | None, _redis.get(key(user_id)))
    if raw is not None:
        cached: dict[str, Any] = json.loads(raw)
        return cached
    value = query_profile(user_id, "naive")
    _redis.set(key(user_id), json.dumps(value), px=int(PROFILE_TTL * 1000))
    return value
