"""One loader as the core sees it: its name, settings, codec and counters; no connections."""

from __future__ import annotations

import inspect
import random
from typing import Any, Callable, Generic, TypeVar

from refresher.core.calls import Call, Calls
from refresher.core.epochs import Epochs, check_tag
from refresher.core.envelope import Codec, CorruptEnvelope, Envelope, Marks, new_version
from refresher.core.logs import about
from refresher.core.options import Settings
from refresher.core.policy import Verdict
from refresher.core.stats import LoaderStats, Stats
from refresher.core.values import codec_for

R = TypeVar("R")
ASKED_SIZE = 4096
SERVABLE = (Verdict.FRESH, Verdict.REFRESH)


class Nothing:
    """No usable value: distinct from a cached None."""


NOTHING = Nothing()
UNSHARED = object()  # a near cache entry whose value must be decoded for every hit


class LoaderState(Generic[R]):
    def __init__(self, name: str, fn: Callable[..., Any], settings: Settings, calls: Calls,
                 stats: Stats, epochs: Epochs) -> None:
        self.name = name
        self.fn = fn
        self.is_async = inspect.iscoroutinefunction(fn)
        self.settings = settings
        self.policy = settings.policy
        self.codec: Codec = settings.codec or codec_for(fn)
        self.calls = calls
        self.stats: LoaderStats = stats.loader(name)  # adds up into the process's `stats`
        self.epochs = epochs
        self.epoch_key = epochs.loader_key(name)
        # Refreshes this process has already asked for: value key -> (the version of the
        # value it was asked for, until when, ms). Saves in-window readers a claim each,
        # and a step: on the read's own clock, as the rest of its decision.
        self.asked: dict[str, tuple[int, int]] = {}

    def asked_already(self, key: str, version: int, now_ms: int) -> bool:
        asked = self.asked.get(key)
        return asked is not None and asked[0] == version and asked[1] > now_ms

    def remember_asked(self, key: str, version: int, now_ms: int) -> None:
        if len(self.asked) >= ASKED_SIZE:
            self.asked.clear()
        # Remembered for lock_ttl, never longer than the marker can live once a worker
        # holds it: after a crash the next read here asks again within lock_ttl.
        self.asked[key] = (version, now_ms + self.settings.lock_ttl_ms)

    def encode(self, value: Any) -> tuple[bytes, R]:
        """The payload, and the value every later read will return: the decoded payload,
        so the caller that loaded gets exactly what a hit gets. A value that would not
        come back equal is refused here (TypeError naming the part), never reshaped."""
        try:
            round_trip = getattr(self.codec, "round_trip", None)
            if round_trip is not None:
                return round_trip(value)  # type: ignore[no-any-return]  # round_trip is optional, so found by getattr: Any
            return self.codec.encode(value), value
        except (TypeError, ValueError) as exc:
            raise TypeError(f"loader {self.name!r}: the value cannot be cached: {exc}") from None

    def envelope(self, payload: bytes, delta_ms: int, written_ms: int, marks: Marks | None = None) -> Envelope:
        ttl_ms = self.settings.ttl_ms
        if self.settings.ttl_jitter:
            ttl_ms -= int(ttl_ms * self.settings.ttl_jitter * random.random())
        return Envelope(new_version(), written_ms, ttl_ms, self.settings.stale_ms, max(0, delta_ms), payload, False, marks)

    def tags_of(self, call: Call) -> list[str]:
        """The call's tags (`tags=` of the loader), checked."""
        if self.settings.tags is None:
            return []
        try:
            return [check_tag(tag) for tag in self.settings.tags(*call.args, **call.kwargs)]
        except (TypeError, ValueError) as exc:
            raise ValueError(f"loader {self.name!r}: tags: {exc}") from None

    def parse(self, raw: bytes | None, quiet: bool = False, key: str | None = None) -> Envelope | None:
        """The envelope in `raw`; unreadable bytes are None, counted and logged (as being
        at `key`) unless `quiet`."""
        if raw is None:
            return None
        try:
            return Envelope.from_bytes(raw)
        except CorruptEnvelope:
            if not quiet:
                self.count_corrupt(key, None)
            return None

    def decode(self, envelope: Envelope, quiet: bool = False, key: str | None = None) -> R | Nothing:
        """The decoded payload, or NOTHING if the codec cannot read it."""
        try:
            value: R = self.codec.decode(envelope.payload)  # no cast(): a call on every hit
            return value
        except Exception as exc:  # bytes of an older shape (a deploy changed the type), or foreign
            if not quiet:
                self.count_corrupt(key, exc)
            return NOTHING

    def count_corrupt(self, key: str | None, exc: Exception | None) -> None:
        self.stats.incr("corrupt")
        about(self.name, key).warning("unreadable data treated as a miss and reloaded%s",
                                      f": {exc}" if exc is not None else "")
