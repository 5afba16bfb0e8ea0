"""Per-process counters, cheap enough for the hit path."""

from __future__ import annotations

import threading
from collections import Counter


class Stats:
    """Thread-safe event counts. `snapshot()` is what tests and dashboards read."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()

    def incr(self, event: str, by: int = 1) -> None:
        with self._lock:
            self._counts[event] += by

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)

    def __getitem__(self, event: str) -> int:
        with self._lock:
            return self._counts[event]
