"""The driver's one body, written for asyncio: it performs the core's ops and decides
nothing. scripts/unasync.py generates sync.py (redis-py, in the caller's thread) from it,
and `make test` fails when that copy is stale: a fix made here is made for both.

What differs between the two is not here but in their bases: tasks.py (asyncio: a shared
GET in flight per key, keep-alive tasks, sync loaders in a thread) and threads.py (threads:
the publisher started at the first read, the lock watchdog, the fork check)."""

from __future__ import annotations

import asyncio
from functools import cached_property
from typing import Any, Awaitable, Callable, TypeVar, cast

from redis.asyncio.cluster import RedisCluster
from redis.commands.core import AsyncScript as LuaScript
from redis.exceptions import RedisError

from refresher.core.ops import (
    Batch, CanPublish, Coalesce, Command, Follow, Keep, Listen, Load, MGet, Op, Pause, Pipeline, Publish, Script, Steps,
    Subscribe,
)
from refresher.io.drivers.asubscriber import Subscriber, Subscription
from refresher.io.drivers.base import for_server, lost_scripts, sharded_pubsub
from refresher.io.drivers.board import pubsub_kwargs
from refresher.io.drivers.stepping import Stepper
from refresher.io.drivers.tasks import Tasks

T = TypeVar("T")


class AsyncDriver(Tasks):
    async def run(self, steps: Steps[T], *, in_flight: bool = False) -> T:
        stepper = Stepper(steps, self.tracker, in_flight=in_flight)
        try:
            for op in stepper:
                try:
                    stepper.reply = await self._perform[type(op)](op, stepper)
                except BaseException as exc:  # cancellation too: the step decides what it means, and frees what it holds
                    stepper.error = exc
            return stepper.value
        finally:
            for subscription in stepper.opened.values():
                await subscription.close()
            for keeper in stepper.kept.values():
                self._let_go(keeper)

    async def perform(self, op: Op, stepper: Stepper[Any]) -> Any:
        """One op of `stepper`'s step (the lock watchdog's way in)."""
        return await self._perform[type(op)](op, stepper)

    @cached_property
    def _perform(self) -> dict[type, Callable[[Any, Stepper[Any]], Awaitable[Any]]]:
        """Each op's performer, by the op's type (made once per driver)."""
        return {
            Command: self._command, Batch: self._batch, Pipeline: self._pipeline, MGet: self._mget, Script: self._script,
            Subscribe: self._subscribe, Listen: self._listen, Keep: self._keep, Load: self._load, Pause: self._pause,
            Coalesce: self._coalesce, Follow: self._follow, Publish: self._publish, CanPublish: self._can_publish,
        }

    async def _command(self, op: Command, _: Stepper[Any]) -> Any:
        return await self.redis.execute_command(*op.args)

    async def _batch(self, op: Batch, _: Stepper[Any]) -> list[Any]:
        async with self.redis.pipeline(transaction=False) as pipe:
            for command in op.commands:
                pipe.execute_command(*command)
            return await pipe.execute()

    async def _pipeline(self, op: Pipeline, _: Stepper[Any]) -> list[Any]:
        """Scripts go as EVALSHA; any the server has lost (NOSCRIPT, which runs nothing)
        are loaded and sent again."""
        replies = await self._send(op.ops)
        if lost := lost_scripts(op.ops, replies):
            for source in {script.source for script in lost.values()}:
                script = await self._registered(source)
                await self.redis.script_load(script.script)
            for i, reply in zip(lost, await self._send(tuple(lost.values()))):
                replies[i] = reply
        return replies

    async def _send(self, ops: tuple[Command | Script, ...]) -> list[Any]:
        async with self.redis.pipeline(transaction=False) as pipe:
            for o in ops:
                if isinstance(o, Command):
                    pipe.execute_command(*o.args)
                else:
                    script = await self._registered(o.source)
                    pipe.execute_command("EVALSHA", script.sha, len(o.keys), *o.keys, *o.args)
            return await pipe.execute(raise_on_error=False)

    async def _mget(self, op: MGet, _: Stepper[Any]) -> list[bytes | None]:
        if isinstance(self.redis, RedisCluster):
            return cast(list[bytes | None], await self.redis.mget_nonatomic(op.keys))  # grouped by slot, pipelined per node
        return cast(list[bytes | None], await self.redis.mget(op.keys))

    async def _script(self, op: Script, _: Stepper[Any]) -> Any:
        script = await self._registered(op.source)
        return await script(keys=op.keys, args=op.args)

    async def _registered(self, source: str) -> LuaScript:
        script = self._scripts.get(source)
        if script is None:
            script = self._scripts[source] = self.redis.register_script(for_server(source, await self._sharded()))
        return script

    async def _sharded(self) -> bool:
        """Whether the server has sharded pub/sub (asked once, at the first script or wait)."""
        if self.sharded is None:
            try:
                info: dict[str, Any] | Exception = await self._info()
            except RedisError as exc:
                info = exc
            self.sharded = sharded_pubsub(info, isinstance(self.redis, RedisCluster))
        return self.sharded

    async def _subscribe(self, op: Subscribe, stepper: Stepper[Any]) -> Subscription:
        """The step's subscription to the channel: one for the whole wait, however many
        times it goes back to the lock (a Retry) before the value comes."""
        subscription = stepper.opened.get(op.channel)
        if subscription is None:
            subscriber = await self._subscriber(op.channel)
            subscription = stepper.opened[op.channel] = await subscriber.subscribe(op.channel)
        return subscription

    async def _subscriber(self, channel: str) -> Subscriber:
        """The shared subscriber of the node that owns the channel's slot (SSUBSCRIBE must
        go there on a Redis Cluster), with connections made like the client's but outside its pool."""
        name, make, kwargs = await self._node(channel)
        async with self._looking_up():
            subscriber = self._subscribers.get(name)
            if subscriber is None:
                settings = pubsub_kwargs(kwargs)
                subscriber = self._subscribers[name] = Subscriber(
                    lambda: make(**settings), self.socket_timeout, sharded=await self._sharded())
            return subscriber

    async def _listen(self, op: Listen, _: Stepper[Any]) -> bytes | None:
        return await op.subscription.listen(op.timeout)

    async def _keep(self, op: Keep, stepper: Stepper[Any]) -> None:
        if op.held not in stepper.kept:
            stepper.kept[op.held] = self._hold(op.held)

    async def _load(self, op: Load, stepper: Stepper[Any]) -> Any:
        if op.held is None or op.held in stepper.kept:
            return await self._call(op)
        async with self._holding(op.held):
            return await self._call(op)

    async def _pause(self, op: Pause, _: Stepper[Any]) -> bool:
        await asyncio.sleep(op.seconds)
        return False

    async def _coalesce(self, op: Coalesce, _: Stepper[Any]) -> tuple[Any, bool]:
        return await self.flights.ado(op.key, lambda: self.run(op.steps(), in_flight=True), followed=op.followed)

    async def _follow(self, op: Follow, _: Stepper[Any]) -> tuple[bool, Any]:
        return await self.flights.afollow(op.key)

    async def _can_publish(self, op: CanPublish, _: Stepper[Any]) -> float | None:
        return self.can_publish()

    async def _publish(self, op: Publish, _: Stepper[Any]) -> bool:
        return self.publish(op, self.sync)
