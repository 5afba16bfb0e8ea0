"""A loader on a client the user built with a pool of 8 connections (REFRESHER_TEST_POOL:
"plain" ConnectionPool or "blocking" BlockingConnectionPool), for the connection-budget tests.

`walk` is what each reader thread (or task) calls once: it reads its own run of keys, one
after another, the same run in every process. A 200 ms loader keeps the processes in step:
for each key one process loads and the others wait on it, so every key is a cross-process
wait in every process but one.
"""

from __future__ import annotations

import itertools
import os
import time
from typing import Any

import redis
from redis.cluster import ClusterNode, RedisCluster

from refresher import Refresher
from refresher.io.connect import parse

MAX_CONNECTIONS = 8
KEYS_PER_READER = 10


def _user_client() -> redis.Redis | RedisCluster:
    pool_class = redis.BlockingConnectionPool if os.environ.get("REFRESHER_TEST_POOL") == "blocking" else redis.ConnectionPool
    target = parse(os.environ["REFRESHER_REDIS_URL"])
    if target.cluster:
        return RedisCluster(startup_nodes=[ClusterNode(host, port) for host, port in target.nodes],
                            max_connections=MAX_CONNECTIONS, connection_pool_class=pool_class)
    return redis.Redis(connection_pool=pool_class.from_url(target.url, max_connections=MAX_CONNECTIONS))


cache = Refresher(redis=_user_client(), namespace="budget")


@cache.loader(ttl=60, lock_ttl=5, name="tests.budget.slow")  # never lost to a late watchdog on a busy machine
def slow(reader: int, step: int) -> list[int]:
    time.sleep(0.2)
    return [reader, step]


_readers = itertools.count()


class _Reporting:
    """The Refresher, whose stats snapshot also says what this process holds open."""

    stats = property(lambda self: self)

    def __getattr__(self, name: str) -> Any:
        return getattr(cache, name)

    def snapshot(self) -> dict[str, int]:
        return {**cache.stats.snapshot(), **footprint()}


class Walk:
    """`run_readers`' loader: get/aget read this reader's run of keys; its `cache` reports
    the Refresher's stats and the process's connections."""

    cache = _Reporting()

    def get(self) -> int:
        reader = next(_readers)
        for step in range(KEYS_PER_READER):
            assert slow.get(reader, step) == [reader, step]
        return KEYS_PER_READER

    async def aget(self) -> int:
        reader = next(_readers)
        for step in range(KEYS_PER_READER):
            assert await slow.aget(reader, step) == [reader, step]
        return KEYS_PER_READER


walk = Walk()


def pools(client: redis.Redis | RedisCluster) -> list[Any]:
    if isinstance(client, RedisCluster):
        return [node.redis_connection.connection_pool for node in client.get_nodes() if node.redis_connection]
    return [client.connection_pool]


def connections_made(pool: Any) -> int:
    """How many connections the pool has made and counts (redis-py keeps the figure private)."""
    if isinstance(pool, redis.BlockingConnectionPool):
        return len([c for c in pool._connections if c is not None])  # noqa: SLF001
    return int(pool._created_connections)  # noqa: SLF001


def sockets_to(ports: set[int]) -> int:
    """This process's TCP connections to these loopback ports (Linux /proc)."""
    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    count = 0
    with open("/proc/self/net/tcp") as table:
        for line in itertools.islice(table, 1, None):
            fields = line.split()
            if int(fields[2].split(":")[1], 16) in ports and fields[3] == "01" and fields[9] in inodes:
                count += 1
    return count


def budget(masters: int) -> int:
    """What a process may hold open once its reads are over (docs/connections.md): a data
    pool and a tracking connection (which carries the PINGs too) per master, and (on one
    Redis, the broker too) the publisher's two (kombu's Redis transport keeps a connection
    and its channel's)."""
    return masters * (MAX_CONNECTIONS + 1) + 2 * (masters == 1)


def footprint() -> dict[str, int]:
    """Once every read of this process is over: the most connections one of the user's
    pools made, and the sockets left open to the cache (the last waits' pub/sub
    connection closes as the server confirms its SUNSUBSCRIBE: given up to 2 s)."""
    client = cache.redis
    ports = {int(pool.connection_kwargs["port"]) for pool in pools(client)}
    masters = len(client.get_primaries()) if isinstance(client, RedisCluster) else 1
    deadline = time.monotonic() + 2
    while (sockets := sockets_to(ports)) > budget(masters) and time.monotonic() < deadline:
        time.sleep(0.01)
    return {"most_made_by_one_pool": max(connections_made(pool) for pool in pools(client)),
            "sockets": sockets, "budget": budget(masters)}


@cache.loader(ttl=60, lock_ttl=0.33, name="tests.budget.long")
def long(n: int) -> int:
    """A 2 s load under a 0.33 s lock: its waiters go back to the lock five times. It says
    when it starts, and again near its end (when those waiters have retried)."""
    control = redis.Redis.from_url(os.environ["REFRESHER_TEST_CONTROL_URL"])
    control.rpush("test:budget:entered", n)
    time.sleep(1.7)
    control.rpush("test:budget:late", n)
    time.sleep(0.3)
    return n


def load_long(n: int) -> None:
    """A process of its own that loads `long(n)` (spawned by the test)."""
    long.get(n)
