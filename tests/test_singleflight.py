"""In-process coalescing with real threads."""

from __future__ import annotations

import asyncio
import threading
from typing import Awaitable, Callable

import pytest

from refresher.io.singleflight import Group


def test_concurrent_callers_share_one_call() -> None:
    group: Group[int] = Group()
    entered, release = threading.Event(), threading.Event()
    calls = 0

    def slow() -> int:
        nonlocal calls
        calls += 1
        entered.set()
        release.wait(5)
        return 42

    results: list[tuple[int, bool]] = []
    leader = threading.Thread(target=lambda: results.append(group.do("k", slow)))
    leader.start()
    entered.wait(5)
    followers = [threading.Thread(target=lambda: results.append(group.do("k", slow))) for _ in range(8)]
    for t in followers:
        t.start()
    # followers are queued on the flight before it finishes
    while group._flights["k"].waiters < 8:
        threading.Event().wait(0.001)
    release.set()
    for t in [leader, *followers]:
        t.join(5)
    assert calls == 1
    assert sorted(results) == [(42, False)] * 8 + [(42, True)]  # one led


def test_an_exception_reaches_every_caller_and_is_not_remembered() -> None:
    group: Group[int] = Group()

    def boom() -> int:
        raise KeyError("x")

    with pytest.raises(KeyError):
        group.do("k", boom)
    assert group.do("k", lambda: 1) == (1, True)


def test_forget_lets_the_next_caller_start_afresh() -> None:
    group: Group[int] = Group()
    inner: list[tuple[int, bool]] = []

    def outer() -> int:
        group.forget("k")
        inner.append(group.do("k", lambda: 2))
        return 1

    assert group.do("k", outer) == (1, True)
    assert inner == [(2, True)]


def test_tasks_and_threads_join_one_flight() -> None:
    """A sync leader in a thread; tasks on an event loop wait for its result (one following it)."""
    group: Group[int] = Group()
    entered, release = threading.Event(), threading.Event()

    def slow() -> int:
        entered.set()
        release.wait(5)
        return 7

    leader = threading.Thread(target=group.do, args=("k", slow))
    leader.start()
    entered.wait(5)

    async def fail_if_called() -> int:
        raise AssertionError("a second call")

    async def main() -> list[tuple[int | bool, bool | int]]:
        waiters = [asyncio.create_task(group.ado("k", fail_if_called)) for _ in range(5)]
        waiters.append(asyncio.create_task(group.afollow("k")))  # joins too, never calls
        while group._flights["k"].waiters < 6:
            await asyncio.sleep(0)
        release.set()
        return await asyncio.gather(*waiters)

    assert asyncio.run(main()) == [(7, False)] * 5 + [(True, 7)]
    leader.join(5)


async def leader_and_waiter(
    group: Group[int], lead: Callable[[], Awaitable[int]], wait: Callable[[], Awaitable[int]]
) -> tuple[asyncio.Task[tuple[int, bool]], asyncio.Task[tuple[int, bool]]]:
    """Two tasks on one key: the first leads; returns once the second has joined."""
    leader = asyncio.create_task(group.ado("k", lead))
    await asyncio.sleep(0)
    waiter = asyncio.create_task(group.ado("k", wait))
    while group._flights["k"].waiters < 1:
        await asyncio.sleep(0)
    return leader, waiter


def test_a_cancelled_waiter_leaves_the_shared_load_running() -> None:
    group: Group[int] = Group()

    async def main() -> tuple[tuple[int, bool], bool]:
        release = asyncio.Event()

        async def slow() -> int:
            await release.wait()
            return 3

        leader, waiter = await leader_and_waiter(group, slow, slow)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        release.set()
        return await leader, waiter.cancelled()

    assert asyncio.run(main()) == ((3, True), True)


def test_a_cancelled_leader_hands_the_flight_to_a_waiter() -> None:
    group: Group[int] = Group()
    calls: list[str] = []

    async def main() -> tuple[int, bool]:
        never = asyncio.Event()

        async def first() -> int:
            calls.append("first")
            await never.wait()
            return 1

        async def second() -> int:
            calls.append("second")
            return 2

        leader, waiter = await leader_and_waiter(group, first, second)
        leader.cancel()
        return await waiter

    assert asyncio.run(main()) == (2, True)  # the waiter took over and led the new flight
    assert calls == ["first", "second"]


@pytest.mark.parametrize("followed", [True, False])
def test_follow_joins_a_followed_call_in_flight_and_never_starts_one(followed: bool) -> None:
    group: Group[int] = Group()
    entered, release = threading.Event(), threading.Event()

    def slow() -> int:
        entered.set()
        release.wait(5)
        return 42

    assert group.follow("k") == (False, None)  # nothing in flight: nothing started either
    assert not group.running("k")
    leader = threading.Thread(target=lambda: group.do("k", slow, followed=followed))
    leader.start()
    assert entered.wait(5)
    followed_by: list[tuple[bool, int]] = []
    follower = threading.Thread(target=lambda: followed_by.append(group.follow("k")))
    follower.start()
    while followed and group._flights["k"].waiters < 1:
        threading.Event().wait(0.001)
    follower.join(0 if followed else 5)
    release.set()
    for t in (leader, follower):
        t.join(5)
    assert followed_by == [(True, 42) if followed else (False, None)]
