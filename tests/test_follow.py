"""A read that finds a miss of its key already in flight in its process joins it before
sending a GET: that GET would miss too (or find what the miss is about to return), and on
a cold stampede every GET spared is one turn of the interpreter's lock, and one new pooled
connection, less on the way to the load. Real reader processes, a real redis-server."""

from __future__ import annotations

import threading
import time
import uuid
from typing import Iterator

import pytest
import redis

from refresher import Refresher
from tests.support.following import run_followers
from tests.support.loaders import calls
from tests.support.reading import Reading

PROCESSES, FOLLOWERS = 3, 12


def gets(r: redis.Redis) -> int:
    return int(r.info("commandstats").get("cmdstat_get", {}).get("calls", 0))


@pytest.mark.standalone_only  # counts the GETs of one server
def test_readers_that_find_the_miss_in_flight_send_no_get(r: redis.Redis, reading: Reading) -> None:
    before = gets(r)
    while_held: list[int] = []
    reports = run_followers(reading.mode, PROCESSES, FOLLOWERS, lambda: while_held.append(gets(r) - before))
    values = [v for out, _ in reports for v in out]
    assert values == [{"n": 7}] * (PROCESSES * (1 + FOLLOWERS)), [v for v in values if v != {"n": 7}][:1]
    # One GET per process (its first read's), the followers' none, before or after the load
    # landed; commandstats also counts the GET of its lock inside the one commit script
    assert while_held == [PROCESSES]
    assert gets(r) - before == PROCESSES + 1
    assert calls("follow_held") == 1
    assert sum(stats.get("load", 0) for _, stats in reports) == 1
    assert sum(stats.get("coalesced", 0) for _, stats in reports) == PROCESSES * FOLLOWERS
    assert sum(stats.get("miss", 0) for _, stats in reports) == PROCESSES  # each process's first read led


@pytest.fixture
def cache(redis_url: str) -> Iterator[Refresher]:
    c = Refresher(redis_url, queue="test-" + uuid.uuid4().hex[:8])  # a queue no worker reads
    yield c
    c.close()


@pytest.mark.parametrize("write", ["set", "invalidate"])
def test_a_read_after_a_write_does_not_take_the_overtaken_load_it_joined(
    reading: Reading, cache: Refresher, write: str
) -> None:
    """A load in flight, then `set` (or `invalidate`): a read that starts after the write
    returned may join that load, but its value was refused by the commit, so the read
    goes to Redis and gets what the write left (the set value, or a new load)."""
    started, release = threading.Event(), threading.Event()
    generation = [0]

    @cache.loader(ttl=60, name="t." + uuid.uuid4().hex[:10])
    def slow(n: int) -> str:
        seen = generation[0]  # what the origin holds when the load begins
        if seen == 0:
            started.set()
            assert release.wait(10)
        return f"loaded {seen}"

    first: list[str] = []
    loading = threading.Thread(target=lambda: first.append(reading.get(slow, 1)))
    loading.start()
    assert started.wait(10)  # the load is in the origin
    generation[0] = 1
    if write == "set":
        reading.set(slow, 1, "set value")
    else:
        reading.invalidate(slow, 1)
    after: list[str] = []
    reader = threading.Thread(target=lambda: after.append(reading.get(slow, 1)))
    reader.start()
    flight = cache.sync.flights._flights.get(slow.keys(1).value)
    deadline = time.monotonic() + 10  # no event says when the read has joined: its count is polled
    while reader.is_alive() and flight is not None and flight.waiters < 1 and time.monotonic() < deadline:
        time.sleep(0.002)
    release.set()
    loading.join(10)
    reader.join(10)
    assert first == ["loaded 0"]  # its own load's value, though the cache did not keep it
    assert after == ["set value" if write == "set" else "loaded 1"]
