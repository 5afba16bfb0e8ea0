"""Fault 3: `set` or `invalidate` while a load of the same key is in flight.

The in-flight result was read from the origin before the change, so it must never land
over it: the commit script sees the version it read replaced and refuses (SUPERSEDED).
"""

from __future__ import annotations

import threading
from typing import Any, Callable

import pytest
import redis

from refresher.core.envelope import Envelope
from refresher import Loader
from tests.support import fault_loaders as fl
from tests.support.ageing import expire_in
from tests.support.keyevents import KeyEvents
from tests.support.servers import WorkerProcess
from tests.support.reading import Reading

SUPERSEDED = r"refresher\.refresh\[\S+\] succeeded in \S+ 'superseded'"
NEWER = {"key": "written by set()", "call": -1}


def change(reading: Reading, loader: Loader[..., Any], key: str, action: str) -> None:
    if action == "set":
        reading.set(loader, key, NEWER)
    else:
        reading.invalidate(loader, key)


def after_change(reading: Reading, loader: Loader[..., Any], key: str, action: str, calls_before: int) -> None:
    """What every later read must see: the set value, or (after invalidate) a new load."""
    if action == "set":
        assert reading.get(loader, key) == NEWER
        assert fl.calls(loader, key) == calls_before
    else:
        assert reading.get(loader, key) == {"key": key, "call": calls_before + 1}


@pytest.mark.parametrize("action", ["set", "invalidate"])
def test_a_change_during_a_worker_refresh_wins(
    reading: Reading, r: redis.Redis, key: str, action: str, spawn_worker: Callable[..., WorkerProcess]
) -> None:
    loader = fl.steady
    keys = loader.keys(key)
    worker = spawn_worker()
    reading.set(loader, key, {"key": key, "call": 0})
    before = expire_in(r, keys, 20_000)
    fl.hold(key)
    reading.get(loader, key)  # asks for the refresh
    call = fl.entered(key)  # the worker has read the origin's old state

    change(reading, loader, key, action)
    fl.release(key, call)
    assert worker.log is not None
    worker.log.wait_for(SUPERSEDED)
    stored = Envelope.from_bytes(r.get(keys.value) or b"")
    assert stored.version != before.version and stored.tombstone == (action == "invalidate")
    after_change(reading, loader, key, action, calls_before=1)


@pytest.mark.parametrize("action", ["set", "invalidate"])
def test_a_change_during_an_inline_load_wins(reading: Reading, r: redis.Redis, key: str, action: str) -> None:
    loader = fl.steady
    keys = loader.keys(key)
    fl.hold(key)
    reader: list[Any] = []
    thread = threading.Thread(target=lambda: reader.append(reading.get(loader, key)))
    thread.start()  # a miss: this thread loads inline, holding the key's lock
    call = fl.entered(key)

    superseded = loader.cache.stats["commit_superseded"]
    change(reading, loader, key, action)
    fl.release(key, call)
    thread.join(10)
    # The caller that asked before the change gets what it loaded; the cache does not.
    assert reader == [{"key": key, "call": 1}]
    assert loader.cache.stats["commit_superseded"] == superseded + 1
    assert r.get(keys.lock) is None
    after_change(reading, loader, key, action, calls_before=1)


@pytest.mark.parametrize("action", ["set", "invalidate"])
def test_a_change_after_the_value_expired_mid_refresh_still_wins(
    reading: Reading, r: redis.Redis, key: str, action: str, spawn_worker: Callable[..., WorkerProcess],
    key_events: Callable[..., KeyEvents],
) -> None:
    """Issue 7: set, a refresh starts (it read that value), the value expires, set (or
    invalidate) again, then the refresh commits. The version it read is not the one
    stored now, even though the key was empty in between: the commit is refused."""
    loader = fl.steady
    keys = loader.keys(key)
    worker = spawn_worker()
    events = key_events(keys.value)
    reading.set(loader, key, {"key": key, "call": 0})
    expire_in(r, keys, 20_000)
    fl.hold(key)
    reading.get(loader, key)  # asks for the refresh
    call = fl.entered(key)  # the worker has read the value and the origin's old state

    assert events.expire(keys.value)
    change(reading, loader, key, action)
    fl.release(key, call)
    assert worker.log is not None
    worker.log.wait_for(SUPERSEDED)
    after_change(reading, loader, key, action, calls_before=1)
