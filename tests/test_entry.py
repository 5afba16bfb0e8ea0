"""`loader.entry(...)`: the value with its state, age and version, as the cache holds it
(the down states are tested with a frozen server in tests/faults/test_stale_if_down.py)."""

from __future__ import annotations

import uuid
from typing import Iterator

import pytest
import redis

from refresher import Refresher, Served
from tests.support.ageing import age, expire_in
from tests.support.reading import Reading


@pytest.fixture
def cache(redis_url: str) -> Iterator[Refresher]:
    c = Refresher(redis_url, queue="entry-tests")
    yield c
    c.close()


def test_entry_gives_each_state_an_app_may_show(reading: Reading, cache: Refresher, r: redis.Redis) -> None:
    failing: list[bool] = []

    @cache.loader(ttl=60, stale_ttl=60, error_backoff=30, name="entry.t" + uuid.uuid4().hex[:8])
    def load(n: int) -> dict[str, int]:
        if failing:
            raise RuntimeError("origin down")
        return {"n": n}

    fresh = reading.entry(load, 1)
    assert isinstance(fresh, Served) and fresh.value == {"n": 1}
    assert fresh.state == "fresh" and fresh.version is not None and 0 <= fresh.age < 1
    with pytest.raises(AttributeError):
        fresh.state = "refreshing"  # type: ignore[misc]  # frozen: a record of one read

    older = age(r, load.keys(1), 20_000)
    aged = reading.entry(load, 1)
    assert (aged.state, aged.version) == ("fresh", older.version) and 20 <= aged.age < 21

    expire_in(r, load.keys(1), 3000)  # in the last 10% of its TTL
    assert reading.entry(load, 1).state == "refreshing"

    failing.append(True)
    expire_in(r, load.keys(1), -1000)  # past its TTL, within stale_ttl; reloading it fails
    stale = reading.entry(load, 1)
    assert (stale.state, stale.value, stale.version) == ("stale_if_error", {"n": 1}, older.version)
