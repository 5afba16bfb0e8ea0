"""What a loader, and the code that holds one, use of the Refresher that made it.

refresher.api.client builds Loaders, so the loader module cannot import the client module
back, not even for its types: `Loader.cache` is typed by this protocol, which Refresher
satisfies (mypy checks it where the client passes itself to each Loader).
"""

from __future__ import annotations

from typing import Protocol

from refresher.core.epochs import Epochs
from refresher.core.near import NearCache
from refresher.core.stats import Stats
from refresher.io.breaker import Breakers
from refresher.io.connect import SyncClient
from refresher.io.drivers.aio import AsyncDriver
from refresher.io.drivers.sync import SyncDriver
from refresher.io.publish import Publisher
from refresher.io.tracking import Tracker


class Cache(Protocol):
    redis_url: str
    namespace: str
    queue: str
    socket_timeout: float
    redis: SyncClient
    stats: Stats
    publisher: Publisher
    epochs: Epochs
    breaker: Breakers
    near: NearCache | None
    tracker: Tracker
    sync: SyncDriver

    def aio(self) -> AsyncDriver:
        """The running event loop's driver."""

    def invalidate_tag(self, tag: str) -> None:
        """Drop every cached value carrying `tag`, across this cache's loaders."""

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every refresh asked for so far has been published."""

    async def aclose(self) -> None:
        """Close the running loop's connections."""
