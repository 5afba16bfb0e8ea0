"""The epochs a value is judged by, fetched when this process has not heard them yet, and
the marks a load writes with its value (see refresher/epochs.py)."""

from __future__ import annotations

from typing import Any, TypeVar

from refresher.calls import Call
from refresher.core.ops import MGet, Steps
from refresher.core.spec import NOTHING, SERVABLE, Nothing, Spec, now_ms
from refresher.envelope import Envelope, Marks
from refresher.epochs import Epoch
from refresher.policy import Dropped, Verdict, decide

R = TypeVar("R")


def fetch_epochs(spec: Spec[Any], keys: list[str]) -> Steps[dict[str, Epoch]]:
    """The current epochs of these keys, from Redis, remembered if no write raced the read."""
    ticket = spec.epochs.expect(keys)
    raws = yield MGet(tuple(keys))
    return spec.epochs.learn(keys, raws, ticket)


def current_marks(spec: Spec[Any], call: Call) -> Steps[Marks | None]:
    """The epochs a load (or a `set`) that begins now writes with its value."""
    tags = spec.tags_of(call)
    keys = spec.epochs.keys_for(spec.epoch_key, tags)
    known = spec.epochs.known(keys)
    if known is None:
        known = yield from fetch_epochs(spec, keys)
    return spec.epochs.marks(spec.epoch_key, tags, known)


def verdict(spec: Spec[Any], envelope: Envelope) -> Steps[Verdict]:
    """`decide` now, with what invalidate_all and invalidate_tag did to the value (its
    epochs fetched first if this process has not heard them)."""
    dropped = spec.epochs.judge(spec.epoch_key, envelope.marks)
    if dropped is None:
        tags = (tag for tag, _ in envelope.marks.tags) if envelope.marks is not None else ()
        fetched = yield from fetch_epochs(spec, spec.epochs.keys_for(spec.epoch_key, tags))
        dropped = spec.epochs.judge(spec.epoch_key, envelope.marks, fetched)
    return decide(envelope, now_ms(), spec.policy, dropped=dropped or Dropped.NO)


def servable(spec: Spec[R], raw: bytes | None) -> Steps[R | Nothing]:
    """A second look (after taking the lock, or while waiting): the value if some other
    process has just written a usable one, else NOTHING. Not counted again."""
    envelope = spec.parse(raw, quiet=True)
    if envelope is None or envelope.tombstone or (yield from verdict(spec, envelope)) not in SERVABLE:
        return NOTHING
    return spec.decode(envelope, quiet=True)
