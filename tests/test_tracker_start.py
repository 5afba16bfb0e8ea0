"""A process starts tracking only where it buys something (issue 23, docs/scaling.md section
8): a near cache at its first read, else epoch fetches as frequent as the PINGs that would
replace them. A process that reads rarely holds no tracking connection and sends no PING,
and every read still honours an `invalidate_all` made elsewhere."""

from __future__ import annotations

import itertools
import uuid
from typing import Any, Iterator

import pytest
import redis

from refresher import Refresher
from refresher.io.tracking import CLIENT_NAME
from refresher.io.tracking_start import FETCHES_PER_SECOND
from tests.support.reading import Reading
from tests.support.servers import RedisServer
from tests.support.waiting import until

pytestmark = pytest.mark.standalone_only


@pytest.fixture
def admin(own_redis: RedisServer) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(own_redis.url)
    yield client
    client.close()


def trackers(admin: redis.Redis) -> int:
    """The connections of every tracker on the server (one per master: its link, which it PINGs on)."""
    return sum(1 for client in admin.client_list() if client.get("name") == CLIENT_NAME)


def pings(admin: redis.Redis) -> int:
    return int(admin.info("commandstats").get("cmdstat_ping", {}).get("calls", 0))


LOADS = itertools.count(1)


def counted(n: int) -> int:
    """Each load returns a number no load returned before: a value loaded again shows."""
    return next(LOADS)


def caches(url: str, near_cache: int = 0) -> tuple[Refresher, Any, Any]:
    """A process's cache and its loader, and the same loader in another process's cache
    (the same namespace) to invalidate from."""
    namespace = "start-" + uuid.uuid4().hex[:8]
    made = [Refresher(url, broker_url=url, namespace=namespace, near_cache=near).loader(ttl=300, name="start.counted")(counted)
            for near in (near_cache, 0)]
    return made[0].cache, made[0], made[1]


def test_a_process_that_reads_rarely_tracks_nothing(own_redis: RedisServer, admin: redis.Redis,
                                                    reading: Reading) -> None:
    """Fewer reads than start a tracker, an `invalidate_all(hard=True)` elsewhere between
    them: no tracking connection, and the read after it loads again. Then a near cache in
    the same process starts its own at once: the server holds its connections alone."""
    cache, counted, elsewhere = caches(own_redis.url)
    first = reading.get(counted, 1)  # 7 epoch fetches in all: a miss 1, a hit 1, the miss after a hard invalidation 4
    assert reading.get(counted, 1) == first
    elsewhere.invalidate_all(hard=True)
    assert [reading.get(counted, 1) for _ in range(2)] == [first + 1] * 2
    near, near_counted, _ = caches(own_redis.url, near_cache=10)
    reading.get(near_counted, 1)
    assert near.tracker.wait_live(5)
    sent = pings(admin)
    until(lambda: pings(admin) >= sent + 3, "the near cache's tracker never pinged")
    assert trackers(admin) == 1  # the near cache's one link; none of the rare reader's
    assert not cache.tracker.live and not cache.tracker.down
    for each in (cache, elsewhere.cache, near):
        each.close()


def test_a_process_that_reads_often_starts_tracking_and_keeps_epochs(own_redis: RedisServer, admin: redis.Redis,
                                                                     reading: Reading) -> None:
    """FETCHES_PER_SECOND reads start the tracker; from then on an `invalidate_all`
    elsewhere reaches the process as a push, and the next read loads again."""
    cache, counted, elsewhere = caches(own_redis.url)
    sent = pings(admin)
    first = reading.get(counted, 1)
    assert {reading.get(counted, 1) for _ in range(FETCHES_PER_SECOND * 2)} == {first}
    until(lambda: cache.tracker.live and trackers(admin) == 1, "reading often never started the tracker")
    until(lambda: pings(admin) > sent, "the tracker never pinged")
    until(lambda: [c["cmd"] for c in admin.client_list() if c.get("name") == CLIENT_NAME] == ["ping"],
          "the PINGs go on the tracking connection, its one connection to the master")
    assert reading.get(counted, 1) == first and cache.epochs.known([cache.epochs.loader_key("start.counted")])
    elsewhere.invalidate_all(hard=True)
    assert reading.get(counted, 1) == first + 1
    for each in (cache, elsewhere.cache):
        each.close()
