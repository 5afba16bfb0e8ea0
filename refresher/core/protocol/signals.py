"""The messages on a key's signal channel (`<value key>:signal`, layout.py), read by the
processes waiting for the key's lock holder (refresher/core/wait.py).

Each message is one byte saying what happened, then its body:

    FILLED   `v` + the envelope that was written: serve it (if its epochs allow)
    WRITTEN  `w`, no body: a value over SIGNAL_VALUE_BYTES was written: read the key
    FAILED   `e` + JSON {"type": ..., "message": ...}: the loader raised this
    RETRY    `r`, no body: the holder gave up without writing: contend for the lock again

COMMIT_LOAD and REPLACE_VALUE (scripts.py) publish `v`, `w` and `r` from Lua; RELEASE_LOCK
publishes the message its caller builds. Anyone allowed to publish on the channel can send
anything: a message is a hint, and a waiter that cannot make sense of one reads the key.
"""

from __future__ import annotations

FILLED = b"v"
WRITTEN = b"w"
FAILED = b"e"
RETRY = b"r"
# Larger values are not sent to waiters: each waiter's pub/sub connection would hold a
# copy in Redis's output buffer (past client-output-buffer-limit pubsub, Redis drops it).
SIGNAL_VALUE_BYTES = 32 * 1024


def filled(envelope: bytes) -> bytes:
    """The message telling waiters that `envelope` was written (it, if small enough)."""
    return FILLED + envelope if len(envelope) <= SIGNAL_VALUE_BYTES else WRITTEN
