"""The near cache: recent envelopes in this process's memory, dropped the moment Redis
says their key was written (see tracking.py). The tracker is the core's Tracking
(epochs.py): whoever reads has applied what it received first (Tracker.sync or drain, on
the I/O side), and passes the time in.

An entry keeps the envelope, so a near hit makes the very decision a Redis hit makes
(serve, serve and ask for a refresh, or go to Redis once the TTL has passed). Values that
cannot be changed in place (see values.frozen) are handed out as one shared object; the
others get a copy of their own for every hit (copies.py), so no caller can alter what the
next one gets. What can be decided once is decided when the entry is kept (how a hit gets
its value, until when the clock alone says it is fresh) or once per change to the epochs
known, so a hit that is plainly fresh is a few comparisons (`NearCache.hit`).

While the cache Redis cannot be reached (the tracker's `keep`), the copies are kept but
no longer current: a loader with stale_if_down may still serve them (`kept`) for that long
after the outage began, judged by the epochs known when it began. The reconnect drops them
all (`invalidate(None)`) before tracking is on again, so none outlives the outage.

A read that goes to Redis leaves a ticket under its key first; the reply is kept only if
the ticket is still there, so a write whose invalidation arrived while the GET was in
flight cannot be undone by the older reply.
"""

from __future__ import annotations

import logging
import math
from typing import Any, TypeVar

from refresher.core.copies import Copy, copier
from refresher.core.state import NOTHING, UNSHARED, Nothing, LoaderState
from refresher.core.envelope import Envelope
from refresher.core.epochs import Epoch, Tracking
from refresher.core.policy import Dropped, Policy, Window
from refresher.core.relay import Relay
from refresher.core.values import frozen

ENTRY_OVERHEAD = 200  # bytes an entry costs besides its payload (dict slot, tuple, key)
R = TypeVar("R")
NOT_DROPPED = Dropped.NO  # a global: looking an Enum member up on its class costs ~50 ns a hit
SERVABLE_KEPT = (Dropped.NO, Dropped.SOFT)  # what was servable when the outage began
log = logging.getLogger("refresher")


class Entry:
    """A kept envelope, and what its hits need decided once (or once per change to the
    epochs known: `judged`, an Epochs.changes at which they did not drop it)."""

    __slots__ = ("envelope", "value", "size", "copy", "fresh_until", "judged")

    def __init__(self, envelope: Envelope, value: Any, size: int, copy: Copy | None, fresh_until: float) -> None:
        self.envelope, self.value, self.size = envelope, value, size  # value: shared, copied per hit, or UNSHARED
        self.copy = copy  # how a hit gets a copy of `value` of its own; None: `value` as it is
        self.fresh_until = fresh_until  # ms: a hit before it is FRESH by the loader's policy (-inf: ask decide)
        self.judged = -1

    def served(self) -> Any:
        """What a hit hands out: the shared value, a copy of its own, or UNSHARED (decode it)."""
        return self.value if self.copy is None else self.copy(self.value)


def fresh_until(policy: Policy, envelope: Envelope) -> float:
    """Until when (ms) policy.decide says FRESH by the clock alone: before the refresh
    window (Window's own expression) and the TTL; -inf for a policy that draws at random."""
    if type(policy) is not Window:
        return -math.inf
    expires_ms = envelope.written_ms + envelope.ttl_ms
    return min(expires_ms, expires_ms - envelope.ttl_ms * policy.fraction)


class Ticket:
    """A read on its way to Redis: `fill` keeps what it found, unless the key was
    invalidated since. Other threads that miss the key meanwhile wait for `done` and look
    in memory again, rather than each sending a GET and voiding each other's fills."""

    __slots__ = ("near", "key", "policy", "done")

    def __init__(self, near: NearCache, key: str, policy: Policy) -> None:
        self.near = near
        self.key = key
        self.policy = policy  # the reading loader's: what `fresh_until` is computed by
        self.done = Relay()  # the threads waiting for it wake one another in turn

    def fill(self, envelope: Envelope, value: Any) -> None:
        self.near.fill(self, envelope, value)


class NearCache:
    """Up to `max_entries` envelopes and `max_bytes` of payload; the oldest go first."""

    def __init__(self, max_entries: int, max_bytes: int, tracker: Tracking) -> None:
        if max_entries <= 0:
            raise ValueError(f"near_cache must be a number of entries > 0, got {max_entries!r}")
        if max_bytes <= 0:
            raise ValueError(f"near_cache_bytes must be > 0, got {max_bytes!r}")
        self.max_entries, self.max_bytes = max_entries, max_bytes
        self._entries: dict[str, Entry | Ticket] = {}
        self._bytes = 0
        self.tracker = tracker
        self.invalidated = self.flushed = 0  # for the metrics (core/stats.py NearView), under the tracker's lock
        self.kept_since: float | None = None  # when the outage began (monotonic s; copies kept)
        self._kept_epochs: dict[str, Epoch] = {}
        self._told = False  # the outage's serving was logged

    def __len__(self) -> int:
        return sum(1 for found in list(self._entries.values()) if type(found) is Entry)

    @property
    def size_bytes(self) -> int:
        return self._bytes

    @property
    def bypassed(self) -> bool:
        return self.tracker.down

    def hit(self, key: str, state: LoaderState[R], now_ms: float) -> R | Nothing:
        """A near hit in a few comparisons, or NOTHING: the value of a copy that is plainly
        fresh (before its refresh window by the clock, its epochs known and unmoved: what
        read_near would find FRESH), shared or copied. Anything else (the window, an epoch
        to fetch, no copy) is read_near's. Only once the caller found the tracker current."""
        entry = self._entries.get(key)
        if type(entry) is not Entry or now_ms >= entry.fresh_until:
            return NOTHING
        epochs = state.epochs
        if entry.judged != (changes := epochs.changes):  # read before judging: a change meanwhile is judged again
            if epochs.judge(state.epoch_key, entry.envelope.marks, synced=True) is not NOT_DROPPED:
                return NOTHING
            entry.judged = changes
        state.stats.incr("near_hit")
        served: R = entry.value if entry.copy is None else entry.copy(entry.value)
        return served

    def kept(self, key: str, state: LoaderState[R], now: float) -> R | Nothing:
        """The copy kept from before an outage, while the loader's stale_if_down allows
        (the outage began less than that long before `now`, monotonic s) and if it was
        servable when it began; else NOTHING. Only read while the cache's breaker is open."""
        entry = self.kept_entry(key, state, now)
        if entry is None:
            return NOTHING
        value = entry.served()
        if value is UNSHARED and isinstance(value := state.decode(entry.envelope, key=key), Nothing):
            return NOTHING
        state.stats.incr("served_while_down")
        if not self._told:
            self._told = True
            log.warning("refresher: the cache Redis is unreachable; serving near copies kept from before the "
                        "outage (stale_if_down), %.1f s after it began", now - (self.kept_since or 0))
        return value  # type: ignore[no-any-return]  # decoded bytes are Any until the loader's codec says R

    def kept_entry(self, key: str, state: LoaderState[Any], now: float) -> Entry | None:
        """`kept`'s entry, uncounted."""
        since = self.kept_since
        if since is None or now - since >= state.settings.stale_if_down:
            return None
        entry = self._entries.get(key)
        if type(entry) is not Entry \
                or state.epochs.judge(state.epoch_key, entry.envelope.marks, self._kept_epochs) not in SERVABLE_KEPT:
            return None
        return entry

    def lookup(self, key: str) -> Entry | None:
        """The entry to decide on, if the tracker is current (the caller applied every
        invalidation received so far first)."""
        if not self.tracker.current():
            return None
        found = self._entries.get(key)
        return found if type(found) is Entry else None

    def expect(self, key: str, policy: Policy) -> tuple[Entry | Ticket | None, bool]:
        """A ticket for a read about to go to Redis, and whether it is this read's (False:
        another read of the key is on its way). An entry instead if one was kept since the
        caller looked; None while tracking is off."""
        with self.tracker.lock:
            if not self.tracker.live:
                return None, False
            found = self._entries.get(key)
            if found is not None and (isinstance(found, Entry) or not found.done.is_set()):
                return found, False
            self._remove(key)
            self._make_room(0)
            ticket = self._entries[key] = Ticket(self, key, policy)
        return ticket, True

    def settle(self, ticket: Ticket) -> None:
        """The read that owned `ticket` is over, filled or not: wake whoever waits on it."""
        with self.tracker.lock:
            if self._entries.get(ticket.key) is ticket:
                del self._entries[ticket.key]
        ticket.done.set()

    def fill(self, ticket: Ticket, envelope: Envelope, value: Any) -> None:
        size = len(envelope.payload) + ENTRY_OVERHEAD
        if size > self.max_bytes:
            return
        entry = _entry(envelope, value, size, ticket.policy)
        with self.tracker.lock:  # an invalidation applied since the read began voided the ticket
            if not self.tracker.live or self._entries.get(ticket.key) is not ticket:
                return
            del self._entries[ticket.key]
            self._make_room(size)
            self._entries[ticket.key] = entry
            self._bytes += size
        ticket.done.set()

    # -- under the tracker's lock ------------------------------------------------------

    def keep(self, epochs: dict[str, Epoch], now: float) -> None:
        """An outage began (at `now`, monotonic s): keep the copies (no longer current) and
        the epochs they were servable by; a read on its way to Redis will fill nothing."""
        if self.kept_since is not None:
            return
        for key in [key for key, found in self._entries.items() if type(found) is Ticket]:
            self._remove(key)
        self.kept_since, self._kept_epochs, self._told = now, epochs, False

    def invalidate(self, keys: list[bytes] | None) -> None:
        if keys is None:
            self.flushed += 1
            self.kept_since, self._kept_epochs = None, {}
            for found in self._entries.values():
                if type(found) is Ticket:
                    found.done.set()
            self._entries.clear()
            self._bytes = 0
            return
        self.invalidated += len(keys)
        for key in keys:
            self._remove(key.decode())

    def _remove(self, key: str) -> None:
        found = self._entries.pop(key, None)
        if type(found) is Entry:
            self._bytes -= found.size
        elif type(found) is Ticket:
            found.done.set()

    def _make_room(self, size: int) -> None:
        entries = self._entries
        while entries and (len(entries) >= self.max_entries or self._bytes + size > self.max_bytes):
            self._remove(next(iter(entries)))


def _entry(envelope: Envelope, value: Any, size: int, policy: Policy) -> Entry:
    """The entry for a value just read: shared if frozen, else copied per hit from a
    private copy (the reader that filled it hands `value` itself out), else decoded."""
    if frozen(value):
        return Entry(envelope, value, size, None, fresh_until(policy, envelope))
    if (copy := copier(value)) is None:
        return Entry(envelope, UNSHARED, size, None, -math.inf)  # read_near decodes it
    return Entry(envelope, copy(value), size, copy, fresh_until(policy, envelope))
