"""The cache Redis frozen under a near cache (issue 24): a loader with stale_if_down serves
the copies this process held when the outage began, the breaker makes every other read
answer at once, and no copy kept through the outage is served once tracking is back."""

from __future__ import annotations

import math
import signal
import time
import uuid
from typing import Any, Iterator

import pytest

from refresher import CacheUnavailable, Loader, Refresher
from refresher.core.options import Options
from tests.faults.test_cache_down import timed
from tests.support.reading import Reading
from tests.support.servers import RedisServer
from tests.support.waiting import until

pytestmark = pytest.mark.standalone_only  # it freezes its own cache server

SOCKET_TIMEOUT = 0.5
COOLDOWN = 0.3  # the tracker's reconnect is tried this often during the outage
FROZEN_FOR = 3.0  # seconds at least: reads measured from 1.5 s on, stale_if_down=1 checked past 2 s
WARM = range(20)


@pytest.fixture
def cache(own_redis: RedisServer) -> Iterator[Refresher]:
    c = Refresher(own_redis.url, socket_timeout=SOCKET_TIMEOUT, breaker_cooldown=COOLDOWN, near_cache=1000)
    yield c
    c.close()


def version_of(cache: Refresher, name: str, **options: Any) -> Loader[..., dict[str, int]]:
    @cache.loader(ttl=60, name=name, **options)
    def load(n: int) -> dict[str, int]:
        return {"n": n, "v": 1}

    return load


@pytest.mark.parametrize("option", [-1.0, math.nan, math.inf])
def test_stale_if_down_is_a_finite_number_of_seconds(option: float) -> None:
    with pytest.raises(ValueError, match="stale_if_down"):
        Options(ttl=60, stale_if_down=option).resolved()


def test_a_frozen_cache_serves_kept_copies_within_stale_if_down_and_answers_everything_else_at_once(
    reading: Reading, own_redis: RedisServer, cache: Refresher, caplog: pytest.LogCaptureFixture
) -> None:
    name = "faults.down" + uuid.uuid4().hex[:8]
    lasting, brief = version_of(cache, name + ".lasting", stale_if_down=10), version_of(cache, name + ".brief",
                                                                                         stale_if_down=1)
    assert cache.tracker.wait_live(5)  # else the first reads keep no copy
    for load in (lasting, brief):
        for n in WARM:
            assert [reading.get(load, n) for _ in range(3)] == [{"n": n, "v": 1}] * 3  # load, from Redis, from memory
    assert cache.near is not None and len(cache.near) == 2 * len(WARM)
    before = reading.entry(lasting, 0)
    assert before.state == "fresh" and before.value == {"n": 0, "v": 1} and before.version is not None
    assert own_redis.proc is not None
    own_redis.proc.send_signal(signal.SIGSTOP)
    frozen_at = time.monotonic()
    latencies: list[float] = []
    try:
        until(lambda: cache.breaker.open, "the tracker's PING found the cache frozen", 2)
        detected = time.monotonic() - frozen_at
        error, never_cached = timed(lambda: reading.get(lasting, 999))
        assert isinstance(error, CacheUnavailable), error
        assert never_cached < 0.05, never_cached  # no socket timeout: the outage is known
        assert reading.get(brief, 0) == {"n": 0, "v": 1}  # within its 1 s
        during = reading.entry(lasting, 0)  # what an app shows: "as of" the copy's write
        assert (during.state, during.version, during.value) == ("served_while_down", before.version, before.value)
        assert during.age >= before.age
        error, seconds = timed(lambda: reading.get_many(lasting, [0, 1, 999]))
        assert isinstance(error, CacheUnavailable) and seconds < 0.05, (error, seconds)  # 999 was never cached
        assert reading.get_many(lasting, [0, 1]) == [{"n": 0, "v": 1}, {"n": 1, "v": 1}]
        error, _ = timed(lambda: reading.set(lasting, 1, {"n": 1, "v": 9}))
        assert isinstance(error, CacheUnavailable), error  # writes fail loudly
        until(lambda: time.monotonic() - frozen_at >= 1.5, "1.5 s into the freeze", 5)
        brief_refused = False
        while time.monotonic() - frozen_at < FROZEN_FOR or not brief_refused:
            assert time.monotonic() - frozen_at < 8, "the outage never grew 2 s old"
            for n in WARM:
                started = time.perf_counter()
                value = reading.get(lasting, n)
                latencies.append(time.perf_counter() - started)
                assert value == {"n": n, "v": 1}  # the value from before the freeze, 0 errors
            if not brief_refused and cache.breaker.of(brief.keys(1).value).age() > 2.0:
                error, seconds = timed(lambda: reading.get(brief, 1))
                assert isinstance(error, CacheUnavailable) and seconds < 0.05, (error, seconds)
                brief_refused = True
    finally:
        own_redis.proc.send_signal(signal.SIGCONT)
    thawed_at = time.monotonic()
    p99 = sorted(latencies)[int(len(latencies) * 0.99)]
    print(f"[{reading}] detected after {detected * 1000:.0f} ms; a never-cached key failed in "
          f"{never_cached * 1000:.1f} ms; {len(latencies)} kept reads from 1.5 s on, p99 {p99 * 1000:.3f} ms")
    assert p99 < 0.005, p99
    assert cache.stats["served_while_down"] == len(latencies) + 6  # and the entry, and get_many's 2 + 2
    assert caplog.text.count("serving near copies kept from before the outage") == 1  # once per outage

    other = Refresher(own_redis.url, near_cache=10)
    try:
        other.loader(ttl=60, name=lasting.name)(lasting.fn).set(0, {"n": 0, "v": 2})
    finally:
        other.close()
    until(lambda: reading.get(lasting, 0) == {"n": 0, "v": 2}, "the new value was never served", 2)
    recovered = time.monotonic() - thawed_at
    print(f"[{reading}] a set after the thaw served {recovered * 1000:.0f} ms after it")
    assert all(reading.get(lasting, n) == {"n": n, "v": 1} for n in WARM[1:])  # from Redis, current
    assert reading.get(lasting, 0) == {"n": 0, "v": 2}  # and no old copy comes back


def test_a_copy_kept_through_an_outage_is_dropped_before_tracking_serves_again(
    own_redis: RedisServer, cache: Refresher
) -> None:
    """Stopped (connections refused, no socket waits): the copy is served only after a GET
    failed; restarted empty, the reconnect drops it before anything is served from memory."""
    load = version_of(cache, "faults.kept" + uuid.uuid4().hex[:8], stale_if_down=30)
    direct = version_of(cache, "faults.open" + uuid.uuid4().hex[:8], fail_open=True)
    assert [load.get(5) for _ in range(3)] == [{"n": 5, "v": 1}] * 3
    assert cache.near is not None
    near_hits = cache.stats["near_hit"]
    own_redis.stop()
    assert load.get(5) == {"n": 5, "v": 1}  # the GET refused: the kept copy
    assert cache.stats["served_while_down"] == 1 and cache.stats["near_hit"] == near_hits
    loaded = direct.entry(6)
    assert (loaded.state, loaded.value, loaded.version) == ("loaded_while_down", {"n": 6, "v": 1}, None)
    own_redis.start()
    assert cache.tracker.wait_live(5)
    assert len(cache.near) == 0  # dropped by the reconnect
    assert load.get(5) == {"n": 5, "v": 1} and cache.stats["miss"] == 2  # loaded again: the restart lost it



@pytest.mark.parametrize("near_cache", [0, 1000])
def test_get_many_while_the_breaker_is_open_answers_each_key_at_once(
    reading: Reading, own_redis: RedisServer, near_cache: int
) -> None:
    """No MGET waits on a frozen cache: each key gets at once its kept copy (near cache on,
    within stale_if_down), the loader (fail_open), or CacheUnavailable."""
    cache = Refresher(own_redis.url, socket_timeout=SOCKET_TIMEOUT, breaker_cooldown=COOLDOWN, near_cache=near_cache)
    try:
        name = "faults.many" + uuid.uuid4().hex[:8]
        kept, direct = version_of(cache, name, stale_if_down=10), version_of(cache, name + ".open", fail_open=True)
        assert cache.tracker.wait_live(5)
        assert [reading.get_many(kept, [0, 1]) for _ in range(3)] == [[{"n": 0, "v": 1}, {"n": 1, "v": 1}]] * 3
        assert own_redis.proc is not None
        own_redis.proc.send_signal(signal.SIGSTOP)
        until(lambda: cache.breaker.open, "the tracker's PING found the cache frozen", 2)
        answers: list[Any] = []
        error, seconds = timed(lambda: answers.append(reading.get_many(direct, [0, 1, 2])))
        assert error is None and seconds < 0.05, (error, seconds)
        assert answers == [[{"n": n, "v": 1} for n in (0, 1, 2)]]  # fail_open: the loader, per key
        error, seconds = timed(lambda: answers.append(reading.get_many(kept, [0, 1])))
        assert seconds < 0.05, seconds
        if near_cache:  # the copies kept from before the freeze
            assert error is None and answers[-1] == [{"n": 0, "v": 1}, {"n": 1, "v": 1}], error
            assert cache.stats["served_while_down"] == 2
        else:
            assert isinstance(error, CacheUnavailable), error
        print(f"[{reading}, near_cache={near_cache}] get_many while the breaker is open: {seconds * 1000:.2f} ms")
    finally:
        if own_redis.proc is not None:
            own_redis.proc.send_signal(signal.SIGCONT)
        cache.close()
