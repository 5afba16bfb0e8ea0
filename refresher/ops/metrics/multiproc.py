"""Multiprocess export (gunicorn workers, Celery prefork children): every event is written
as it happens to prometheus_client's memory-mapped files in PROMETHEUS_MULTIPROC_DIR, which
the process serving /metrics adds up across processes.

A collector read at scrape time cannot work there: the scrape reaches one process, and
the counts live in all of them. So the counting hook (refresher/core/stats.py `Listener`)
forwards each event to a pre-bound child metric: one dict lookup and an mmap write.
"""

from __future__ import annotations

import threading
import time
from typing import Callable

from prometheus_client import Counter, Gauge, Histogram

from refresher.ops.metrics.families import BREAKER, BREAKER_HELP, COUNTERS, DURATIONS, label_names, labels, route
from refresher.core.stats import BUCKETS

Inc = Callable[[float], None]


class MmapListener:
    """Writes refresher's events to this process's mmap files (a `refresher.core.stats.Listener`).

    The metrics are registered nowhere: in multiprocess mode a registry with
    prometheus_client's MultiProcessCollector reads them back from the files."""

    def __init__(self) -> None:
        self._counters: dict[str, Counter] = {
            family.name: Counter(family.name, family.help, label_names(family), registry=None) for family in COUNTERS
        }
        self._durations = {duration.event: Histogram(duration.name, duration.help, ("loader",), buckets=BUCKETS,
                                                     registry=None) for duration in DURATIONS}
        self._breaker = Gauge(BREAKER, BREAKER_HELP, registry=None, multiprocess_mode="livemax")
        self._breaker.set(0)
        self._incs: dict[tuple[str, str], Inc | None] = {}
        self._lock = threading.Lock()
        self._open_until = 0.0

    def counted(self, loader: str, event: str, by: int) -> None:
        try:
            inc = self._incs[loader, event]
        except KeyError:
            inc = self._incs[loader, event] = self._bind(loader, event)
        if inc is not None:
            inc(by)

    def _bind(self, loader: str, event: str) -> Inc | None:
        routed = route(event)
        if routed is None:
            return None
        family, value = routed
        return self._counters[family.name].labels(*labels(family, loader, value)).inc

    def timed(self, loader: str, event: str, seconds: float) -> None:
        histogram = self._durations.get(event)
        if histogram is not None:
            histogram.labels(loader).observe(seconds)

    def breaker_opened(self, seconds: float) -> None:
        with self._lock:
            self._open_until = max(self._open_until, time.monotonic() + seconds)
            self._breaker.set(1)
        lapse = threading.Timer(seconds, self._breaker_lapsed)
        lapse.daemon = True
        lapse.start()

    def _breaker_lapsed(self) -> None:
        with self._lock:
            if time.monotonic() >= self._open_until:  # not opened again meanwhile
                self._breaker.set(0)
