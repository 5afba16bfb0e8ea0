"""A loader whose output changed shape in a deploy: version 1 returns {"name"}, version 2
{"first", "last"}. TEST_LOADER_VERSION picks which one this process runs, so old and new
app processes and workers can run side by side (tests/test_invalidation.py)."""

from __future__ import annotations

import os
from typing import Any

from refresher import Refresher

VERSION = int(os.environ.get("TEST_LOADER_VERSION", "1"))
KEYS = 20
cache = Refresher(queue="versioned")


@cache.loader(ttl=1.5, refresh_window=0.5, name="tests.versioned.person", version=VERSION)
def person(n: int) -> dict[str, Any]:
    if VERSION == 1:
        return {"name": f"Ada {n}"}
    return {"first": "Ada", "last": str(n)}


def shape(value: dict[str, Any]) -> int:
    """Which version's shape a value has."""
    return 1 if set(value) == {"name"} else 2 if set(value) == {"first", "last"} else 0
