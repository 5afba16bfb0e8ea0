"""Writes a caller asks for: `set` a value it already has, `invalidate` one."""

from __future__ import annotations

import logging
from typing import Any

from refresher.core.calls import Call
from refresher.core.failures import CacheFailure, cache_error, count, reply_text
from refresher.core.marks import current_marks
from refresher.core.ops import Clock, Now, Script, Steps
from refresher.core.protocol.scripts import BUMP_EPOCH, REPLACE_VALUE
from refresher.core.protocol.signals import filled
from refresher.core.state import LoaderState
from refresher.core.envelope import Envelope, new_version
from refresher.errors import RefresherError

log = logging.getLogger("refresher")

def _replace(state: LoaderState[Any], call: Call, envelope: Envelope) -> Steps[None]:
    """Write `envelope` (a value or a tombstone, under a new version) and wake the
    waiters; any load in flight for this key read another version and is refused.

    It stays in Redis (unservable once past its TTL) for as long as a load that began
    before it can still try to commit, so that load finds this version and is refused.
    A write the cache could not make raises (CacheUnavailable, or a CacheRefused naming
    the fix), even with fail_open: the caller must know. One that was made does not.
    """
    settings = state.settings
    px = max(envelope.ttl_ms + envelope.stale_ms, settings.max_load_ms + settings.lock_ttl_ms)
    keys = call.keys
    data = envelope.to_bytes()
    try:
        unsent = yield Script(REPLACE_VALUE, (keys.value,), (data, px, keys.signal, filled(data)[:1]))
    except CacheFailure as exc:
        raise _not_written(state, keys.value, exc) from exc
    if unsent:
        log.warning("%s: written, but waiters could not be told (%s): they read the key when their wait ends",
                    keys.value, reply_text(unsent))


def _not_written(state: LoaderState[Any], key: str, exc: CacheFailure) -> RefresherError:
    count(state, exc)
    return cache_error(exc, f"writing {key}")


def set_value(state: LoaderState[Any], call: Call, value: Any) -> Steps[None]:
    payload, _ = state.encode(value)
    try:
        marks = yield from current_marks(state, call)
    except CacheFailure as exc:
        raise _not_written(state, call.keys.value, exc) from exc
    now: Clock = yield Now()
    yield from _replace(state, call, state.envelope(payload, 0, now.ms, marks))


def invalidate(state: LoaderState[Any], call: Call) -> Steps[None]:
    now: Clock = yield Now()
    yield from _replace(state, call, Envelope(new_version(), now.ms, 0, 0, 0, b"", tombstone=True))


def bump_epoch(key: str, hard: bool) -> Steps[int]:
    """`invalidate_all` of a loader, or `invalidate_tag`: its epoch key goes up by one (and
    its floor with it, if hard). One write, whatever the number of values (epochs.py)."""
    try:
        return int((yield Script(BUMP_EPOCH, (key,), ("hard" if hard else "soft",))))
    except CacheFailure as exc:
        raise cache_error(exc, f"writing {key}") from exc
