"""The miss path: one load per key, whatever the number of callers.

One caller per process loads (the Coalesce op: singleflight across threads and tasks),
one process per key (an owned lock), and the other processes sleep on the key's signal
channel until the holder writes, fails or gives up: woken, not polling. The holder's
load and its commit are core/commit.py's, shared with a worker's refresh.
"""

from __future__ import annotations

from typing import Any, TypeVar

from refresher.core.calls import Call
from refresher.core.commit import load_and_commit
from refresher.core.copies import Copy, handout
from refresher.core.failures import CacheFailure, cache_down, is_cache_trouble
from refresher.core.epochs import Epoch
from refresher.core.marks import learnt, servable, to_read, verdict
from refresher.core.lock import acquire_reading, new_token, release
from refresher.core.ops import Clock, Command, Held, Coalesce, Follow, Now, Steps
from refresher.core.protocol.layout import BACKOFF, NOTHING_READ
from refresher.core.protocol.outcomes import Outcome
from refresher.core.state import NOTHING, Nothing, LoaderState
from refresher.core.wait import Retry, await_holder
from refresher.core.envelope import Envelope
from refresher.core.logs import about
from refresher.core.policy import Verdict

R = TypeVar("R")
V = TypeVar("V")
# What a miss's flight lands with: its value, whether that is the key's current value
# (written by its load, or read as it stands), which a read that joins it late may take,
# and how each caller but the leader gets a value of its own.
Landed = tuple[R, bool, Copy]
OVERTAKEN = frozenset({Outcome.SUPERSEDED, Outcome.LOST_LOCK})  # loaded, but a newer write (or lock) won


def miss(state: LoaderState[R], call: Call, raw: bytes | None) -> Steps[R]:
    """Nothing servable was read: load it, coalesced. A stale value (past its TTL, inside
    stale_ttl) is served instead while the key backs off after a failed load."""
    return (yield from _counted(state, call, _miss(state, call, raw)))


def follow(state: LoaderState[R], call: Call) -> Steps[R | Nothing]:
    """Before its GET, a read joins the miss of its key this process already has in
    flight (its GET would miss too, or find what that miss is about to return), and
    comes back with its value; NOTHING when there was none to join, or when the miss's
    value is not the key's current one (a `set` or `invalidate` overtook its load: the
    read then goes to Redis, as it would have, and finds what they wrote). On a cold
    stampede every GET spared is one less turn of the interpreter's lock and one less
    new pooled connection ahead of the load."""
    return (yield from _counted(state, call, _follow(call)))


def _counted(state: LoaderState[R], call: Call, steps: Steps[tuple[V, str | None]]) -> Steps[V | R]:
    """A coalesced read's outcome, counted as the steps say; a cache failure goes the way
    of any read's."""
    try:
        value, event = yield from steps
    except CacheFailure as exc:
        if not is_cache_trouble(exc):
            state.stats.incr("error")
            raise
        return (yield from cache_down(state, call, exc))
    except Exception:
        state.stats.incr("error")  # the loader's error, or LoadFailed from another process's
        raise
    if event is not None:
        state.stats.incr(event)
    return value


def _miss(state: LoaderState[R], call: Call, raw: bytes | None) -> Steps[tuple[R, str | None]]:
    envelope = state.parse(raw, quiet=True)
    stale = envelope if envelope is not None and (yield from verdict(state, envelope)) is Verdict.STALE else None
    if stale is not None and (yield Command(("MGET", call.keys.pending)))[0] == BACKOFF:
        if not isinstance(value := state.decode(stale, key=call.keys.value), Nothing):
            return value, "stale_served"  # the origin failed lately: don't try again yet
    while True:
        (value, current, copy), led = yield Coalesce(call.keys.value, lambda: _landing(_fill(state, call, stale)))
        if led:
            return value, "miss"
        if current:
            return copy(value), "coalesced"
        # The load this read joined was overtaken by a `set` or `invalidate`, which may have
        # come before this read began (its GET may have been another thread's: threads.py):
        # what that write left decides, as this read's own GET would have.
        (raw,) = yield Command(("MGET", call.keys.value))
        if not isinstance(value := (yield from servable(state, raw)), Nothing):
            return value, "hit"


def _follow(call: Call) -> Steps[tuple[Any, str | None]]:
    joined, landed = yield Follow(call.keys.value)
    if not joined or not landed[1]:
        return NOTHING, None
    value, _, copy = landed
    return copy(value), "coalesced"


def _landing(fill: Steps[tuple[R, bool]]) -> Steps[Landed[R]]:
    value, current = yield from fill
    return value, current, handout(value)


def _fill(state: LoaderState[R], call: Call, stale: Envelope | None) -> Steps[tuple[R, bool]]:
    keys = call.keys
    while True:
        token = new_token()
        try:
            epoch_keys = to_read(state, call)
            ticket = state.epochs.expect(epoch_keys) if epoch_keys else None
            taken, (raw, pending), epoch_raws = yield from acquire_reading(
                keys.lock, token, state.settings.lock_ttl_ms, (keys.value, keys.pending), tuple(epoch_keys))
            if taken:
                epochs = (yield from learnt(state, epoch_keys, epoch_raws, ticket)) if epoch_keys else None
                return (yield from _fill_holding(state, call, token, stale, raw, pending, epochs))
            return (yield from _timed_wait(state, call)), True
        except Retry:
            continue
        except Exception:
            if stale is None or isinstance(value := state.decode(stale, quiet=True), Nothing):
                raise
            about(state.name, call.keys.value).exception("reloading failed; serving the stale value")
            state.stats.incr("stale_served")
            return value, False


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


def _fill_holding(state: LoaderState[R], call: Call, token: str, stale: Envelope | None,
                  raw: bytes | None, pending: bytes | None, epochs: dict[str, Epoch] | None) -> Steps[tuple[R, bool]]:
    """We own the lock. Since our read, somebody may have written the value, or failed
    to load it (the key is then backing off: serve the stale value, if any, rather than
    be a second attempt on a failing origin). `raw` and `pending`, and the `epochs` the
    value is marked with (when not known here), were read just after the lock was
    taken, in its round trip: the way to the load is contended (readers of the key in
    the process send their GETs then), and each round trip more is one more wait for
    the interpreter's lock."""
    keys = call.keys
    if not isinstance(value := (yield from servable(state, raw)), Nothing):
        yield from release(keys.lock, token)
        return value, True
    if stale is not None and pending == BACKOFF and not isinstance(value := state.decode(stale, quiet=True), Nothing):
        yield from release(keys.lock, token)
        state.stats.incr("stale_served")
        return value, False
    envelope = state.parse(raw, quiet=True)
    seen = envelope.version if envelope is not None else NOTHING_READ
    settings = state.settings
    held = Held(keys.lock, token, settings.lock_ttl_ms, settings.max_load_ms)
    started: Clock = yield Now()
    value, outcome = yield from load_and_commit(state, call, held, seen, started_ms=started.ms,
                                                back_off=stale is not None, epochs=epochs)
    return value, outcome not in OVERTAKEN
