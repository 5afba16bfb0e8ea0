"""The epochs a value is judged by, fetched when this process has not heard them yet, and
the marks a load writes with its value (see refresher/core/epochs.py)."""

from __future__ import annotations

from typing import Any, TypeVar

from refresher.core.calls import Call
from refresher.core.failures import CacheFailure
from refresher.core.ops import Clock, MGet, Now, Script, Steps
from refresher.core.protocol.scripts import REPAIR_EPOCH
from refresher.core.state import NOTHING, SERVABLE, Nothing, LoaderState
from refresher.core.envelope import Envelope, Marks
from refresher.core.epochs import Epoch, is_corrupt
from refresher.core.logs import about
from refresher.core.policy import Dropped, Verdict, decide

R = TypeVar("R")


def fetch_epochs(state: LoaderState[Any], keys: list[str]) -> Steps[dict[str, Epoch]]:
    """The current epochs of these keys, from Redis, remembered if no write raced the read."""
    ticket = state.epochs.expect(keys)
    return (yield from learnt(state, keys, list((yield MGet(tuple(keys)))), ticket))


def learnt(state: LoaderState[Any], keys: list[str], raws: list[bytes | None], ticket: object) -> Steps[dict[str, Epoch]]:
    """The epochs read at these keys (after `state.epochs.expect(keys)` gave the ticket), corrupt ones repaired."""
    for i, raw in enumerate(raws):
        if raw is not None and is_corrupt(raw):
            raws[i] = yield from _repaired(state, keys[i], raw)
    return state.epochs.learn(keys, raws, ticket)


def _repaired(state: LoaderState[Any], key: str, raw: bytes) -> Steps[bytes]:
    """A corrupt epoch key, rewritten (a hard invalidation, warned about once, by the
    process that rewrote it). If the cache refuses, the corrupt bytes: every value is
    then dropped, read after read, until a bump or a later repair rewrites the key."""
    try:
        text, rewritten = yield Script(REPAIR_EPOCH, (key,), ())
    except CacheFailure as exc:
        about(state.name, key).warning("epoch key holds %r, not an epoch; could not rewrite it (%s): "
                                      "every value of it is reloaded", raw[:32], exc)
        return raw
    if rewritten:
        about(state.name, key).warning("epoch key held %r, not an epoch: rewritten, every value it "
                                      "covers is reloaded (as by a hard invalidation)", raw[:32])
    return bytes(text)


def to_read(state: LoaderState[Any], call: Call) -> list[str]:
    """The epoch keys a load of `call` must read for its marks: none when this process knows them."""
    keys = state.epochs.keys_for(state.epoch_key, state.tags_of(call))
    return [] if state.epochs.known(keys) is not None else keys


def current_marks(state: LoaderState[Any], call: Call, read: dict[str, Epoch] | None = None) -> Steps[Marks | None]:
    """The epochs a load (or a `set`) that begins now writes with its value; `read`, the
    epochs of `to_read` just read, when there are some."""
    tags = state.tags_of(call)
    keys = state.epochs.keys_for(state.epoch_key, tags)
    known = read or state.epochs.known(keys)
    if known is None:
        known = yield from fetch_epochs(state, keys)
    return state.epochs.marks(state.epoch_key, tags, known)


def verdict(state: LoaderState[Any], envelope: Envelope, read: dict[str, Epoch] | None = None) -> Steps[Verdict]:
    """`decide` now, with what invalidate_all and invalidate_tag did to the value (its
    epochs fetched first if this process has not heard them; `read`, epochs this read
    fetched already)."""
    dropped = state.epochs.judge(state.epoch_key, envelope.marks, read)
    if dropped is None:
        tags = (tag for tag, _ in envelope.marks.tags) if envelope.marks is not None else ()
        fetched = yield from fetch_epochs(state, state.epochs.keys_for(state.epoch_key, tags))
        dropped = state.epochs.judge(state.epoch_key, envelope.marks, fetched)
    now: Clock = yield Now()
    return decide(envelope, now.ms, state.policy, dropped=dropped or Dropped.NO)


def servable(state: LoaderState[R], raw: bytes | None, read: dict[str, Epoch] | None = None) -> Steps[R | Nothing]:
    """A second look (after taking the lock, or while waiting): the value if some other
    process has just written a usable one, else NOTHING. Not counted again."""
    envelope = state.parse(raw, quiet=True)
    if envelope is None or envelope.tombstone or (yield from verdict(state, envelope, read)) not in SERVABLE:
        return NOTHING
    return state.decode(envelope, quiet=True)
