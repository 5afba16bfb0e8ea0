"""Reads that find another read of their key under way in their process: one that finds
a miss of the key in flight joins it before sending a GET (that GET would miss too, or find
what the miss is about to return); threads that miss a key no GET of theirs has found share
one GET (io/drivers/threads.py; asyncio tasks share every GET in flight already). On a cold
stampede every GET spared is one turn of the interpreter's lock, and one new pooled
connection, less on the way to the load. Real reader processes, a real redis-server."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import time
import uuid
from typing import Any, Iterator

import pytest
import redis

from refresher import Refresher
from refresher.core.copies import handout
from refresher.core.miss import miss
from refresher.core.ops import Coalesce
from refresher.io.drivers import loop
from refresher.io.drivers.threads import SharedGet
from tests.support import loaders
from tests.support.following import run_followers
from tests.support.loaders import calls
from tests.support.readers import run_readers
from tests.support.reading import Reading

PROCESSES, FOLLOWERS, THREADS = 3, 12, 20


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


@pytest.mark.parametrize("current", [True, False])
def test_a_coalesced_read_takes_an_overtaken_load_only_from_redis(cache: Refresher, current: bool) -> None:
    """A read that joined a load (a Coalesce) which a write overtook reads the key again:
    it may have begun after that write (its GET another thread's: io/drivers/threads.py)."""

    @cache.loader(ttl=60, name="t." + uuid.uuid4().hex[:10])
    def load(n: int) -> str:
        return "never called"

    load.set(1, "set value")
    driver = cache.sync
    joined = driver._perform[Coalesce]
    landed = ("the load's value", current, handout("the load's value"))
    driver._perform[Coalesce] = lambda op, stepper: (landed, False)  # as a joiner hears it
    try:
        value = driver.run(miss(load.state, load.call((1,), {}), None))
    finally:
        driver._perform[Coalesce] = joined
    assert value == ("the load's value" if current else "set value")


@pytest.mark.standalone_only  # counts the GETs of one server
def test_threads_missing_a_cold_key_at_once_send_one_get_per_process(r: redis.Redis, reading: Reading) -> None:
    before = gets(r)
    # The server holds every command for 0.4 s from the release (within the readers' 1 s
    # socket timeout): each process's first GET waits there while all its readers start.
    reports = run_readers("tests.support.loaders.slow_user", [2002], processes=PROCESSES, threads=THREADS,
                          mode=reading.mode, before_go=lambda: r.client_pause(400))
    sent = gets(r) - before
    assert [e for rep in reports for e in rep.errors] == []
    assert [v for rep in reports for v in rep.values] == [{"id": 2002, "name": "user 2002"}] * (PROCESSES * THREADS)
    assert sent == PROCESSES + 1  # + the GET of its lock inside the one commit script
    assert loaders.calls("slow_user") == 1


def test_a_key_found_once_is_read_by_each_thread_itself(reading: Reading) -> None:
    """A hot key's reads do not wait for each other's GETs: once a GET found the key,
    its reads each send their own (a shared reply could be older than a write that came
    before a reader began)."""
    assert reading.get(loaders.windowed, 4) == 8  # loaded, then found
    assert reading.get(loaders.windowed, 4) == 8
    if reading.mode == "sync":
        key = loaders.windowed.keys(4).value
        assert key in loaders.cache.sync._present
        assert key not in loaders.cache.sync._getting




def test_a_get_alone_is_sent_even_while_one_of_the_key_is_in_flight(reading: Reading, cache: Refresher) -> None:
    """What `entry` describes is read with a GET of its own: one shared with another read
    of the key may have been sent before the value was written. Here a GET of the key is
    in flight, never answered, as another thread's or task's would be."""

    @cache.loader(ttl=60, name="t." + uuid.uuid4().hex[:10])
    def load(n: int) -> int:
        return n

    assert reading.get(load, 3) == 3
    key = load.keys(3).value
    if reading.mode == "sync":
        cache.sync._getting[key] = SharedGet()  # never answered
        read: list[bytes | None | Exception] = []
        reading_alone = threading.Thread(target=lambda: read.append(cache.sync.get(key, alone=True)), daemon=True)
        reading_alone.start()
        reading_alone.join(5)
        del cache.sync._getting[key]
    else:
        async def read_alone_while_a_get_is_in_flight() -> list[bytes | None | Exception]:
            driver = cache.aio()
            driver._reading[key] = asyncio.get_running_loop().create_future()  # never answered
            try:
                return [await asyncio.wait_for(driver.get(key, alone=True), 5)]
            finally:
                del driver._reading[key]

        read = loop.run(read_alone_while_a_get_is_in_flight)
    assert len(read) == 1 and isinstance(read[0], bytes)
    assert load.state.parse(read[0]) is not None


@dataclasses.dataclass
class Basket:  # mutable, and not JSON-shaped: copied by deepcopy, not by copies.copier
    items: list[int]


@pytest.mark.parametrize("kind", ["dict", "dataclass"])
def test_callers_that_joined_one_load_each_get_a_value_of_their_own(
    reading: Reading, cache: Refresher, kind: str
) -> None:
    """Four callers in one process, one load: the leader's value and each joiner's are
    distinct objects sharing no list, so a caller changing its value in place changes
    nobody else's (the joiners were handed the leader's own object)."""
    started, release = threading.Event(), threading.Event()

    def origin(n: int) -> Any:
        started.set()
        assert release.wait(10)
        return {"items": [1, 2]} if kind == "dict" else Basket([1, 2])

    origin.__annotations__["return"] = dict[str, list[int]] if kind == "dict" else Basket
    slow = cache.loader(ttl=60, name="t." + uuid.uuid4().hex[:10])(origin)

    got: list[Any] = []
    readers = [threading.Thread(target=lambda: got.append(reading.get(slow, 1))) for _ in range(4)]
    readers[0].start()
    assert started.wait(10)
    for reader in readers[1:]:
        reader.start()
    flight = cache.sync.flights._flights.get(slow.keys(1).value)
    assert flight is not None
    deadline = time.monotonic() + 10  # no event says when a read has joined: the count is polled
    while flight.waiters < 3 and time.monotonic() < deadline:
        time.sleep(0.002)
    assert flight.waiters == 3
    release.set()
    for reader in readers:
        reader.join(10)
    lists = [value["items"] if isinstance(value, dict) else value.items for value in got]
    assert len(lists) == 4 and len({id(items) for items in lists}) == 4
    lists[0].append(99)
    assert [items for items in lists[1:]] == [[1, 2]] * 3
