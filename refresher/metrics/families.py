"""Refresher's Prometheus metrics: names, help, and which counted event feeds which.

Every series has a `loader` label (the loader's name). Counters follow the Prometheus
conventions: a base name here, `_total` added on exposition; durations in seconds.
"""

from __future__ import annotations

from typing import NamedTuple


class Family(NamedTuple):
    name: str  # prometheus_client adds `_total` to a counter's name
    help: str
    label: str | None  # the label beside `loader`, if any
    events: dict[str, str]  # counted event (refresher/stats.py) -> that label's value


READS = Family(
    "refresher_reads", "Reads (get, aget, each item of get_many) by outcome: served from the cache (hit), "
    "served from the in-process near cache (near_hit), served and this read asked a worker to refresh the value "
    "(refresh_asked), loaded by this read (miss), "
    "given another caller's load in this process (coalesced), stale after a failed load (stale_served), "
    "or raised (error)", "outcome",
    {e: e for e in ("hit", "near_hit", "refresh_asked", "miss", "coalesced", "stale_served", "error")},
)
LOADS = Family("refresher_loads", "Origin calls (the loader function) by result, readers' and workers'", "result",
               {"load": "ok", "load_failed": "error"})
TASK_PREFIX = "task_"  # refresher/refresh.py counts task_<the result a refresh task returns>
TASKS = Family("refresher_refresh_tasks", "Refresh tasks this worker process ran, by outcome (the task's "
               "result: written, deduplicated, fresh, backing_off, failed, ...)", "outcome", {})
PUBLISHES = Family(
    "refresher_publishes", "Refresh tasks handed to the broker (sent), not sent because the publish failed "
    "(failed), the circuit breaker was open (skipped), or the publishing backlog was full (dropped)", "result",
    {"refresh_enqueued": "sent", "publish_failed": "failed", "publish_skipped": "skipped",
     "publish_dropped": "dropped"},
)
CACHE_UNAVAILABLE = Family("refresher_cache_unavailable", "Reads and writes that found the cache Redis "
                           "unreachable (connection refused, timeout)", None, {"cache_unavailable": ""})
CORRUPT = Family("refresher_corrupt_values", "Bytes at a key that were not a readable value, read as a miss",
                 None, {"corrupt": ""})
UNREAD = Family("refresher_refresh_queue_unread", "Looks at a refresh queue this loader publishes to (one a "
                "minute at most) that found no worker reading it (refresher/watch.py)", None, {"queue_unread": ""})
COUNTERS = (READS, LOADS, TASKS, PUBLISHES, CACHE_UNAVAILABLE, CORRUPT, UNREAD)

LOAD_DURATION = "refresher_load_duration_seconds"
LOAD_DURATION_HELP = "How long origin calls took (the loader function, with encoding its value), failed ones too"
LOAD_EVENT = "load"  # the timed event (refresher/core/miss.py)
BREAKER = "refresher_publish_breaker_open"
BREAKER_HELP = ("1 while a publisher's circuit breaker is open in this process (after a failed publish, "
                "nothing is published for breaker_cooldown seconds), else 0")

_BY_EVENT = {event: (family, value) for family in COUNTERS for event, value in family.events.items()}


def route(event: str) -> tuple[Family, str] | None:
    """The counter and label value an event feeds, or None for events not exported."""
    if event.startswith(TASK_PREFIX):
        return TASKS, event[len(TASK_PREFIX):]
    return _BY_EVENT.get(event)


def labels(family: Family, loader: str, value: str) -> tuple[str, ...]:
    return (loader, value) if family.label is not None else (loader,)


def label_names(family: Family) -> tuple[str, ...]:
    return ("loader", family.label) if family.label is not None else ("loader",)
