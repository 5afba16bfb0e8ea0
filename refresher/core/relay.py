"""A one-shot event whose sleeping threads wake one another in turn, not all at once.

`threading.Event.set` releases every waiter together: on a cold stampede, the fifty
threads of a process that joined one load all become runnable at the same instant, only
to queue for the interpreter's lock (and for the event's own lock, held while it wakes
the rest). Woken together they interrupt the thread that is waking them, each holds out
for the interpreter's lock until its 5 ms switch interval runs out and then forces a
switch, and on a machine of few cores they crowd out the other processes' waiters too.
Here `set` wakes the first sleeper, and each woken thread wakes the next before going
on: the same threads get the same value, with one or two of them runnable at a time.
"""

from __future__ import annotations

import threading


class Relay:
    __slots__ = ("_lock", "_sleepers", "_set")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # In the order they began to wait; None where one left before the set. Never
        # shortened, so a sleeper's place stays its own (thousands of greenlets may wait).
        self._sleepers: list[threading.Lock | None] = []
        self._set = False

    def is_set(self) -> bool:
        return self._set

    def set(self) -> None:
        with self._lock:
            if self._set:
                return
            self._set = True  # from here the line of sleepers never changes
            first = self._next(-1)
        if first is not None:
            first.release()

    def wait(self, timeout: float | None = None) -> bool:
        """Until `set` (True), or `timeout` seconds (False); however this thread leaves
        (a timeout, an interrupt), the next in line still gets its turn."""
        with self._lock:
            if self._set:
                return True
            turn = threading.Lock()
            turn.acquire()
            place = len(self._sleepers)
            self._sleepers.append(turn)
        try:
            turn.acquire() if timeout is None else turn.acquire(timeout=max(timeout, 0))
        finally:
            woken = self._pass(place)
        return woken

    def _pass(self, place: int) -> bool:
        """Wake the next sleeper if the relay is set (whether `set`'s turn reached this
        one yet or not); else leave the line. Whether it is set."""
        with self._lock:
            if not self._set:
                self._sleepers[place] = None
                return False
            following = self._next(place)
        if following is not None:
            following.release()
        return True

    def _next(self, place: int) -> threading.Lock | None:
        """(Under the lock.) The first sleeper after `place` still in line."""
        sleepers = self._sleepers
        for at in range(place + 1, len(sleepers)):
            if (turn := sleepers[at]) is not None:
                return turn
        return None
