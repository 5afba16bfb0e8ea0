"""Owned locks as steps: a TTL, a random token, released and extended only by the owner.

Each Lua script sits beside the step that runs it. Drivers run scripts with EVALSHA and
reload them on NOSCRIPT, so a `SCRIPT FLUSH` costs one extra round trip.
"""

from __future__ import annotations

import logging
import secrets

from refresher.core.failures import reply_text
from refresher.core.ops import Command, Held, Pause, Script, Steps

TOKEN_BYTES = 16
log = logging.getLogger("refresher")
BACKOFF = b"backoff"  # pending-marker value after a failed load: no new attempt until it expires


def new_token() -> str:
    return secrets.token_hex(TOKEN_BYTES)


def acquire(key: str, token: str, ttl_ms: int) -> Steps[bool]:
    return bool((yield Command(("SET", key, token, "NX", "PX", ttl_ms))))


# KEYS: the lock. ARGV: its token, then optionally a signal channel and the message for
# it. Returns 1 released, 0 not ours; or the error that kept the waiters from being told
# (the lock is released all the same: a failed publish cannot fail the release).
RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    redis.call('DEL', KEYS[1])
    if ARGV[2] then
        local told = redis.pcall('SPUBLISH', ARGV[2], ARGV[3])
        if type(told) == 'table' and told.err then return told.err end
    end
    return 1
end
return 0
"""


def release(key: str, token: str, channel: str | None = None, message: bytes = b"") -> Steps[bool]:
    """Compare-and-delete; if released, optionally tell the waiters on `channel`."""
    args: tuple[str | bytes, ...] = (token,) if channel is None else (token, channel, message)
    released = yield Script(RELEASE, (key,), args)
    if isinstance(released, bytes):
        log.warning("%s: released, but its waiters could not be told (%s): they look again when their wait ends",
                    key, reply_text(released))
    return bool(released)


EXTEND = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
for i = 1, #KEYS do redis.call('PEXPIRE', KEYS[i], ARGV[2]) end
return 1
"""


def extend(held: Held) -> Steps[bool]:
    """Push the lock's expiry (and its companions') one TTL ahead, if we still own it."""
    return bool((yield Script(EXTEND, (held.key, *held.companions), (held.token, held.ttl_ms))))


# KEYS: the lock, then its companions; ARGV: the owner's token, BACKOFF, the back-off in ms.
GIVE_UP = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
for i = 2, #KEYS do redis.call('SET', KEYS[i], ARGV[2], 'PX', ARGV[3]) end
return 1
"""


def keep_alive(held: Held) -> Steps[None]:
    """Extend the lock every third of its TTL while its load runs. Stops when the driver
    says the load is over, when an extension finds the lock owned by someone else, or
    once the lock has been held for max_hold_ms: a hung loader cannot keep a key locked
    forever. Then, where nothing can stop the load (Celery's threads pool ignores time
    limits), the key backs off for another max_hold_ms (its companions, the pending
    marker of a refresh, say BACKOFF): no worker starts the same hung load at once."""
    interval = held.ttl_ms / 3000
    for _ in range(max(0, (held.max_hold_ms - held.ttl_ms) * 3 // held.ttl_ms)):
        if (yield Pause(interval)):
            return
        try:
            if not (yield from extend(held)):
                return
        except Exception:  # a blip must not fail the load; the TTL still bounds the lock
            return
    if held.companions and not (yield Pause(interval)):
        try:
            yield Script(GIVE_UP, (held.key, *held.companions), (held.token, BACKOFF, held.max_hold_ms))
        except Exception:  # the lock and its companions lapse by their TTL instead
            return
