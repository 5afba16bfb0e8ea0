"""Writes a caller asks for: `set` a value it already has, `invalidate` one."""

from __future__ import annotations

from typing import Any

from refresher.calls import Call
from refresher.core.marks import current_marks
from refresher.core.miss import UNAVAILABLE
from refresher.core.ops import Script, Steps
from refresher.core.spec import Spec, now_ms
from refresher.envelope import Envelope, new_version
from refresher.errors import CacheUnavailable

REPLACE = """
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('SPUBLISH', ARGV[3], 'v' .. ARGV[1])
"""


def _replace(spec: Spec[Any], call: Call, envelope: Envelope) -> Steps[None]:
    """Write `envelope` (a value or a tombstone, under a new version) and wake the
    waiters; any load in flight for this key read another version and is refused.

    It stays in Redis (unservable once past its TTL) for as long as a load that began
    before it can still try to commit, so that load finds this version and is refused.
    A cache outage raises CacheUnavailable, even with fail_open: the caller must know.
    """
    settings = spec.settings
    px = max(envelope.ttl_ms + envelope.stale_ms, settings.max_load_ms + settings.lock_ttl_ms)
    keys = call.keys
    try:
        yield Script(REPLACE, (keys.value,), (envelope.to_bytes(), px, keys.signal))
    except UNAVAILABLE as exc:
        raise _unavailable(spec, keys.value, exc) from exc


def _unavailable(spec: Spec[Any], key: str, exc: Exception) -> CacheUnavailable:
    """A write the caller asked for failed: it must know, even with fail_open."""
    spec.stats.incr("cache_unavailable")
    return CacheUnavailable(f"cache Redis unavailable while writing {key}: {exc}")


def set_value(spec: Spec[Any], call: Call, value: Any) -> Steps[None]:
    payload, _ = spec.encode(value)
    try:
        marks = yield from current_marks(spec, call)
    except UNAVAILABLE as exc:
        raise _unavailable(spec, call.keys.value, exc) from exc
    yield from _replace(spec, call, spec.envelope(payload, 0, marks))


def invalidate(spec: Spec[Any], call: Call) -> Steps[None]:
    yield from _replace(spec, call, Envelope(new_version(), now_ms(), 0, 0, 0, b"", tombstone=True))


BUMP = """
local epoch, floor = 0, 0
local current = redis.call('GET', KEYS[1])
if current then
  epoch, floor = string.match(current, '^(%d+) (%d+)$')
  epoch, floor = tonumber(epoch), tonumber(floor)
end
epoch = epoch + 1
if ARGV[1] == 'hard' then floor = epoch end
redis.call('SET', KEYS[1], epoch .. ' ' .. floor)
return epoch
"""


def bump_epoch(key: str, hard: bool) -> Steps[int]:
    """`invalidate_all` of a loader, or `invalidate_tag`: its epoch key goes up by one (and
    its floor with it, if hard). One write, whatever the number of values (epochs.py)."""
    try:
        return int((yield Script(BUMP, (key,), ("hard" if hard else "soft",))))
    except UNAVAILABLE as exc:
        raise CacheUnavailable(f"cache Redis unavailable while writing {key}: {exc}") from exc
