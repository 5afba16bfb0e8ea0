"""What one process costs the others and Redis (issue 23, docs/scaling.md): the pushes a
tracking process receives per value another process commits."""

from __future__ import annotations

import uuid
from typing import Iterator

import pytest
import redis

from refresher import Refresher
from refresher.core.keys import Keys
from tests.support import push_loaders
from tests.support.readers import CTX
from tests.support.waiting import until

KEYS = list(range(10))


@pytest.fixture
def idle(redis_url: str) -> Iterator[Refresher]:
    """A process's cache with a near cache, tracking its namespace, reading nothing."""
    cache = Refresher(redis_url, namespace="pushes-" + uuid.uuid4().hex[:8], queue="pushes-tests", near_cache=100)
    assert cache.near is not None and cache.near.tracker.wait_live(5)
    yield cache
    cache.close()


def test_a_value_loaded_elsewhere_costs_a_tracking_process_one_push(idle: Refresher, r: redis.Redis) -> None:
    """Another process loads 10 keys (lock, value, unlock each): the idle process hears of
    the 10 values and of nothing else, since locks and markers are outside `<ns>:{`."""
    near = idle.near
    assert near is not None
    heard: list[bytes] = []
    apply = near.invalidate

    def recorded(keys: list[bytes] | None) -> None:
        heard.extend(keys or [b"<everything>"])
        apply(keys)

    near.invalidate = recorded  # type: ignore[method-assign]
    before = near.invalidated
    loader = CTX.Process(target=push_loaders.load, args=(idle.namespace, KEYS))
    loader.start()
    loader.join(60)
    assert loader.exitcode == 0
    values = [Keys.build(idle.namespace, push_loaders.NAME, f"[{n}]").value for n in KEYS]
    ends = [f"{value}:end" for value in values]  # each in its value's slot: heard after it
    for end in ends:
        r.set(end, b"1")
    until(lambda: idle.tracker.sync() and set(ends) <= {key.decode() for key in heard}, "the end markers were heard")
    assert sorted(key.decode() for key in heard if key.decode() not in ends) == sorted(values)
    assert near.invalidated - before == len(KEYS) + len(ends)  # the counter the metrics export
