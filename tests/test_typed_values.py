"""Issue 8's rule: every path returns the same value, typed by the loader's return
annotation. Each path below is checked with values whose JSON form differs from the
original, for sync and async readers."""

from __future__ import annotations

import logging
import uuid
from datetime import date
from typing import Any

import pytest
import redis

from refresher import Loader, Refresher
from refresher.core.envelope import Envelope
from tests.conftest import TaskLog
from tests.support import typed_loaders as tl
from tests.support.ageing import expire_in, into_window
from tests.support.reading import Reading
from tests.support.waiting import lead_and_wait

LOADERS = {"dataclass": tl.profile, "dict-int-tuple": tl.scores, "struct-namedtuple-typeddict": tl.pins,
           "pydantic": tl.account}


def same(a: Any, b: Any) -> bool:
    """Equal, and of the same type all the way down (1 == 1.0 and (1,) != [1] aside)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(k, k2) and same(a[k], b[k2]) for k, k2 in zip(a, b))
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return bool(a == b)


@pytest.fixture(params=list(LOADERS))
def loader(request: pytest.FixtureRequest) -> Loader[..., Any]:
    return LOADERS[request.param]


@pytest.fixture
def n(r: redis.Redis) -> int:
    """A fresh key argument (on a clean test Redis: the loaders count calls there)."""
    return uuid.uuid4().int % 10_000 + 1


def test_a_miss_a_hit_and_get_many_return_the_loaded_type(reading: Reading, loader: Loader[..., Any], n: int) -> None:
    expected = loader.fn(n)  # what the origin returns (a direct call, not cached)
    leader = reading.get(loader, n)
    assert type(leader) is type(expected)
    hit = reading.get(loader, n)
    (many,) = reading.get_many(loader, [n])
    assert same(hit, leader) and same(many, leader)


def test_set_then_read_returns_the_set_type(reading: Reading, loader: Loader[..., Any], n: int) -> None:
    value = loader.fn(n)
    reading.set(loader, n, value)
    assert same(reading.get(loader, n), value)


def test_a_waiter_in_another_process_gets_the_type_too(
    reading: Reading, loader: Loader[..., Any], n: int, redis_url: str
) -> None:
    """Another Refresher stands for another process: it waits on the signal channel
    while this one loads, and decodes the envelope the holder announces."""
    other = Refresher(redis_url)
    try:
        leader, waiter = lead_and_wait(reading, loader.cache, other, loader.fn, n, **tl.OPTIONS)
    finally:
        other.close()
    assert same(waiter, leader)
    assert type(waiter) is type(loader.fn(n))


def test_a_stale_value_served_on_error_keeps_its_type(
    reading: Reading, loader: Loader[..., Any], n: int, r: redis.Redis
) -> None:
    first = reading.get(loader, n)
    expire_in(r, loader.keys(n), -1_000)  # past its TTL, inside stale_ttl
    tl.control.set("typed:down", 1)
    try:
        stale = reading.get(loader, n)
    finally:
        tl.control.delete("typed:down")
    assert same(stale, first)


def test_a_value_refreshed_by_a_worker_reads_back_typed(
    reading: Reading, loader: Loader[..., Any], n: int, r: redis.Redis, tasks_done: TaskLog, worker: object
) -> None:
    first = reading.get(loader, n)
    into_window(r, loader.keys(n))
    assert same(reading.get(loader, n), first)  # served as it is; the worker is asked
    assert tasks_done.wait(1) == ["written"]
    refreshed = reading.get(loader, n)
    assert type(refreshed) is type(first) and not same(refreshed, first)  # the worker's new value


def test_typed_arguments_reach_the_worker_typed(
    reading: Reading, r: redis.Redis, tasks_done: TaskLog, worker: object
) -> None:
    args = (uuid.UUID(int=7), date(2026, 11, 26), tl.Tier.FREE)
    first = reading.get(tl.since, *args)
    into_window(r, tl.since.keys(*args))
    reading.get(tl.since, *args)
    assert tasks_done.wait(1) == ["written"]  # the loader asserts its argument types
    assert reading.get(tl.since, *args) == (*first[:3], "2")


def test_bytes_of_an_older_shape_are_a_counted_logged_miss(
    reading: Reading, n: int, r: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    """After a deploy changed the type: no exception reaches the caller, the value reloads."""
    keys = tl.profile.keys(n)
    reading.get(tl.profile, n)
    old = Envelope.from_bytes(r.get(keys.value) or b"")
    r.set(keys.value, old._replace(payload=b'{"id": 5, "name": "the old shape"}').to_bytes(), px=60_000)
    corrupt = tl.cache.stats["corrupt"]
    with caplog.at_level(logging.WARNING, logger="refresher"):
        value = reading.get(tl.profile, n)
    assert isinstance(value, tl.Profile)
    assert tl.cache.stats["corrupt"] == corrupt + 1
    assert tl.profile.name in caplog.text


@pytest.mark.parametrize(
    ("returns", "part"),
    [({1: "a"}, "key 1"), ((1, 2), "tuple came back as list"), ([{"at": (1, 2)}], "value[0]['at']")],
    ids=["int-keys", "tuple", "nested-tuple"],
)
def test_an_unannotated_value_json_would_reshape_is_refused_at_load(
    reading: Reading, redis_url: str, r: redis.Redis, returns: Any, part: str
) -> None:
    cache = Refresher(redis_url)
    try:
        @cache.loader(ttl=60, name="typed.t" + uuid.uuid4().hex[:8])
        def load(n: int) -> Any:
            return returns

        with pytest.raises(TypeError, match=load.name) as raised:
            reading.get(load, 1)
        assert part in str(raised.value)
        assert r.get(load.keys(1).value) is None and r.get(load.keys(1).lock) is None
    finally:
        cache.close()


def test_an_unannotated_loader_returns_the_json_form_on_every_path(reading: Reading, redis_url: str) -> None:
    cache = Refresher(redis_url)
    try:
        @cache.loader(ttl=60, name="typed.t" + uuid.uuid4().hex[:8])
        def load(n: int):  # type: ignore[no-untyped-def]
            return {"n": n, "nested": [1, {"a": None}]}

        assert same(reading.get(load, 1), reading.get(load, 1))
        assert reading.get(load, 1) == {"n": 1, "nested": [1, {"a": None}]}
    finally:
        cache.close()
