"""The tracker never dies in silence (issue 19, findings 4 and 7): foreign key names are
skipped, any failure in its thread takes it down (near cache flushed and bypassed) until it
is back, and a Redis user refused CLIENT TRACKING is told once what to grant."""

from __future__ import annotations

import logging
import threading
import time

import pytest
import redis

from refresher import Refresher
from refresher.io.connect import parse, sync_client, tracking_pools
from refresher.io.tracking import Tracker
from tests.support import near_loaders, tracked
from tests.support.readers import CTX
from tests.support.servers import RedisServer


def test_key_names_that_are_not_utf8_leave_the_near_cache_coherent(
    r: redis.Redis, redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Another app writes keys whose names are not UTF-8 under both tracked prefixes; then
    another process sets a near-cached key: the next reads see the new value within 200 ms.
    The names are skipped: were they decoded, the tracker would go down (its copies
    flushed, a warning) and come back, coherent too, but a stranger's key would have
    flushed every near cache of the fleet."""
    cache, counter = near_loaders.cache, near_loaders.counter
    assert cache.near is not None and cache.near.tracker.wait_live(5)
    assert counter.get("utf8") == counter.get("utf8") == {"n": 0}  # the second from memory
    flushed = cache.near.flushed
    with caplog.at_level(logging.WARNING, logger="refresher"):
        for prefix in (f"{cache.namespace}:{{", cache.epochs.prefix):
            r.set(prefix.encode() + b"\xff\xfe", b"not ours")
        setter = CTX.Process(target=tracked.set_counter, args=("utf8", 7))
        setter.start()
        setter.join(timeout=30)
        deadline = time.monotonic() + 0.2
        while counter.get("utf8") != {"n": 7}:
            assert time.monotonic() < deadline, "another process's set was not seen within 200 ms"
    assert cache.near.tracker.live and cache.near.flushed == flushed, caplog.text  # skipped, not a crash
    assert "near cache bypassed" not in caplog.text


def test_any_failure_in_the_tracker_takes_it_down_until_it_is_back(
    r: redis.Redis, redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The tracker's own callback fails on one push (a failure injected into its thread, or
    the reader that drains): everything kept is flushed, the tracker says it is down, and
    tracking comes back on by itself."""
    flushed = threading.Event()

    def invalidate(keys: list[bytes] | None) -> None:
        if keys is None:
            flushed.set()
        elif b"boom:now" in keys:
            raise RuntimeError("injected")

    client = sync_client(parse(redis_url), 1.0)
    tracker = Tracker(lambda: tracking_pools(client), ["boom:"], invalidate)
    try:
        assert tracker.wait_live(5)
        flushed.clear()
        with caplog.at_level(logging.WARNING, logger="refresher"):
            r.set("boom:now", 1)
            assert flushed.wait(5)  # the copies kept are gone...
            assert "injected" in caplog.text  # ...and it said so
        assert tracker.wait_live(5)  # back on
    finally:
        tracker.close()
        client.close()


@pytest.mark.standalone_only
def test_a_user_refused_client_tracking_is_warned_once_and_retried_with_back_off(
    r: redis.Redis, redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    """A Redis user without `client|tracking`: reads work (epochs fetched), one WARNING names
    the ACL rule, and attempts back off (within 3.2 s: at 0, 0.5 and 1.5 s, not every 0.5 s)."""
    password = "a-password-for-the-test"
    r.acl_setuser("notrack", enabled=True, passwords=[f"+{password}"], keys=["*"], channels=["*"],
                  commands=["+@all", "-client|tracking"])
    r.acl_log_reset()
    cache = Refresher(redis_url=f"redis://notrack:{password}@127.0.0.1:{redis_server.port}/0", namespace="acl",
                      near_cache=100)
    try:
        loader = cache.loader(ttl=60, name="tests.acl")(lambda n: n * 2)
        with caplog.at_level(logging.DEBUG, logger="refresher"):
            assert loader.get(21) == loader.get(21) == 42
            time.sleep(3.2)  # a window of time: the rate of attempts is what is measured
        warnings = [rec for rec in caplog.records if rec.levelno == logging.WARNING and "tracking" in rec.getMessage()]
        assert len(warnings) == 1 and "ACL SETUSER <user> +client|tracking" in warnings[0].getMessage()
        attempts = sum(int(entry["count"]) for entry in r.acl_log() if entry["object"] == "client|tracking")
        assert 2 <= attempts <= 4, attempts
        assert not cache.tracker.live
    finally:
        cache.close()
        r.acl_deluser("notrack")
