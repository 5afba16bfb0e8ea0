"""A worker's refresh of one key, at most once however often the task is delivered."""

from __future__ import annotations

from typing import Any

from refresher.core.calls import Call
from refresher.core.failures import CacheFailure, cache_error
from refresher.core.lock import new_token, release
from refresher.core.commit import load_and_commit
from refresher.core.ops import Held, Keep, Script, Steps
from refresher.core.protocol.layout import BACKOFF, NOTHING_READ
from refresher.core.protocol.outcomes import Outcome
from refresher.core.protocol.scripts import BACKING_OFF, HELD, TAKE_REFRESH_LOCK
from refresher.core.state import LoaderState
from refresher.errors import RefreshFailed
from refresher.core.logs import about


MESSAGE_CHARS = 1024  # of a loader's error carried into task events and logs, as Celery bounds argsrepr


def refresh(state: LoaderState[Any], call: Call, enqueued_at: float, seen: int | None) -> Steps[Outcome]:
    """Returns what happened, which Flower shows as the task's result.

    1. Take the key's lock (SET NX PX, random token); if it is held, somebody is already
       loading: drop this task.
    2. If the key is backing off after a failure, drop this task too (and free the lock):
       it was queued or redelivered before the failure, and the origin gets one attempt
       per back-off. Steps 1 and 2 and reading the value are one script,
       TAKE_REFRESH_LOCK, which also re-arms the pending marker to live as long as the lock.
    3. If the value is no longer the version `seen` that the reader asked to replace, it
       has been rewritten since (by a refresh, set or invalidate): stop. A task without
       `seen` (sent by hand) stops if the value was written after it was enqueued.
    4. Call the loader under the lock (kept alive by the watchdog until the step ends)
       and commit only if the lock still holds and the value is still the version read
       in step 3.
    On a loader error the old value stays servable and the key is held off for
    `error_backoff`, so a failing origin gets one attempt per key per back-off period;
    then, the lock released, RefreshFailed names the error, which the task raises so
    Celery records a FAILURE.
    """
    keys, settings, stats = call.keys, state.settings, state.stats
    # The pending marker lives as long as our lock: readers keep off while we work,
    # and if this worker dies both lapse and the next reader asks again.
    held = Held(keys.lock, new_token(), settings.lock_ttl_ms, settings.max_load_ms, companions=(keys.pending,))
    try:
        claim = yield Script(TAKE_REFRESH_LOCK, (held.key, keys.value, keys.pending), (held.token, held.ttl_ms, BACKOFF))
    except CacheFailure as exc:  # nothing taken: the task fails with the library's error, naming the fix
        raise cache_error(exc, f"refreshing {keys.value}") from exc
    if claim[0] == HELD:
        stats.incr("refresh_deduplicated")
        return Outcome.DEDUPLICATED
    if claim[0] == BACKING_OFF:
        stats.incr("refresh_backing_off")
        return Outcome.BACKING_OFF
    raw = claim[1]
    started_ms = int(enqueued_at * 1000)
    current = state.parse(raw, quiet=True)
    if current is not None and (current.version != seen if seen is not None else current.written_ms >= started_ms):
        yield from release(held.key, held.token)
        stats.incr("refresh_unneeded")
        return Outcome.FRESH
    yield Keep(held)  # in a batch, other keys' loads may run before ours
    try:
        _, outcome = yield from load_and_commit(
            state, call, held, current.version if current is not None else NOTHING_READ, started_ms, back_off=True
        )
    except Exception as exc:
        stats.incr("refresh_failed")
        about(state.name, keys.value).error(
            "refresh failed: %s: %s; serving the old value, next attempt in %.1fs",
            type(exc).__name__, exc, settings.error_backoff_ms / 1000, extra={"error_type": type(exc).__name__},
        )
        raise RefreshFailed(f"{type(exc).__name__}: {exc}"[:MESSAGE_CHARS]) from exc
    stats.incr("refreshed" if outcome is Outcome.WRITTEN else "refresh_dropped")
    return outcome
