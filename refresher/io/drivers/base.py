"""What both drivers share: the ops that need no Redis."""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from redis.exceptions import NoScriptError, RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from refresher.core.failures import CacheFailure
from refresher.io.breaker import Breakers
from refresher.core.ops import Command, Publish, Script, Steps
from refresher.errors import RefresherError
from refresher.io.failures import failure_of
from refresher.io.singleflight import Group
from refresher.io.tracking import Tracker

if TYPE_CHECKING:
    from refresher.io.publish import Publisher


log = logging.getLogger("refresher")
R = TypeVar("R")

SHARDED_SINCE = (7, 0)  # SPUBLISH and SSUBSCRIBE
_SPUBLISH = re.compile(r"""(['"])SPUBLISH\1""")


def sharded_pubsub(info: dict[str, Any] | Exception, cluster: bool) -> bool:
    """Whether signals go by sharded pub/sub, from the server's INFO (or why it could not
    be read: a user without +info is taken to run what the docs require).

    Before Redis 7.0 a single Redis does the same with PUBLISH and SUBSCRIBE (one server:
    no shard to keep a message on); a Cluster that old is refused, here, at its first use."""
    if isinstance(info, Exception):
        log.debug("refresher: could not read the server's version (%s); taking it to be 7.0 or later", info)
        return True
    found = str(info.get("redis_version", ""))
    parts = tuple(int(part) for part in found.split(".")[:2] if part.isdigit())
    if parts >= SHARDED_SINCE:
        return True
    if cluster:
        raise RefresherError(f"a Redis Cluster needs Redis 7.0 or later (sharded pub/sub); this one runs {found}")
    return False


def for_server(source: str, sharded: bool) -> str:
    """A Lua script as this server can run it: SPUBLISH becomes PUBLISH before Redis 7.0."""
    return source if sharded else _SPUBLISH.sub(r"\1PUBLISH\1", source)


class Runs(Protocol):
    """What undoes a failed publish from the publisher's thread: the sync driver, named
    by what it does so that this module, which the sync driver imports, need not import it."""

    def run(self, steps: Steps[Any]) -> Any: ...


class Driver:
    def __init__(self, flights: Group[Any], publisher: Publisher, socket_timeout: float, breaker: Breakers) -> None:
        self.flights = flights
        self.publisher = publisher
        self.socket_timeout = socket_timeout
        self.breaker = breaker  # the cache Redis's: a GET that finds it unreachable opens it
        self.sharded: bool | None = None  # sharded pub/sub, known from the first script or wait
        # Drained before the core decides on anything read (Stepper, `read`): set by the client.
        self.tracker: Tracker | None = None

    def failed(self, exc: RedisError, key: str) -> CacheFailure:
        """A GET's error, told to the breaker of the key's master (a cache that let it wait a
        timeout opens it; a refused connection costs no wait: reads go on finding out for
        themselves), as the core's failure."""
        if isinstance(exc, RedisTimeoutError):
            self.breaker.of(key).trip()
        return failure_of(exc)

    def read(self, raw: R) -> R:
        """A GET's outcome, once the invalidations received by then are applied: the core
        decides on it next."""
        tracker = self.tracker
        if tracker is not None and tracker.live:
            tracker.sync()  # drain(), one call less: this is every hit's
        return raw

    def can_publish(self) -> float | None:
        """CanPublish's reply."""
        return self.publisher.timeout if self.publisher.available() else None

    def publish(self, op: Publish, undo_with: Runs) -> bool:
        """Hand the task over; a failed publish is undone from the publisher's thread."""
        return self.publisher.submit(
            op.loader, op.args, op.kwargs, op.seen, op.expires_s, on_failure=lambda: undo_with.run(op.undo()),
            key=op.key, version=op.version,
        )


def lost_scripts(ops: tuple[Command | Script, ...], replies: list[Any]) -> dict[int, Script]:
    """The pipeline's scripts the server did not have (NOSCRIPT: they ran nothing), by position."""
    return {i: op for i, (op, reply) in enumerate(zip(ops, replies))
            if isinstance(op, Script) and isinstance(reply, NoScriptError)}
