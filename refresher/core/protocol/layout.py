"""What refresher stores in Redis: the keys of a cached value, and the bytes at them.

Other processes read these (readers, workers, older and newer fleets in a rolling
deploy, `refresher inspect`), and so do the Lua scripts (scripts.py): a change here is a
change of format, to be made with a CHANGELOG.md entry saying how to roll it out.

Keys of one call (refresher/core/keys.py builds them):

    <namespace>:{<loader>:<args-json>}            the value (an envelope, below)
    <namespace>:lock{<loader>:<args-json>}        its lock: an owner's random token
    <namespace>:pending{<loader>:<args-json>}     its pending marker: a reader's token while a
                                                  refresh is asked for, BACKOFF after a failed load
    <namespace>:{<loader>:<args-json>}:signal     the pub/sub channel that wakes its waiters
                                                  (signals.py)

The part in braces is the Redis Cluster hash tag that keeps the four in one slot, so a
script can take them all in KEYS. A loader with `version=N` names itself `<loader>:vN`.

Epoch keys (refresher/core/epochs.py), one per loader and one per tag ever invalidated,
never expiring, each holding "<epoch> <floor>" in decimal (as BUMP_EPOCH writes it):

    <namespace>:epoch:loader:<loader>
    <namespace>:epoch:tag:<tag>

An envelope, the bytes at a value key (refresher/core/envelope.py reads and writes it):

    r1|<version>|<kind>|<written_ms>|<ttl_ms>|<stale_ms>|<delta_ms>|<payload>

- `r1` is MAGIC; the scripts match '^r1|(%d+)|' to read the version (CLAIM_PENDING from the
  first 32 bytes only, which hold any version: 19 digits at most);
- version: a random 63-bit number drawn by each write, never 0 (NOTHING_READ means "no
  value was there" to a writer fencing on the version it read);
- kind: TOMBSTONE (`t`, an invalidated value), VALUE (`v`), or `v~<loader epoch>` and
  `~<tag>=<epoch>,...` for the epochs it was loaded under (Marks);
- written_ms (the writer's clock), ttl_ms, stale_ms, delta_ms (the load's duration, for
  XFetch) are decimal integers; payload is the codec's bytes, which may hold `|`.
"""

from __future__ import annotations

LOCK = "lock"  # the lock key's infix: <namespace>:lock{...}
PENDING = "pending"  # the pending marker's infix: <namespace>:pending{...}
SIGNAL = ":signal"  # the signal channel's suffix, after the value key
BACKOFF = b"backoff"  # a pending marker after a failed load: no new attempt until it expires

MAGIC = b"r1"
VALUE = b"v"
TOMBSTONE = b"t"
NOTHING_READ = 0  # the version a writer "read" when there was no value at all
