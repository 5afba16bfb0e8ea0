"""Where the cache lives: one URL for a single Redis, a Redis Cluster or a Sentinel-managed
master, turned into a redis-py client and a redis.asyncio one.

    redis://host:port/db, rediss://..., unix://...   one Redis (redis-py's own URL forms)
    redis+cluster://[user:pass@]host:port[,host:port...]   a Redis Cluster, by seed nodes
    redis+sentinel://[user:pass@]host:port[,host:port...]/SERVICE[/DB]   Sentinel's master
    rediss+cluster://..., rediss+sentinel://...       the same over TLS

A bad URL fails here, at start-up, with a message that names the problem.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

import redis.asyncio
import redis.asyncio.cluster
import redis.asyncio.sentinel
import redis.cluster
import redis.sentinel
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.connection import ConnectionPool
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.retry import Retry

from refresher.io import lean, pools
from refresher.io.breaker import Breaker, Breakers, Masters

SyncClient = redis.Redis | redis.cluster.RedisCluster
AsyncClient = redis.asyncio.Redis | redis.asyncio.cluster.RedisCluster
PLAIN = ("redis", "rediss", "unix")
DEFAULT_REDIS_URL = "redis://localhost:6379/0"  # the cache, and the broker, when no URL is given


@dataclass(frozen=True)
class Target:
    url: str
    kind: str  # "redis", "cluster" or "sentinel"
    tls: bool = False
    nodes: tuple[tuple[str, int], ...] = ()
    service: str = ""
    db: int = 0
    username: str | None = None
    password: str | None = None

    @property
    def cluster(self) -> bool:
        return self.kind == "cluster"


def parse(url: str) -> Target:
    """The URL's parts, or a ValueError naming what is wrong (never its password)."""
    try:
        return _parse(url)
    except ValueError as exc:
        raise ValueError(f"cache URL {masked(url)!r}: {exc}") from None


def masked(url: str) -> str:
    """The URL with its passwords (in the user info, and `password=` or
    `sentinel_password=` query parameters, as redis-py and kombu accept them) replaced by
    ***, for messages and logs."""
    scheme, sep, rest = url.partition("://")
    userinfo, at, hosts = rest.rpartition("@")
    user, colon, _ = userinfo.partition(":")
    url = f"{scheme}{sep}{user}:***@{hosts}" if at and colon else url
    return re.sub(r"([?&;](?:sentinel_)?password=)[^&;#]*", r"\1***", url, flags=re.IGNORECASE)


def _parse(url: str) -> Target:
    scheme, sep, rest = url.partition("://")
    if not sep or not rest:
        raise ValueError("not a URL: expected e.g. redis://localhost:6379/0")
    if scheme in PLAIN:
        redis.connection.parse_url(url)  # redis-py's own check
        return Target(url, "redis")
    base, plus, kind = scheme.partition("+")
    if not plus or base not in ("redis", "rediss") or kind not in ("cluster", "sentinel"):
        raise ValueError(
            f"unknown scheme {scheme!r}: use redis://, rediss://, unix://, "
            "redis+cluster://, rediss+cluster://, redis+sentinel:// or rediss+sentinel://"
        )
    userinfo, at, hosts_and_path = rest.rpartition("@")
    username, password = _credentials(userinfo) if at else (None, None)
    hosts, _, path = hosts_and_path.partition("/")
    nodes = tuple(_node(part) for part in hosts.split(","))
    parts = [p for p in path.split("/") if p]
    if kind == "cluster":
        if parts:
            raise ValueError("a Redis Cluster has no databases, so no path after the nodes")
        return Target(url, kind, base == "rediss", nodes, username=username, password=password)
    if not parts or len(parts) > 2:
        raise ValueError("a Sentinel URL needs /SERVICE_NAME[/DB] after the sentinels")
    if len(parts) == 2 and not parts[1].isdigit():
        raise ValueError(f"the database {parts[1]!r} is not a number")
    db = int(parts[1]) if len(parts) == 2 else 0
    return Target(url, kind, base == "rediss", nodes, unquote(parts[0]), db, username, password)


def _credentials(userinfo: str) -> tuple[str | None, str | None]:
    user, colon, password = userinfo.partition(":")
    return (unquote(user) or None, unquote(password) if colon else None)


def _node(part: str) -> tuple[str, int]:
    host, colon, port = part.rpartition(":")
    if not colon or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{part!r} is not host:port")
    return host.strip("[]"), int(port)


def _options(target: Target, timeout: float, retry: type[Any]) -> dict[str, Any]:
    # One retry, on connection errors only: it replaces a pooled connection that a Redis
    # restart broke, while a timeout is never paid twice.
    # RESP2 on every redis-py: 8 speaks RESP3 by default, where a subscription's replies
    # arrive as push messages that the waiters' raw SSUBSCRIBE reads would never see.
    options: dict[str, Any] = {
        "protocol": 2,
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout,
        "retry": retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
    }
    if target.kind != "redis":
        options.update(username=target.username, password=target.password, ssl=target.tls)
    return options


def sync_client(target: Target, timeout: float, max_connections: int | None = None) -> SyncClient:
    """`max_connections`: the data pool's bound per master, a wait of `timeout` for a free
    connection past it (io/pools.py); None: redis-py's unbounded pools."""
    options = _options(target, timeout, Retry)
    bounded = max_connections is not None
    connection_class = lean.connection_class(target.kind, target.url, target.tls)
    if connection_class is not None:
        options["connection_class"] = connection_class
    if bounded:
        options["max_connections"] = max_connections
    if target.kind == "redis":  # Redis.from_url, with the pool lean.py picks
        pool = lean.pool_class(connection_class, bounded)
        pool = pools.waiting(pool, timeout) if bounded else pool
        client = redis.Redis(connection_pool=pool.from_url(target.url, **options))
        client.auto_close_connection_pool = True
        return client
    if target.kind == "cluster":
        nodes = [redis.cluster.ClusterNode(host, port) for host, port in target.nodes]
        if bounded:  # redis-py before 8 makes the nodes' pools of connection_pool_class for a client made from a URL only
            options.update(connection_pool_class=pools.waiting(redis.BlockingConnectionPool, timeout), url=pools.seed_url(target))
            del options["ssl"]  # the URL's scheme says it
        return redis.cluster.RedisCluster(startup_nodes=nodes, **options)
    sentinel = redis.sentinel.Sentinel(list(target.nodes), sentinel_kwargs=_sentinel_options(options), **options)
    if bounded:
        return sentinel.master_for(target.service, db=target.db, connection_pool_class=pools.BlockingSentinelPool, timeout=timeout)
    return sentinel.master_for(target.service, db=target.db)


def async_client(target: Target, timeout: float, max_connections: int | None = None) -> AsyncClient:
    """As sync_client, for redis.asyncio (whose Cluster nodes cannot wait: pools.BoundedCluster)."""
    options = _options(target, timeout, AsyncRetry)
    bounded = max_connections is not None
    if bounded:
        options["max_connections"] = max_connections
    if target.kind == "redis":
        if bounded:
            return redis.asyncio.Redis.from_pool(pools.AsyncWaits.from_url(target.url, timeout=timeout, **options))
        return redis.asyncio.Redis.from_url(target.url, **options)
    if target.kind == "cluster":
        nodes = [redis.asyncio.cluster.ClusterNode(host, port) for host, port in target.nodes]
        if bounded:
            return pools.BoundedCluster(startup_nodes=nodes, permit_timeout=timeout, **options)
        return redis.asyncio.cluster.RedisCluster(startup_nodes=nodes, **options)
    sentinel = redis.asyncio.sentinel.Sentinel(list(target.nodes), sentinel_kwargs=_sentinel_options(options), **options)
    if bounded:
        return sentinel.master_for(target.service, db=target.db, connection_pool_class=pools.AsyncBlockingSentinelPool, timeout=timeout)
    return sentinel.master_for(target.service, db=target.db)


def _sentinel_options(options: dict[str, Any]) -> dict[str, Any]:
    """Sentinels take the timeouts and TLS, not the data nodes' credentials or connections."""
    return {k: v for k, v in options.items() if k not in ("username", "password", "connection_class", "max_connections")}


def tracking_pools(client: SyncClient) -> list[ConnectionPool]:
    """A connection pool per master, for the near cache's tracking connections."""
    if isinstance(client, redis.cluster.RedisCluster):
        return [client.get_redis_connection(node).connection_pool for node in client.get_primaries()]
    return [client.connection_pool]


def cache_breaker(client: SyncClient, cooldown: float) -> Breakers:
    """The cache Redis's breaker: on a Cluster one per master, so that one master's outage
    stops the reads of its keys only."""
    if not isinstance(client, redis.cluster.RedisCluster):
        return Breaker(cooldown)

    def where(key: str) -> str:
        try:
            return str(client.get_node_from_key(key).name)
        except RedisError:  # a slot no master covers (the slot map is being refreshed)
            return "?"

    return Masters(cooldown, where)
