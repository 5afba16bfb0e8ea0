"""Another process's `set` of a near-cached key (tests/test_tracking.py)."""

from __future__ import annotations

from tests.support.near_loaders import cache, counter


def set_counter(key: str, n: int) -> None:
    counter.set(key, {"n": n})
    cache.close()
