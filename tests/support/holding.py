"""Holding every data connection a Refresher's bounded pools allow (`max_connections=1`), as
busy readers elsewhere would, so that the next read finds its pool exhausted.

Sync: one connection taken from each master's pool. asyncio: from the loop's pool on one
Redis; on a Cluster, the client's one turn (pools.BoundedCluster), held by a task of its own.
"""

from __future__ import annotations

import asyncio
import inspect
from typing import Any, Awaitable, Callable

import redis
import redis.asyncio
from redis.cluster import RedisCluster

from refresher import Refresher
from refresher.io.drivers import loop
from refresher.io.pools import BoundedCluster


def _taking(pool: Any) -> Callable[[], Any]:
    """The pool's get_connection, named as this redis-py wants it (5.x: a command name)."""
    base = redis.asyncio.ConnectionPool if isinstance(pool, redis.asyncio.ConnectionPool) else redis.ConnectionPool
    named = inspect.signature(base.get_connection).parameters["command_name"].default is inspect.Parameter.empty
    return (lambda: pool.get_connection("GET")) if named else pool.get_connection  # type: ignore[no-any-return]


def hold_sync(cache: Refresher) -> Callable[[], None]:
    """Take a connection from each master's pool; the callable gives them back."""
    client = cache.redis
    if isinstance(client, RedisCluster):
        pools = [client.get_redis_connection(node).connection_pool for node in client.get_primaries()]
    else:
        pools = [client.connection_pool]
    held = [(pool, _taking(pool)()) for pool in pools]

    def give_back() -> None:
        for pool, connection in held:
            pool.release(connection)

    return give_back


def hold_async(cache: Refresher) -> Callable[[], None]:
    """The same on the process's event loop (where the async reads run)."""

    async def hold() -> Callable[[], Awaitable[None]]:
        client = cache.aio().redis
        if isinstance(client, BoundedCluster):
            holding, done = asyncio.Event(), asyncio.Event()

            async def keep_the_turn() -> None:
                async with client.permit():
                    holding.set()
                    await done.wait()

            task = asyncio.ensure_future(keep_the_turn())
            await holding.wait()

            async def end_the_turn() -> None:
                done.set()
                await task

            return end_the_turn
        pool = client.connection_pool
        connection = await _taking(pool)()

        async def give_back() -> None:
            await pool.release(connection)

        return give_back

    give_back = loop.run(hold)
    return lambda: loop.run(give_back)
