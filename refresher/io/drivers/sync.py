"""The sync driver: performs the core's ops with redis-py, in the caller's thread."""

from __future__ import annotations

import os
import threading
from typing import Any, Callable, TypeVar, cast

from redis import Redis
from redis.cluster import RedisCluster
from redis.commands.core import Script as RedisScript
from redis.exceptions import RedisError

from refresher.core.failures import CacheFailure
from refresher.core.ops import (
    Batch, CanPublish, Coalesce, Command, Keep, Listen, Load, MGet, Pipeline, Publish, Script, Steps, Subscribe,
)
from refresher.io.drivers.base import Driver, for_server, lost_scripts, sharded_pubsub
from refresher.io.drivers.board import pubsub_kwargs
from refresher.io.drivers.stepping import Stepper
from refresher.io.drivers.subscriber import Subscriber, Subscription
from refresher.io.drivers.watchdog import Watchdog
from refresher.io.breaker import Breakers
from refresher.io.publish import Publisher
from refresher.io.singleflight import Group

T = TypeVar("T")


class SyncDriver(Driver):
    def __init__(self, redis: Redis | RedisCluster, flights: Group[Any], publisher: Publisher, socket_timeout: float,
                 breaker: Breakers) -> None:
        super().__init__(flights, publisher, socket_timeout, breaker)
        self.redis = redis
        self._scripts: dict[str, RedisScript] = {}
        self._perform: dict[type, Callable[[Any, Stepper[Any]], Any]] = {
            Command: self._command, Batch: self._batch, Pipeline: self._pipeline, MGet: self._mget, Script: self._script,
            Subscribe: self._subscribe, Listen: self._listen, Keep: self._keep, Load: self._load,
            Coalesce: self._coalesce, Publish: self._publish, CanPublish: lambda op, _: self.can_publish(),
        }
        self.watchdog = Watchdog(lambda op, stepper: self._perform[type(op)](op, stepper))
        self._subscribers: dict[str, Subscriber] = {}  # by node: see board.py
        self._subscribers_lock = threading.Lock()
        self._pid = os.getpid()

    def get(self, key: str) -> bytes | None | CacheFailure:
        """A hit's one GET, outside any step (a generator per hit would cost more than
        the read decision itself); an unreachable cache comes back as its error."""
        if not self.publisher.started:
            self.publisher.start()
        try:
            raw: bytes | None = self.redis.get(key)  # type: ignore[assignment]  # redis-py types a reply as sync | Awaitable
        except RedisError as exc:  # as the core's failure (io/failures.py)
            return self.read(self.failed(exc, key))
        if self.breaker.open:  # this GET was the probe: the cache answers again
            self.breaker.of(key).succeeded()
        return self.read(raw)

    def run(self, steps: Steps[T]) -> T:
        stepper = Stepper(steps, self.tracker)
        try:
            for op in stepper:
                try:
                    stepper.reply = self._perform[type(op)](op, stepper)
                except BaseException as exc:  # the step decides what it means
                    stepper.error = exc
            return stepper.value
        finally:
            for subscription in stepper.opened.values():
                subscription.close()
            for lease in stepper.kept.values():
                self.watchdog.drop(lease)

    def _command(self, op: Command, _: Stepper[Any]) -> Any:
        return self.redis.execute_command(*op.args)

    def _batch(self, op: Batch, _: Stepper[Any]) -> list[Any]:
        with self.redis.pipeline(transaction=False) as pipe:
            for command in op.commands:
                pipe.execute_command(*command)
            return pipe.execute()

    def _pipeline(self, op: Pipeline, _: Stepper[Any]) -> list[Any]:
        """Scripts go as EVALSHA; any the server has lost (NOSCRIPT, which runs nothing)
        are loaded and sent again."""
        replies = self._send(op.ops)
        if lost := lost_scripts(op.ops, replies):
            for source in {script.source for script in lost.values()}:
                self.redis.script_load(self._registered(source).script)
            for i, reply in zip(lost, self._send(tuple(lost.values()))):
                replies[i] = reply
        return replies

    def _send(self, ops: tuple[Command | Script, ...]) -> list[Any]:
        with self.redis.pipeline(transaction=False) as pipe:
            for o in ops:
                if isinstance(o, Command):
                    pipe.execute_command(*o.args)
                else:
                    pipe.execute_command("EVALSHA", self._registered(o.source).sha, len(o.keys), *o.keys, *o.args)
            return pipe.execute(raise_on_error=False)

    def _mget(self, op: MGet, _: Stepper[Any]) -> list[bytes | None]:
        if isinstance(self.redis, RedisCluster):
            return self.redis.mget_nonatomic(op.keys)  # grouped by slot, pipelined per node
        return self.redis.mget(op.keys)  # type: ignore[return-value]  # redis-py types a reply as sync | Awaitable

    def _script(self, op: Script, _: Stepper[Any]) -> Any:
        return self._registered(op.source)(keys=op.keys, args=op.args)

    def _registered(self, source: str) -> RedisScript:
        script = self._scripts.get(source)
        if script is None:
            script = self._scripts[source] = self.redis.register_script(for_server(source, self._sharded()))
        return script

    def _sharded(self) -> bool:
        """Whether the server has sharded pub/sub (asked once, at the first script or wait)."""
        if self.sharded is None:
            client = self.redis
            node = client.get_default_node().redis_connection if isinstance(client, RedisCluster) else client
            try:
                info: dict[str, Any] | Exception = cast(dict[str, Any], node.info("server"))
            except RedisError as exc:
                info = exc
            self.sharded = sharded_pubsub(info, isinstance(client, RedisCluster))
        return self.sharded

    def _subscribe(self, op: Subscribe, stepper: Stepper[Any]) -> Subscription:
        """The step's subscription to the channel: one for the whole wait, however many
        times it goes back to the lock (a Retry) before the value comes."""
        subscription = stepper.opened.get(op.channel)
        if subscription is None:
            subscription = stepper.opened[op.channel] = self._subscriber(op.channel).subscribe(op.channel)
        return subscription

    def _subscriber(self, channel: str) -> Subscriber:
        """The shared subscriber of the node that owns the channel's slot (SSUBSCRIBE must
        go there on a Redis Cluster), with connections made like the pool's but outside it."""
        client = self.redis
        if isinstance(client, RedisCluster):
            node = client.get_node_from_key(channel)
            name, pool = node.name, client.get_redis_connection(node).connection_pool
        else:
            name, pool = "", client.connection_pool
        if self._pid != os.getpid():  # a forked child: no reader threads, and maybe a lock held by one that is gone
            self._subscribers, self._subscribers_lock, self._pid = {}, threading.Lock(), os.getpid()
        with self._subscribers_lock:
            subscriber = self._subscribers.get(name)
            if subscriber is None:
                kwargs = pubsub_kwargs(pool.connection_kwargs)
                subscriber = self._subscribers[name] = Subscriber(
                    lambda: pool.connection_class(**kwargs), self.socket_timeout, sharded=self._sharded())
            return subscriber

    def _listen(self, op: Listen, _: Stepper[Any]) -> bytes | None:
        return op.subscription.listen(op.timeout)

    def _keep(self, op: Keep, stepper: Stepper[Any]) -> None:
        if op.held not in stepper.kept:
            stepper.kept[op.held] = self.watchdog.hold(op.held)

    def _load(self, op: Load, stepper: Stepper[Any]) -> Any:
        if op.held is None or op.held in stepper.kept:
            return op.fn(*op.call.args, **op.call.kwargs)
        with self.watchdog.holding(op.held):
            return op.fn(*op.call.args, **op.call.kwargs)

    def _coalesce(self, op: Coalesce, _: Stepper[Any]) -> tuple[Any, bool]:
        return self.flights.do(op.key, lambda: self.run(op.steps()))

    def _publish(self, op: Publish, _: Stepper[Any]) -> bool:
        return self.publish(op, self)
