"""A loader whose first origin call fails, for docs/flower.png (docs/flower_screenshot.py):
the picture shows what an operator looks for, a failed refresh as FAILURE with the loader's
exception (RefreshFailed), beside the demo's written ones. The calls are counted in Redis,
so "first" holds whichever worker thread runs it."""

from __future__ import annotations

import redis

from refresher import Refresher

cache = Refresher()
PRICES = {"free": 0, "pro": 12, "team": 40}
_calls = redis.Redis.from_url(cache.redis_url)


@cache.loader(ttl=60)
def plan_price(plan: str) -> dict[str, str | int]:
    """A plan's monthly price from a pricing service, which times out on the first call."""
    if _calls.incr(f"{cache.namespace}:docs:pricing-calls") == 1:
        raise TimeoutError("pricing service timed out")
    return {"plan": plan, "monthly": PRICES[plan]}
