"""Move a stored value back in time, so a test can put it in its refresh window or past
its TTL at once instead of sleeping."""

from __future__ import annotations

import time

import redis

from refresher.core.envelope import Envelope
from refresher.core.keys import Keys


def age(r: redis.Redis, keys: Keys, ms: int) -> Envelope:
    raw = r.get(keys.value)
    assert raw is not None, f"nothing stored at {keys.value}"
    older = Envelope.from_bytes(raw)._replace(written_ms=Envelope.from_bytes(raw).written_ms - ms)
    r.set(keys.value, older.to_bytes(), px=max(1, int(r.pttl(keys.value))))
    return older


def into_window(r: redis.Redis, keys: Keys) -> Envelope:
    """Place the value at 95% of its TTL from now: inside the default 10% window, however
    long ago it was written (aged from its write, a warm-up before readers that took 3 s
    to start left a 60 s value expired by the time they read)."""
    ttl_ms = Envelope.from_bytes(r.get(keys.value) or b"").ttl_ms
    return expire_in(r, keys, ttl_ms - int(ttl_ms * 0.95))


def expire_in(r: redis.Redis, keys: Keys, ms: int, hard: bool = False) -> Envelope:
    """Rewrite the value's header so that its TTL runs out `ms` from now (negative: it
    ran out that long ago). Placing a value relative to now, right before the read that
    needs it, keeps a test right however long its earlier steps took. With `hard`, the
    key itself also vanishes from Redis then (its stale_ttl included), as it really would."""
    raw = r.get(keys.value)
    assert raw is not None, f"nothing stored at {keys.value}"
    current = Envelope.from_bytes(raw)
    placed = current._replace(written_ms=int(time.time() * 1000) + ms - current.ttl_ms)
    px = ms + current.stale_ms if hard else int(r.pttl(keys.value))
    assert px > 0, f"{keys.value} would already be gone"
    r.set(keys.value, placed.to_bytes(), px=px)
    return placed
