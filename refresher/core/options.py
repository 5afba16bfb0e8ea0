"""A loader's settings, checked once at decoration time so bad ones fail loudly and early."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Callable, Iterable

from refresher.core.envelope import Codec
from refresher.core.policy import Policy, Window

DEFAULT_WINDOW = 0.1
MAX_DEFAULT_LOCK_TTL = 30.0


@dataclass(frozen=True)
class Options:
    """Times are in seconds. Unset (None) ones are derived from `ttl` in `resolved`."""

    ttl: float
    refresh_window: float | None = None  # shorthand for policy=Window(refresh_window)
    policy: Policy | None = None
    lock_ttl: float | None = None  # default: a third of the refresh window, at most 30 s
    max_load_time: float | None = None  # the lock watchdog stops extending after this; default ttl
    error_backoff: float | None = None  # after a failed refresh, no new attempt for this long; default lock_ttl
    stale_ttl: float = 0.0  # keep serving a value this long past its TTL if reloading it fails
    ttl_jitter: float = 0.0  # each write's TTL is shortened by up to this fraction, at random
    max_value_bytes: int = 1024 * 1024
    fail_open: bool = False  # cache Redis down: call the loader (coalesced in-process) instead of raising
    stale_if_down: float = 0.0  # cache Redis down: serve a near copy this long after the outage began
    codec: Codec | None = None  # default: JSON typed by the loader's return annotation (values.py)
    near: bool = True  # use the Refresher's near cache, when it has one
    tags: Callable[..., Iterable[str]] | None = None  # the call's tags, for Refresher.invalidate_tag
    version: int | None = None  # the shape of the values; another version's are never served

    def resolved(self) -> Settings:
        """A copy with every derived default filled in, or a ValueError naming the problem."""
        self._check_finite()
        if not self.ttl > 0:
            raise ValueError(f"ttl must be > 0 seconds, got {self.ttl!r}")
        if self.policy is not None and self.refresh_window is not None:
            raise ValueError("pass refresh_window or policy, not both")
        fraction = DEFAULT_WINDOW if self.refresh_window is None else self.refresh_window
        policy = self.policy or Window(fraction)
        window = self.ttl * (policy.fraction if isinstance(policy, Window) else fraction)
        lock_ttl = self.lock_ttl if self.lock_ttl is not None else min(window / 3, MAX_DEFAULT_LOCK_TTL)
        if not 0 < lock_ttl < self.ttl:
            raise ValueError(f"lock_ttl must be in (0, ttl={self.ttl}), got {lock_ttl!r}")
        if lock_ttl >= window:
            raise ValueError(
                f"lock_ttl={lock_ttl} must be shorter than the refresh window ({window:g} s), "
                "or a crashed refresh could not be retried before the value expires"
            )
        max_load_time = self.max_load_time if self.max_load_time is not None else self.ttl
        if max_load_time < lock_ttl:
            raise ValueError(f"max_load_time must be >= lock_ttl ({lock_ttl}), got {max_load_time!r}")
        error_backoff = self.error_backoff if self.error_backoff is not None else lock_ttl
        if not error_backoff > 0:
            raise ValueError(f"error_backoff must be > 0 seconds, got {error_backoff!r}")
        for name in ("stale_ttl", "stale_if_down"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0 seconds, got {getattr(self, name)!r}")
        if not 0 <= self.ttl_jitter < 1:
            raise ValueError(f"ttl_jitter must be in [0, 1), got {self.ttl_jitter!r}")
        if self.max_value_bytes <= 0:
            raise ValueError(f"max_value_bytes must be > 0, got {self.max_value_bytes!r}")
        return Settings(
            ttl_ms=_ms(self.ttl),
            policy=policy,
            window_ms=_ms(window),
            lock_ttl_ms=_ms(lock_ttl),
            max_load_ms=_ms(max_load_time),
            error_backoff_ms=_ms(error_backoff),
            stale_ms=_ms(self.stale_ttl),
            ttl_jitter=self.ttl_jitter,
            max_value_bytes=self.max_value_bytes,
            fail_open=self.fail_open,
            stale_if_down=float(self.stale_if_down),
            codec=self.codec,
            near=self.near,
            tags=self.tags,
            version=self._checked_version(),
        )

    def _check_finite(self) -> None:
        """NaN compares false with everything, so it would slip past every range check
        below (max_value_bytes=nan turned the size limit off), and inf overflows them."""
        for option in fields(self):
            value = getattr(self, option.name)
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"{option.name} must be a finite number, got {value!r}")

    def _checked_version(self) -> int | None:
        if self.version is not None and (type(self.version) is not int or self.version < 0):
            raise ValueError(f"version must be an int >= 0, got {self.version!r}")
        return self.version


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000)) if seconds > 0 else 0


@dataclass(frozen=True)
class Settings:
    """Options with every default derived and checked; times in milliseconds."""

    ttl_ms: int
    policy: Policy
    window_ms: int
    lock_ttl_ms: int
    max_load_ms: int
    error_backoff_ms: int
    stale_ms: int
    ttl_jitter: float
    max_value_bytes: int
    fail_open: bool
    stale_if_down: float  # seconds
    codec: Codec | None
    near: bool
    tags: Callable[..., Iterable[str]] | None
    version: int | None
