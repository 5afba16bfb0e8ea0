"""Loaders whose values JSON would reshape (int dict keys, tuples, dataclasses, dates,
UUIDs, Decimals, enums, msgspec Structs, NamedTuples, TypedDicts, pydantic models), shared
by the typed-value tests and the in-process worker. Each counts its calls in Redis and
fails while `typed:down` is set."""

from __future__ import annotations

import dataclasses
import os
from datetime import date, datetime, timezone
from decimal import Decimal
from enum import Enum
from typing import Any, NamedTuple, Optional, TypedDict
from uuid import UUID

import msgspec
import pydantic
import redis

from refresher import Refresher

cache = Refresher()  # REFRESHER_REDIS_URL, set by tests/conftest.py
control = redis.Redis.from_url(os.environ.get("REFRESHER_TEST_CONTROL_URL") or cache.redis_url)  # counters, gates
OPTIONS: dict[str, Any] = {"ttl": 60, "stale_ttl": 60, "lock_ttl": 1, "error_backoff": 0.5}


class Tier(Enum):
    FREE = "free"
    PRO = "pro"


@dataclasses.dataclass(frozen=True)
class Profile:
    id: UUID
    joined: date
    last_seen: datetime
    balance: Decimal
    tier: Tier
    scores: dict[int, tuple[str, float]]
    nickname: Optional[str] = None


class Point(msgspec.Struct, frozen=True):
    x: int
    y: int


class Label(TypedDict):
    text: str
    at: tuple[int, int]


class Pin(NamedTuple):
    where: Point
    label: Label


class Account(pydantic.BaseModel):
    id: int
    tags: tuple[str, ...]
    created: datetime


def origin(name: str) -> int:
    if control.exists("typed:down"):
        raise ConnectionError("origin down")
    return int(control.incr(f"typed:calls:{name}"))


def calls(name: str) -> int:
    return int(control.get(f"typed:calls:{name}") or 0)


@cache.loader(name="typed.profile", **OPTIONS)
def profile(n: int) -> Profile:
    call = origin("profile")
    return Profile(
        id=UUID(int=n), joined=date(2020, 1, n % 28 + 1), last_seen=datetime(2026, 11, 26, 12, n % 60, tzinfo=timezone.utc),
        balance=Decimal("10.50") * call, tier=Tier.PRO, scores={n: ("x", 0.5), -1: ("y", float(call))},
    )


@cache.loader(name="typed.scores", **OPTIONS)
def scores(n: int) -> dict[int, tuple[str, datetime]]:
    call = origin("scores")
    return {n: ("first", datetime(2026, 1, 1, tzinfo=timezone.utc)), call: ("call", datetime(2026, 2, call % 28 + 1))}


@cache.loader(name="typed.pins", **OPTIONS)
def pins(n: int) -> list[Pin]:
    call = origin("pins")
    return [Pin(Point(n, call), {"text": f"pin {n}", "at": (n, call)})]


@cache.loader(name="typed.account", **OPTIONS)
def account(n: int) -> Account:
    call = origin("account")
    return Account(id=n, tags=("a", str(call)), created=datetime(2026, 3, 1, n % 24, tzinfo=timezone.utc))


@cache.loader(name="typed.since", **OPTIONS)
def since(user: UUID, day: date, tier: Tier) -> tuple[str, ...]:
    """Typed arguments: a worker must call it with a UUID, a date and a Tier again."""
    call = origin("since")
    assert isinstance(user, UUID) and isinstance(day, date) and isinstance(tier, Tier), (user, day, tier)
    return (str(user), day.isoformat(), tier.value, str(call))
