"""Owned locks as steps: a TTL, a random token, released and extended only by the owner.

Their Lua scripts, with their contracts, are in refresher/core/protocol/scripts.py.
"""

from __future__ import annotations

import logging
import secrets

from refresher.core.failures import reply_text
from refresher.core.ops import Batch, Command, Held, Pause, Script, Steps
from refresher.core.protocol.layout import BACKOFF
from refresher.core.protocol.scripts import BACK_OFF_HUNG_LOAD, EXTEND_LOCK, RELEASE_LOCK

TOKEN_BYTES = 16
log = logging.getLogger("refresher")


def new_token() -> str:
    return secrets.token_hex(TOKEN_BYTES)


def acquire(key: str, token: str, ttl_ms: int) -> Steps[bool]:
    return bool((yield Command(("SET", key, token, "NX", "PX", ttl_ms))))


def acquire_reading(key: str, token: str, ttl_ms: int, reading: tuple[str, ...],
                    apart: tuple[str, ...] = ()) -> Steps[tuple[bool, list[bytes | None], list[bytes | None]]]:
    """`acquire`, and the keys `reading` (of one slot) and `apart` (each in a slot of its
    own) read right after it in the same round trip: what a new owner must look at
    before its load costs it no second wait."""
    taken, values, *others = yield Batch((("SET", key, token, "NX", "PX", ttl_ms), ("MGET", *reading),
                                          *(("MGET", one) for one in apart)))
    return bool(taken), values, [other[0] for other in others]


def release(key: str, token: str, channel: str | None = None, message: bytes = b"") -> Steps[bool]:
    """Compare-and-delete; if released, optionally tell the waiters on `channel`."""
    args: tuple[str | bytes, ...] = (token,) if channel is None else (token, channel, message)
    released = yield Script(RELEASE_LOCK, (key,), args)
    if isinstance(released, bytes):
        log.warning("%s: released, but its waiters could not be told (%s): they look again when their wait ends",
                    key, reply_text(released))
    return bool(released)


def extend(held: Held) -> Steps[bool]:
    """Push the lock's expiry (and its companions') one TTL ahead, if we still own it."""
    return bool((yield Script(EXTEND_LOCK, (held.key, *held.companions), (held.token, held.ttl_ms))))


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
            yield Script(BACK_OFF_HUNG_LOAD, (held.key, *held.companions), (held.token, BACKOFF, held.max_hold_ms))
        except Exception:  # the lock and its companions lapse by their TTL instead
            return
