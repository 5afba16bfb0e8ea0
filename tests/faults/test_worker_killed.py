"""Fault 1: a worker is SIGKILLed while it is inside the loader.

Nothing stays stuck: the dead worker's lock and pending marker lapse after lock_ttl, the
next read in the refresh window asks again, and another worker refreshes the key.
"""

from __future__ import annotations

from typing import Callable

import pytest
import redis

from refresher.options import Options
from tests.support import fault_loaders as fl
from tests.support.ageing import expire_in
from tests.support.keyevents import KeyEvents
from tests.support.servers import WorkerProcess
from tests.support.reading import Reading

WRITTEN = r"refresher\.refresh\[\S+\] succeeded in \S+ 'written'"


def test_a_worker_killed_mid_load_leaves_nothing_stuck(
    reading: Reading, r: redis.Redis, key: str, spawn_worker: Callable[..., WorkerProcess],
    key_events: Callable[..., KeyEvents],
) -> None:
    loader, stats = fl.steady, fl.steady.cache.stats  # ttl 60 s, window 30 s, lock_ttl 1 s
    keys = loader.keys(key)
    doomed = spawn_worker()
    old = {"key": key, "call": 0}
    reading.set(loader, key, old)
    expire_in(r, keys, 20_000)  # inside the window, 20 s before it expires
    fl.hold(key)

    assert reading.get(loader, key) == old  # served, and a refresh is asked for
    assert fl.entered(key) == 1  # the worker is inside the loader, holding the lock
    assert r.get(keys.lock) is not None and r.get(keys.pending) is not None
    events = key_events(keys.lock, keys.pending)
    doomed.kill()  # SIGKILL: no cleanup runs

    # The dead worker's marker still stands for now: readers are served and ask nothing.
    deduplicated = stats["refresh_deduplicated"]
    assert reading.get(loader, key) == old
    assert stats["refresh_deduplicated"] == deduplicated + 1
    rescuer = spawn_worker()
    # Its lock and marker lapse on their own, within lock_ttl (1 s) of the last extension.
    assert events.wait(keys.lock, "expired", timeout=3)
    assert events.wait(keys.pending, "expired", timeout=3)

    enqueued = stats["refresh_enqueued"]
    expire_in(r, keys, 20_000)  # still in the window, however long the rescuer took to start
    assert reading.get(loader, key) == old  # the next read in the window asks again ...
    assert loader.cache.flush()
    assert stats["refresh_enqueued"] == enqueued + 1
    assert rescuer.log is not None
    rescuer.log.wait_for(WRITTEN)  # ... and the new worker refreshes the key
    assert reading.get(loader, key) == {"key": key, "call": 2}
    assert fl.calls(loader, key) == 2
    assert r.get(keys.lock) is None
    assert r.pttl(keys.pending) <= loader.settings.lock_ttl_ms  # if still there, it lapses with the lock's TTL


def test_the_default_lock_ttl_leaves_room_to_retry_within_the_window() -> None:
    """A third of the refresh window, at most 30 s: a crashed refresh is retried before
    the value expires. (A lock_ttl as long as the window is refused: test_read_path.)"""
    assert Options(ttl=30).resolved().lock_ttl_ms == 1_000  # window 3 s
    assert Options(ttl=3600).resolved().lock_ttl_ms == 30_000  # window 360 s, capped
    assert Options(ttl=30, refresh_window=0.5).resolved().lock_ttl_ms == 5_000
    with pytest.raises(ValueError, match="shorter than the refresh window"):
        Options(ttl=30, lock_ttl=3).resolved()
