"""What only the asyncio side has: `async def` loaders, event loops, cancellation and
timeouts. Everything else runs for both drivers through the `reading` fixture."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from typing import Any, Iterator

import pytest
import redis

from refresher import Refresher
from tests.conftest import TaskLog
from tests.support.ageing import into_window
from tests.support.loopwatch import blocked_callbacks


@pytest.fixture
def cache(redis_url: str) -> Iterator[Refresher]:
    c = Refresher(redis_url)
    yield c
    c.close()


def unique() -> str:
    return "t." + uuid.uuid4().hex[:10]


class Origin:
    """An async origin a test can hold open: `entered` is set once a call is inside."""

    def __init__(self) -> None:
        self.calls: list[Any] = []
        self.entered = threading.Event()
        self.release = threading.Event()

    async def __call__(self, n: int) -> dict[str, Any]:
        self.calls.append(n)
        self.entered.set()
        while not self.release.is_set():
            await asyncio.sleep(0.005)
        return {"n": n, "call": len(self.calls)}


def test_an_async_loader_is_read_with_aget_and_refused_by_get(cache: Refresher) -> None:
    origin = Origin()
    origin.release.set()
    load = cache.loader(ttl=60, name=unique())(origin.__call__)

    async def main() -> list[Any]:
        return [await load.aget(1), await load.aget(1), await load.aget_many([1, 2])]

    assert asyncio.run(main()) == [{"n": 1, "call": 1}, {"n": 1, "call": 1}, [{"n": 1, "call": 1}, {"n": 2, "call": 2}]]
    with pytest.raises(TypeError, match="aget"):
        load.get(1)
    with pytest.raises(TypeError, match="aget_many"):
        load.get_many([1])


def test_each_event_loop_gets_its_own_connections(cache: Refresher) -> None:
    """A test framework with a new loop per test, or an app with several loops."""

    @cache.loader(ttl=60, name=unique())
    def load(n: int) -> int:
        return n * 10

    results = [asyncio.run(load.aget(n)) for n in (1, 2, 1)]
    other: list[int] = []
    thread = threading.Thread(target=lambda: other.append(asyncio.run(load.aget(2))))
    thread.start()
    thread.join(10)
    assert results == [10, 20, 10] and other == [20]


def test_threads_and_tasks_in_one_process_share_one_load(cache: Refresher) -> None:
    calls: list[int] = []
    entered, release = threading.Event(), threading.Event()

    @cache.loader(ttl=60, name=unique())
    def load(n: int) -> int:
        calls.append(n)
        entered.set()
        release.wait(10)
        return n + 1

    sync_results: list[int] = []
    threads = [threading.Thread(target=lambda: sync_results.append(load.get(5))) for _ in range(4)]
    threads[0].start()
    assert entered.wait(10)  # a thread leads the load
    for t in threads[1:]:
        t.start()

    async def main() -> list[int]:
        readers = [asyncio.create_task(load.aget(5)) for _ in range(4)]
        key = load.keys(5).value
        while cache.sync.flights._flights[key].waiters < 7:
            await asyncio.sleep(0.001)
        release.set()
        return list(await asyncio.gather(*readers))

    assert asyncio.run(main()) == [6] * 4
    for t in threads:
        t.join(10)
    assert sync_results == [6] * 4 and calls == [5]
    assert cache.stats["miss"] == 1 and cache.stats["coalesced"] == 7


def test_a_cancelled_waiter_does_not_cancel_the_shared_load(cache: Refresher, r: redis.Redis) -> None:
    origin = Origin()
    load = cache.loader(ttl=60, name=unique())(origin.__call__)

    async def main() -> Any:
        leader = asyncio.create_task(load.aget(1))
        await asyncio.to_thread(origin.entered.wait, 10)
        waiter = asyncio.create_task(load.aget(1))
        while cache.sync.flights._flights[load.keys(1).value].waiters < 1:
            await asyncio.sleep(0.001)
        waiter.cancel()
        await asyncio.gather(waiter, return_exceptions=True)
        origin.release.set()
        return await leader, waiter.cancelled()

    assert asyncio.run(main()) == ({"n": 1, "call": 1}, True)
    assert origin.calls == [1]
    assert r.get(load.keys(1).value) is not None and r.get(load.keys(1).lock) is None


def test_a_cancelled_leader_frees_the_lock_and_a_waiting_process_takes_over(redis_url: str, r: redis.Redis) -> None:
    """Two Refreshers stand for two processes: the second waits on the signal channel
    for the first's lock. Cancelling the first frees the lock with a message, so the
    second loads at once instead of after the lock's 20 s TTL."""
    first, second = Refresher(redis_url), Refresher(redis_url)
    origin = Origin()
    name = unique()
    fn = origin.__call__
    lead = first.loader(ttl=600, lock_ttl=20, name=name)(fn)
    wait = second.loader(ttl=600, lock_ttl=20, name=name)(fn)

    async def main() -> Any:
        leader = asyncio.create_task(lead.aget(1))
        await asyncio.to_thread(origin.entered.wait, 10)
        waiter = asyncio.create_task(wait.aget(1))
        while second.stats["waited"] < 1:
            await asyncio.sleep(0.001)
        origin.release.set()  # calls from now on return at once
        leader.cancel()
        await asyncio.gather(leader, return_exceptions=True)
        try:
            return await asyncio.wait_for(waiter, 10), leader.cancelled()
        finally:  # on this loop: redis-py 5.0 raises from __del__ for a connection outliving its loop
            await first.aclose()
            await second.aclose()

    try:
        started = time.monotonic()
        assert asyncio.run(main()) == ({"n": 1, "call": 2}, True)
        assert time.monotonic() - started < 10  # far less than the 20 s lock TTL
        assert r.get(lead.keys(1).lock) is None
    finally:
        first.close()
        second.close()


def test_asyncio_timeout_around_aget(cache: Refresher, r: redis.Redis) -> None:
    origin = Origin()
    load = cache.loader(ttl=60, name=unique())(origin.__call__)

    async def main() -> Any:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.2):
                await load.aget(1)
        assert r.get(load.keys(1).lock) is None  # the timed-out leader freed its lock
        origin.release.set()
        return await load.aget(1)

    assert asyncio.run(main()) == {"n": 1, "call": 2}


def test_a_broker_outage_never_blocks_the_loop(redis_url: str, r: redis.Redis) -> None:
    """In-window reads with the broker refusing connections: served at once, and no
    callback holds the event loop for 100 ms or more (tests/support/loopwatch.py)."""
    from tests.support.servers import free_port

    cache = Refresher(redis_url, broker_url=f"redis://127.0.0.1:{free_port()}/0", publish_timeout=0.5)

    @cache.loader(ttl=60, name=unique())
    def load(n: int) -> int:
        return n

    async def main() -> tuple[list[int], list[str]]:
        await load.aget(1)  # set-up (this loop's pool, the publisher thread) before watching
        await asyncio.to_thread(into_window, r, load.keys(1))
        asyncio.get_running_loop().set_debug(True)
        values = []
        with blocked_callbacks() as blocked:
            deadline = time.monotonic() + 1.5
            while time.monotonic() < deadline:
                values.append(await load.aget(1))
        return values, blocked

    try:
        values, blocked = asyncio.run(main())
    finally:
        cache.close()
    assert values and set(values) == {1}
    assert cache.stats["publish_failed"] >= 1
    assert blocked == []


def test_a_worker_refreshes_async_loaders_on_one_loop_per_process(
    cache: Refresher, r: redis.Redis, tasks_done: TaskLog, worker: object
) -> None:
    loops: list[int] = []

    @cache.loader(ttl=60, name=unique())
    async def load(n: int) -> int:
        loops.append(id(asyncio.get_running_loop()))
        return n + len(loops)

    async def read(n: int) -> int:
        return await load.aget(n)

    assert asyncio.run(read(1)) == 2
    assert asyncio.run(read(2)) == 4
    for n in (1, 2):
        into_window(r, load.keys(n))
        asyncio.run(read(n))  # asks the worker
    assert tasks_done.wait(2) == ["written", "written"]
    assert len(set(loops[2:])) == 1  # both refreshes ran on the worker's one loop


def test_concurrent_agets_of_one_key_share_one_get(cache: Refresher, r: redis.Redis) -> None:
    @cache.loader(ttl=60, name=unique())
    def load(n: int) -> int:
        return n

    async def main() -> list[int]:
        await load.aget(1)  # cached
        r.config_resetstat()
        return list(await asyncio.gather(*(load.aget(1) for _ in range(50))))

    assert asyncio.run(main()) == [1] * 50
    assert r.info("commandstats")["cmdstat_get"]["calls"] < 50  # one GET served many readers
    assert cache.stats["hit"] == 50 and cache.stats["miss"] == 1

