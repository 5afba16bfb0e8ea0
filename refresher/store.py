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
    SUPERSEDED = -1  # set/invalidate bumped the generation while we were loading


class Store:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._commit = redis.register_script(self.COMMIT)
        self._replace = redis.register_script(self.REPLACE)

    def read(self, keys: Keys) -> tuple[bytes | None, bytes | None]:
        """The value and the pending-refresh marker, in one round trip."""
        value, pending = cast(list[bytes | None], self.redis.mget(keys.value, keys.pending))
        return value, pending

    COMMIT = """
    if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
    local current = redis.call('GET', KEYS[1])
    if current then
        local generation = string.match(current, '^r1|(%d+)|')
        if generation and generation ~= ARGV[2] then
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

    def commit(self, keys: Keys, token: str, envelope: Envelope, px: int) -> Commit:
        """Write a loaded value only if we still own the lock and nobody has set or
        invalidated the key since we read it; then free the lock, clear the pending marker
        (the refresh it stood for is done, and a success ends any back-off) and wake the
        waiters.

        Foreign bytes at the key carry no generation and are overwritten.
        """
        result = self._commit(
            keys=[keys.value, keys.lock, keys.pending],
            args=[token, envelope.generation, envelope.to_bytes(), px, keys.signal],
        )
        return Commit(int(result))

    REPLACE = """
    local current = redis.call('GET', KEYS[1])
    local generation = 0
    if current then generation = tonumber(string.match(current, '^r1|(%d+)|') or '0') end
    local envelope = 'r1|' .. string.format('%d', generation + 1) .. '|' .. ARGV[1]
    redis.call('SET', KEYS[1], envelope, 'PX', ARGV[2])
    redis.call('PUBLISH', ARGV[3], 'v' .. envelope)
    return generation + 1
    """

    def replace(self, keys: Keys, envelope: Envelope, px: int) -> int:
        """Write `envelope` (a value or a tombstone) under the next generation, so any
        load in flight for this key is refused at commit. Returns the new generation."""
        return int(self._replace(keys=[keys.value], args=[envelope.header_tail(), px, keys.signal]))
