"""`refresher warm`: refresh calls of a loader ahead of their readers, by a worker or here."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from refresher.core.calls import Call, call_repr
from refresher.core.protocol.outcomes import Outcome
from refresher.ops.cli.common import redis_call
from refresher.api.loader import Loader
from refresher.io.publish import REFRESH_TASK
from refresher.worker.run import refresh_key

FAILED = frozenset({Outcome.FAILED, Outcome.NOT_STORED})  # outcomes that leave the key unwarmed by an error


@dataclass(frozen=True)
class Warmed:
    key: str
    seen: int | None  # the version the refresh replaces; None: nothing was stored
    result: str  # "enqueued", or what the inline refresh did (written, fresh, failed, ...)


def stored_version(loader: Loader[Any, Any], call: Call) -> int | None:
    [raw] = redis_call(loader, ("GET", call.keys.value))
    envelope = loader.state.parse(raw, quiet=True)
    return envelope.version if envelope is not None else None


def enqueue(loader: Loader[Any, Any], call: Call) -> Warmed:
    """Publish the refresh task a reader in the window publishes (core/read.py,
    publish.py), naming the version it replaces, or None for a key with nothing stored:
    the worker then refreshes unless the key was written after this was enqueued.

    Unlike a reader it publishes here and now, not from the background publisher: a
    reader must never wait on the broker, while an operator wants to know that every
    task was sent, or why not. It takes no pending marker, which exists to keep many
    readers to one task; the worker's lock and version check make a duplicate harmless.
    The task expires after one TTL, so a backlog (or no worker at all) cannot keep
    warm-ups queued for ever: by then the value they would write would be due again.
    """
    seen = stored_version(loader, call)
    args, kwargs = call.wire
    cache = loader.cache
    cache.publisher.app.send_task(
        REFRESH_TASK,
        args=[loader.name, args, kwargs, time.time(), seen],
        argsrepr=call_repr(loader.name, args, kwargs),  # what Flower shows
        queue=cache.queue,
        expires=max(1.0, loader.settings.ttl_ms / 1000),
        retry=False,
        ignore_result=True,
        timeout=cache.publisher.timeout,  # AMQP: the write, then the broker's confirm
        confirm_timeout=cache.publisher.timeout,
    )
    return Warmed(call.keys.value, seen, "enqueued")


def load_now(loader: Loader[Any, Any], call: Call) -> Warmed:
    """Refresh the key in this process, exactly as a worker would run the task `enqueue`
    sends: under the key's lock, respecting its back-off, and written only over the
    version read here (see core/renew.py)."""
    seen = stored_version(loader, call)
    args, kwargs = call.wire
    return Warmed(call.keys.value, seen, refresh_key(loader.name, args, kwargs, time.time(), seen))
