"""The loaders the near-cache bench (bench/scenarios/near.py) reads through: a Refresher
with the near cache on, and a twin without it that writes the same keys.

`hot` is bench.loaders' hot key under the same name and function, so the bench's worker
(which imports bench.loaders) refreshes it; the near cache's copies are dropped by that
worker's commits like by any other write.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from refresher import Refresher

from bench import loaders, origin
from bench.workloads import FRESH

NEAR_ENTRIES = 10_000
cache = Refresher(near_cache=NEAR_ENTRIES)  # REFRESHER_REDIS_URL: the bench's own redis-server
plain = Refresher()  # no near cache: the writer in the lag and invalidation-cost measurements

hot = cache.loader(ttl=loaders.HOT.ttl, name="bench.hot")(loaders.hot_window.fn)


@dataclass(frozen=True)
class Card:
    """origin.RECORD as a frozen dataclass: one shared object serves every near hit."""

    name: str
    email: str
    roles: tuple[str, ...]
    theme: str
    locale: str
    logins: int
    posts: int
    followers: int
    bio: str


@cache.loader(ttl=FRESH.ttl, name="bench.near.record")
def record(key: str) -> dict[str, Any]:
    """A plain JSON dict: mutable, so every near hit gets a copy of its own."""
    return origin.fetch(FRESH, key)


@cache.loader(ttl=FRESH.ttl, name="bench.near.record_redis", near=False)
def record_redis(key: str) -> dict[str, Any]:
    """`record` with the near cache off: every hit is a GET."""
    return origin.fetch(FRESH, key)


@cache.loader(ttl=FRESH.ttl, name="bench.near.card")
def card(key: str) -> Card:
    r = origin.fetch(FRESH, key)
    return Card(r["name"], r["email"], tuple(r["roles"]), r["settings"]["theme"], r["settings"]["locale"],
                r["counters"]["logins"], r["counters"]["posts"], r["counters"]["followers"], r["bio"])


@cache.loader(ttl=FRESH.ttl, name="bench.near.counter")
def counter(key: str) -> dict[str, int]:
    """Rewritten with `set` by the writer below; a load (never expected) starts at 0."""
    return {"n": 0}


counter_writer = plain.loader(ttl=FRESH.ttl, name="bench.near.counter")(counter.fn)
