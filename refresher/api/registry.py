"""Loaders by name: how a worker turns a task's loader name back into a function.

Only loaders registered by importing code (REFRESHER_LOADERS on a worker) are found; a
task message is never used to import anything. Each name has two views: the Loader, for
the CLI and the worker's start-up checks, and its Refreshable, all that a refresh task
needs, so the task path does not go through the reader's handle.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, TypeVar

from refresher.core.ops import Steps
from refresher.core.state import LoaderState
from refresher.core.stats import Stats
from refresher.errors import UnknownLoader
from refresher.io.drivers import loop
from refresher.io.drivers.aio import AsyncDriver
from refresher.io.drivers.sync import SyncDriver

if TYPE_CHECKING:
    from refresher.api.loader import Loader

T = TypeVar("T")


@dataclass(frozen=True)
class Refreshable:
    """A loader as a worker sees it: its state (name, settings, codec, counters) for the
    core's steps, and the drivers that run them from a worker's thread."""

    state: LoaderState[Any]
    sync: SyncDriver  # the cache's: one per Refresher, so keys refreshed together share it
    aio: Callable[[], AsyncDriver]  # the running loop's, for an `async def` loader
    stats: Stats  # the process's counters, which a task naming no loader here is counted in

    def run(self, steps: Steps[T]) -> T:
        """Run the steps to the end: `async def` loaders on this process's event loop
        thread (refresher.io.drivers.loop), the others in this thread."""
        if not self.state.is_async:
            return self.sync.run(steps)
        return loop.run(lambda: self.aio().run(steps))


_lock = threading.Lock()
_loaders: dict[str, tuple[Loader[Any, Any], Refreshable]] = {}


def register(loader: Loader[Any, Any]) -> None:
    cache = loader.cache
    entry = Refreshable(loader.state, cache.sync, cache.aio, cache.stats)
    with _lock:
        known = _loaders.get(loader.name)
        if known is not None and known[0].fn is not loader.fn:
            raise ValueError(
                f"loader name {loader.name!r} is already used by {known[0].fn.__module__}."
                f"{known[0].fn.__qualname__}; pass name=... to tell them apart"
            )
        _loaders[loader.name] = (loader, entry)


def _find(name: str) -> tuple[Loader[Any, Any], Refreshable]:
    with _lock:
        found = _loaders.get(name)
    if found is None:
        raise UnknownLoader(f"no loader named {name!r} is registered in this process (check REFRESHER_LOADERS)")
    return found


def lookup(name: str) -> Loader[Any, Any]:
    """The loader's handle, as the app reads through it."""
    return _find(name)[0]


def refreshable(name: str) -> Refreshable:
    """What a refresh task for loader `name` needs."""
    return _find(name)[1]


def names() -> list[str]:
    with _lock:
        return sorted(_loaders)
