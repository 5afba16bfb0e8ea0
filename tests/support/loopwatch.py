"""Catching a callback that blocks its event loop, on a machine whose CPUs are busy.

asyncio's slow-callback warning times a callback by the wall clock, which counts the time
the loop's thread was ready to run but had no CPU: on a loaded 2-core machine that alone
reached 977 ms while the process used 0-2 ms of CPU, and flagged callbacks that did
nothing wrong. Linux counts that wait per thread (the run-queue delay in
/proc/thread-self/schedstat); a callback is charged its wall time less that wait, which
is the time it ran or blocked (on a socket, a lock, the GIL): what the tests forbid.
"""

from __future__ import annotations

import asyncio
import gc
import os
import threading
import time
from contextlib import contextmanager
from typing import Any, Iterator

# Seconds: a callback holding the event loop longer is an error. What the tests guard
# against holds it far longer (a 200 ms loader run on the loop, a 0.5 s publish timeout, a
# 1 s socket timeout), while a callback that waits for the GIL, which another thread of the
# process holds and which has no CPU either, was seen at 23-36 ms on a loaded 2-core
# machine: a wait the run-queue figure cannot tell from blocking.
SLOW_CALLBACK = 0.1
SCHEDSTAT = "/proc/thread-self/schedstat"  # "cpu_ns runqueue_wait_ns timeslices"


def _open_schedstat() -> int | None:
    try:
        return os.open(SCHEDSTAT, os.O_RDONLY)
    except OSError:  # not Linux: the wall clock alone decides, as asyncio's warning does
        return None


@contextmanager
def blocked_callbacks(threshold: float = SLOW_CALLBACK) -> Iterator[list[str]]:
    """Every callback that held an event loop in this thread `threshold` or longer
    (run-queue wait excluded), as messages in the list this yields. The callback that
    leaves the `with` block is not timed."""
    found: list[str] = []
    fd = _open_schedstat()
    watched = threading.get_ident()
    run = asyncio.events.Handle._run
    watching = True

    def waited() -> float:
        return int(os.pread(fd, 64, 0).split()[1]) / 1e9 if fd is not None else 0.0

    def timed(handle: Any) -> None:
        if not watching or threading.get_ident() != watched:  # done, or another thread's loop
            run(handle)
            return
        wall, queued, cpu, process_cpu = time.perf_counter(), waited(), time.thread_time(), time.process_time()
        run(handle)
        if not watching:
            return
        held = time.perf_counter() - wall - (waited() - queued)
        if held >= threshold:
            found.append(f"event loop blocked: {handle!r} held it {held * 1000:.0f} ms (CPU: "
                         f"{(time.thread_time() - cpu) * 1000:.0f} ms its own, "
                         f"{(time.process_time() - process_cpu) * 1000:.0f} ms the process's)")

    asyncio.events.Handle._run = timed  # type: ignore[method-assign,assignment]
    # The cyclic garbage collector off while watching: a full collection of a long test
    # session's heap, started by whatever callback allocates at that moment, held one for
    # 103 ms of its own CPU in make test; that is the interpreter's pause, not refresher blocking.
    collecting = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        yield found
    finally:
        watching = False
        if collecting:
            gc.enable()
        asyncio.events.Handle._run = run  # type: ignore[method-assign]
        if fd is not None:
            os.close(fd)
