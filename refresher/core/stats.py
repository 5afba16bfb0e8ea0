"""Counts of what happened, per loader and per process, cheap enough for the hit path.

Each loader counts its own events (`Stats.loader(name)`, held by its LoaderState); the process
figures are the sum of its loaders' (plus events tied to no loader). A `Listener` (the
Prometheus multiprocess exporter, refresher/metrics) can be told of each event as it
happens; without one, counting costs a dict lookup and a `next()`, and exporters read
`snapshot()` when they are scraped.
"""

from __future__ import annotations

import bisect
import itertools
import threading
import weakref
from collections import Counter
from typing import NamedTuple, Protocol

# Upper bounds, in seconds, of the duration buckets (Prometheus' default buckets).
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)


class Listener(Protocol):
    """Told of every event as it is counted (see refresher/ops/metrics/multiproc.py)."""

    def counted(self, loader: str, event: str, by: int) -> None: ...

    def timed(self, loader: str, event: str, seconds: float) -> None: ...

    def breaker_opened(self, seconds: float) -> None: ...


class Lagging(Protocol):
    def lag(self) -> float | None: ...


class NearView(Protocol):
    """What exporters read of a Refresher's near cache (refresher/core/near.py) when scraped or
    sampled: nothing here is touched by a read."""

    invalidated: int  # keys Redis reported written since the near cache was made
    flushed: int  # times it was emptied at once (tracking on or lost, FLUSHALL, a fork)

    def __len__(self) -> int: ...

    @property
    def size_bytes(self) -> int: ...

    @property
    def bypassed(self) -> bool: ...

    @property
    def tracker(self) -> Lagging: ...  # its lag(): how far behind Redis a copy served now can be


class Timing(NamedTuple):
    """Durations of one kind: how many fell at or under each of BUCKETS (not cumulative;
    the last slot is the ones over every bound), how many in all, and their sum in seconds."""

    buckets: tuple[int, ...]
    observed: int
    total: float


class Tally:
    """Exact counts that threads add to without a lock. A count of one (the hit path's) is
    a `next()` on that event's itertools.count in `ticks`, which the GIL makes atomic (its
    C code neither releases the GIL nor calls back into Python): 0.07 µs a count against
    0.24 µs with a lock (timeit, call included). `dict.setdefault` makes an event's first
    count race-free. Counts of more than one (a batch's hits) are rare and take a lock. A
    count's value is read from its repr, `count(N)`, without advancing it."""

    __slots__ = ("ticks", "_lock", "_bulk")

    def __init__(self) -> None:
        self.ticks: dict[str, itertools.count[int]] = {}
        self._lock = threading.Lock()
        self._bulk: Counter[str] = Counter()

    def add(self, event: str, by: int = 1) -> None:
        if by == 1:
            next(self.ticks.setdefault(event, itertools.count()))
        else:
            with self._lock:
                self._bulk[event] += by

    def snapshot(self) -> Counter[str]:
        with self._lock:
            counts = Counter(self._bulk)
        for event, ticks in list(self.ticks.items()):
            counts[event] += int(repr(ticks)[6:-1])
        return counts


class LoaderStats:
    """One loader's counts. `incr` is on the hit path: a dict lookup, a `next()`, one check."""

    __slots__ = ("name", "listener", "_lock", "_counts", "_ticks", "_buckets", "_sums")

    def __init__(self, name: str, listener: Listener | None) -> None:
        self.name = name
        self.listener = listener
        self._lock = threading.Lock()  # the timings'
        self._counts = Tally()
        self._ticks = self._counts.ticks
        self._buckets: dict[str, list[int]] = {}
        self._sums: dict[str, float] = {}

    def incr(self, event: str, by: int = 1) -> None:
        if by == 1 and (ticks := self._ticks.get(event)) is not None:
            next(ticks)  # Tally.add's hit path, inline: no call
        else:
            self._counts.add(event, by)
        if self.listener is not None:
            self.listener.counted(self.name, event, by)

    def time(self, event: str, seconds: float) -> None:
        """Record one duration (an origin call's, for `load`)."""
        with self._lock:
            buckets = self._buckets.setdefault(event, [0] * (len(BUCKETS) + 1))
            buckets[bisect.bisect_left(BUCKETS, seconds)] += 1
            self._sums[event] = self._sums.get(event, 0.0) + seconds
        if self.listener is not None:
            self.listener.timed(self.name, event, seconds)

    def snapshot(self) -> dict[str, int]:
        return dict(self._counts.snapshot())

    def timings(self) -> dict[str, Timing]:
        with self._lock:
            return {event: Timing(tuple(b), sum(b), self._sums[event]) for event, b in self._buckets.items()}

    def __getitem__(self, event: str) -> int:
        return self._counts.snapshot()[event]


_everything: weakref.WeakSet[Stats] = weakref.WeakSet()
_default_listener: Listener | None = None


def everything() -> list[Stats]:
    """Every Stats in this process (one per Refresher): what an exporter reads."""
    return list(_everything)


def listen_everywhere(listener: Listener | None) -> None:
    """Give `listener` every Stats in this process, now and to come (metrics.install)."""
    global _default_listener
    _default_listener = listener
    for stats in list(_everything):
        stats.listen(listener)


class Stats:
    """A process's counts for one Refresher: `cache.stats["hit"]` is every loader's hits,
    `cache.stats.by_loader()["myapp.load_user"]["hit"]` one loader's."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts = Tally()
        self._loaders: dict[str, LoaderStats] = {}
        self.listener = _default_listener
        self.near: NearView | None = None  # set by a Refresher made with a near cache
        self._open_until = 0.0
        _everything.add(self)

    def loader(self, name: str) -> LoaderStats:
        """The counts of loader `name` (made on first use), which add up into these."""
        with self._lock:
            found = self._loaders.get(name)
            if found is None:
                found = self._loaders[name] = LoaderStats(name, self.listener)
            return found

    def listen(self, listener: Listener | None) -> None:
        with self._lock:
            self.listener = listener
            for stats in self._loaders.values():
                stats.listener = listener

    def incr(self, event: str, by: int = 1) -> None:
        """Count an event tied to no loader."""
        self._counts.add(event, by)

    def loaders(self) -> list[LoaderStats]:
        with self._lock:
            return list(self._loaders.values())

    def by_loader(self) -> dict[str, dict[str, int]]:
        return {stats.name: stats.snapshot() for stats in self.loaders()}

    def snapshot(self) -> dict[str, int]:
        """The process's counts: every loader's, added up."""
        total = self._counts.snapshot()
        for stats in self.loaders():
            total.update(stats.snapshot())
        return dict(total)

    def __getitem__(self, event: str) -> int:
        return self.snapshot().get(event, 0)

    def breaker_opened(self, seconds: float, now: float) -> None:
        """The publisher's circuit breaker opened for `seconds`, at `now` (monotonic s)."""
        self._open_until = now + seconds
        if self.listener is not None:
            self.listener.breaker_opened(seconds)

    def breaker_open(self, now: float) -> bool:
        return now < self._open_until
