"""The loader of tests/test_old_redis.py, on the Redis 6.2 server the test started
(REFRESHER_TEST_OLD_REDIS: set before the test imports this, and in its reader processes)."""

from __future__ import annotations

import os
import time
from typing import Any

from refresher import Refresher

cache = Refresher(redis_url=os.environ["REFRESHER_TEST_OLD_REDIS"], namespace="old")


@cache.loader(ttl=60, name="tests.old.slow")
def slow(n: int) -> dict[str, Any]:
    time.sleep(0.2)
    return {"n": n}
