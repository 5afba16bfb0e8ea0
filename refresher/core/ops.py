"""What the core asks a driver to do, and nothing more.

A step is a generator: it yields an op, the driver performs it and sends back the
result (or throws the exception it raised into the step, which decides what an error
means: a Redis error arrives as the core's own, core/failures.py). The sync driver
performs ops with redis-py and threads, the async driver with redis.asyncio and tasks;
neither decides anything. The core reads no clock (it asks: Now) and no connection.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Generator, NamedTuple, TypeVar

if TYPE_CHECKING:
    from refresher.core.calls import Call

T = TypeVar("T")
Steps = Generator["Op", Any, T]


@dataclass(frozen=True, slots=True)
class Command:
    """One Redis command; the reply as redis-py parses it (SET NX gives True or None)."""

    args: tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class Batch:
    """Several commands in one round trip (a pipeline, not a transaction): their replies."""

    commands: tuple[tuple[Any, ...], ...]


@dataclass(frozen=True, slots=True)
class Pipeline:
    """Commands and scripts in one round trip (a pipeline, not a transaction; on a Redis
    Cluster one per node): each one's reply, or the exception it raised, in order."""

    ops: tuple[Command | Script, ...]


@dataclass(frozen=True, slots=True)
class MGet:
    """The values of keys of any slots, in order: one MGET, or on a Redis Cluster one
    round trip per node."""

    keys: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Script:
    """A Lua script, run with EVALSHA (reloaded on NOSCRIPT): its reply."""

    source: str
    keys: tuple[str, ...]
    args: tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class Subscribe:
    """Subscribe to a shard channel (SSUBSCRIBE: on a Redis Cluster only the channel's
    shard carries its messages): a subscription handle, confirmed before the reply. The
    driver closes every subscription a step opened when the step ends."""

    channel: str


@dataclass(frozen=True, slots=True)
class Listen:
    """The next message's data on `subscription`, or None (it may return early, and
    returns None at once when `timeout` <= 0)."""

    subscription: Any
    timeout: float


@dataclass(frozen=True, slots=True)
class Held:
    """A lock the driver keeps alive while a loader runs under it."""

    key: str
    token: str
    ttl_ms: int
    max_hold_ms: int
    companions: tuple[str, ...] = ()  # keys whose TTL follows the lock's


@dataclass(frozen=True, slots=True)
class Keep:
    """Keep `held` alive (as during a Load) from now until the step ends. A Load of the
    same lock meanwhile starts no second watchdog."""

    held: Held


@dataclass(frozen=True, slots=True)
class Load:
    """Call the loader with the call's arguments (awaited if it is a coroutine function,
    in a thread if a sync loader is read from asyncio), keeping `held` alive meanwhile:
    the loader's return value, or its exception."""

    fn: Callable[..., Any]
    call: Call
    held: Held | None


@dataclass(frozen=True, slots=True)
class Pause:
    """Sleep this long: True if the driver was told to stop meanwhile (a watchdog whose
    load has ended). A task is cancelled instead."""

    seconds: float


@dataclass(frozen=True, slots=True)
class Coalesce:
    """Run `steps()` unless the same `key` is already being run in this process (by a
    thread or a task); then wait for that run's outcome instead: (value, led). A run
    `followed` may also be joined by a Follow."""

    key: str
    steps: Callable[[], Steps[Any]]
    followed: bool = True


@dataclass(frozen=True, slots=True)
class Follow:
    """Wait for the Coalesce of `key` already running in this process, if any:
    (True, its value), or (False, None) at once when there is none to join."""

    key: str


@dataclass(frozen=True, slots=True)
class CanPublish:
    """Whether a refresh task can be handed over now: how long a publish may take (the
    publisher's timeout, s), or None while the broker is known to be down."""


@dataclass(frozen=True, slots=True)
class Publish:
    """Hand a refresh task to the background publisher, which never makes a read wait
    on the broker: True if it was queued. If publishing fails later, the publisher's
    thread runs `undo()` with the sync driver."""

    loader: str
    key: str  # the value's key, for the publisher's log lines
    args: list[Any]
    kwargs: dict[str, Any]
    seen: int
    expires_s: float
    undo: Callable[[], Steps[Any]] = field(compare=False)
    version: int | None = None  # the loader's `version`, when it has one


class Clock(NamedTuple):
    """The time as the core takes it (it reads no clock of its own)."""

    ms: int  # the wall clock, ms since the Unix epoch: what envelopes record and policies compare
    monotonic: float  # seconds, for durations and deadlines


@dataclass(frozen=True, slots=True)
class Now:
    """What time it is: a Clock. Answered where steps are driven (io/drivers/stepping.py)."""


Op = Command | Batch | Pipeline | MGet | Script | Subscribe | Listen | Keep | Load | Pause | Coalesce | Follow | CanPublish | Publish | Now
