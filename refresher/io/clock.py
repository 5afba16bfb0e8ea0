"""The clocks, read on the I/O side: the core takes the time as an argument (or as a
Clock, the reply to its Now op), never reading one itself."""

from __future__ import annotations

import time

from refresher.core.ops import Clock


def now_ms() -> int:
    """The wall clock in ms since the Unix epoch, as envelopes record it."""
    return int(time.time() * 1000)


def clock() -> Clock:
    return Clock(int(time.time() * 1000), time.monotonic())
