"""A near hit judges its copy's epochs once per change to the epochs known (core/near.py,
Entry.judged), not on every hit: each kind of epoch change must still reach a copy that
was already served from memory, and a change to another loader's epoch must not cost
the copy."""

from __future__ import annotations

import uuid

import pytest

from refresher import Refresher
from tests.support.reading import Reading
from tests.test_near import near, numbered
from tests.test_near_fast import kept

__all__ = ["near"]  # the fixture, shared with test_near

pytestmark = pytest.mark.standalone_only
SERVED = {"n": 1, "tags": ["a"]}


@pytest.mark.parametrize("where", ["here", "elsewhere"])
@pytest.mark.parametrize("change", ["tag", "all_hard"])
def test_an_epoch_change_reaches_a_copy_already_served_from_memory(
    reading: Reading, near: Refresher, redis_url: str, change: str, where: str
) -> None:
    tag = "judged-" + uuid.uuid4().hex[:8]
    load, calls = numbered(near, tags=lambda n: [tag])
    kept(reading, load, 1)
    hits = near.stats["near_hit"]
    assert [reading.get(load, 1) for _ in range(3)] == [SERVED] * 3
    assert near.stats["near_hit"] == hits + 3 and calls == [1]  # judged once, then served as judged
    other = near if where == "here" else Refresher(redis_url, queue=near.queue)
    if change == "tag":
        other.invalidate_tag(tag)
    else:
        twin = other.loader(ttl=60, name=load.name)(load.fn) if other is not near else load
        twin.invalidate_all(hard=True)
    assert reading.get(load, 1) == SERVED
    assert calls == [1, 1]  # loaded again: the copy in memory was not served
    if other is not near:
        other.close()


def test_another_loaders_epoch_change_leaves_the_copy_served_from_memory(reading: Reading, near: Refresher) -> None:
    load, calls = numbered(near)
    other, _ = numbered(near)
    kept(reading, load, 1)
    reading.get(load, 1)
    other.invalidate_all(hard=True)
    hits = near.stats["near_hit"]
    assert reading.get(load, 1) == SERVED
    assert near.stats["near_hit"] == hits + 1 and calls == [1]  # judged again, and still served from memory
