"""Move a stored value back in time, so a test can put it in its refresh window or past
its TTL at once instead of sleeping."""

from __future__ import annotations

import redis

from refresher.envelope import Envelope
from refresher.keys import Keys


def age(r: redis.Redis, keys: Keys, ms: int) -> Envelope:
    raw = r.get(keys.value)
    assert raw is not None, f"nothing stored at {keys.value}"
    older = Envelope.from_bytes(raw)._replace(written_ms=Envelope.from_bytes(raw).written_ms - ms)
    r.set(keys.value, older.to_bytes(), px=max(1, int(r.pttl(keys.value))))
    return older


def into_window(r: redis.Redis, keys: Keys) -> Envelope:
    """Age the value to 95% of its TTL: inside the default 10% window."""
    ttl_ms = Envelope.from_bytes(r.get(keys.value) or b"").ttl_ms
    return age(r, keys, int(ttl_ms * 0.95))


def backdate(r: redis.Redis, keys: Keys, ms: int) -> Envelope:
    """Like `age`, but the key's Redis TTL shrinks by `ms` too, as if the value really had
    been written `ms` earlier: its hard expiry (TTL + stale_ttl) then comes on time."""
    raw = r.get(keys.value)
    assert raw is not None, f"nothing stored at {keys.value}"
    current = Envelope.from_bytes(raw)
    older = current._replace(written_ms=current.written_ms - ms)
    left = int(r.pttl(keys.value)) - ms
    assert left > 0, f"{keys.value} would already be gone"
    r.set(keys.value, older.to_bytes(), px=left)
    return older
