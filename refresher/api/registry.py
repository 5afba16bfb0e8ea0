"""Loaders by name: how a worker turns a task's loader name back into a function.

Only loaders registered by importing code (REFRESHER_LOADERS on a worker) are found; a
task message is never used to import anything.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from refresher.errors import UnknownLoader

if TYPE_CHECKING:
    from refresher.api.loader import Loader

_lock = threading.Lock()
_loaders: dict[str, Loader[Any, Any]] = {}


def register(loader: Loader[Any, Any]) -> None:
    with _lock:
        known = _loaders.get(loader.name)
        if known is not None and known.fn is not loader.fn:
            raise ValueError(
                f"loader name {loader.name!r} is already used by {known.fn.__module__}."
                f"{known.fn.__qualname__}; pass name=... to tell them apart"
            )
        _loaders[loader.name] = loader


def lookup(name: str) -> Loader[Any, Any]:
    with _lock:
        loader = _loaders.get(name)
    if loader is None:
        raise UnknownLoader(f"no loader named {name!r} is registered in this process (check REFRESHER_LOADERS)")
    return loader


def names() -> list[str]:
    with _lock:
        return sorted(_loaders)
