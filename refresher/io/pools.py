"""The data pool's bound, `Refresher(max_connections=N)`: at most N connections per master
for reads, scripts and the lock watchdog (the waits' pub/sub and the tracking connections
are made outside it, docs/connections.md).

A command that finds all N busy waits for one, up to the socket timeout, then fails as
redis-py's MaxConnectionsError (a ConnectionError), which reaches callers as the cache
being unavailable (CacheUnavailable, or with fail_open the loader). redis-py's bounded pools
fail at once instead ("Too many connections"): under a burst of readers, ordinary
concurrency would turn into errors.
"""

from __future__ import annotations

import asyncio
import inspect
import os
from contextlib import asynccontextmanager
from contextvars import ContextVar
from functools import partialmethod
from typing import Any, AsyncIterator

import redis.asyncio
import redis.asyncio.cluster
import redis.asyncio.sentinel
import redis.sentinel
from redis.connection import ConnectionPool, parse_url
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import MaxConnectionsError

ENVIRONMENT = "REFRESHER_MAX_CONNECTIONS"


def checked(value: object, name: str = "max_connections") -> int | None:
    """The bound, or a ValueError naming the option: None (unbounded) or an int >= 1."""
    if value is None:
        return None
    if type(value) is not int or value < 1:
        raise ValueError(f"{name} must be a whole number of connections >= 1 (or None: unbounded), got {value!r}")
    return value


def chosen(given: int | None, url: str, kind: str) -> int | None:
    """The bound: `max_connections=`, else the URL's `?max_connections=` (one Redis only),
    else REFRESHER_MAX_CONNECTIONS; given twice in code and URL it is refused."""
    given = checked(given)
    in_url = checked(parse_url(url).get("max_connections"), "the URL's ?max_connections=") if kind == "redis" else None
    if given is not None and in_url is not None:
        raise ValueError("pass max_connections= or ?max_connections= in the cache URL, not both")
    return given or in_url or from_environment()


def from_environment() -> int | None:
    text = os.environ.get(ENVIRONMENT, "").strip()
    if not text:
        return None
    if not (text.isascii() and text.isdigit()) or int(text) < 1:
        raise ValueError(f"{ENVIRONMENT} must be a whole number of connections >= 1, got {text!r}")
    return int(text)


NO_CONNECTION = "No connection available."  # what redis-py's blocking pools raise when their wait ends


def exhausted(max_connections: int, timeout: float | None) -> MaxConnectionsError:
    """The error of a wait that ended with every connection still busy: MaxConnectionsError,
    which redis-py's Cluster client (6.4 on) takes for the client's own limit, where a plain
    ConnectionError would be a node failing (a slot-map refresh, a wait per retry)."""
    return MaxConnectionsError(f"{NO_CONNECTION[:-1]}: all {max_connections} stayed busy for {timeout} s (max_connections)")


class Waits(redis.BlockingConnectionPool):
    """redis-py's blocking pool, whose ended wait is `exhausted`."""

    def get_connection(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().get_connection(*args, **kwargs)
        except RedisConnectionError as exc:
            if str(exc) != NO_CONNECTION:
                raise
            raise exhausted(self.max_connections, self.timeout) from None


class AsyncWaits(redis.asyncio.BlockingConnectionPool):
    """The same for redis.asyncio."""

    async def get_connection(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return await super().get_connection(*args, **kwargs)
        except RedisConnectionError as exc:
            if str(exc) != NO_CONNECTION:
                raise
            raise exhausted(self.max_connections, self.timeout) from None


def seed_url(target: Any) -> str:
    """A Cluster's first seed node as a URL (TLS in the scheme, credentials kept apart)."""
    host, port = target.nodes[0]
    return f"{'rediss' if target.tls else 'redis'}://{f'[{host}]' if ':' in host else host}:{port}"


def waiting(pool_class: type[ConnectionPool], timeout: float) -> type[ConnectionPool]:
    """`pool_class` (a blocking one) as Waits, waiting `timeout` by default for a free
    connection: a Cluster makes each node's pool from its own settings, which have no place for it."""
    init = partialmethod(pool_class.__init__, timeout=timeout)
    return type(f"Waiting{pool_class.__name__}", (Waits, pool_class), {"__init__": init, "__module__": __name__})


# redis-py 5's blocking pool disconnects all its connections, taking no `inuse_connections`.
_DISCONNECTS_ALL = "inuse_connections" not in inspect.signature(redis.BlockingConnectionPool.disconnect).parameters


class BlockingSentinelPool(redis.sentinel.SentinelConnectionPool, Waits):
    """Sentinel's master pool, waiting for a free connection like the others."""

    def disconnect(self, inuse_connections: bool = True) -> None:
        """Sentinel's pool drops its idle connections when the master moves (at the first
        connection too); on redis-py 5 the idle ones are those in the blocking pool's queue."""
        if not _DISCONNECTS_ALL:
            super().disconnect(inuse_connections)
        elif inuse_connections:
            super().disconnect()
        else:
            for connection in [idle for idle in list(self.pool.queue) if idle is not None]:
                connection.disconnect()


class AsyncBlockingSentinelPool(redis.asyncio.sentinel.SentinelConnectionPool, AsyncWaits):
    """The same for redis.asyncio."""


_holding: ContextVar[bool] = ContextVar("refresher_holding_a_permit", default=False)


class BoundedCluster(redis.asyncio.cluster.RedisCluster):
    """redis.asyncio's Cluster client, whose nodes cannot wait for a connection (past their
    max_connections they fail at once): at most `max_connections` commands and pipelines
    in flight on this client, each waiting for its turn up to `permit_timeout`, so no
    node's pool is ever asked for more. A call made while holding a turn (a pipeline
    retrying a redirected command) does not ask for another."""

    def __init__(self, *args: Any, permit_timeout: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._permits_total = kwargs["max_connections"]
        self._permits = asyncio.Semaphore(self._permits_total)
        self._permit_timeout = permit_timeout

    @asynccontextmanager
    async def permit(self) -> AsyncIterator[None]:
        if _holding.get():
            yield
            return
        try:
            async with asyncio.timeout(self._permit_timeout):
                await self._permits.acquire()
        except TimeoutError:
            raise exhausted(self._permits_total, self._permit_timeout) from None
        token = _holding.set(True)
        try:
            yield
        finally:
            _holding.reset(token)
            self._permits.release()

    async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        async with self.permit():
            return await super().execute_command(*args, **kwargs)

    def pipeline(self, transaction: Any = None, shard_hint: Any = None) -> redis.asyncio.cluster.ClusterPipeline:
        pipe = super().pipeline(transaction, shard_hint)
        execute = pipe.execute

        async def bounded(*args: Any, **kwargs: Any) -> Any:
            async with self.permit():
                return await execute(*args, **kwargs)

        pipe.execute = bounded  # type: ignore[method-assign]  # no subclass: ClusterPipeline is made differently by redis-py 5 and 8
        return pipe
