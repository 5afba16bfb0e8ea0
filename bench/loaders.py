"""The refresher loaders the bench reads through. The bench's workers import this module
(`REFRESHER_LOADERS=bench.loaders`), which is what lets them refresh these keys.

Every loader calls the same counted origin as the other strategies. The XFetch twins
differ only in `policy=XFetch(1.0)`. The `async def` loaders (read with `aget`, refreshed
on the worker's event loop) await the same origin's `afetch`.
"""

from __future__ import annotations

from typing import Any

from refresher import Loader, Refresher, XFetch

from bench import origin
from bench.workloads import COLD, FRESH, MANY, hot

cache = Refresher()  # REFRESHER_REDIS_URL: the bench's own redis-server
HOT = hot()


@cache.loader(ttl=COLD.ttl, name="bench.cold")
def cold(key: str) -> dict[str, Any]:
    return origin.fetch(COLD, key)


@cache.loader(ttl=COLD.ttl, policy=XFetch(1.0), name="bench.cold_xfetch")
def cold_xfetch(key: str) -> dict[str, Any]:
    return origin.fetch(COLD, key)


@cache.loader(ttl=HOT.ttl, name="bench.hot")
def hot_window(key: str) -> dict[str, Any]:
    return origin.fetch(HOT, key)


@cache.loader(ttl=HOT.ttl, policy=XFetch(1.0), name="bench.hot_xfetch")
def hot_xfetch(key: str) -> dict[str, Any]:
    return origin.fetch(HOT, key)


@cache.loader(ttl=FRESH.ttl, name="bench.fresh")
def fresh(key: str) -> dict[str, Any]:
    return origin.fetch(FRESH, key)


@cache.loader(ttl=FRESH.ttl, policy=XFetch(1.0), name="bench.fresh_xfetch")
def fresh_xfetch(key: str) -> dict[str, Any]:
    return origin.fetch(FRESH, key)


# The window opens 0.5% into the TTL, so 100,000 freshly loaded keys are due for a refresh
# within seconds; a 1 s lock keeps the pending marker from outliving that short wait.
@cache.loader(ttl=MANY.ttl, refresh_window=0.995, lock_ttl=1.0, name="bench.many")
def many(key: str) -> dict[str, Any]:
    return origin.fetch(MANY, key)


@cache.loader(ttl=COLD.ttl, name="bench.acold")
async def acold(key: str) -> dict[str, Any]:
    return await origin.afetch(COLD, key)


@cache.loader(ttl=HOT.ttl, name="bench.ahot")
async def ahot(key: str) -> dict[str, Any]:
    return await origin.afetch(HOT, key)


@cache.loader(ttl=FRESH.ttl, name="bench.afresh")
async def afresh(key: str) -> dict[str, Any]:
    return await origin.afetch(FRESH, key)


BY_POLICY: dict[str, dict[str, Loader[Any, Any]]] = {
    "window": {"cold": cold, "hot": hot_window, "fresh": fresh, "many": many},
    "xfetch": {"cold": cold_xfetch, "hot": hot_xfetch, "fresh": fresh_xfetch},
    "async": {"cold": acold, "hot": ahot, "fresh": afresh},  # the Window policy, `async def`
}
