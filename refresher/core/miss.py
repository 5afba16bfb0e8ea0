"""The miss path: one load per key, whatever the number of callers.

One caller per process loads (the Coalesce op: singleflight across threads and tasks),
one process per key (an owned lock), and the other processes sleep on the key's signal
channel until the holder writes, fails or gives up: woken, not polling.
"""

from __future__ import annotations

import json
import time
from enum import Enum
from typing import Any, TypeVar

from redis.exceptions import ClusterDownError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from refresher.calls import Call
from refresher.core.marks import current_marks, servable, verdict
from refresher.core.lock import BACKOFF, acquire, new_token, release
from refresher.core.ops import Batch, Command, Held, Listen, Load, Coalesce, Script, Steps, Subscribe
from refresher.core.spec import SERVABLE, Nothing, Spec, now_ms
from refresher.envelope import NOTHING_READ, Envelope
from refresher.errors import CacheUnavailable, LoadFailed
from refresher.keys import Keys
from refresher.logs import about
from refresher.policy import Verdict

R = TypeVar("R")

# ClusterDownError: a Cluster answers CLUSTERDOWN on every slot while a master fails over,
# and for as long as a shard is lost with its replica.
UNAVAILABLE = (RedisConnectionError, RedisTimeoutError, ClusterDownError)
# Messages on a key's signal channel, read by processes waiting for its lock holder.
FILLED = b"v"  # followed by the envelope that was written
FAILED = b"e"  # followed by a JSON {"type", "message"} of the loader's error
RETRY = b"r"  # the holder gave up without writing: try to take the lock again


class Retry(Exception):
    """The lock holder went away without a value: contend for the lock again."""


def miss(spec: Spec[R], call: Call, raw: bytes | None) -> Steps[R]:
    """Nothing servable was read: load it, coalesced. A stale value (past its TTL, inside
    stale_ttl) is served instead while the key backs off after a failed load."""
    envelope = spec.parse(raw, quiet=True)
    try:
        stale = envelope if envelope is not None and (yield from verdict(spec, envelope)) is Verdict.STALE else None
        if stale is not None and (yield Command(("GET", call.keys.pending))) == BACKOFF:
            if not isinstance(value := spec.decode(stale, key=call.keys.value), Nothing):
                spec.stats.incr("stale_served")  # the origin failed lately: don't try again yet
                return value
        value, led = yield Coalesce(call.keys.value, lambda: _fill(spec, call, stale))
    except UNAVAILABLE as exc:
        return (yield from cache_down(spec, call, exc))
    except Exception:
        spec.stats.incr("error")  # the loader's error, or LoadFailed from another process's
        raise
    spec.stats.incr("miss" if led else "coalesced")
    return value  # type: ignore[no-any-return]


def cache_down(spec: Spec[R], call: Call, exc: Exception) -> Steps[R]:
    """The cache Redis is unreachable: one exception type, or with fail_open the loader
    itself, still coalesced within the process."""
    spec.stats.incr("cache_unavailable")
    if not spec.settings.fail_open:
        spec.stats.incr("error")
        raise CacheUnavailable(f"cache Redis unavailable while reading {call.keys.value}: {exc}") from exc
    about(spec.name, call.keys.value).warning("cache Redis unavailable (%s); calling the loader directly", exc)
    value, _ = yield Coalesce(call.keys.value, lambda: _call_origin(spec, call))
    return value  # type: ignore[no-any-return]


def _call_origin(spec: Spec[R], call: Call) -> Steps[R]:
    return (yield Load(spec.fn, call, None))  # type: ignore[no-any-return]


def _fill(spec: Spec[R], call: Call, stale: Envelope | None) -> Steps[R]:
    while True:
        token = new_token()
        try:
            if (yield from acquire(call.keys.lock, token, spec.settings.lock_ttl_ms)):
                return (yield from _fill_holding(spec, call, token, stale))
            return (yield from _await_holder(spec, call))
        except Retry:
            continue
        except Exception:
            if stale is None or isinstance(value := spec.decode(stale, quiet=True), Nothing):
                raise
            about(spec.name, call.keys.value).exception("reloading failed; serving the stale value")
            spec.stats.incr("stale_served")
            return value


def _fill_holding(spec: Spec[R], call: Call, token: str, stale: Envelope | None) -> Steps[R]:
    """We own the lock. Since our read, somebody may have written the value, or failed
    to load it (the key is then backing off: serve the stale value, if any, rather than
    be a second attempt on a failing origin)."""
    keys = call.keys
    raw, pending = yield Command(("MGET", keys.value, keys.pending))
    if not isinstance(value := (yield from servable(spec, raw)), Nothing):
        yield from release(keys.lock, token)
        return value
    if stale is not None and pending == BACKOFF and not isinstance(value := spec.decode(stale, quiet=True), Nothing):
        yield from release(keys.lock, token)
        spec.stats.incr("stale_served")
        return value
    envelope = spec.parse(raw, quiet=True)
    seen = envelope.version if envelope is not None else NOTHING_READ
    settings = spec.settings
    held = Held(keys.lock, token, settings.lock_ttl_ms, settings.max_load_ms)
    value, _ = yield from load_and_commit(spec, call, held, seen, started_ms=now_ms(), back_off=stale is not None)
    return value


COMMIT = """
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
local current = redis.call('GET', KEYS[1])
if current then
    local version = string.match(current, '^r1|(%d+)|')
    if version and version ~= ARGV[2] then
        redis.call('DEL', KEYS[2])
        redis.call('SPUBLISH', ARGV[5], 'r')
        return -1
    end
end
redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[4])
redis.call('DEL', KEYS[2])
redis.call('DEL', KEYS[3])
redis.call('SPUBLISH', ARGV[5], 'v' .. ARGV[3])
return 1
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
    result = yield Script(COMMIT, (keys.value, keys.lock, keys.pending), (token, seen, envelope.to_bytes(), px, keys.signal))
    return Commit(int(result))


def load_and_commit(
    spec: Spec[R], call: Call, held: Held, seen: int, started_ms: int, *, back_off: bool
) -> Steps[tuple[R, str]]:
    """Run the loader under the `held` lock (the driver keeps it alive) and write the
    result if we still hold the lock and the value is still the version `seen`. Waiters
    are always told how it went; the loader's own exception is re-raised to our caller,
    after the key's back-off is set if `back_off` (there is an old value to serve)."""
    signal = call.keys.signal
    marks = yield from current_marks(spec, call)  # before the origin call: an invalidation during it marks this value old
    started = time.monotonic()
    try:
        payload, value = spec.encode((yield Load(spec.fn, call, held)))
    except GeneratorExit:
        raise
    except Exception as exc:
        spec.stats.time("load", time.monotonic() - started)
        spec.stats.incr("load_failed")
        if back_off:
            # While we still hold the lock: released first, another process could take
            # the lock and call the failing origin again at once.
            yield from set_back_off(spec, call)
        error = {"type": type(exc).__name__, "message": str(exc)}
        yield from release(held.key, held.token, signal, FAILED + json.dumps(error).encode())
        raise
    except BaseException:  # cancelled, interrupted: let a waiter take over at once
        yield from release(held.key, held.token, signal, RETRY)
        raise
    spec.stats.time("load", time.monotonic() - started)  # the origin call (and encoding its value)
    spec.stats.incr("load")
    envelope = spec.envelope(payload, now_ms() - started_ms, marks)
    if len(payload) > spec.settings.max_value_bytes:
        about(spec.name, call.keys.value).warning(
            "value is %d bytes, over max_value_bytes=%d; served but not cached",
            len(payload), spec.settings.max_value_bytes,
        )
        spec.stats.incr("too_large")
        yield from release(held.key, held.token, signal, FILLED + envelope.to_bytes())
        return value, "too_large"
    try:
        outcome = yield from commit(call.keys, held.token, seen, envelope, envelope.ttl_ms + spec.settings.stale_ms)
    except RedisError as exc:
        about(spec.name, call.keys.value).warning("loaded but could not store it: %s", exc)
        return value, "not_stored"
    if outcome is not Commit.WRITTEN:
        spec.stats.incr(f"commit_{outcome.name.lower()}")
        about(spec.name, call.keys.value).info("dropped the load: %s", outcome.name.lower())
    return value, outcome.name.lower()


def set_back_off(spec: Spec[Any], call: Call) -> Steps[None]:
    """After a failed load, hold off further attempts on this key fleet-wide: readers
    serve what they have and ask for no refresh, workers drop refresh tasks."""
    try:
        yield Command(("SET", call.keys.pending, BACKOFF, "PX", spec.settings.error_backoff_ms))
    except RedisError as exc:
        about(spec.name, call.keys.value).warning("could not record the back-off: %s", exc)


def _await_holder(spec: Spec[R], call: Call) -> Steps[R]:
    """Sleep on the key's signal channel until the lock holder writes or gives up.

    Subscribing before looking again closes the race with a holder that finishes in
    between. If the holder dies, its lock expires and we wake to take it over.
    """
    spec.stats.incr("waited")
    subscription = yield Subscribe(call.keys.signal)
    raw, lock_pttl = yield Batch((("GET", call.keys.value), ("PTTL", call.keys.lock)))
    if not isinstance(value := (yield from servable(spec, raw)), Nothing):
        return value
    if lock_pttl <= 0:
        raise Retry
    deadline = time.monotonic() + lock_pttl / 1000
    while (left := deadline - time.monotonic()) > 0:
        data = yield Listen(subscription, left)
        if data is not None:
            return (yield from _heard(spec, data))
    raise Retry


def _heard(spec: Spec[R], data: bytes) -> Steps[R]:
    kind, body = data[:1], data[1:]
    if kind == FILLED:
        envelope = spec.parse(body, quiet=True)
        if envelope is not None and (yield from verdict(spec, envelope)) in SERVABLE:  # not loaded before an invalidate_all
            if not isinstance(value := spec.decode(envelope, quiet=True), Nothing):
                return value
    if kind == FAILED:
        error = json.loads(body)
        raise LoadFailed(spec.name, error["type"], error["message"])
    raise Retry

