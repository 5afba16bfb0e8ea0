"""In-process coalescing with real threads."""

from __future__ import annotations

import threading

import pytest

from refresher.singleflight import Group


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
    assert sorted(results) == [(42, True)] * 9


def test_an_exception_reaches_every_caller_and_is_not_remembered() -> None:
    group: Group[int] = Group()

    def boom() -> int:
        raise KeyError("x")

    with pytest.raises(KeyError):
        group.do("k", boom)
    assert group.do("k", lambda: 1) == (1, False)


def test_forget_lets_the_next_caller_start_afresh() -> None:
    group: Group[int] = Group()
    inner: list[tuple[int, bool]] = []

    def outer() -> int:
        group.forget("k")
        inner.append(group.do("k", lambda: 2))
        return 1

    assert group.do("k", outer) == (1, False)
    assert inner == [(2, False)]
