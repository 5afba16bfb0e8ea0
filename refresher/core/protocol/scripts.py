"""Every Lua script refresher runs, each with its KEYS, ARGV and reply beside it.

Conventions shared by all of them:

- every key a script touches is in KEYS (on a Redis Cluster the keys of one call share a
  slot: the `{...}` hash tag of protocol/layout.py), channels and values are in ARGV;
- drivers run them with EVALSHA and load them again on NOSCRIPT, so a `SCRIPT FLUSH` costs
  one extra round trip; before Redis 7.0 a driver rewrites 'SPUBLISH' to 'PUBLISH'
  (refresher/io/drivers/base.py `for_server`), which is why the word is always quoted;
- a publish is a `redis.pcall` made after the write: it can neither fail nor undo a write
  that happened, and its error is returned for the caller to log;
- a key of another Redis type (foreign) never makes a script fail half-way.

The comment block above each constant is its contract, checked against the Lua and
against every call in refresher/core by tests/test_protocol.py: `KEYS[n]` and `ARGV[n]`
lines, `KEYS[n...]` for any number of further keys, `(optional)` for trailing arguments.
"""

from __future__ import annotations

from enum import Enum

# Compare-and-delete an owned lock, then tell the waiters on its signal channel.
#   KEYS[1]  the lock
#   ARGV[1]  the owner's token
#   ARGV[2]  (optional) the signal channel to tell
#   ARGV[3]  (optional) the message for it (protocol/signals.py)
#   returns  1 released, 0 not ours (left alone); or the error that kept the waiters from
#            being told (the lock is released all the same: a failed publish cannot fail it)
RELEASE_LOCK = """
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

# Push an owned lock's expiry, and its companions' (a refresh's pending marker), one TTL ahead.
#   KEYS[1]     the lock
#   KEYS[2...]  its companions
#   ARGV[1]     the owner's token
#   ARGV[2]     the lock's TTL in ms
#   returns     1 extended, 0 not ours (nothing touched)
EXTEND_LOCK = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
for i = 1, #KEYS do redis.call('PEXPIRE', KEYS[i], ARGV[2]) end
return 1
"""

# A load has held its lock for max_load_time and cannot be stopped: its companions say
# BACKOFF for another max_load_time, so that no worker starts the same hung load at once.
#   KEYS[1]     the lock
#   KEYS[2...]  its companions
#   ARGV[1]     the owner's token
#   ARGV[2]     BACKOFF (protocol/layout.py)
#   ARGV[3]     the back-off in ms
#   returns     1 set, 0 not ours (nothing touched)
BACK_OFF_HUNG_LOAD = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
for i = 2, #KEYS do redis.call('SET', KEYS[i], ARGV[2], 'PX', ARGV[3]) end
return 1
"""

# A reader in the refresh window claims the key's pending marker, so that one refresh is
# asked for per key, but only while the value is still the version the reader saw.
#   KEYS[1]  the value
#   KEYS[2]  its pending marker
#   ARGV[1]  the version the reader saw
#   ARGV[2]  the reader's token (the marker's value, for RELEASE_LOCK if the publish fails)
#   ARGV[3]  the marker's TTL in ms
#   returns  a Claim
CLAIM_PENDING = """
local head = redis.call('GETRANGE', KEYS[1], 0, 31)
if string.match(head, '^r1|(%d+)|') ~= ARGV[1] then return -1 end
if redis.call('SET', KEYS[2], ARGV[2], 'NX', 'PX', ARGV[3]) then return 1 end
return 0
"""


class Claim(Enum):
    """CLAIM_PENDING's reply."""

    CLAIMED = 1  # ours: publish the refresh
    TAKEN = 0  # somebody else asked already (or the key is backing off)
    STALE_VIEW = -1  # the value was rewritten since we read it: nothing to refresh


# A worker takes the key's lock for a refresh task, unless the key is backing off after a
# failed load; re-arms the pending marker to live as long as the lock; reads the value.
# Keys of another Redis type read as nothing: an error after the SET NX would leave the
# lock held.
#   KEYS[1]  the lock
#   KEYS[2]  the value
#   KEYS[3]  the pending marker
#   ARGV[1]  the worker's token
#   ARGV[2]  the lock's TTL in ms
#   ARGV[3]  BACKOFF (protocol/layout.py)
#   returns  {HELD} somebody holds the lock, {BACKING_OFF} (the lock freed again), or
#            {2, the value's bytes or false}: the lock is ours
TAKE_REFRESH_LOCK = """
local function bytes_at(key)
    if redis.call('TYPE', key).ok == 'string' then return redis.call('GET', key) end
    return false
end
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return {0} end
if bytes_at(KEYS[3]) == ARGV[3] then
    redis.call('DEL', KEYS[1])
    return {1}
end
redis.call('PEXPIRE', KEYS[3], ARGV[2])
return {2, bytes_at(KEYS[2])}
"""
HELD, BACKING_OFF = 0, 1  # TAKE_REFRESH_LOCK's replies but the one that took the lock

# Write a loaded value only if the loader still owns the lock and the value stored is still
# the version read before loading; then free the lock, clear the pending marker and wake
# the waiters. A key of another Redis type is foreign: it is deleted and replaced.
#   KEYS[1]  the value
#   KEYS[2]  its lock
#   KEYS[3]  its pending marker
#   ARGV[1]  the lock's token
#   ARGV[2]  the version read before loading (NOTHING_READ: none)
#   ARGV[3]  the envelope
#   ARGV[4]  its PX
#   ARGV[5]  the signal channel
#   ARGV[6]  `v` (send waiters the envelope) or `w` (tell them it is written)
#   returns  {a Commit's value, the error that kept the waiters from being told, or false}
COMMIT_LOAD = """
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return {0} end
local kind = redis.call('TYPE', KEYS[1]).ok
if kind == 'string' then
    local version = string.match(redis.call('GET', KEYS[1]), '^r1|(%d+)|')
    if version and version ~= ARGV[2] then
        redis.call('DEL', KEYS[2])
        local told = redis.pcall('SPUBLISH', ARGV[5], 'r')
        return {-1, type(told) == 'table' and told.err or false}
    end
elseif kind ~= 'none' then
    redis.call('DEL', KEYS[1])
end
redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[4])
redis.call('DEL', KEYS[2])
redis.call('DEL', KEYS[3])
local told = redis.pcall('SPUBLISH', ARGV[5], ARGV[6] == 'v' and 'v' .. ARGV[3] or 'w')
return {1, type(told) == 'table' and told.err or false}
"""


class Commit(Enum):
    """COMMIT_LOAD's first reply."""

    WRITTEN = 1
    LOST_LOCK = 0  # the lock expired and maybe somebody else holds it now
    SUPERSEDED = -1  # the value is no longer the version we read: set/invalidate (or a newer load) won


# `set` or `invalidate`: write an envelope (a value or a tombstone) whatever is stored, and
# wake the waiters.
#   KEYS[1]  the value
#   ARGV[1]  the envelope
#   ARGV[2]  its PX
#   ARGV[3]  the signal channel
#   ARGV[4]  `v` (send waiters the envelope) or `w` (tell them it is written)
#   returns  false, or the error that kept the waiters from being told: the write stands,
#            and they read the key when their wait ends
REPLACE_VALUE = """
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
local told = redis.pcall('SPUBLISH', ARGV[3], ARGV[4] == 'v' and 'v' .. ARGV[1] or 'w')
if type(told) == 'table' and told.err then return told.err end
return false
"""

# A lock key without a TTL is somebody else's (every lock refresher takes has one), and
# waiters would retry on it for ever: delete it.
#   KEYS[1]  a key's lock
#   returns  1 deleted, 0 left alone
DROP_FOREIGN_LOCK = """
if redis.call('PTTL', KEYS[1]) == -1 then return redis.call('DEL', KEYS[1]) end
return 0
"""

# Not a script: a Lua function that BUMP_EPOCH and REPAIR_EPOCH begin with. An epoch key's
# epoch and floor, and whether it held something no BUMP_EPOCH wrote (bytes, or a key of
# another Redis type): then both are the server's clock in ms, above any epoch a value was
# loaded under (each invalidate_all adds one), so that every value is dropped, as by a
# hard invalidate_all. The key's format is in layout.py.
EPOCH_NOW = """
local function epoch_now(key)
    local kind = redis.call('TYPE', key).ok
    if kind == 'none' then return 0, 0, false end
    if kind == 'string' then
        local epoch, floor = string.match(redis.call('GET', key), '^(%d+) (%d+)$')
        if epoch and #epoch <= 15 and #floor <= 15 then return tonumber(epoch), tonumber(floor), false end
    end
    local now = redis.call('TIME')
    local base = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
    return base, base, true
end
"""

# `invalidate_all` or `invalidate_tag`: the epoch goes up by one (and the floor to it, if
# hard). Bytes no BUMP_EPOCH wrote start from the server's clock instead: the bump repairs them.
#   KEYS[1]  an epoch key
#   ARGV[1]  `hard` or `soft`
#   returns  the new epoch
BUMP_EPOCH = EPOCH_NOW + """
local epoch, floor = epoch_now(KEYS[1])
epoch = epoch + 1
if ARGV[1] == 'hard' then floor = epoch end
redis.call('SET', KEYS[1], string.format('%d %d', epoch, floor))
return epoch
"""

# Rewrite an epoch key that holds something no BUMP_EPOCH wrote.
#   KEYS[1]  an epoch key
#   returns  {its "<epoch> <floor>", 1 if it was rewritten else 0}
REPAIR_EPOCH = EPOCH_NOW + """
local epoch, floor, corrupt = epoch_now(KEYS[1])
local text = string.format('%d %d', epoch, floor)
if corrupt then redis.call('SET', KEYS[1], text) end
return {text, corrupt and 1 or 0}
"""
