"""The loader handle: `load_user.get(1001)`, `await load_user.aget(1001)` and the rest.

Its sync reads (reads.py) are generated from its async ones (areads.py), which are the one
source; what both share is in loader_base.py. The decisions live in refresher/core."""

from __future__ import annotations

from typing import ParamSpec, TypeVar

from refresher.api.areads import AsyncReads
from refresher.api.reads import Reads

P = ParamSpec("P")
R = TypeVar("R")


class Loader(Reads[P, R], AsyncReads[P, R]):
    """What `@cache.loader(...)` returns: the function, read through the cache."""
