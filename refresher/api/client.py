"""Refresher: the connections, the defaults, and the `@cache.loader` decorator."""

from __future__ import annotations

import asyncio
import os
import threading
import time
import weakref
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Callable, Coroutine, ParamSpec, Protocol, TypeVar, overload

from refresher.api import registry
from refresher.io.connect import DEFAULT_REDIS_URL, SyncClient, async_client, cache_breaker, parse, sync_client, tracking_pools
from refresher.core.write import bump_epoch
from refresher.io.drivers.aio import AsyncDriver
from refresher.io.drivers.sync import SyncDriver
from refresher.core.epochs import Epochs, check_tag
from refresher.api.loader import Loader
from refresher.core.keys import check_namespace
from refresher.core.near import NearCache
from refresher.core.options import Options
from refresher.io import pools
from refresher.io.jobs import Route
from refresher.io.publish import Publisher
from refresher.io.singleflight import Group
from refresher.core.stats import Stats
from refresher.io.tracking import Tracker

if TYPE_CHECKING:
    from celery import Celery

P = ParamSpec("P")
R = TypeVar("R")


def _near_cache_from_env() -> int:
    """REFRESHER_NEAR_CACHE=10000 turns the near cache on without a code change (0: off)."""
    text = os.environ.get("REFRESHER_NEAR_CACHE", "").strip()
    if not text:
        return 0
    if not text.isdigit():
        raise ValueError(f"REFRESHER_NEAR_CACHE must be a number of entries (0 for off), got {text!r}")
    return int(text)


class Decorator(Protocol):
    """What `@cache.loader(...)` returns: an `async def` loader's handle is typed by the
    value its coroutine returns, so `await load_user.aget(1)` is a User, not a coroutine."""

    @overload
    def __call__(self, fn: Callable[P, Coroutine[Any, Any, R]]) -> Loader[P, R]: ...

    @overload
    def __call__(self, fn: Callable[P, R]) -> Loader[P, R]: ...


class Refresher:
    """One cache: a Redis for values, a Celery broker for refresh tasks, shared defaults.

    URLs come from REFRESHER_REDIS_URL and REFRESHER_BROKER_URL (the broker defaults to
    the cache's URL, for a single Redis); keyword arguments override them. The cache URL
    may name a Redis Cluster or a Sentinel-managed master (see connect.py); `redis=` hands
    over a ready-made redis-py client for the sync path (the async path still connects to
    the URL). `near_cache=N` keeps up to N values (and `near_cache_bytes` of them) in this
    process, dropped as soon as Redis reports a write (near.py). `max_connections=N` bounds the
    data pools it builds (per master; asyncio's per event loop): a command waits up to
    `socket_timeout` for a free connection (io/pools.py). `loader_defaults` are Options
    fields (refresh_window, stale_ttl, fail_open, ...) applied to every loader.

    `celery_app=` publishes through a Celery app the user configured (its broker URL, TLS,
    transport options such as a Sentinel's master_name, and its task_routes), so the app,
    its worker, Flower and the CLI read one configuration; refresher still sends JSON,
    with no result, off the read path (docs/celery.md).
    """

    def __init__(
        self,
        redis_url: str | None = None,
        broker_url: str | None = None,
        *,
        redis: SyncClient | None = None,
        celery_app: Celery | None = None,
        namespace: str | None = None,
        queue: str | None = None,
        socket_timeout: float = 1.0,
        publish_timeout: float = 1.0,
        breaker_cooldown: float = 5.0,
        near_cache: int | None = None,
        near_cache_bytes: int = 64 * 1024 * 1024,
        max_connections: int | None = None,
        **loader_defaults: Any,
    ) -> None:
        self.redis_url = redis_url or os.environ.get("REFRESHER_REDIS_URL") or DEFAULT_REDIS_URL
        self.target = parse(self.redis_url)
        if celery_app is not None and broker_url is not None:
            raise ValueError("pass broker_url or celery_app, not both: the app's broker_url is the broker")
        self.broker_url = (celery_app.conf.broker_url if celery_app is not None else None) or broker_url \
            or os.environ.get("REFRESHER_BROKER_URL") or self._default_broker()
        self.namespace = check_namespace(namespace or os.environ.get("REFRESHER_NAMESPACE") or "refresher")
        self.queue = queue or os.environ.get("REFRESHER_QUEUE") or "refresher"
        self.socket_timeout = socket_timeout
        self.max_connections = pools.chosen(max_connections, self.redis_url, self.target.kind)
        if redis is not None and max_connections is not None:
            raise ValueError("pass max_connections or redis=, not both: the client you built keeps its own pool's limit")
        Options(ttl=1, **loader_defaults)  # a misspelt default fails here, not at the first loader
        self.loader_defaults = loader_defaults
        self.stats = Stats()
        self.redis = redis if redis is not None else sync_client(self.target, socket_timeout, self.max_connections)
        self.publisher = Publisher(self.broker_url, self.queue, publish_timeout, breaker_cooldown, self.stats, celery_app)
        near_cache = near_cache if near_cache is not None else _near_cache_from_env()
        self.epochs = Epochs(self.namespace)
        prefixes = [self.epochs.prefix] + ([f"{self.namespace}:{{"] if near_cache else [])
        self.breaker = cache_breaker(self.redis, breaker_cooldown)  # the cache's (the publisher has its own)
        self.tracker = Tracker(lambda: tracking_pools(self.redis), prefixes, self._written, self._outage, self.breaker)
        self.epochs.tracker = self.tracker
        self.near = NearCache(near_cache, near_cache_bytes, self.tracker) if near_cache else None
        self.stats.near = self.near  # its size and state, for the metrics
        self.sync = SyncDriver(self.redis, Group(), self.publisher, socket_timeout, self.breaker)
        self.sync.tracker = self.tracker  # drained before the core decides
        self._aio: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncDriver] = weakref.WeakKeyDictionary()
        self._aio_lock = threading.Lock()

    def _default_broker(self) -> str:
        if self.target.kind != "redis":
            raise ValueError(
                f"a {self.target.kind} cache needs a separate broker: set REFRESHER_BROKER_URL (or broker_url=) "
                "to a plain Redis or RabbitMQ URL (Celery's Redis transport cannot use a Cluster)"
            )
        return self.redis_url

    def aio(self) -> AsyncDriver:
        """The running event loop's driver: a redis.asyncio pool per loop, so an app with
        several loops (or a test framework with a loop per test) gets working connections."""
        loop = asyncio.get_running_loop()
        driver = self._aio.get(loop)
        if driver is None:
            with self._aio_lock:
                driver = self._aio.get(loop)
                if driver is None:
                    client = async_client(self.target, self.socket_timeout, self.max_connections)
                    driver = self._aio[loop] = AsyncDriver(client, self.sync)
            if not self.publisher.started:
                self.publisher.start()
        return driver

    def loader(
        self, ttl: float | None = None, *, name: str | None = None, **options: Any
    ) -> Decorator:
        """Decorate a slow function so `.get(...)` serves it from the cache.

        `ttl` is in seconds. The name (default "module.qualname") is how workers find the
        loader, so it must be stable across deploys and unique. `queue=` sends its refresh
        tasks to a queue of its own (a worker must consume it: `-Q`).
        """
        if ttl is None:
            raise ValueError("a loader needs a ttl in seconds, e.g. @cache.loader(ttl=300)")
        queue = options.pop("queue", None)
        settings = replace(Options(ttl=ttl, **self.loader_defaults), **options).resolved()

        def decorate(fn: Callable[P, Any]) -> Loader[P, Any]:
            handle: Loader[P, Any] = Loader(self, fn, name or f"{fn.__module__}.{fn.__qualname__}", settings)
            registry.register(handle)
            self.publisher.routes[handle.name] = Route(queue, settings.max_load_ms / 1000)
            return handle

        return decorate

    def invalidate_tag(self, tag: str) -> None:
        """Drop every cached value carrying `tag` (a loader's `tags=`), across loaders, in
        O(1): none is served again, and loads in flight write values already dropped."""
        self.sync.run(bump_epoch(self.epochs.tag_key(check_tag(tag)), hard=True))

    async def ainvalidate_tag(self, tag: str) -> None:
        await self.aio().run(bump_epoch(self.epochs.tag_key(check_tag(tag)), hard=True))

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every refresh asked for so far has been published (or has failed)."""
        return self.publisher.flush(timeout)

    def _written(self, keys: list[bytes] | None) -> None:
        """Redis reported these keys written (None: everything may have been): the
        tracker's pushes, sorted between the epochs and the near cache."""
        epoch_prefix = self.epochs.prefix.encode()
        if keys is None:
            self.epochs.forget(None)
        else:
            self.epochs.forget([key for key in keys if key.startswith(epoch_prefix)])
        if self.near is not None:
            self.near.invalidate(keys)

    def _outage(self) -> None:
        """The tracker found the cache Redis unreachable: the near copies are kept for
        stale_if_down, judged by the epochs known now; the epochs themselves are not current."""
        if self.near is not None:
            self.near.keep(self.epochs.snapshot(), time.monotonic())
        self.epochs.forget(None)

    def close(self) -> None:
        self.tracker.close()
        self.publisher.close()
        self.redis.close()

    async def aclose(self) -> None:
        """Close the running loop's connections (other loops' close with their loops)."""
        driver = self._aio.pop(asyncio.get_running_loop(), None)
        if driver is not None:
            await driver.redis.aclose()
