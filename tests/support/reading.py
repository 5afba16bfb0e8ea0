"""The same calls through either driver, so one test body covers sync and async readers:
`reading.get(load, 1)` is `load.get(1)` or `await load.aget(1)` (on this process's event
loop thread)."""

from __future__ import annotations

from typing import Any, Iterable

from refresher import Loader, Served
from refresher.io.drivers import loop

MODES = ["sync", "async"]


class Reading:
    def __init__(self, mode: str) -> None:
        self.mode = mode

    def __repr__(self) -> str:
        return self.mode

    def get(self, loader: Loader[..., Any], *args: Any, **kwargs: Any) -> Any:
        if self.mode == "sync":
            return loader.get(*args, **kwargs)
        return loop.run(lambda: loader.aget(*args, **kwargs))

    def entry(self, loader: Loader[..., Any], *args: Any) -> Served[Any]:
        if self.mode == "sync":
            return loader.entry(*args)
        return loop.run(lambda: loader.aentry(*args))

    def get_many(self, loader: Loader[..., Any], items: Iterable[Any]) -> list[Any]:
        if self.mode == "sync":
            return loader.get_many(items)
        return loop.run(lambda: loader.aget_many(items))

    def set(self, loader: Loader[..., Any], *args: Any) -> None:
        if self.mode == "sync":
            return loader.set(*args)
        return loop.run(lambda: loader.aset(*args))

    def invalidate(self, loader: Loader[..., Any], *args: Any) -> None:
        if self.mode == "sync":
            return loader.invalidate(*args)
        return loop.run(lambda: loader.ainvalidate(*args))
