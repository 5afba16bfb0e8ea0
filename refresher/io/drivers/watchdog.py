"""The sync driver's lock watchdog: one thread per driver keeps every lock its loads hold
alive, each through the core's keep_alive step.

A thread started and joined per load cost a refresh with an instant loader about a sixth of
its time. This thread runs while some lock is held, and for LINGER seconds after, asleep
until the next extension is due or a lock is held again. It is started without waiting
for it to run (as threading's start does): on a cold stampede its starter is the one
load every reader waits for, in a process busy with their GETs, and the first extension
is due a third of a lock TTL later. A lease ends when its holder lets go, or when
keep_alive returns (the lock is someone else's, or has been held for max_hold_ms).
Extensions run one after another, each due a third of its TTL ahead, so a slow one
delays the others by at most its socket timeout.
"""

from __future__ import annotations

import _thread
import math
import os
import threading
import time
import weakref
from contextlib import contextmanager
from typing import Any, Callable, Iterator

from refresher.core.lock import keep_alive
from refresher.core.ops import Held, Op, Pause
from refresher.io.drivers.stepping import Stepper

Perform = Callable[[Op, Stepper[Any]], Any]
LINGER = 30.0  # seconds the thread waits for a next lock once it keeps none, before it ends


class Lease:
    __slots__ = ("stepper", "due")

    def __init__(self, held: Held) -> None:
        self.stepper: Stepper[None] = Stepper(keep_alive(held))
        self.due = math.inf


class Watchdog:
    def __init__(self, perform: Perform) -> None:
        self._perform = perform
        self._reset()
        alive = weakref.ref(self)

        def after_fork() -> None:
            watchdog = alive()
            if watchdog is not None:
                watchdog._reset()  # a forked child inherits no threads: it starts its own

        if hasattr(os, "register_at_fork"):  # not on Windows, which has no fork either
            os.register_at_fork(after_in_child=after_fork)

    def _reset(self) -> None:
        self._cond = threading.Condition()
        self._leases: set[Lease] = set()
        self._wake_at = math.inf  # when the thread wakes next, if it is running
        self._running = False

    def hold(self, held: Held) -> Lease:
        """Keep `held` alive until `drop`."""
        lease = Lease(held)
        if not self._advance(lease):  # its first op is the pause before the first extension
            return lease
        with self._cond:
            self._leases.add(lease)
            if not self._running:
                self._running = True
                _thread.start_new_thread(self._run, ())  # threading's start would wait for it to run
            elif lease.due < self._wake_at:
                self._cond.notify()
        return lease

    def drop(self, lease: Lease) -> None:
        with self._cond:
            self._leases.discard(lease)

    @contextmanager
    def holding(self, held: Held) -> Iterator[None]:
        lease = self.hold(held)
        try:
            yield
        finally:
            self.drop(lease)

    def keeping(self) -> int:
        """How many locks it is keeping alive."""
        with self._cond:
            return len(self._leases)

    def _run(self) -> None:
        idle_since: float | None = None
        while True:
            with self._cond:
                now = time.monotonic()
                if not self._leases:
                    idle_since = now if idle_since is None else idle_since
                    self._wake_at = math.inf  # a new lease wakes it
                    if now - idle_since >= LINGER:
                        self._running = False
                        return
                    self._cond.wait(idle_since + LINGER - now)
                    continue
                idle_since = None
                due = [lease for lease in self._leases if lease.due <= now]
                if not due:
                    self._wake_at = min(lease.due for lease in self._leases)
                    self._cond.wait(self._wake_at - now)
                    continue
            for lease in due:
                lease.stepper.reply = False  # the Pause's answer: not told to stop
                if not self._advance(lease):
                    self.drop(lease)

    def _advance(self, lease: Lease) -> bool:
        """Run the lease's keep_alive up to its next pause (performing its extension):
        False once it has returned."""
        for op in lease.stepper:
            if isinstance(op, Pause):
                lease.due = time.monotonic() + op.seconds
                return True
            try:
                lease.stepper.reply = self._perform(op, lease.stepper)
            except Exception as exc:  # keep_alive decides what it means
                lease.stepper.error = exc
        return False
