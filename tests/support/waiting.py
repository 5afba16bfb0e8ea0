"""Two processes on one cold key, made deterministic: one loads (held open), the other
waits on the key's signal channel and must be woken with the value, not load it."""

from __future__ import annotations

import threading
import time
import typing
import uuid
from typing import Any, Callable

from refresher import Refresher
from tests.support.reading import Reading


def lead_and_wait(reading: Reading, leader: Refresher, waiter: Refresher, origin: Callable[[Any], Any],
                  arg: Any, meanwhile: Callable[[str], object] | None = None, **options: Any) -> tuple[Any, Any]:
    """`leader` and `waiter` stand for two processes (a Refresher each: no shared
    singleflight). Returns (the leader's value, the waiter's value); the waiter's
    Refresher counts one wait and no load. `meanwhile(signal channel)` runs while the
    waiter waits, before the leader's load ends."""
    entered, release = threading.Event(), threading.Event()

    def held(key: Any) -> Any:
        entered.set()
        release.wait(10)
        return origin(key)

    held.__annotations__ = typing.get_type_hints(origin)  # resolved: the same return type
    name = "w." + uuid.uuid4().hex[:10]
    leading = leader.loader(name=name, **options)(held)
    waiting = waiter.loader(name=name, **options)(held)
    results: dict[str, Any] = {}
    lead = threading.Thread(target=lambda: results.update(leader=reading.get(leading, arg)))
    lead.start()
    try:
        assert entered.wait(10)
        wait = threading.Thread(target=lambda: results.update(waiter=reading.get(waiting, arg)))
        wait.start()
        while waiter.stats["waited"] < 1:
            threading.Event().wait(0.005)
        if meanwhile is not None:
            meanwhile(waiting.keys(arg).signal)
        release.set()
        wait.join(10)
        lead.join(10)
    finally:
        release.set()
    assert waiter.stats["load"] == 0, "the waiter loaded instead of being woken with the value"
    return results["leader"], results["waiter"]


def until(condition: Callable[[], bool], what: str, timeout: float = 10.0, every: float = 0.01) -> None:
    """Poll `condition` until it holds; fail with `what` once `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        threading.Event().wait(every)
