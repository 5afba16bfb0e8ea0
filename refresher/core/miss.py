"""The miss path: one load per key, whatever the number of callers.

One caller per process loads (the Coalesce op: singleflight across threads and tasks),
one process per key (an owned lock), and the other processes sleep on the key's signal
channel until the holder writes, fails or gives up: woken, not polling.
"""

from __future__ import annotations

import json
import logging
from enum import Enum
from typing import Any, TypeVar

from refresher.core.calls import Call
from refresher.core.failures import CacheFailure, cache_down, cache_error, is_cache_trouble, reply_text
from refresher.core.marks import current_marks, servable, verdict
from refresher.core.lock import BACKOFF, acquire, new_token, release
from refresher.core.ops import Clock, Command, Held, Load, Coalesce, Now, Script, Steps
from refresher.core.state import Nothing, LoaderState
from refresher.core.wait import FAILED, RETRY, Retry, await_holder, filled
from refresher.core.envelope import NOTHING_READ, Envelope
from refresher.core.keys import Keys
from refresher.core.logs import about
from refresher.core.policy import Verdict

R = TypeVar("R")
log = logging.getLogger("refresher")


def miss(state: LoaderState[R], call: Call, raw: bytes | None) -> Steps[R]:
    """Nothing servable was read: load it, coalesced. A stale value (past its TTL, inside
    stale_ttl) is served instead while the key backs off after a failed load."""
    envelope = state.parse(raw, quiet=True)
    try:
        stale = envelope if envelope is not None and (yield from verdict(state, envelope)) is Verdict.STALE else None
        if stale is not None and (yield Command(("MGET", call.keys.pending)))[0] == BACKOFF:
            if not isinstance(value := state.decode(stale, key=call.keys.value), Nothing):
                state.stats.incr("stale_served")  # the origin failed lately: don't try again yet
                return value
        value, led = yield Coalesce(call.keys.value, lambda: _fill(state, call, stale))
    except CacheFailure as exc:
        if not is_cache_trouble(exc):
            state.stats.incr("error")
            raise
        return (yield from cache_down(state, call, exc))
    except Exception:
        state.stats.incr("error")  # the loader's error, or LoadFailed from another process's
        raise
    state.stats.incr("miss" if led else "coalesced")
    return value  # type: ignore[no-any-return]


def _fill(state: LoaderState[R], call: Call, stale: Envelope | None) -> Steps[R]:
    while True:
        token = new_token()
        try:
            if (yield from acquire(call.keys.lock, token, state.settings.lock_ttl_ms)):
                return (yield from _fill_holding(state, call, token, stale))
            return (yield from _timed_wait(state, call))
        except Retry:
            continue
        except Exception:
            if stale is None or isinstance(value := state.decode(stale, quiet=True), Nothing):
                raise
            about(state.name, call.keys.value).exception("reloading failed; serving the stale value")
            state.stats.incr("stale_served")
            return value


def _timed_wait(state: LoaderState[R], call: Call) -> Steps[R]:
    """await_holder, timed however it ends (refresher_lock_wait_duration_seconds), but
    when closed unfinished: then no op, Now included, may be yielded."""
    started: Clock = yield Now()
    try:
        value = yield from await_holder(state, call)
    except GeneratorExit:
        raise
    except BaseException:
        state.stats.time("wait", (yield Now()).monotonic - started.monotonic)
        raise
    state.stats.time("wait", (yield Now()).monotonic - started.monotonic)
    return value


def _fill_holding(state: LoaderState[R], call: Call, token: str, stale: Envelope | None) -> Steps[R]:
    """We own the lock. Since our read, somebody may have written the value, or failed
    to load it (the key is then backing off: serve the stale value, if any, rather than
    be a second attempt on a failing origin)."""
    keys = call.keys
    raw, pending = yield Command(("MGET", keys.value, keys.pending))
    if not isinstance(value := (yield from servable(state, raw)), Nothing):
        yield from release(keys.lock, token)
        return value
    if stale is not None and pending == BACKOFF and not isinstance(value := state.decode(stale, quiet=True), Nothing):
        yield from release(keys.lock, token)
        state.stats.incr("stale_served")
        return value
    envelope = state.parse(raw, quiet=True)
    seen = envelope.version if envelope is not None else NOTHING_READ
    settings = state.settings
    held = Held(keys.lock, token, settings.lock_ttl_ms, settings.max_load_ms)
    started: Clock = yield Now()
    value, _ = yield from load_and_commit(state, call, held, seen, started_ms=started.ms, back_off=stale is not None)
    return value


# KEYS: the value, its lock, its pending marker. ARGV: the lock's token, the version read
# before loading, the envelope, its PX, the signal channel, and `v` (send waiters the
# envelope) or `w` (tell them it is written). Returns {1 written | 0 lock lost |
# -1 superseded, the error that kept the waiters from being told, or nil}: the publish
# cannot undo or fail a write that happened. A key of another Redis type is foreign: it
# is deleted and replaced.
COMMIT = """
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return {0} end
local kind = redis.call('TYPE', KEYS[1]).ok
if kind == 'string' then
    local version = string.match(redis.call('GET', KEYS[1]), '^r1|(%d+)|')
    if version and version ~= ARGV[2] then
        redis.call('DEL', KEYS[2])
        local told = redis.pcall('SPUBLISH', ARGV[5], 'r')
        return {-1, type(told) == 'table' and told.err or false}
    end
elseif kind ~= 'none' then
    redis.call('DEL', KEYS[1])
end
redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[4])
redis.call('DEL', KEYS[2])
redis.call('DEL', KEYS[3])
local told = redis.pcall('SPUBLISH', ARGV[5], ARGV[6] == 'v' and 'v' .. ARGV[3] or 'w')
return {1, type(told) == 'table' and told.err or false}
"""


class Commit(Enum):
    WRITTEN = 1
    LOST_LOCK = 0  # the lock expired and maybe somebody else holds it now
    SUPERSEDED = -1  # the value is no longer the version we read: set/invalidate (or a newer load) won


def commit(keys: Keys, token: str, seen: int, envelope: Envelope, px: int) -> Steps[Commit]:
    """Write a loaded value only if we still own the lock and the value is still the
    version `seen` we read before loading (NOTHING_READ if there was none); then free the
    lock, clear the pending marker (the refresh it stood for is done, and a success ends
    any back-off) and wake the waiters.

    A value that has simply expired since we read it may be replaced: set() and
    invalidate() write with a TTL longer than any load may hold its lock, so they are
    still there to refuse us. Foreign bytes at the key carry no version and are
    overwritten.
    """
    data = envelope.to_bytes()
    told = filled(data)[:1]
    code, *unsent = yield Script(COMMIT, (keys.value, keys.lock, keys.pending), (token, seen, data, px, keys.signal, told))
    if unsent and unsent[0]:
        log.warning("%s: the commit took effect, but its waiters could not be told (%s): they read the key when "
                    "their wait ends", keys.value, reply_text(unsent[0]))
    return Commit(int(code))


def load_and_commit(
    state: LoaderState[R], call: Call, held: Held, seen: int, started_ms: int, *, back_off: bool
) -> Steps[tuple[R, str]]:
    """Run the loader under the `held` lock (the driver keeps it alive) and write the
    result if we still hold the lock and the value is still the version `seen`. Waiters
    are always told how it went; the loader's own exception is re-raised to our caller,
    after the key's back-off is set if `back_off` (there is an old value to serve)."""
    signal = call.keys.signal
    marks = yield from current_marks(state, call)  # before the origin call: an invalidation during it marks this value old
    started: Clock = yield Now()
    try:
        payload, value = state.encode((yield Load(state.fn, call, held)))
    except GeneratorExit:
        raise
    except Exception as exc:
        state.stats.time("load", (yield Now()).monotonic - started.monotonic)
        state.stats.incr("load_failed")
        if back_off:
            # While we still hold the lock: released first, another process could take
            # the lock and call the failing origin again at once.
            yield from set_back_off(state, call)
        error = {"type": type(exc).__name__, "message": str(exc)}
        yield from release(held.key, held.token, signal, FAILED + json.dumps(error).encode())
        raise
    except BaseException:  # cancelled, interrupted: let a waiter take over at once
        yield from release(held.key, held.token, signal, RETRY)
        raise
    loaded: Clock = yield Now()
    state.stats.time("load", loaded.monotonic - started.monotonic)  # the origin call (and encoding its value)
    state.stats.incr("load")
    envelope = state.envelope(payload, loaded.ms - started_ms, loaded.ms, marks)
    if len(payload) > state.settings.max_value_bytes:
        about(state.name, call.keys.value).warning(
            "value is %d bytes, over max_value_bytes=%d; served but not cached",
            len(payload), state.settings.max_value_bytes,
        )
        state.stats.incr("too_large")
        yield from release(held.key, held.token, signal, filled(envelope.to_bytes()))
        return value, "too_large"
    try:
        outcome = yield from commit(call.keys, held.token, seen, envelope, envelope.ttl_ms + state.settings.stale_ms)
    except CacheFailure as exc:  # nothing written: the script's first write was refused
        about(state.name, call.keys.value).warning("loaded but could not store it: %s",
                                                  cache_error(exc, f"writing {call.keys.value}"))
        state.stats.incr("not_stored")
        yield from _release_quietly(held, signal, filled(envelope.to_bytes()))
        return value, "not_stored"
    if outcome is not Commit.WRITTEN:
        state.stats.incr(f"commit_{outcome.name.lower()}")
        about(state.name, call.keys.value).info("dropped the load: %s", outcome.name.lower())
    return value, outcome.name.lower()


def _release_quietly(held: Held, signal: str, message: bytes) -> Steps[None]:
    """Free the lock after a refused commit, telling the waiters (a small value is theirs
    to serve); if the cache refuses this too, the lock's TTL frees it."""
    try:
        yield from release(held.key, held.token, signal, message)
    except CacheFailure as exc:
        log.warning("%s: could not free the lock after a refused commit (%s): it expires by itself", held.key, exc)


def set_back_off(state: LoaderState[Any], call: Call) -> Steps[None]:
    """After a failed load, hold off further attempts on this key fleet-wide: readers
    serve what they have and ask for no refresh, workers drop refresh tasks."""
    try:
        yield Command(("SET", call.keys.pending, BACKOFF, "PX", state.settings.error_backoff_ms))
    except CacheFailure as exc:
        about(state.name, call.keys.value).warning("could not record the back-off: %s", exc)
