"""What only the asyncio driver does, beside the body it shares with the sync one (aio.py,
from which scripts/unasync.py generates sync.py; threads.py is this module's sync twin):
reads of one key share the GET in flight on the loop, a lock is kept alive by a task, and
a sync loader's origin call runs in a thread."""

from __future__ import annotations

import asyncio
import inspect
from abc import abstractmethod
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from typing import Any, AsyncIterator, Callable, TypeVar, cast

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.commands.core import AsyncScript
from redis.exceptions import RedisError

from refresher.core.failures import CacheFailure
from refresher.core.lock import keep_alive
from refresher.core.ops import Held, Load, Steps
from refresher.io.drivers.asubscriber import Subscriber
from refresher.io.drivers.base import Driver
from refresher.io.drivers.sync import SyncDriver

T = TypeVar("T")

BLOCKING = False  # a read never waits for another read's near copy: that would block the loop

Keeper = asyncio.Task[None]  # what keeps a lock alive until it is let go


class _ReadAgain:
    """The reader whose GET the others shared was cancelled before the reply."""


class Tasks(Driver):
    def __init__(self, redis: Redis | RedisCluster, sync: SyncDriver) -> None:
        super().__init__(sync.flights, sync.publisher, sync.socket_timeout, sync.breaker)
        self.redis = redis
        self.sync = sync  # undoes a failed publish from the publisher's thread
        self.tracker = sync.tracker
        self._scripts: dict[str, AsyncScript] = {}
        self._subscribers: dict[str, Subscriber] = {}  # by node: see board.py
        self._reading: dict[str, asyncio.Future[bytes | None | CacheFailure | _ReadAgain]] = {}

    async def get(self, key: str, alone: bool = False) -> bytes | None | CacheFailure:
        """A hit's one GET, outside any step. Concurrent reads of one key on this loop
        share the GET in flight (as cashews' early mode does): a hot key costs Redis one
        GET per round trip, not one per reader, and the loop one reply to parse; not
        `alone`, which sends its own. An unreachable cache comes back as its error."""
        if alone:
            try:
                return self.read(cast(bytes | None, await self.redis.get(key)))
            except RedisError as exc:
                return self.read(self.failed(exc, key))
        while (shared := self._reading.get(key)) is not None:
            raw = await asyncio.shield(shared)
            if not isinstance(raw, _ReadAgain):
                return self.read(raw)
        future: asyncio.Future[bytes | None | CacheFailure | _ReadAgain] = asyncio.get_running_loop().create_future()
        self._reading[key] = future
        try:
            raw = cast(bytes | None, await self.redis.get(key))  # bytes: the client does not decode
        except RedisError as exc:  # as the core's failure (io/failures.py)
            raw = self.failed(exc, key)
        except BaseException:  # this reader was cancelled: the others read again themselves
            raw = _ReadAgain()
            raise
        finally:
            del self._reading[key]
            future.set_result(raw)
        if self.breaker.open and not isinstance(raw, Exception):  # this GET was the probe
            self.breaker.of(key).succeeded()
        return self.read(raw)

    @abstractmethod
    async def run(self, steps: Steps[T]) -> T:
        """(The shared body's, in aio.py.)"""

    def _hold(self, held: Held) -> Keeper:
        return asyncio.create_task(self.run(keep_alive(held)))

    def _let_go(self, keeper: Keeper) -> None:
        keeper.cancel()

    @asynccontextmanager
    async def _holding(self, held: Held) -> AsyncIterator[None]:
        keeper = self._hold(held)
        try:
            yield
        finally:
            self._let_go(keeper)

    async def _call(self, op: Load) -> Any:
        args, kwargs = op.call.args, op.call.kwargs
        if inspect.iscoroutinefunction(op.fn):
            return await op.fn(*args, **kwargs)
        return await asyncio.to_thread(op.fn, *args, **kwargs)  # a sync loader must not block the loop

    async def _info(self) -> Any:
        """The server's INFO server section (a Cluster's default node's)."""
        if isinstance(self.redis, RedisCluster):
            await self.redis.initialize()
            return await self.redis.execute_command("INFO", "server", target_nodes=self.redis.get_default_node())
        return await self.redis.info("server")

    async def _node(self, channel: str) -> tuple[str, Callable[..., Any], dict[str, Any]]:
        """The name of the node that owns the channel's slot, and how the client connects to it."""
        if isinstance(self.redis, RedisCluster):
            await self.redis.initialize()
            node = self.redis.get_node_from_key(channel)
            assert node is not None, "initialize() maps every slot"
            return node.name, node.connection_class, node.connection_kwargs
        pool = self.redis.connection_pool
        return "", pool.connection_class, pool.connection_kwargs

    def _looking_up(self) -> AbstractAsyncContextManager[None]:
        """One loop's tasks look subscribers up one at a time already."""
        return nullcontext()
