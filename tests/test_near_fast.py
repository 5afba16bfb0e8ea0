"""The near hit's fast path (Loader._near) against a real redis-server: it serves only
what read_near would serve as FRESH, and serves it without decoding the payload again."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest

from refresher import JsonCodec, Refresher
from refresher.core.policy import XFetch
from tests.support.reading import Reading
from tests.test_near import near, numbered

__all__ = ["near"]  # the fixture, shared with test_near

pytestmark = pytest.mark.standalone_only


class CountingCodec(JsonCodec):
    """JSON, counting decodes: a near hit of a dict must not decode."""

    def __init__(self) -> None:
        super().__init__()
        self.decodes = 0

    def decode(self, data: bytes) -> Any:
        self.decodes += 1
        return super().decode(data)


def kept(reading: Reading, load: Any, *args: Any) -> None:
    """Read until the value is in memory: the first read loads (and its own write drops
    the copy), the second reads Redis and keeps it."""
    reading.get(load, *args)
    reading.get(load, *args)


@pytest.mark.parametrize("hard", [True, False])
def test_invalidate_all_reaches_a_copy_in_memory(reading: Reading, near: Refresher, hard: bool) -> None:
    load, calls = numbered(near)
    kept(reading, load, 1)
    hits = near.stats["near_hit"]
    assert reading.get(load, 1) == {"n": 1, "tags": ["a"]} and near.stats["near_hit"] == hits + 1
    load.invalidate_all(hard=hard)
    assert reading.get(load, 1) == {"n": 1, "tags": ["a"]}
    if hard:
        assert calls == [1, 1]  # loaded again, not served from memory
        return
    assert calls == [1] and near.stats["refresh_asked"] == 1  # served, and its refresh asked for
    deduplicated = near.stats["refresh_deduplicated"]
    for _ in range(10):  # from memory again, each read still due for that refresh
        assert reading.get(load, 1) == {"n": 1, "tags": ["a"]}
    assert near.stats["refresh_asked"] == 1 and near.stats["refresh_deduplicated"] == deduplicated + 10


def test_a_policy_that_draws_decides_every_near_hit(reading: Reading, near: Refresher) -> None:
    """XFetch with a huge beta finds every read due: each near hit asks (deduplicated here)."""

    @near.loader(ttl=60, policy=XFetch(beta=1e12), name="t." + uuid.uuid4().hex[:10])
    def slow(n: int) -> dict[str, int]:
        time.sleep(0.005)  # the load's duration is XFetch's delta
        return {"n": n}

    kept(reading, slow, 1)
    assert near.stats["refresh_asked"] == 1
    deduplicated, hits = near.stats["refresh_deduplicated"], near.stats["near_hit"]
    for _ in range(5):
        assert reading.get(slow, 1) == {"n": 1}
    assert near.stats["near_hit"] == hits + 5
    assert near.stats["refresh_deduplicated"] == deduplicated + 5 and near.stats["refresh_asked"] == 1


def test_a_dict_hit_is_copied_not_decoded(reading: Reading, near: Refresher) -> None:
    codec = CountingCodec()

    @near.loader(ttl=60, codec=codec, name="t." + uuid.uuid4().hex[:10])
    def load(n: int) -> dict[str, Any]:
        return {"n": n, "tags": ["a"], "nested": {"deep": [1, 2]}}

    kept(reading, load, 1)
    decodes = codec.decodes
    served = [reading.get(load, 1) for _ in range(10)]
    assert codec.decodes == decodes
    assert all(value == {"n": 1, "tags": ["a"], "nested": {"deep": [1, 2]}} for value in served)
    assert len({id(value["nested"]["deep"]) for value in served}) == 10  # each its own
