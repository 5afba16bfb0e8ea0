"""A worker's refresh of one key, at most once however often the task is delivered."""

from __future__ import annotations

from typing import Any

from refresher.core.calls import Call
from refresher.core.failures import CacheFailure, cache_error
from refresher.core.lock import BACKOFF, new_token, release
from refresher.core.miss import load_and_commit
from refresher.core.ops import Held, Keep, Script, Steps
from refresher.core.state import LoaderState
from refresher.core.envelope import NOTHING_READ
from refresher.errors import RefreshFailed
from refresher.core.logs import about


# KEYS: the lock, the value, the pending marker. ARGV: the lock's token and TTL, BACKOFF.
# Keys of another Redis type (foreign) read as nothing: an error after the SET NX would
# leave the lock held.
CLAIM = """
local function bytes_at(key)
    if redis.call('TYPE', key).ok == 'string' then return redis.call('GET', key) end
    return false
end
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return {0} end
if bytes_at(KEYS[3]) == ARGV[3] then
    redis.call('DEL', KEYS[1])
    return {1}
end
redis.call('PEXPIRE', KEYS[3], ARGV[2])
return {2, bytes_at(KEYS[2])}
"""
HELD, BACKING_OFF = 0, 1  # CLAIM's replies but the one that took the lock: {2, value}
MESSAGE_CHARS = 1024  # of a loader's error carried into task events and logs, as Celery bounds argsrepr


def refresh(state: LoaderState[Any], call: Call, enqueued_at: float, seen: int | None) -> Steps[str]:
    """Returns what happened, which Flower shows as the task's result.

    1. Take the key's lock (SET NX PX, random token); if it is held, somebody is already
       loading: drop this task.
    2. If the key is backing off after a failure, drop this task too (and free the lock):
       it was queued or redelivered before the failure, and the origin gets one attempt
       per back-off. Steps 1 and 2 and reading the value are one script, CLAIM, which
       also re-arms the pending marker to live as long as the lock.
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
        claim = yield Script(CLAIM, (held.key, keys.value, keys.pending), (held.token, held.ttl_ms, BACKOFF))
    except CacheFailure as exc:  # nothing taken: the task fails with the library's error, naming the fix
        raise cache_error(exc, f"refreshing {keys.value}") from exc
    if claim[0] == HELD:
        stats.incr("refresh_deduplicated")
        return "deduplicated"
    if claim[0] == BACKING_OFF:
        stats.incr("refresh_backing_off")
        return "backing_off"
    raw = claim[1]
    started_ms = int(enqueued_at * 1000)
    current = state.parse(raw, quiet=True)
    if current is not None and (current.version != seen if seen is not None else current.written_ms >= started_ms):
        yield from release(held.key, held.token)
        stats.incr("refresh_unneeded")
        return "fresh"
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
    stats.incr("refreshed" if outcome == "written" else "refresh_dropped")
    return outcome
