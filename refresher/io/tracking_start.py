"""When a process without a near cache starts tracking (issue 23, docs/scaling.md section 8).

A tracker costs each master a connection and 1 / PING_EVERY PINGs a second for as long as
the process lives, near cache or not. With no near cache all it buys is the epochs kept in
the process (core/epochs.py); without it each read fetches its loader's epochs (one MGET
round trip, measured 2.3x the time of a near-off hit). Reads are correct either way: the
fetch is the path a read takes while the tracker is down. So a process that reads rarely
(a cron job, an idle prefork child, a worker refreshing now and then) never tracks, and one
that fetches epochs as often as the tracker would PING one master starts it, which then
costs Redis no more commands than the fetches it saves.
"""

from __future__ import annotations

import time

from refresher.io.tracking_link import PING_EVERY

FETCHES_PER_SECOND = round(1 / PING_EVERY)  # 10: the PINGs a second of one master's link


class Demand:
    """Counts epoch fetches in one-second windows; due once a window has FETCHES_PER_SECOND.
    Unlocked: two threads racing lose a count at most, and a start is idempotent."""

    def __init__(self, per_second: int = FETCHES_PER_SECOND) -> None:
        self._per_second = per_second
        self._since = -1.0
        self._count = 0

    def due(self) -> bool:
        now = time.monotonic()
        if now - self._since >= 1.0 or self._since < 0:
            self._since, self._count = now, 0
        self._count += 1
        return self._count >= self._per_second
