"""The relay that wakes a load's waiting threads in turn (refresher/core/relay.py): every
waiter wakes once it is set and none before, and a waiter that leaves the line (an
interrupt) does not strand the ones behind it."""

from __future__ import annotations

import _thread
import signal
import threading
from types import SimpleNamespace

import pytest

from refresher.core import relay as relay_module
from refresher.core.relay import Relay

WAITERS = 40


class Interrupted(Exception):
    pass


def _waiting(relay: Relay, count: int, woke: list[int]) -> list[threading.Thread]:
    threads = [threading.Thread(target=lambda n=n: (relay.wait(), woke.append(n))) for n in range(count)]
    for thread in threads:
        thread.start()
    return threads


def _in_line(relay: Relay, count: int) -> None:
    """Until `count` threads sleep in the relay's line (its own count, read under its lock)."""
    for _ in range(10_000):
        with relay._lock:
            if sum(turn is not None for turn in relay._sleepers) == count:
                return
        threading.Event().wait(0.001)
    raise AssertionError(f"{count} waiters never lined up")


def test_every_waiter_wakes_once_set_and_none_before() -> None:
    relay = Relay()
    woke: list[int] = []
    threads = _waiting(relay, WAITERS, woke)
    _in_line(relay, WAITERS)
    assert woke == [] and not relay.is_set()
    relay.set()
    for thread in threads:
        thread.join(10)
    assert sorted(woke) == list(range(WAITERS))
    relay.wait()  # once set, a wait returns at once
    relay.set()  # and setting again changes nothing


def test_a_waiter_interrupted_in_line_does_not_strand_the_rest() -> None:
    """The main thread waits between two groups of threads and is interrupted (a signal
    handler raising, as Ctrl-C would) before the relay is set: it leaves the line, and
    the threads behind it still wake when it is."""
    relay = Relay()
    woke_ahead: list[int] = []
    ahead = _waiting(relay, WAITERS // 2, woke_ahead)
    _in_line(relay, WAITERS // 2)
    behind: list[threading.Thread] = []
    woke_behind: list[int] = []

    def interrupt(signum: int, frame: object) -> None:
        raise Interrupted

    def line_up_behind_then_interrupt() -> None:
        _in_line(relay, WAITERS // 2 + 1)
        behind.extend(_waiting(relay, WAITERS // 2, woke_behind))
        _in_line(relay, WAITERS + 1)
        signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGUSR1)

    previous = signal.signal(signal.SIGUSR1, interrupt)
    helper = threading.Thread(target=line_up_behind_then_interrupt)
    try:
        helper.start()
        with pytest.raises(Interrupted):
            relay.wait()
    finally:
        signal.signal(signal.SIGUSR1, previous)
    helper.join(10)
    _in_line(relay, WAITERS)
    relay.set()
    for thread in ahead + behind:
        thread.join(10)
    assert sorted(woke_ahead) == list(range(WAITERS // 2))
    assert sorted(woke_behind) == list(range(WAITERS // 2))


def test_a_wait_that_times_out_leaves_the_line_and_says_so() -> None:
    """A near-cache ticket's waiters wait at most the socket timeout (api/loader_base.py):
    one that gives up returns False, and the threads that lined up behind it still wake."""
    relay = Relay()
    woke_ahead: list[int] = []
    ahead = _waiting(relay, WAITERS // 2, woke_ahead)
    _in_line(relay, WAITERS // 2)
    assert relay.wait(0.01) is False
    woke_behind: list[int] = []
    behind = _waiting(relay, WAITERS // 2, woke_behind)
    _in_line(relay, WAITERS)
    relay.set()
    for thread in ahead + behind:
        thread.join(10)
    assert sorted(woke_ahead + woke_behind) == sorted(list(range(WAITERS // 2)) * 2)
    assert relay.wait(0) is True


class _Turn:
    """A stdlib lock that notes which thread released it and which one it woke."""

    def __init__(self, log: list[tuple[str, _Turn, int]]) -> None:
        self._lock, self._log = _thread.allocate_lock(), log

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        got = self._lock.acquire(blocking, timeout)
        self._log.append(("woke", self, threading.get_ident()))
        return got

    def release(self) -> None:
        self._log.append(("released", self, threading.get_ident()))
        self._lock.release()

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def test_set_wakes_one_sleeper_and_each_woken_one_wakes_the_next(monkeypatch: pytest.MonkeyPatch) -> None:
    """The herd is gone: `set` releases only the first sleeper's turn, and every other
    turn is released by the thread that slept just before it in the line (with
    threading.Event, the setting thread released them all)."""
    log: list[tuple[str, _Turn, int]] = []
    monkeypatch.setattr(relay_module, "threading", SimpleNamespace(Lock=lambda: _Turn(log)))
    relay = Relay()
    woke: list[int] = []
    threads = _waiting(relay, WAITERS, woke)
    _in_line(relay, WAITERS)
    relay.set()
    for thread in threads:
        thread.join(10)
    assert sorted(woke) == list(range(WAITERS))
    line = list(relay._sleepers)
    sleeper = {turn: ident for what, turn, ident in log if what == "woke" and turn in line}
    releaser = {turn: ident for what, turn, ident in log if what == "released" and turn in line}
    assert releaser[line[0]] == threading.get_ident()
    assert [releaser[turn] for turn in line[1:]] == [sleeper[turn] for turn in line[:-1]]
