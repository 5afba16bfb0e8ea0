"""What `loader.entry(...)` returns: the value with how fresh it is, for apps that must
show it ("prices as of 10:02", a banner while the cache is down)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Generic, Literal, TypeVar

from refresher.core.state import LoaderState
from refresher.io.clock import now_ms
from refresher.core.envelope import Envelope
from refresher.core.near import NearCache
from refresher.core.policy import Dropped, Policy, Verdict, decide

R = TypeVar("R")
State = Literal["fresh", "refreshing", "stale_if_error", "served_while_down", "loaded_while_down"]
_STATES: dict[Verdict, State] = {Verdict.FRESH: "fresh", Verdict.REFRESH: "refreshing",
                                 Verdict.STALE: "stale_if_error"}


@dataclass(frozen=True)
class Served(Generic[R]):
    """A value and why it could be served.

    `state`: `fresh` (within its TTL, not due for a refresh); `refreshing` (in its refresh
    window, or invalidated with `hard=False`: a worker is asked for a new one); `stale_if_error`
    (past its TTL, within `stale_ttl`, because reloading it failed); `served_while_down` (the
    cache Redis unreachable: a near copy kept from before the outage, within `stale_if_down`);
    `loaded_while_down` (the cache Redis unreachable: `fail_open` called the loader itself).
    `age`: seconds since the value was loaded and written (0 when loaded while down).
    `version`: the number of that write, new for every write of the key (None when the value
    is not in the cache). Describes the key as this process found it right after the read.
    """

    value: R
    state: State
    age: float
    version: int | None


def describe(state: LoaderState[R], near: NearCache | None, key: str, value: R, raw: bytes | None | Exception) -> Served[R]:
    """`value`, just read, described by the key's bytes read after it (`raw`; an error: the
    cache Redis unreachable, and the near copy kept from before, if any, is what was served)."""
    now = now_ms()
    if isinstance(raw, Exception):
        kept = None if near is None else near.kept_entry(key, state, time.monotonic())
        return served_while_down(value, None if kept is None else kept.envelope, now)
    envelope = state.parse(raw, quiet=True)
    dropped = None if envelope is None else state.epochs.judge(state.epoch_key, envelope.marks)
    return served(value, envelope, now, state.policy, dropped)


def served(value: R, envelope: Envelope | None, now_ms: int, policy: Policy, dropped: Dropped | None) -> Served[R]:
    """`value` as the cache holds it: by the read decision on its envelope (read just after)."""
    verdict = decide(envelope, now_ms, policy, lambda: 1.0, dropped or Dropped.NO)
    if envelope is None or verdict is Verdict.MISS:  # the load's value was not kept (too big, refused)
        return Served(value, "fresh", 0.0, None)
    return Served(value, _STATES[verdict], age(envelope, now_ms), envelope.version)


def served_while_down(value: R, kept: Envelope | None, now_ms: int) -> Served[R]:
    """`value` read while the cache Redis could not be reached: a kept copy's, else the loader's own."""
    if kept is None:
        return Served(value, "loaded_while_down", 0.0, None)
    return Served(value, "served_while_down", age(kept, now_ms), kept.version)


def age(envelope: Envelope, now_ms: int) -> float:
    return max(0, now_ms - envelope.written_ms) / 1000
