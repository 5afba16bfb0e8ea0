"""The commit: a loaded value is written only by the lock's owner, over the version it read.

A load (a miss's leader in core/miss.py, a worker's refresh in core/renew.py) runs the
loader under an owned lock and then commits with one script, COMMIT_LOAD
(protocol/scripts.py), which checks the lock and the version and writes in the same call:
a load that lost its lock, or that an invalidation or a `set` overtook, cannot write. The
waiters are told how it went, whatever happened.
"""

from __future__ import annotations

import json
import logging
from typing import Any, TypeVar

from refresher.core.calls import Call
from refresher.core.failures import CacheFailure, cache_error, reply_text
from refresher.core.epochs import Epoch
from refresher.core.marks import current_marks
from refresher.core.lock import release
from refresher.core.ops import Clock, Command, Held, Load, Now, Script, Steps
from refresher.core.protocol.layout import BACKOFF
from refresher.core.protocol.outcomes import Outcome
from refresher.core.protocol.scripts import COMMIT_LOAD, Commit
from refresher.core.protocol.signals import FAILED, RETRY, filled
from refresher.core.state import LoaderState
from refresher.core.envelope import Envelope
from refresher.core.keys import Keys
from refresher.core.logs import about

R = TypeVar("R")
log = logging.getLogger("refresher")


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
    code, *unsent = yield Script(COMMIT_LOAD, (keys.value, keys.lock, keys.pending), (token, seen, data, px, keys.signal, told))
    if unsent and unsent[0]:
        log.warning("%s: the commit took effect, but its waiters could not be told (%s): they read the key when "
                    "their wait ends", keys.value, reply_text(unsent[0]))
    return Commit(int(code))


def load_and_commit(
    state: LoaderState[R], call: Call, held: Held, seen: int, started_ms: int, *, back_off: bool,
    epochs: dict[str, Epoch] | None = None,
) -> Steps[tuple[R, Outcome]]:
    """Run the loader under the `held` lock (the driver keeps it alive) and write the
    result if we still hold the lock and the value is still the version `seen`. Waiters
    are always told how it went; the loader's own exception is re-raised to our caller,
    after the key's back-off is set if `back_off` (there is an old value to serve).
    `epochs`: those the value's marks are made of, if the lock's round trip read them."""
    signal = call.keys.signal
    marks = yield from current_marks(state, call, epochs)  # before the origin call: an invalidation during it marks this value old
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
        return value, Outcome.TOO_LARGE
    try:
        outcome = yield from commit(call.keys, held.token, seen, envelope, envelope.ttl_ms + state.settings.stale_ms)
    except CacheFailure as exc:  # nothing written: the script's first write was refused
        about(state.name, call.keys.value).warning("loaded but could not store it: %s",
                                                  cache_error(exc, f"writing {call.keys.value}"))
        state.stats.incr("not_stored")
        yield from _release_quietly(held, signal, filled(envelope.to_bytes()))
        return value, Outcome.NOT_STORED
    if outcome is not Commit.WRITTEN:
        state.stats.incr(f"commit_{outcome.name.lower()}")
        about(state.name, call.keys.value).info("dropped the load: %s", outcome.name.lower())
    return value, Outcome[outcome.name]  # WRITTEN, LOST_LOCK or SUPERSEDED


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
