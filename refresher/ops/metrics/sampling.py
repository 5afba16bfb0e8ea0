"""The near caches' size and state: read when scraped in one process, sampled in each
process in multiprocess mode.

None of it is counted by a read: the figures are the near caches' own (their dict, the
invalidations the tracker applied), looked at from outside. In multiprocess mode a scrape
reaches one process while every process has a near cache, so each process writes its
figures to its prometheus_client files every SAMPLE_EVERY seconds: the gauges as
`livesum` (a dead process's go with it, via mark_process_dead), the counters as the
growth since the last sample, the lag as `livemax` (the worst process's bound).
"""

from __future__ import annotations

import os
import threading
import time

from prometheus_client import Counter, Gauge

from refresher.ops.metrics.families import (NEAR_BYPASSED, NEAR_BYTES, NEAR_COUNTERS, NEAR_ENTRIES, NEAR_FLUSHES,
                                        NEAR_GAUGES, NEAR_INVALIDATIONS, NEAR_LAG)
from refresher.core.stats import everything

SAMPLE_EVERY = 1.0  # seconds; a sample costs a pass over the near cache's entries


def near_figures() -> dict[str, int]:
    """Every near cache of this process, added up, by metric name."""
    figures = dict.fromkeys((near.name for near in (*NEAR_GAUGES, *NEAR_COUNTERS)), 0)
    for stats in everything():
        near = stats.near
        if near is not None:
            figures[NEAR_ENTRIES.name] += len(near)
            figures[NEAR_BYTES.name] += near.size_bytes
            figures[NEAR_BYPASSED.name] += near.bypassed
            figures[NEAR_INVALIDATIONS.name] += near.invalidated
            figures[NEAR_FLUSHES.name] += near.flushed
    return figures


def near_lag() -> float:
    """The worst bound over this process's near caches (tracking.py `Tracker.lag`); 0 where
    none knows one (no tracking yet: no near copy is served)."""
    lags = (stats.near.tracker.lag() for stats in everything() if stats.near is not None)
    return max((lag for lag in lags if lag is not None), default=0.0)


class NearSampler:
    """Writes this process's near-cache figures to its files, from a thread of its own;
    a forked child (a gunicorn worker, a Celery prefork child) starts its own thread."""

    def __init__(self) -> None:
        self._gauges = {near.name: Gauge(near.name, near.help, registry=None, multiprocess_mode="livesum")
                        for near in NEAR_GAUGES}
        self._counters = {near.name: Counter(near.name, near.help, registry=None) for near in NEAR_COUNTERS}
        self._lag = Gauge(NEAR_LAG.name, NEAR_LAG.help, registry=None, multiprocess_mode="livemax")
        self._seen = near_figures()  # what happened before install() is not counted, as for events

    def start(self) -> None:
        os.register_at_fork(after_in_child=self._forked)
        self._spawn()

    def _forked(self) -> None:
        self._seen = near_figures()  # the parent's counts were the parent's to write
        self._spawn()

    def _spawn(self) -> None:
        threading.Thread(target=self._run, name="refresher-metrics", daemon=True).start()

    def _run(self) -> None:
        while True:  # a daemon thread: it goes with the process
            self.sample()
            time.sleep(SAMPLE_EVERY)

    def sample(self) -> None:
        now = near_figures()
        for name, gauge in self._gauges.items():
            gauge.set(now[name])
        for name, counter in self._counters.items():
            if (grew := now[name] - self._seen[name]) > 0:  # a Refresher that was collected takes its counts away
                counter.inc(grew)
        self._seen = now
        self._lag.set(near_lag())
