"""Waiting for another process's load: asleep on the key's signal channel, not polling.

The channel's messages (refresher/core/protocol/signals.py) are untrusted (anyone who may
publish on it can send anything): a message is a hint, never a value taken on faith. A
value is served only if it parses as an envelope the epochs still allow; anything else
sends the waiter to read the key.
"""

from __future__ import annotations

import json
from typing import TypeVar

from refresher.core.calls import Call
from refresher.core.epochs import Epoch
from refresher.core.marks import learnt, servable, to_read, verdict
from refresher.core.ops import Batch, Clock, Command, Listen, Now, Script, Steps, Subscribe
from refresher.core.protocol.scripts import DROP_FOREIGN_LOCK
from refresher.core.protocol.signals import FAILED, FILLED, RETRY, WRITTEN
from refresher.core.state import SERVABLE, Nothing, LoaderState
from refresher.errors import LoadFailed
from refresher.core.logs import about

R = TypeVar("R")

ERROR_TEXT_CHARS = 1024  # of a loader's error type and message, as a waiter raises them
NO_EXPIRY = -1  # PTTL of a key that has no TTL


class Retry(Exception):
    """The lock holder went away without a value: contend for the lock again."""


def await_holder(state: LoaderState[R], call: Call) -> Steps[R]:
    """Sleep on the key's signal channel until the lock holder writes or gives up.

    Subscribing before looking again closes the race with a holder that finishes in
    between. If the holder dies, its lock expires and we wake to take it over. MGET, not
    GET: a key of another Redis type reads as nothing, not as an error.
    """
    state.stats.incr("waited")
    subscription = yield Subscribe(call.keys.signal)
    # The epochs the value will be judged by, read now with the key (when not known here)
    # rather than in a round trip of their own once it lands. An invalidation after they
    # were read came before the load began (the value carries the newer epoch), or made
    # the commit refuse the value, or came while this read was under way, where serving
    # what it dropped is what a read just before it would have done.
    epoch_keys = to_read(state, call)
    ticket = state.epochs.expect(epoch_keys) if epoch_keys else None
    (raw,), lock_pttl, *epoch_raws = yield Batch((("MGET", call.keys.value), ("PTTL", call.keys.lock),
                                                  *(("MGET", key) for key in epoch_keys)))
    read = (yield from learnt(state, epoch_keys, [one[0] for one in epoch_raws], ticket)) if epoch_keys else None
    if not isinstance(value := (yield from servable(state, raw, read)), Nothing):
        return value
    if lock_pttl == NO_EXPIRY and (yield Script(DROP_FOREIGN_LOCK, (call.keys.lock,), ())):
        about(state.name, call.keys.lock).warning("deleted a lock key without a TTL: no refresher lock lives without one")
    if lock_pttl <= 0:
        raise Retry
    started: Clock = yield Now()
    deadline = started.monotonic + lock_pttl / 1000
    while (left := deadline - (yield Now()).monotonic) > 0:
        data = yield Listen(subscription, left)
        if data is not None and not isinstance(value := (yield from _heard(state, call, data, read)), Nothing):
            return value
    raise Retry


def _heard(state: LoaderState[R], call: Call, data: object, read: dict[str, Epoch] | None) -> Steps[R | Nothing]:
    """What a message on the channel means: a value, an error to raise, Retry, or (a
    message that says nothing trustworthy, or a value that may not be served) what the
    key itself holds now, NOTHING meaning listen on."""
    kind, body = (data[:1], data[1:]) if isinstance(data, bytes) else (b"", b"")
    if kind == RETRY and not body:
        raise Retry
    if kind == FAILED and (error := _error(body)) is not None:
        raise LoadFailed(state.name, *error)
    envelope = state.parse(body, quiet=True) if kind == FILLED else None
    if envelope is not None and not envelope.tombstone and (yield from verdict(state, envelope, read)) in SERVABLE:
        if not isinstance(value := state.decode(envelope, quiet=True), Nothing):
            return value
    (raw,) = yield Command(("MGET", call.keys.value))
    value = yield from servable(state, raw, read)
    if isinstance(value, Nothing) and (kind == WRITTEN or envelope is not None):
        raise Retry  # written, but not servable here (invalidated since): contend to load it
    return value


def _error(body: bytes) -> tuple[str, str] | None:
    """The loader's error type and message, if `body` is what a holder sends."""
    try:
        error = json.loads(body)
    except ValueError:
        return None
    if not isinstance(error, dict) or not isinstance(kind := error.get("type"), str) \
            or not isinstance(message := error.get("message"), str):
        return None
    return kind[:ERROR_TEXT_CHARS], message[:ERROR_TEXT_CHARS]
