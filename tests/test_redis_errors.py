"""A Redis that answers but refuses (full at maxmemory, an ACL, a command it does not
know) raises the library's own errors, naming the fix; reads still answer where they can;
and no script reports a failure for a write that took effect."""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any, Iterator
from urllib.parse import urlsplit

import pytest
import redis

from refresher import Loader, Refresher
from refresher.io.failures import cache_error
from refresher.core.renew import refresh
from refresher import CacheForbidden, CacheFull, CacheRefused, CacheTooOld, RefresherError
from tests.support.reading import Reading
from tests.support.servers import RedisServer, free_port

pytestmark = pytest.mark.standalone_only  # CONFIG SET and ACL SETUSER on the one server


def counting(cache: Refresher, **options: Any) -> tuple[Loader[..., Any], list[int]]:
    calls: list[int] = []

    @cache.loader(ttl=60, name="t." + uuid.uuid4().hex[:10], **options)
    def load(n: int) -> dict[str, int]:
        calls.append(n)
        return {"n": n}

    return load, calls


FULL = "100kb"  # below what an empty redis-server uses: every write that needs memory is refused


@pytest.fixture
def full(r: redis.Redis) -> Iterator[redis.Redis]:
    """The cache at maxmemory with noeviction (Redis's default policy): writes refused."""
    r.config_set("maxmemory-policy", "noeviction")
    r.config_set("maxmemory", FULL)
    try:
        with pytest.raises(redis.exceptions.OutOfMemoryError):
            r.set("probe", "x")
        yield r
    finally:
        r.config_set("maxmemory", "0")


@pytest.fixture
def user(r: redis.Redis, redis_url: str) -> Iterator[Any]:
    """`user(rule)`: the cache's URL for a fresh ACL user with `rule` added to full access."""
    names: list[str] = []

    def make(rule: str) -> str:
        name = "u" + uuid.uuid4().hex[:8]
        names.append(name)
        r.execute_command("ACL", "SETUSER", name, "on", ">secret-pw", "~*", "&*", "+@all", rule)
        parts = urlsplit(redis_url)
        return parts._replace(netloc=f"{name}:secret-pw@{parts.netloc}").geturl()

    yield make
    for name in names:
        r.execute_command("ACL", "DELUSER", name)


def test_a_miss_at_maxmemory_answers_with_the_loaded_value_when_failing_open(
        reading: Reading, redis_url: str, full: redis.Redis) -> None:
    cache = Refresher(redis_url, queue="q-" + uuid.uuid4().hex[:8], fail_open=True)
    load, calls = counting(cache)
    try:
        assert reading.get(load, 1) == {"n": 1}
    finally:
        cache.close()
    assert calls == [1] and full.get(load.keys(1).value) is None
    assert cache.stats["cache_refused"] >= 1


def test_a_miss_at_maxmemory_raises_cache_full_naming_the_policy(reading: Reading, redis_url: str, full: redis.Redis) -> None:
    cache = Refresher(redis_url, queue="q-" + uuid.uuid4().hex[:8])
    load, calls = counting(cache)
    hit, _ = counting(cache)
    full.config_set("maxmemory", "0")
    reading.get(hit, 2)  # stored while there was room
    full.config_set("maxmemory", FULL)
    try:
        with pytest.raises(CacheFull, match="maxmemory-policy to volatile-lru") as raised:
            reading.get(load, 1)
        assert isinstance(raised.value, RefresherError) and calls == []
        assert reading.get(hit, 2) == {"n": 2}  # hits need no memory
        with pytest.raises(CacheFull):
            reading.set(load, 1, {"n": 5})  # not written: the caller must know
    finally:
        cache.close()


def test_a_worker_refresh_at_maxmemory_fails_with_cache_full_and_holds_no_lock(redis_url: str, full: redis.Redis) -> None:
    cache = Refresher(redis_url, queue="q-" + uuid.uuid4().hex[:8])
    load, calls = counting(cache)
    try:
        with pytest.raises(CacheFull, match="while refreshing"):
            load.run_steps(refresh(load.state, load.call((1,), {}), time.time(), None))
    finally:
        cache.close()
    assert calls == [] and full.get(load.keys(1).lock) is None


def test_a_user_without_a_command_gets_cache_forbidden_with_the_acl_rule(
        reading: Reading, user: Any, r: redis.Redis) -> None:
    closed = Refresher(user("-set"), queue="q-" + uuid.uuid4().hex[:8])
    open_ = Refresher(user("-set"), queue=closed.queue, fail_open=True)
    strict, calls = counting(closed)
    lenient, _ = counting(open_)
    try:
        with pytest.raises(CacheForbidden, match="ACL SETUSER") as raised:
            reading.get(strict, 1)
        assert isinstance(raised.value, CacheRefused) and calls == []
        assert reading.get(lenient, 1) == {"n": 1}
    finally:
        closed.close()
        open_.close()


def test_a_write_whose_publish_is_refused_is_reported_as_written(
        reading: Reading, user: Any, r: redis.Redis, caplog: pytest.LogCaptureFixture) -> None:
    """SPUBLISH denied: the scripts used to raise after their SET had taken effect, so
    set() reported a failure for a value that was stored, and a load "could not store"
    what it had stored."""
    cache = Refresher(user("-spublish"), queue="q-" + uuid.uuid4().hex[:8])
    load, calls = counting(cache)
    keys = load.keys(1)
    try:
        with caplog.at_level(logging.WARNING, logger="refresher"):
            assert reading.get(load, 1) == {"n": 1}
            assert r.get(keys.value) is not None and r.get(keys.lock) is None
            assert reading.get(load, 1) == {"n": 1} and calls == [1]  # stored: a hit
            reading.set(load, 1, {"n": 7})
            assert reading.get(load, 1) == {"n": 7}
            reading.invalidate(load, 1)
            assert reading.get(load, 1) == {"n": 1} and calls == [1, 1]
    finally:
        cache.close()
    assert "could not store" not in caplog.text
    assert caplog.text.count("waiters could not be told") >= 4  # two loads, a set, an invalidate


def test_unknown_commands_name_the_redis_version_needed(r: redis.Redis) -> None:
    """As a Redis before 7.0 answers SPUBLISH, or one with a command renamed away."""
    for command in (lambda: r.execute_command("SPUBLISHX", "c", "m"), lambda: r.eval("redis.call('SPUBLISHX', 'c', 'm')", 0)):
        with pytest.raises(redis.exceptions.ResponseError) as raised:
            command()
        error = cache_error(raised.value, "writing k")
        assert isinstance(error, CacheTooOld) and "Redis 7.0 or newer" in str(error)


@pytest.fixture
def replica() -> Iterator[str]:
    """The URL of a Redis that has become a replica (of a master it cannot reach): reads
    answer, every write gets READONLY, as a Sentinel's old master does during a failover."""
    server = RedisServer()
    server.start()
    try:
        redis.Redis(port=server.port).replicaof("127.0.0.1", free_port())
        yield server.url
    finally:
        server.stop()


@pytest.mark.parametrize("fail_open", [False, True])
def test_a_miss_refused_for_a_reason_with_no_named_fix_is_a_cache_refused(
        reading: Reading, replica: str, fail_open: bool) -> None:
    """A refusal the library has no fix to name (READONLY here; MISCONF, LOADING and BUSY
    alike) used to leave a miss as redis-py's ReadOnlyError, fail_open or not, while a hit,
    `set` and `invalidate` raised CacheRefused."""
    cache = Refresher(replica, queue="q-" + uuid.uuid4().hex[:8], fail_open=fail_open)
    load, calls = counting(cache)
    try:
        if fail_open:
            assert reading.get(load, 1) == {"n": 1} and calls == [1]
        else:
            with pytest.raises(CacheRefused, match="read only replica"):
                reading.get(load, 1)
            assert calls == []
        assert cache.stats["cache_refused"] == 1
    finally:
        cache.close()
