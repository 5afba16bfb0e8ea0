"""Epochs: `invalidate_all` and `invalidate_tag` in O(1), whatever the number of keys.

Each loader, and each tag that was ever invalidated, has an epoch key holding two numbers,
"<epoch> <floor>". `invalidate_all(hard=False)` adds one to the epoch; `hard=True` and
`invalidate_tag` also raise the floor to it. Every value records the epochs it was loaded
under (Marks, in its envelope), read when its load began, so a load in flight across an
invalidation writes a value already marked old. A read compares (pure: `judge`):

    loaded under the loader's epoch < its floor, or a tag's < that tag's floor: HARD
    (never served); loaded under an older loader epoch: SOFT (served, refreshed); else NO.

Epochs are kept in this process and dropped the moment Redis reports a write to an epoch
key (server-assisted invalidation on `<ns>:epoch:`, io/tracking.py, which the drivers
drain before the core decides), so the hit path pays a dict lookup, not a round trip.
When an epoch is not known here (first use, while the tracker is down, or in a process
with no near cache that has not read often enough to start it) the read fetches it first:
one MGET.

Epoch keys never expire: an eviction policy must not evict them (volatile-lru or
volatile-lfu evict only keys with a TTL, which values have; docs/reliability.md section 3).
A tag costs a key only once it has been invalidated.
"""

from __future__ import annotations

import re
from contextlib import AbstractContextManager
from typing import Any, Iterable, Protocol

from refresher.core.envelope import Marks
from refresher.core.policy import Dropped

_TAG = re.compile(r"\A[^\s|~,=]+\Z")
Epoch = tuple[int, int]  # (epoch, floor)
ZERO: Epoch = (0, 0)
# Foreign bytes at an epoch key: every value is dropped (a floor above any epoch), and
# never kept as known (core/marks.py repairs the key, and the next read fetches it again).
CORRUPT: Epoch = (0, 2**63)
_EPOCH = re.compile(rb"(\d{1,15}) (\d{1,15})")  # as BUMP_EPOCH writes it; 15 digits stay exact in Lua
TAG_KEYS = 65536  # tags whose epoch key names are kept built
KNOWN_EPOCHS = 65536  # epochs kept in this process; past it the oldest learnt is forgotten (fetched again)


class Tracking(Protocol):
    """The tracker (refresher/io/tracking.py) as the core reads it. Whoever calls into the
    core has applied every invalidation received so far (Tracker.drain) first; the core
    only asks whether what it keeps is current, and changes it under `lock`."""

    @property
    def lock(self) -> AbstractContextManager[Any]: ...

    @property
    def live(self) -> bool:
        """Tracking is on: what it reports is applied as it arrives."""

    @property
    def down(self) -> bool:
        """Started by a read but not tracking (connecting, or lost)."""

    def current(self) -> bool:
        """Live and answering: what was applied is all there is to know."""

    def fetched(self) -> None:
        """Epochs were fetched that tracking would have kept: it starts once that pays."""

    def lag(self) -> float | None:
        """For the metrics: how stale a copy served now can be, at most (s; None: not known)."""


def check_tag(tag: object) -> str:
    if not isinstance(tag, str) or not _TAG.match(tag):
        raise ValueError(f"tag {tag!r} must be a non-empty string with no whitespace, '|', '~', ',' or '='")
    return tag


def parse(raw: bytes | None) -> Epoch:
    """The epoch in an epoch key's bytes; CORRUPT for bytes no BUMP_EPOCH wrote."""
    if raw is None:
        return ZERO
    found = _EPOCH.fullmatch(raw)
    return (int(found[1]), int(found[2])) if found is not None else CORRUPT


def is_corrupt(raw: bytes | None) -> bool:
    return raw is not None and _EPOCH.fullmatch(raw) is None


class Epochs:
    """The epochs this process knows, each forgotten when Redis reports it written."""

    def __init__(self, namespace: str) -> None:
        self.prefix = f"{namespace}:epoch:"
        self._known: dict[str, Epoch] = {}
        self.changes = 0  # bumped after each change to what is known: a near entry's judgement holds until then
        self._expected: dict[str, object] = {}  # epoch key -> the fetch that may learn it
        self._tag_keys: dict[str, str] = {}  # tag -> its epoch key, built once per tag
        self.tracker: Tracking | None = None

    def loader_key(self, name: str) -> str:
        return f"{self.prefix}loader:{name}"

    def tag_key(self, tag: str) -> str:
        key = self._tag_keys.get(tag)
        if key is None:
            if len(self._tag_keys) >= TAG_KEYS:
                self._tag_keys.clear()
            key = self._tag_keys[tag] = f"{self.prefix}tag:{tag}"
        return key

    def judge(self, loader_key: str, marks: Marks | None, fetched: dict[str, Epoch] | None = None,
              synced: bool = False) -> Dropped | None:
        """What invalidations did to a value with these marks; None if an epoch it
        needs is not known here (fetch `keys_for(...)` and judge again with them).
        `synced`: the caller has just found the tracker current (a near lookup)."""
        tracker = self.tracker
        known = self._known if tracker is not None and (tracker.live if synced else tracker.current()) else {}
        if fetched:
            known = {**known, **fetched}
        loader = known.get(loader_key)
        if loader is None:
            return None
        epoch, floor = loader
        loaded = marks.epoch if marks is not None else 0
        if loaded < floor:
            return Dropped.HARD
        for tag, n in marks.tags if marks is not None else ():
            current = known.get(self.tag_key(tag))
            if current is None:
                return None
            if n < current[1]:
                return Dropped.HARD
        return Dropped.SOFT if loaded < epoch else Dropped.NO

    def known(self, keys: list[str]) -> dict[str, Epoch] | None:
        """These keys' epochs, if every one is known here (and tracking is on)."""
        if self.tracker is None or not self.tracker.current():
            return None
        known = self._known
        try:
            return {key: known[key] for key in keys}
        except KeyError:
            return None

    def marks(self, loader_key: str, tags: Iterable[str], fetched: dict[str, Epoch]) -> Marks | None:
        """The marks for a load beginning now, from `fetched` (every key of `keys_for`)."""
        tags = tuple(tags)
        epoch = fetched[loader_key][0]
        if not epoch and not tags:
            return None
        return Marks(epoch, tuple((tag, fetched[self.tag_key(tag)][0]) for tag in tags))

    def keys_for(self, loader_key: str, tags: Iterable[str]) -> list[str]:
        return [loader_key] + [self.tag_key(tag) for tag in tags]

    def expect(self, keys: list[str]) -> object:
        """A ticket for a fetch of these keys: `learn` keeps what it read unless an
        invalidation of a key arrived meanwhile."""
        ticket = object()
        if self.tracker is not None and not self.tracker.current():
            self.tracker.fetched()
        elif self.tracker is not None:
            with self.tracker.lock:
                if len(self._expected) > 4096:  # fetches that failed never learnt
                    self._expected.clear()
                for key in keys:
                    self._expected[key] = ticket
        return ticket

    def learn(self, keys: list[str], raws: list[bytes | None], ticket: object) -> dict[str, Epoch]:
        fetched = {key: parse(raw) for key, raw in zip(keys, raws)}
        if self.tracker is not None and self.tracker.current():
            with self.tracker.lock:
                for key, epoch in fetched.items():
                    if self._expected.get(key) is ticket:
                        del self._expected[key]
                        if epoch is not CORRUPT:
                            if len(self._known) >= KNOWN_EPOCHS:
                                del self._known[next(iter(self._known))]
                            self._known[key] = epoch
                self.changes += 1
        return fetched

    def snapshot(self) -> dict[str, Epoch]:
        """Under the tracker's lock: the epochs known now (what kept copies are judged by)."""
        return dict(self._known)

    def forget(self, keys: list[bytes] | None) -> None:
        """Under the tracker's lock: these epoch keys were written (None: all of them)."""
        if keys is None:
            self._known.clear()
            self._expected.clear()
            self.changes += 1
            return
        for key in keys:
            name = key.decode()
            self._known.pop(name, None)
            self._expected.pop(name, None)
        if keys:  # after the change: a judgement begun before it is not kept (near.py)
            self.changes += 1
