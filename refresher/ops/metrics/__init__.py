"""Prometheus metrics for refresher (the optional extra: `pip install refresher[prometheus]`).

    import refresher.ops.metrics
    refresher.ops.metrics.install()                       # once, at start-up
    body = prometheus_client.generate_latest(refresher.ops.metrics.registry())   # your /metrics

In one process (uvicorn, a threaded server, a Celery worker with the threads or solo pool),
`install` registers a collector that reads refresher's own counts when scraped, so reads
pay nothing more. With PROMETHEUS_MULTIPROC_DIR set (gunicorn workers, Celery prefork
children), every event is written to prometheus_client's shared files instead, and
`registry()` adds up every process's files; the near caches' size and state are sampled
each second (refresher/ops/metrics/sampling.py). Names and labels: refresher/ops/metrics/families.py.
"""

from __future__ import annotations

import os
import threading

from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector

from refresher.ops.metrics.collector import StatsCollector
from refresher.ops.metrics.multiproc import MmapListener
from refresher.ops.metrics.sampling import NearSampler
from refresher.core.stats import listen_everywhere

__all__ = ["install", "multiprocess", "registry"]

_lock = threading.Lock()
_installed = False


def multiprocess() -> bool:
    """True when prometheus_client runs in multiprocess mode (PROMETHEUS_MULTIPROC_DIR)."""
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))


def install(into: CollectorRegistry = REGISTRY) -> None:
    """Export the metrics of every Refresher in this process, those made later included.
    Call it once per process (again is harmless); before gunicorn forks is fine."""
    global _installed
    with _lock:
        if _installed:
            return
        if multiprocess():
            listen_everywhere(MmapListener())
            NearSampler().start()
        else:
            into.register(StatsCollector())
        _installed = True


def registry() -> CollectorRegistry:
    """What a /metrics endpoint serves: the default registry, or in multiprocess mode a
    fresh one that reads every process's files (as prometheus_client's docs have it)."""
    if not multiprocess():
        return REGISTRY
    collected = CollectorRegistry()
    MultiProcessCollector(collected)  # type: ignore[no-untyped-call]  # prometheus_client's multiprocess helpers are unannotated
    return collected
