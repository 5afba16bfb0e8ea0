"""The read-path decision, kept pure: (envelope, now, policy) in, a verdict out.

No I/O happens here so the boundaries can be tested with a frozen clock and a
fixed random draw, the way dogpile keeps its algorithm apart from its backends.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from enum import Enum
from typing import Callable, Protocol

from refresher.core.envelope import Envelope


class Verdict(Enum):
    """What a reader should do with what it found."""

    FRESH = "fresh"  # serve it
    REFRESH = "refresh"  # serve it and ask a worker for a new one
    STALE = "stale"  # past its TTL but inside stale_ttl: load, and serve this if loading fails
    MISS = "miss"  # nothing servable: load inline, coalesced


class Policy(Protocol):
    """Decides whether a value that is still within its TTL should be refreshed early."""

    def refresh_due(self, envelope: Envelope, now_ms: int, draw: Callable[[], float]) -> bool: ...


@dataclass(frozen=True)
class Window:
    """Refresh once the value is in the last `fraction` of its TTL: deterministic, so the
    pending marker deduplicates it to one task per key per window."""

    fraction: float = 0.1

    def __post_init__(self) -> None:
        if not 0 < self.fraction < 1:
            raise ValueError(f"refresh window must be in (0, 1), got {self.fraction!r}")

    def refresh_due(self, envelope: Envelope, now_ms: int, draw: Callable[[], float]) -> bool:
        return now_ms >= envelope.written_ms + envelope.ttl_ms - envelope.ttl_ms * self.fraction  # no property: per hit


@dataclass(frozen=True)
class XFetch:
    """Vattani et al., VLDB 2015: refresh when now - delta*beta*ln(rand) >= expiry.

    `delta` is the last refresh's measured cost, queue wait included, so expensive keys
    start refreshing earlier; beta > 1 favours earlier refreshes.
    """

    beta: float = 1.0

    def __post_init__(self) -> None:
        if not self.beta > 0:
            raise ValueError(f"XFetch beta must be > 0, got {self.beta!r}")

    def refresh_due(self, envelope: Envelope, now_ms: int, draw: Callable[[], float]) -> bool:
        r = draw()
        if r <= 0.0:
            return True
        return now_ms - envelope.delta_ms * self.beta * math.log(r) >= envelope.expires_ms


class Dropped(Enum):
    """What `invalidate_all` and `invalidate_tag` have done to a value (epochs.py)."""

    NO = 0
    SOFT = 1  # its loader was invalidated softly since it was loaded: refresh it
    HARD = 2  # its loader, hard, or one of its tags: never serve it


def decide(
    envelope: Envelope | None,
    now_ms: int,
    policy: Policy,
    draw: Callable[[], float] = random.random,
    dropped: Dropped = Dropped.NO,
) -> Verdict:
    """The whole read-path decision. `draw` is injectable so XFetch is testable."""
    if envelope is None or envelope.tombstone or dropped is Dropped.HARD:
        return Verdict.MISS
    expires_ms = envelope.written_ms + envelope.ttl_ms  # the property once, inlined: this runs per hit
    if now_ms >= expires_ms:
        if now_ms < expires_ms + envelope.stale_ms:
            return Verdict.STALE
        return Verdict.MISS
    if dropped is Dropped.SOFT or policy.refresh_due(envelope, now_ms, draw):
        return Verdict.REFRESH
    return Verdict.FRESH
