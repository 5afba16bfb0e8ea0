"""Refresher's Prometheus metrics: names, help, and which counted event feeds which.

Every series has a `loader` label (the loader's name), but the breaker and the near cache's,
which belong to a Refresher and serve all its loaders. Counters follow the Prometheus
conventions: a base name here, `_total` added on exposition; durations in seconds. docs/metrics.md
lists them all; ops/grafana/dashboards/refresher.json may ask only for these (tests/test_dashboard.py).
"""

from __future__ import annotations

from typing import NamedTuple


class Family(NamedTuple):
    name: str  # prometheus_client adds `_total` to a counter's name
    help: str
    label: str | None  # the label beside `loader`, if any
    events: dict[str, str]  # counted event (refresher/core/stats.py) -> that label's value


READS = Family(
    "refresher_reads", "Reads (get, aget, each item of get_many) by outcome: served from the cache (hit), "
    "served from the in-process near cache (near_hit), served and this read asked a worker to refresh the value "
    "(refresh_asked), loaded by this read (miss), "
    "given another caller's load in this process (coalesced), stale after a failed load (stale_served), "
    "a near copy kept from before a cache Redis outage (served_while_down, stale_if_down), "
    "or raised (error)", "outcome",
    {e: e for e in ("hit", "near_hit", "refresh_asked", "miss", "coalesced", "stale_served", "served_while_down",
                    "error")},
)
LOADS = Family("refresher_loads", "Origin calls (the loader function) by result, readers' and workers'", "result",
               {"load": "ok", "load_failed": "error"})
TASK_PREFIX = "task_"  # refresher/worker/run.py counts task_<the result a refresh task returns>
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
WAITS = Family("refresher_lock_waits", "Times a read slept until another process's load of its key ended "
               "(woken on the key's signal channel when the lock holder wrote, failed or gave up); the read "
               "then counts as a miss or coalesced", None, {"waited": ""})
CACHE_REFUSED = Family("refresher_cache_refused", "Reads and writes the cache Redis answered but refused "
                       "(maxmemory with noeviction, an ACL rule, an unknown command: CacheRefused)", None,
                       {"cache_refused": ""})
NOT_STORED = Family("refresher_values_not_stored", "Loaded values the cache Redis refused to store (served to "
                    "their callers all the same)", None, {"not_stored": ""})
UNREAD = Family("refresher_refresh_queue_unread", "Looks at a refresh queue this loader publishes to (one a "
                "minute at most) that found no worker reading it (refresher/io/watch.py)", None, {"queue_unread": ""})
COUNTERS = (READS, LOADS, TASKS, PUBLISHES, CACHE_UNAVAILABLE, CACHE_REFUSED, NOT_STORED, CORRUPT, WAITS, UNREAD)



class Duration(NamedTuple):
    """A histogram in seconds, per loader, of one timed event (refresher/core/stats.py `time`)."""

    name: str
    help: str
    event: str


LOAD_DURATION = Duration("refresher_load_duration_seconds", "How long origin calls took (the loader function, "
                         "with encoding its value), failed ones too", "load")
WAIT_DURATION = Duration("refresher_lock_wait_duration_seconds", "How long reads slept waiting for another "
                         "process's load of their key (each wait counted in refresher_lock_waits_total)", "wait")
DURATIONS = (LOAD_DURATION, WAIT_DURATION)
QUEUE_MESSAGES = "refresher_queue_messages"
QUEUE_MESSAGES_HELP = ("Messages waiting in each queue this worker consumes (refresh tasks published and not yet "
                       "taken by any worker), asked of the broker when scraped; worker processes only")
BREAKER = "refresher_publish_breaker_open"
BREAKER_HELP = ("1 while a publisher's circuit breaker is open in this process (after a failed publish, "
                "nothing is published for breaker_cooldown seconds), else 0")


class Near(NamedTuple):
    """A near-cache metric: no `loader` label (one near cache serves every loader of a
    Refresher); summed over the process's Refreshers, and over processes in multiprocess mode
    (the lag: the worst of them)."""

    name: str
    help: str


NEAR_ENTRIES = Near("refresher_near_cache_entries", "Values held in the in-process near cache (while tracking "
                    "is lost: the copies kept from before, served only by stale_if_down)")
NEAR_BYTES = Near("refresher_near_cache_bytes", "Bytes the near cache's values take (payload plus about 200 "
                  "bytes per entry)")
NEAR_BYPASSED = Near("refresher_near_cache_bypassed", "Near caches being bypassed because invalidation "
                     "tracking is down or reconnecting (reads go to Redis meanwhile); 0 before a process's first "
                     "read starts tracking")
NEAR_GAUGES = (NEAR_ENTRIES, NEAR_BYTES, NEAR_BYPASSED)
NEAR_INVALIDATIONS = Near("refresher_near_cache_invalidations", "Keys Redis reported written (server-assisted "
                          "invalidation), each dropped from the near cache if held: values, locks, markers, epochs")
NEAR_FLUSHES = Near("refresher_near_cache_flushes", "Times a near cache was emptied at once: tracking came on "
                    "(dropping what an outage kept) or was refused, a FLUSHALL or FLUSHDB, or a fork")
NEAR_COUNTERS = (NEAR_INVALIDATIONS, NEAR_FLUSHES)
NEAR_LAG = Near("refresher_near_cache_lag_seconds", "At most how stale a near copy served now can be: seconds since "
                "the send time of the latest PING answered on the invalidation connection (the worst master), "
                "before which every write's invalidation has been applied; grows while tracking is down. The worst "
                "near cache of the process (over processes in multiprocess mode), 0 where none is tracking yet")

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
