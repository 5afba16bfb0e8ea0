"""Fault 2: a loader slower than its lock.

The watchdog keeps the lock while the loader runs, up to max_load_time, and stops once
the lock is someone else's. A load that lost its lock anyway (watchdog capped, or the
worker paused past the TTL) has its late write refused; the newer holder's value stays.
"""

from __future__ import annotations

import signal
import threading
import time
from typing import Any, Callable

import redis

from tests.support import fault_loaders as fl
from tests.support.ageing import expire_in
from tests.support.keyevents import KeyEvents
from tests.support.locks import Lock
from tests.support.servers import WorkerProcess
from tests.support.reading import Reading

WRITTEN = r"refresher\.refresh\[\S+\] succeeded in \S+ 'written'"
LOST_LOCK = r"refresher\.refresh\[\S+\] succeeded in \S+ 'lost_lock'"


def test_the_watchdog_keeps_the_lock_while_a_slow_refresh_runs(
    reading: Reading, r: redis.Redis, key: str, spawn_worker: Callable[..., WorkerProcess],
    key_events: Callable[..., KeyEvents],
) -> None:
    loader = fl.slow  # lock_ttl 0.6 s, max_load_time 20 s
    keys = loader.keys(key)
    worker = spawn_worker()
    reading.set(loader, key, {"key": key, "call": 0})
    expire_in(r, keys, 20_000)
    fl.hold(key)
    reading.get(loader, key)
    call = fl.entered(key)
    token = r.get(keys.lock)
    events = key_events(keys.lock)
    # Four extensions, one every lock_ttl/3: the load has outlived its 0.6 s lock.
    assert events.wait(keys.lock, "expire", count=4, timeout=3)
    assert events.count(keys.lock, "expired") == 0
    assert r.get(keys.lock) == token  # the same owner all along
    fl.release(key, call)
    assert worker.log is not None
    worker.log.wait_for(WRITTEN)
    assert reading.get(loader, key) == {"key": key, "call": 1}


def test_a_load_past_max_load_time_loses_its_lock_and_its_late_write_is_refused(
    reading: Reading, r: redis.Redis, key: str, spawn_worker: Callable[..., WorkerProcess],
    key_events: Callable[..., KeyEvents],
) -> None:
    loader = fl.capped  # lock_ttl 0.3 s, max_load_time 0.6 s
    keys = loader.keys(key)
    worker = spawn_worker()
    events = key_events(keys.lock)
    fl.hold(key)
    fl.send_refresh(loader, key)
    first = fl.entered(key)  # the worker's load hangs ...
    assert events.wait(keys.lock, "expired", timeout=3)  # ... and the watchdog let its lock go

    # A reader misses, takes the free lock and starts its own (newer) load.
    fl.hold(key)
    reader: list[Any] = []
    thread = threading.Thread(target=lambda: reader.append(reading.get(loader, key)))
    thread.start()
    second = fl.entered(key)
    newer_token = r.get(keys.lock)
    assert newer_token is not None

    fl.release(key, first)  # the stale load finishes while the newer one holds the lock
    assert worker.log is not None
    worker.log.wait_for(LOST_LOCK)
    assert r.get(keys.value) is None  # its result was not written ...
    assert r.get(keys.lock) == newer_token  # ... and the newer holder's lock is untouched

    fl.release(key, second)
    thread.join(10)
    assert reader == [{"key": key, "call": 2}]
    assert reading.get(loader, key) == {"key": key, "call": 2}


def test_a_worker_paused_past_its_lock_ttl_cannot_overwrite_the_newer_value(
    reading: Reading, r: redis.Redis, key: str, spawn_worker: Callable[..., WorkerProcess],
    key_events: Callable[..., KeyEvents],
) -> None:
    """The "GC pause" case: SIGSTOP the worker mid-load, so even its watchdog is frozen."""
    loader = fl.slow  # lock_ttl 0.6 s
    keys = loader.keys(key)
    worker = spawn_worker()
    assert worker.proc is not None
    events = key_events(keys.lock)
    fl.hold(key)
    fl.send_refresh(loader, key)
    paused_call = fl.entered(key)
    worker.proc.send_signal(signal.SIGSTOP)
    try:
        assert events.wait(keys.lock, "expired", timeout=3)
        assert reading.get(loader, key) == {"key": key, "call": 2}  # a reader loads and commits meanwhile
    finally:
        worker.proc.send_signal(signal.SIGCONT)
    fl.release(key, paused_call)
    assert worker.log is not None
    worker.log.wait_for(LOST_LOCK)
    assert reading.get(loader, key) == {"key": key, "call": 2}
    assert fl.calls(loader, key) == 2


def test_the_watchdog_stops_once_the_lock_is_someone_elses(
    reading: Reading, r: redis.Redis, key: str, key_events: Callable[..., KeyEvents]
) -> None:
    lock = Lock(fl.cache.sync, fl.slow.keys(key).lock, ttl_ms=300)
    assert lock.acquire()
    events = key_events(lock.key)
    with lock.kept_alive(max_hold_ms=60_000):
        assert events.wait(lock.key, "expire")  # the watchdog is extending it
        assert fl.cache.sync.watchdog.keeping() == 1
        r.delete(lock.key)  # as if it had lapsed ...
        thief = Lock(fl.cache.sync, lock.key, ttl_ms=5_000)
        assert thief.acquire()  # ... and another process took it
        deadline = time.monotonic() + 2
        while fl.cache.sync.watchdog.keeping():  # it gives up at its next extension, while the body still runs
            assert time.monotonic() < deadline
        assert r.get(lock.key) == thief.token.encode()
        assert 4_000 < r.pttl(lock.key) <= 5_000  # the thief's TTL, not ours
    assert not lock.release()
    assert r.get(lock.key) == thief.token.encode()
