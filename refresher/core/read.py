"""The read path's decisions: serve what was read, ask a worker to refresh it, or miss.

A hit is one GET and this pure decision. Inside the refresh window the value is served
at once and one refresh is asked for per key per window however many readers see it: a
per-process memo, then a pending marker claimed in Redis.
"""

from __future__ import annotations

from typing import Any, Iterable, Protocol, TypeVar

from refresher.core.calls import Call
from refresher.core.lock import new_token, release
from refresher.core.ops import CanPublish, Clock, MGet, Now, Publish, Script, Steps
from refresher.core.protocol.scripts import CLAIM_PENDING, Claim
from refresher.core.marks import verdict
from refresher.core.failures import CacheFailure, WrongType, cache_down, is_cache_trouble
from refresher.core.miss import miss
from refresher.core.state import SERVABLE, UNSHARED, Nothing, LoaderState
from refresher.core.envelope import CorruptEnvelope, Envelope
from refresher.core.logs import about
from refresher.core.policy import Verdict, decide

R = TypeVar("R")
FOREIGN = b"?"  # what a key of another Redis type reads as: no envelope


class Fill(Protocol):
    """Where a read that went to Redis leaves a servable envelope (a near cache ticket)."""

    def fill(self, envelope: Envelope, value: Any) -> None: ...


class Then:
    """What a read found needs more steps (a miss, or a refresh to ask for first)."""

    __slots__ = ("steps",)

    def __init__(self, steps: Steps[Any]) -> None:
        self.steps = steps


def _read(state: LoaderState[R], call: Call, raw: bytes | None, now: int, ticket: Fill | None = None) -> R | Then:
    """What one GET's bytes are worth (the hit not counted: the callers count a read or a batch)."""
    try:  # state.parse's work, inline: this runs on every hit
        envelope = None if raw is None else Envelope.from_bytes(raw)
    except CorruptEnvelope:
        envelope = state.parse(raw, key=call.keys.value)  # None, and counted and logged there
    if envelope is not None and not envelope.tombstone:
        dropped = state.epochs.judge(state.epoch_key, envelope.marks)
        if dropped is None:  # an epoch this process has not heard yet
            return Then(_read_with_epochs(state, call, raw, envelope, ticket))
        value = _decided(state, call, envelope, decide(envelope, now, state.policy, dropped=dropped), now, ticket)
        if value is not None:
            return value
    return Then(miss(state, call, raw))


def _decided(state: LoaderState[R], call: Call, envelope: Envelope, verdict: Verdict, now: int,
             ticket: Fill | None) -> R | Then | None:
    """A value to serve (in the window, after asking for its refresh if this process has
    not yet: no step when it has), or None."""
    if verdict in SERVABLE and not isinstance(value := state.decode(envelope, key=call.keys.value), Nothing):
        if ticket is not None:
            ticket.fill(envelope, value)
        if verdict is Verdict.REFRESH and not _asked(state, call, envelope, now):
            return Then(_serve_after_asking(state, call, envelope, value))
        return value
    return None


def _asked(state: LoaderState[Any], call: Call, envelope: Envelope, now: int) -> bool:
    """This process has already asked for the refresh of this version (counted)."""
    if not state.asked_already(call.keys.value, envelope.version, now):
        return False
    state.stats.incr("refresh_deduplicated")
    return True


def _read_with_epochs(state: LoaderState[R], call: Call, raw: bytes | None, envelope: Envelope, ticket: Fill | None) -> Steps[R]:
    """`_read`, once the epochs the value is judged by are fetched (one MGET)."""
    try:
        judged = yield from verdict(state, envelope)
    except CacheFailure as exc:
        if not is_cache_trouble(exc):
            raise
        return (yield from cache_down(state, call, exc))
    now: Clock = yield Now()
    value = _decided(state, call, envelope, judged, now.ms, ticket)
    if value is None:
        return (yield from miss(state, call, raw))
    if type(value) is Then:
        return (yield from value.steps)  # type: ignore[no-any-return]  # a yield's value is Any: the driver sends what the op asked for
    state.stats.incr("hit")
    return value  # type: ignore[return-value]  # R | Then: mypy does not narrow by `type(x) is`


def read_near(state: LoaderState[R], call: Call, envelope: Envelope, shared: Any, now: int) -> R | Then | None:
    """A near cache entry decided on exactly as a hit from Redis would be; None when it
    is past its TTL, or an epoch it is judged by is not known here (Redis decides then:
    stale-on-error, a load, or a newer value)."""
    dropped = state.epochs.judge(state.epoch_key, envelope.marks, synced=True)
    if dropped is None:
        return None
    verdict = decide(envelope, now, state.policy, dropped=dropped)
    if verdict is not Verdict.FRESH and verdict is not Verdict.REFRESH:
        return None
    value = state.decode(envelope, key=call.keys.value) if shared is UNSHARED else shared
    if isinstance(value, Nothing):
        return None
    if verdict is Verdict.REFRESH and not _asked(state, call, envelope, now):
        return Then(_serve_after_asking(state, call, envelope, value, "near_hit"))
    state.stats.incr("near_hit")  # a read served from memory (`hit`: from Redis)
    return value


def read_many(state: LoaderState[R], calls: list[Call], found: Iterable[bytes | None], now: int,
              tickets: list[Fill | None] | None = None) -> list[R | Then]:
    """`read` for each call of a batch, counting its hits once per batch."""
    out: list[R | Then] = []
    for i, (call, raw) in enumerate(zip(calls, found)):
        value = _read(state, call, raw, now, tickets[i] if tickets is not None else None)
        out.append(value)
    state.stats.incr("hit", sum(1 for v in out if type(v) is not Then))
    return out


def _serve_after_asking(state: LoaderState[R], call: Call, envelope: Envelope, value: R, served: str = "hit") -> Steps[R]:
    asked = yield from ask_for_refresh(state, call, envelope)
    state.stats.incr("refresh_asked" if asked else served)  # one outcome per read
    return value


def ask_for_refresh(state: LoaderState[Any], call: Call, envelope: Envelope) -> Steps[bool]:
    """Publish one refresh task per key per marker lifetime, from whichever reader claims
    the marker first; True if this reader handed one over. Never raises: the caller has a
    value to serve.

    The claim checks that the value is still the version this reader saw: a reader that
    read the old value just before a worker's commit cleared the marker would otherwise
    ask for a second refresh of the value just written.
    """
    key = call.keys.value
    clock: Clock = yield Now()
    if _asked(state, call, envelope, clock.ms):
        return False
    publish_timeout: float | None = yield CanPublish()
    if publish_timeout is None:
        state.stats.incr("publish_skipped")
        return False
    # The marker outlives a slow publish; once a worker takes the key's lock it re-arms
    # the marker to the lock's TTL (see core/renew.py).
    token = new_token()
    px = state.settings.lock_ttl_ms + int(publish_timeout * 1000)
    try:
        claim = Claim(int((yield Script(CLAIM_PENDING, (key, call.keys.pending), (envelope.version, token, px)))))
    except CacheFailure as exc:
        about(state.name, key).warning("could not mark for refresh: %s", exc)
        return False
    state.remember_asked(key, envelope.version, clock.ms)
    if claim is not Claim.CLAIMED:
        state.stats.incr("refresh_deduplicated")
        return False

    def undo() -> Steps[bool]:
        state.asked.pop(key, None)
        return (yield from release(call.keys.pending, token))

    expires_s = max(1.0, (envelope.expires_ms + envelope.stale_ms - clock.ms) / 1000)
    args, kwargs = call.wire
    if not (yield Publish(state.name, key, args, kwargs, envelope.version, expires_s, undo, state.settings.version)):
        yield from undo()
        return False
    return True


def after_get(state: LoaderState[R], call: Call, raw: bytes | None | CacheFailure, now: int,
              ticket: Fill | None = None) -> R | Then:
    """What a driver's GET brought back (or the failure it met) at `now` (ms), as the
    value to serve or the steps still to run (a servable value is also kept by the near
    cache's `ticket`, when there is one). A key of another Redis type is foreign bytes: a
    corrupt value, reloaded and overwritten."""
    if isinstance(raw, CacheFailure):
        if not isinstance(raw, WrongType):
            return Then(cache_down(state, call, raw))
        raw = FOREIGN
    value: R | Then = _read(state, call, raw, now, ticket)
    if type(value) is not Then:
        state.stats.incr("hit")
    return value


def fetch_many(state: LoaderState[R], calls: list[Call], served: dict[int, Any] | None = None,
               tickets: dict[int, Fill] | None = None) -> Steps[list[R]]:
    """Many reads in one round trip (one MGET); each miss then takes the coalesced path.
    `served` holds what the near cache answered by the call's index (a value, or a Then),
    which Redis is not asked for; `tickets` what it expects back from the MGET."""
    served = served or {}
    ask = [i for i in range(len(calls)) if i not in served]
    results: dict[int, R | Then] = dict(served)
    if ask:
        asked = [calls[i] for i in ask]
        try:
            found = yield MGet(tuple(call.keys.value for call in asked))
        except CacheFailure as exc:
            found = None
            for i, call in zip(ask, asked):
                results[i] = Then(cache_down(state, call, exc))
        if found is not None:
            fills = [tickets.get(i) for i in ask] if tickets else None
            clock: Clock = yield Now()
            decided: list[R | Then] = read_many(state, asked, found, clock.ms, fills)
            results.update(zip(ask, decided))
    values: list[R] = []
    for i in range(len(calls)):
        value = results[i]
        values.append((yield from value.steps) if isinstance(value, Then) else value)
    return values
