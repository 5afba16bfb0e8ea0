"""What only the sync driver does, beside the body it shares with the asyncio one (aio.py,
from which scripts/unasync.py generates sync.py; tasks.py is this module's asyncio twin):
the first read starts the publisher, threads that read a key not known to be there share
a GET that finds it missing, one watchdog thread keeps every held lock alive, and a forked
child drops the subscribers its parent's threads read."""

from __future__ import annotations

import os
import threading
from abc import abstractmethod
from typing import Any, Callable, ContextManager, TypeVar

from redis import Redis
from redis.cluster import RedisCluster
from redis.commands.core import Script
from redis.exceptions import RedisError

from refresher.core.failures import CacheFailure
from refresher.core.ops import Held, Load, Op, Steps
from refresher.io.breaker import Breakers
from refresher.io.lean import getter
from refresher.io.drivers.base import Driver
from refresher.io.drivers.stepping import Stepper
from refresher.io.drivers.subscriber import Subscriber
from refresher.io.drivers.watchdog import Lease, Watchdog
from refresher.io.publish import Publisher
from refresher.core.relay import Relay
from refresher.io.singleflight import Group

T = TypeVar("T")

BLOCKING = True  # a read may wait, in its thread, for another thread's read of the same key (near cache)

Keeper = Lease  # what keeps a lock alive until it is let go
KNOWN_PRESENT = 65536  # keys remembered as found by a GET; past it the memory starts afresh
FOUND = b""  # what a shared GET tells its waiters when it found bytes, or failed: each reads for itself


class SharedGet:
    """A GET of a key not known to be there, which other threads reading the key meanwhile
    wait for. Only its finding nothing is shared: bytes found may be older than a write
    that came before a waiter began, so each waiter then sends its own GET."""

    __slots__ = ("raw", "done")

    def __init__(self) -> None:
        self.raw: bytes | None = FOUND
        self.done = Relay()


class Threads(Driver):
    def __init__(self, redis: Redis | RedisCluster, flights: Group[Any], publisher: Publisher, socket_timeout: float,
                 breaker: Breakers) -> None:
        super().__init__(flights, publisher, socket_timeout, breaker)
        self.redis = redis
        self._get = getter(redis)  # the hit's GET
        self._scripts: dict[str, Script] = {}
        self._subscribers: dict[str, Subscriber] = {}  # by node: see board.py
        self._subscribers_lock = threading.Lock()
        self._pid = os.getpid()
        self.watchdog = Watchdog(self.perform)
        self._present: dict[str, bool] = {}  # keys a GET of this process found (hot ones): their reads share nothing
        self._getting: dict[str, SharedGet] = {}  # keys not known present, with a GET in flight
        self._getting_lock = threading.Lock()
        self._getting_pid = os.getpid()

    def get(self, key: str, alone: bool = False) -> bytes | None | CacheFailure:
        """A hit's one GET, outside any step (a generator per hit would cost more than
        the read decision itself); an unreachable cache comes back as its error. Not
        `alone`, it may be shared (`_get_shared`)."""
        if not self.publisher.started:
            self.publisher.start()
        if not alone and key not in self._present:
            return self._get_shared(key)
        return self._get_own(key)

    def _get_own(self, key: str) -> bytes | None | CacheFailure:
        try:
            raw: bytes | None = self._get(key)
        except RedisError as exc:  # as the core's failure (io/failures.py)
            return self.read(self.failed(exc, key))
        if raw is None:
            self._present.pop(key, None)  # the key's next stampede is shared again
        if self.breaker.open:  # this GET was the probe: the cache answers again
            self.breaker.of(key).succeeded()
        tracker = self.tracker  # self.read(raw), inline: one call less on every hit
        if tracker is not None and tracker.live:
            tracker.sync()
        return raw

    def _get_shared(self, key: str) -> bytes | None | CacheFailure:
        """A key no GET of this process has found (a cold stampede's) is read by one
        thread at a time: the others wait for its GET and, if it found nothing, miss
        too (the miss path reads the key again under its lock, and takes a load's value
        only if no write overtook the load: core/miss.py). Fifty threads sending fifty
        GETs at once open fifty pooled connections, and hold up the one that goes on to
        take the lock and load."""
        shared, leading = self._share(key)
        if not leading:
            shared.done.wait()
            return self.read(None) if shared.raw is None else self._get_own(key)
        raw: bytes | None | CacheFailure = FOUND
        try:
            raw = self._get_own(key)
        finally:
            with self._getting_lock:
                del self._getting[key]
            shared.raw = None if raw is None else FOUND
            shared.done.set()
        if isinstance(raw, bytes):
            if len(self._present) >= KNOWN_PRESENT:
                self._present.clear()
            self._present[key] = True
        return raw

    def _share(self, key: str) -> tuple[SharedGet, bool]:
        """The GET of `key` in flight, or a new one this thread sends (True)."""
        if self._getting_pid != os.getpid():  # a forked child: no GET of its parent's is its own
            self._getting, self._getting_lock, self._getting_pid = {}, threading.Lock(), os.getpid()
        with self._getting_lock:
            shared = self._getting.get(key)
            if shared is not None:
                return shared, False
            shared = self._getting[key] = SharedGet()
            return shared, True

    @abstractmethod
    def run(self, steps: Steps[T]) -> T:
        """(The shared body's, generated from aio.py.)"""

    @abstractmethod
    def perform(self, op: Op, stepper: Stepper[Any]) -> Any:
        """(The shared body's, generated from aio.py.)"""

    def _hold(self, held: Held) -> Keeper:
        return self.watchdog.hold(held)

    def _let_go(self, keeper: Keeper) -> None:
        self.watchdog.drop(keeper)

    def _holding(self, held: Held) -> ContextManager[None]:
        return self.watchdog.holding(held)

    def _call(self, op: Load) -> Any:
        return op.fn(*op.call.args, **op.call.kwargs)

    def _info(self) -> Any:
        """The server's INFO server section (a Cluster's default node's)."""
        client = self.redis
        node = client.get_default_node().redis_connection if isinstance(client, RedisCluster) else client
        return node.info("server")

    def _node(self, channel: str) -> tuple[str, Callable[..., Any], dict[str, Any]]:
        """The name of the node that owns the channel's slot, and how the client connects to it."""
        client = self.redis
        if isinstance(client, RedisCluster):
            node = client.get_node_from_key(channel)
            pool = client.get_redis_connection(node).connection_pool
            return node.name, pool.connection_class, pool.connection_kwargs
        return "", client.connection_pool.connection_class, client.connection_pool.connection_kwargs

    def _looking_up(self) -> ContextManager[Any]:
        """The process's threads look subscribers up one at a time. A forked child starts
        afresh: no reader threads, and maybe a lock held by one that is gone."""
        if self._pid != os.getpid():
            self._subscribers, self._subscribers_lock, self._pid = {}, threading.Lock(), os.getpid()
        return self._subscribers_lock
