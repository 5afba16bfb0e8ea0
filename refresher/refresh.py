"""Refreshing one key on a worker: the whole job of the Celery task, kept apart from Celery."""

from __future__ import annotations

import logging
from typing import Any

from refresher import registry
from refresher.envelope import NOTHING_READ, CorruptEnvelope, Envelope
from refresher.loader import BACKOFF
from refresher.lock import Lock
from refresher.store import Commit

log = logging.getLogger("refresher")


def refresh_key(name: str, args: list[Any], kwargs: dict[str, Any], enqueued_at: float, seen: int | None = None) -> str:
    """Refresh the value of loader `name` for these arguments, at most once however often
    the task is delivered. Returns what happened, which Flower shows as the task's result.

    1. Take the key's lock (SET NX PX, random token); if it is held, somebody is already
       loading: drop this task.
    2. If the key is backing off after a failure, drop this task too: it was queued or
       redelivered before the failure, and the origin gets one attempt per back-off.
    3. If the value is no longer the version `seen` that the reader asked to replace, it
       has been rewritten since (by a refresh, set or invalidate): stop. A task without
       `seen` (sent by hand) stops if the value was written after it was enqueued.
    4. Call the loader under the lock (kept alive by the watchdog) and commit only if
       the lock still holds and the value is still the version read in step 3.
    On a loader error the old value stays servable and the key is held off for
    `error_backoff`, so a failing origin gets one attempt per key per back-off period.
    """
    loader = registry.lookup(name)
    call = loader.call(args, kwargs)
    stats = loader.cache.stats
    # The pending marker lives as long as our lock: readers keep off while we work,
    # and if this worker dies both lapse and the next reader asks again.
    lock = Lock(loader.cache.redis, call.keys.lock, loader.lock_ttl_ms, companions=(call.keys.pending,))
    if not lock.acquire():
        stats.incr("refresh_deduplicated")
        return "deduplicated"
    raw, pending = loader.cache.store.read(call.keys)
    if pending == BACKOFF:
        lock.release()
        stats.incr("refresh_backing_off")
        return "backing_off"
    lock.extend()
    started_ms = int(enqueued_at * 1000)
    try:
        current = Envelope.from_bytes(raw) if raw is not None else None
    except CorruptEnvelope:
        current = None
    if current is not None and (current.version != seen if seen is not None else current.written_ms >= started_ms):
        lock.release()
        stats.incr("refresh_unneeded")
        return "fresh"
    try:
        _, outcome = loader.load_and_commit(
            call, lock, current.version if current is not None else NOTHING_READ, started_ms, back_off=True
        )
    except Exception as exc:
        stats.incr("refresh_failed")
        log.error(
            "refresher: refresh failed for loader %s key %s: %s: %s; serving the old value, next attempt in %.1fs",
            name, call.keys.value, type(exc).__name__, exc, loader.error_backoff_ms / 1000,
        )
        return "failed"
    stats.incr("refreshed" if outcome is Commit.WRITTEN else "refresh_dropped")
    return outcome.name.lower() if isinstance(outcome, Commit) else outcome
