"""Fault 1: a worker is SIGKILLed while it is inside the loader, or stopped (SIGTERM).

Nothing stays stuck: the dead worker's lock and pending marker lapse after lock_ttl, the
next read in the refresh window asks again, and another worker refreshes the key. A
stopped worker finishes its load first, and frees its lock by writing the value.
"""

from __future__ import annotations

import signal
from typing import Callable

import pytest
import redis

from refresher.core.options import Options
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
    loader, stats = fl.steady, fl.steady.cache.stats
    keys = loader.keys(key)
    doomed = spawn_worker()
    old = inside_a_load(reading, r, key)
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


def test_a_worker_stopped_mid_load_finishes_it_and_frees_its_lock(
    r: redis.Redis, key: str, spawn_worker: Callable[..., WorkerProcess], key_events: Callable[..., KeyEvents],
) -> None:
    """SIGTERM, Celery's warm shutdown, while the worker is inside a load that outlasts its
    lock's TTL: the worker waits for the load, its watchdog keeping the lock no more than
    one lock TTL ahead, writes the value, frees the lock, and only then exits (0). One
    driver: the readers' side is the SIGKILL test's."""
    reading = Reading("sync")
    loader, lock_ttl_ms = fl.steady, fl.steady.settings.lock_ttl_ms
    keys = loader.keys(key)
    stopping = spawn_worker()
    assert stopping.proc is not None and stopping.log is not None
    old = inside_a_load(reading, r, key)
    events = key_events(keys.lock)
    stopping.proc.send_signal(signal.SIGTERM)
    stopping.log.wait_for(r"worker: Warm shutdown")
    # held for over two lock TTLs after the signal, the lock extended every third of one
    assert events.wait(keys.lock, "expire", count=7, timeout=10)
    assert stopping.proc.poll() is None  # still there: finishing its load
    assert 0 < r.pttl(keys.lock) <= lock_ttl_ms
    fl.release(key, 1)
    assert stopping.proc.wait(15) == 0
    assert events.wait(keys.lock, "del", timeout=1)  # freed by the commit, not left to lapse
    assert r.get(keys.lock) is None
    assert stopping.log.count(WRITTEN) == 1
    assert reading.get(loader, key) == {"key": key, "call": 1} != old
    assert fl.calls(loader, key) == 1


def inside_a_load(reading: Reading, r: redis.Redis, key: str) -> dict[str, object]:
    """A value of fl.steady (ttl 60 s, window 30 s, lock_ttl 1 s) read in its window, so
    that the worker running starts its refresh and is held inside the loader, holding the
    key's lock and its pending marker. Returns the old value."""
    keys = fl.steady.keys(key)
    old: dict[str, object] = {"key": key, "call": 0}
    reading.set(fl.steady, key, old)
    expire_in(r, keys, 20_000)  # inside the window, 20 s before it expires
    fl.hold(key)
    assert reading.get(fl.steady, key) == old  # served, and a refresh is asked for
    assert fl.entered(key) == 1  # the worker is inside the loader, holding the lock
    assert r.get(keys.lock) is not None and r.get(keys.pending) is not None
    return old


def test_the_default_lock_ttl_leaves_room_to_retry_within_the_window() -> None:
    """A third of the refresh window, at most 30 s: a crashed refresh is retried before
    the value expires. (A lock_ttl as long as the window is refused: test_read_path.)"""
    assert Options(ttl=30).resolved().lock_ttl_ms == 1_000  # window 3 s
    assert Options(ttl=3600).resolved().lock_ttl_ms == 30_000  # window 360 s, capped
    assert Options(ttl=30, refresh_window=0.5).resolved().lock_ttl_ms == 5_000
    with pytest.raises(ValueError, match="shorter than the refresh window"):
        Options(ttl=30, lock_ttl=3).resolved()
