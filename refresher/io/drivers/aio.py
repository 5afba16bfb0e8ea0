"""The asyncio driver: performs the core's ops with redis.asyncio and tasks, on one
event loop (a Refresher keeps one driver, and one connection pool, per loop)."""

from __future__ import annotations

import asyncio
import inspect
from typing import Any, Awaitable, Callable, TypeVar, cast

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.commands.core import AsyncScript
from redis.exceptions import RedisError

from refresher.core.failures import CacheFailure
from refresher.core.lock import keep_alive
from refresher.core.ops import (
    Batch, CanPublish, Coalesce, Command, Keep, Listen, Load, MGet, Pause, Pipeline, Publish, Script, Steps, Subscribe,
)
from refresher.io.drivers.asubscriber import Subscriber, Subscription
from refresher.io.drivers.base import Driver, for_server, lost_scripts, sharded_pubsub
from refresher.io.drivers.board import pubsub_kwargs
from refresher.io.drivers.stepping import Stepper
from refresher.io.drivers.sync import SyncDriver

T = TypeVar("T")


class _ReadAgain:
    """The reader whose GET the others shared was cancelled before the reply."""


class AsyncDriver(Driver):
    def __init__(self, redis: Redis | RedisCluster, sync: SyncDriver) -> None:
        super().__init__(sync.flights, sync.publisher, sync.socket_timeout, sync.breaker)
        self.redis = redis
        self.sync = sync  # undoes a failed publish from the publisher's thread
        self.tracker = sync.tracker
        self._scripts: dict[str, AsyncScript] = {}
        self._reading: dict[str, asyncio.Future[bytes | None | CacheFailure | _ReadAgain]] = {}
        self._perform: dict[type, Callable[[Any, Stepper[Any]], Awaitable[Any]]] = {
            Command: self._command, Batch: self._batch, Pipeline: self._pipeline, MGet: self._mget, Script: self._script,
            Subscribe: self._subscribe, Listen: self._listen, Keep: self._keep, Load: self._load, Pause: self._pause,
            Coalesce: self._coalesce, Publish: self._publish, CanPublish: self._can_publish,
        }
        self._subscribers: dict[str, Subscriber] = {}  # by node: see board.py

    async def get(self, key: str) -> bytes | None | CacheFailure:
        """A hit's one GET, outside any step. Concurrent reads of one key on this loop
        share the GET in flight (as cashews' early mode does): a hot key costs Redis one
        GET per round trip, not one per reader, and the loop one reply to parse. An
        unreachable cache comes back as its error."""
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

    async def run(self, steps: Steps[T]) -> T:
        stepper = Stepper(steps, self.tracker)
        try:
            for op in stepper:
                try:
                    stepper.reply = await self._perform[type(op)](op, stepper)
                except BaseException as exc:  # cancellation too: the step frees what it holds
                    stepper.error = exc
            return stepper.value
        finally:
            for subscription in stepper.opened.values():
                await subscription.close()
            for watchdog in stepper.kept.values():
                watchdog.cancel()

    async def _command(self, op: Command, _: Stepper[Any]) -> Any:
        return await self.redis.execute_command(*op.args)

    async def _batch(self, op: Batch, _: Stepper[Any]) -> list[Any]:
        async with self.redis.pipeline(transaction=False) as pipe:
            for command in op.commands:
                pipe.execute_command(*command)
            return await pipe.execute()

    async def _pipeline(self, op: Pipeline, _: Stepper[Any]) -> list[Any]:
        """As the sync driver's: EVALSHA, and scripts lost to NOSCRIPT loaded and sent again."""
        replies = await self._send(op.ops)
        if lost := lost_scripts(op.ops, replies):
            for source in {script.source for script in lost.values()}:
                await self.redis.script_load(self._registered(source).script)
            for i, reply in zip(lost, await self._send(tuple(lost.values()))):
                replies[i] = reply
        return replies

    async def _send(self, ops: tuple[Command | Script, ...]) -> list[Any]:
        await self._sharded()
        async with self.redis.pipeline(transaction=False) as pipe:
            for o in ops:
                if isinstance(o, Command):
                    pipe.execute_command(*o.args)
                else:
                    pipe.execute_command("EVALSHA", self._registered(o.source).sha, len(o.keys), *o.keys, *o.args)
            return await pipe.execute(raise_on_error=False)

    async def _mget(self, op: MGet, _: Stepper[Any]) -> list[bytes | None]:
        if isinstance(self.redis, RedisCluster):
            return cast(list[bytes | None], await self.redis.mget_nonatomic(op.keys))  # grouped by slot, pipelined per node
        return cast(list[bytes | None], await self.redis.mget(op.keys))

    async def _script(self, op: Script, _: Stepper[Any]) -> Any:
        await self._sharded()
        return await self._registered(op.source)(keys=op.keys, args=op.args)

    def _registered(self, source: str) -> AsyncScript:
        """(After `_sharded()` has been awaited.)"""
        script = self._scripts.get(source)
        if script is None:
            script = self._scripts[source] = self.redis.register_script(for_server(source, self.sharded is not False))
        return script

    async def _sharded(self) -> bool:
        """As the sync driver's, awaited."""
        if self.sharded is None:
            try:
                info: dict[str, Any] | Exception
                if isinstance(self.redis, RedisCluster):
                    await self.redis.initialize()
                    info = await self.redis.execute_command("INFO", "server", target_nodes=self.redis.get_default_node())
                else:
                    info = await self.redis.info("server")
            except RedisError as exc:
                info = exc
            self.sharded = sharded_pubsub(info, isinstance(self.redis, RedisCluster))
        return self.sharded

    async def _subscribe(self, op: Subscribe, stepper: Stepper[Any]) -> Subscription:
        """As the sync driver's: one subscription per channel for the whole step."""
        subscription = stepper.opened.get(op.channel)
        if subscription is None:
            subscription = stepper.opened[op.channel] = await (await self._subscriber(op.channel)).subscribe(op.channel)
        return subscription

    async def _subscriber(self, channel: str) -> Subscriber:
        """The shared subscriber of the node that owns the channel's slot, with connections
        made like the client's but outside its pool."""
        make: Callable[..., Any]
        if isinstance(self.redis, RedisCluster):
            await self.redis.initialize()
            node = self.redis.get_node_from_key(channel)
            assert node is not None, "initialize() maps every slot"
            name, make, kwargs = node.name, node.connection_class, node.connection_kwargs
        else:
            pool = self.redis.connection_pool
            name, make, kwargs = "", pool.connection_class, pool.connection_kwargs
        subscriber = self._subscribers.get(name)
        if subscriber is None:
            settings = pubsub_kwargs(kwargs)
            subscriber = self._subscribers[name] = Subscriber(lambda: make(**settings), self.socket_timeout,
                                                              sharded=await self._sharded())
        return subscriber

    async def _listen(self, op: Listen, _: Stepper[Any]) -> bytes | None:
        return await op.subscription.listen(op.timeout)

    async def _keep(self, op: Keep, stepper: Stepper[Any]) -> None:
        if op.held not in stepper.kept:
            stepper.kept[op.held] = asyncio.create_task(self.run(keep_alive(op.held)))

    async def _load(self, op: Load, stepper: Stepper[Any]) -> Any:
        args, kwargs = op.call.args, op.call.kwargs
        if inspect.iscoroutinefunction(op.fn):
            work = op.fn(*args, **kwargs)
        else:  # a sync loader read from asyncio: its origin call must not block the loop
            work = asyncio.to_thread(op.fn, *args, **kwargs)
        if op.held is None or op.held in stepper.kept:
            return await work
        watchdog = asyncio.create_task(self.run(keep_alive(op.held)))
        try:
            return await work
        finally:
            watchdog.cancel()

    async def _pause(self, op: Pause, _: Stepper[Any]) -> bool:
        await asyncio.sleep(op.seconds)
        return False

    async def _coalesce(self, op: Coalesce, _: Stepper[Any]) -> tuple[Any, bool]:
        return await self.flights.ado(op.key, lambda: self.run(op.steps()))

    async def _can_publish(self, op: CanPublish, _: Stepper[Any]) -> float | None:
        return self.can_publish()

    async def _publish(self, op: Publish, _: Stepper[Any]) -> bool:
        return self.publish(op, self.sync)
