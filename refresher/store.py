"""The Redis side of one cached value: read it, commit a load, replace it.

Every key a script touches is passed in KEYS, and all of them share one hash tag
(see keys.py), so this works unchanged on Redis Cluster.
"""

from __future__ import annotations

from enum import Enum
from typing import cast

from redis import Redis

from refresher.envelope import Envelope
from refresher.keys import Keys

# Messages on a key's signal channel, read by processes waiting for its lock holder.
FILLED = b"v"  # followed by the envelope that was written
FAILED = b"e"  # followed by a JSON {"type", "message"} of the loader's error
RETRY = b"r"  # the holder gave up without writing: try to take the lock again


class Commit(Enum):
    WRITTEN = 1
    LOST_LOCK = 0  # the lock expired and maybe somebody else holds it now
    SUPERSEDED = -1  # the value is no longer the version we read: set/invalidate (or a newer load) won


class Claim(Enum):
    CLAIMED = 1  # ours: publish the refresh
    TAKEN = 0  # somebody else asked already (or the key is backing off)
    STALE_VIEW = -1  # the value was rewritten since we read it: nothing to refresh


class Store:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._commit = redis.register_script(self.COMMIT)
        self._replace = redis.register_script(self.REPLACE)
        self._claim = redis.register_script(self.CLAIM)

    def read(self, keys: Keys) -> tuple[bytes | None, bytes | None]:
        """The value and the pending-refresh marker, in one round trip."""
        value, pending = cast(list[bytes | None], self.redis.mget(keys.value, keys.pending))
        return value, pending

    COMMIT = """
    if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
    local current = redis.call('GET', KEYS[1])
    if current then
        local version = string.match(current, '^r1|(%d+)|')
        if version and version ~= ARGV[2] then
            redis.call('DEL', KEYS[2])
            redis.call('PUBLISH', ARGV[5], 'r')
            return -1
        end
    end
    redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[4])
    redis.call('DEL', KEYS[2])
    redis.call('DEL', KEYS[3])
    redis.call('PUBLISH', ARGV[5], 'v' .. ARGV[3])
    return 1
    """

    def commit(self, keys: Keys, token: str, seen: int, envelope: Envelope, px: int) -> Commit:
        """Write a loaded value only if we still own the lock and the value is still the
        version `seen` we read before loading (NOTHING_READ if there was none); then free
        the lock, clear the pending marker (the refresh it stood for is done, and a
        success ends any back-off) and wake the waiters.

        A value that has simply expired since we read it may be replaced: set() and
        invalidate() write with a TTL longer than any load may hold its lock, so they
        are still there to refuse us. Foreign bytes at the key carry no version and are
        overwritten.
        """
        result = self._commit(
            keys=[keys.value, keys.lock, keys.pending],
            args=[token, seen, envelope.to_bytes(), px, keys.signal],
        )
        return Commit(int(result))

    REPLACE = """
    redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
    redis.call('PUBLISH', ARGV[3], 'v' .. ARGV[1])
    """

    def replace(self, keys: Keys, envelope: Envelope, px: int) -> None:
        """Write `envelope` (a value or a tombstone, under a new version) and wake the
        waiters; any load in flight for this key read another version and is refused."""
        self._replace(keys=[keys.value], args=[envelope.to_bytes(), px, keys.signal])

    CLAIM = """
    local head = redis.call('GETRANGE', KEYS[1], 0, 31)
    if string.match(head, '^r1|(%d+)|') ~= ARGV[1] then return -1 end
    if redis.call('SET', KEYS[2], ARGV[2], 'NX', 'PX', ARGV[3]) then return 1 end
    return 0
    """

    def claim_refresh(self, keys: Keys, seen: int, token: str, px: int) -> Claim:
        """Take the key's pending marker to ask for a refresh of version `seen`, unless
        somebody holds it or the value is no longer that version. A reader that read the
        old value just before a worker's commit cleared the marker would otherwise ask
        for a second refresh of the value just written."""
        return Claim(int(self._claim(keys=[keys.value, keys.pending], args=[seen, token, px])))
