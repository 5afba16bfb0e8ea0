"""The near cache's lag (issue 25): an upper bound of how stale a near copy served now can be,
from the PINGs on the invalidation connection (tracking_link.py `horizon`). Live, it stays
under a PING interval and the tracker's turn; with the server frozen it grows at least as
fast as the freeze lasts, through the tracker declaring it dead; thawed, it falls back; and
`refresher_near_cache_lag_seconds` exports it."""

from __future__ import annotations

import math
import os
import signal
import time

import pytest

from refresher import Refresher
from refresher.io.tracking import DEAD_AFTER, PING_EVERY
from tests.support.metrics import collected
from tests.support.readers import CTX
from tests.support.servers import RedisServer
from tests.support.waiting import until

LAG = "refresher_near_cache_lag_seconds"
LIVE_BOUND = PING_EVERY + 0.3  # a PING interval, the tracker's turn (PING_EVERY / 4), and this machine's load
pytestmark = pytest.mark.standalone_only  # it freezes its own server


def test_the_lag_is_bounded_live_grows_while_frozen_and_falls_back_when_thawed(own_redis: RedisServer) -> None:
    """In a process of its own: the collector takes the worst near cache of the process, and
    a pytest process holds others whose trackers other tests' freezes take down."""
    assert own_redis.proc is not None
    child = CTX.Process(target=watch_the_lag, args=(own_redis.url, own_redis.proc.pid))
    child.start()
    child.join(60)
    assert child.exitcode == 0, "the lag was not what it should be (the child's traceback is above)"


def watch_the_lag(url: str, pid: int) -> None:
    cache = Refresher(url, queue="near-lag", near_cache=100)
    try:
        assert cache.tracker.lag() is None and collected().value(LAG) == 0  # no tracking yet: nothing near is served

        @cache.loader(ttl=60, name="tests.near_lag")
        def doubled(n: int) -> int:
            return n * 2

        assert cache.tracker.wait_live(5)
        assert [doubled.get(1) for _ in range(3)] == [2] * 3
        assert cache.stats["near_hit"] == 1
        live = lags(cache, 1.0)
        print(f"live: {len(live)} samples, max {max(live):.3f} s, mean {sum(live) / len(live):.3f} s")
        assert max(live) < LIVE_BOUND
        assert 0 < collected().value(LAG) < LIVE_BOUND

        os.kill(pid, signal.SIGSTOP)
        frozen_at = time.monotonic()
        try:
            time.sleep(0.3)  # the freeze is what is measured: no event to wait for
            frozen_for = time.monotonic() - frozen_at
            assert lag_of(cache) >= frozen_for >= 0.3  # nothing answered since before the freeze
            until(lambda: not cache.tracker.live, "the tracker did not declare the frozen server dead", 5)
            frozen_for = time.monotonic() - frozen_at
            dead = lag_of(cache)
            print(f"frozen: lag {dead:.3f} s when declared dead after {frozen_for:.3f} s frozen")
            assert math.inf > dead >= frozen_for > DEAD_AFTER
            time.sleep(0.3)
            frozen_for = time.monotonic() - frozen_at
            assert math.inf > lag_of(cache) >= frozen_for > DEAD_AFTER + 0.3  # still growing, tracker down
            assert collected().value(LAG) > DEAD_AFTER + 0.3
        finally:
            os.kill(pid, signal.SIGCONT)
        thawed_at = time.monotonic()
        until(lambda: cache.tracker.live and lag_of(cache) < LIVE_BOUND,
              "the lag did not fall back once thawed", 10)
        print(f"thawed: live with lag under {LIVE_BOUND:.1f} s after {time.monotonic() - thawed_at:.3f} s")
        recovered = lags(cache, 1.0)
        print(f"recovered: max {max(recovered):.3f} s, mean {sum(recovered) / len(recovered):.3f} s")
        assert max(recovered) < LIVE_BOUND and cache.tracker.live
    finally:
        cache.close()
    assert cache.tracker.lag() is None  # a closed Refresher's bound is no one's


def lags(cache: Refresher, seconds: float) -> list[float]:
    """The tracker's lag every 5 ms for `seconds`."""
    found, until_at = [], time.monotonic() + seconds
    while time.monotonic() < until_at:
        found.append(lag_of(cache))
        time.sleep(0.005)
    return found


def lag_of(cache: Refresher) -> float:
    """inf where the tracker knows no bound (None), failing every assertion of one."""
    lag = cache.tracker.lag()
    return math.inf if lag is None else lag
