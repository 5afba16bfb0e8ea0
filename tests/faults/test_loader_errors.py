"""Fault 6: the loader raises (the origin is down).

The old value is served until its hard expiry; with stale_ttl it is served past its TTL
while the origin stays down. Failures are counted and logged with loader and key, and
the whole fleet makes at most one attempt per key per back-off period.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Callable

import pytest
import redis

from refresher.core.miss import BACKOFF
from tests.conftest import TaskLog
from tests.support import fault_loaders as fl
from tests.support.ageing import age, expire_in
from tests.support.keyevents import KeyEvents
from tests.support.readers import run_readers
from tests.support.servers import WorkerProcess
from tests.support.reading import Reading



def refresh_failed(key: str) -> str:
    """The task's exception, naming the loader's: a FAILURE in Celery and Flower."""
    return f"RefreshFailed('ConnectionError: origin down for {key}')"


def test_a_failing_refresh_serves_the_old_value_until_hard_expiry(
    reading: Reading, r: redis.Redis, key: str, tasks_done: TaskLog, worker: object,
    key_events: Callable[..., KeyEvents], caplog: pytest.LogCaptureFixture,
) -> None:
    loader, stats = fl.fragile, fl.fragile.cache.stats  # no stale_ttl, back-off 1 s
    keys = loader.keys(key)
    old = {"key": key, "call": 0}
    reading.set(loader, key, old)
    expire_in(r, keys, 20_000)  # in the refresh window
    fl.go_down(key)
    failed = stats["refresh_failed"]

    with caplog.at_level(logging.ERROR, logger="refresher"):
        assert reading.get(loader, key) == old
        assert tasks_done.shown(1) == [refresh_failed(key)]
    assert stats["refresh_failed"] == failed + 1
    assert f"loader={loader.name} key={keys.value} refresh failed: ConnectionError: origin down" in caplog.text
    assert r.get(keys.pending) == BACKOFF
    assert reading.get(loader, key) == old  # still served after the failure

    events = key_events(keys.value)
    expire_in(r, keys, 300, hard=True)  # fast-forward to its TTL
    assert events.wait(keys.value, "expired", timeout=3)  # gone, since there is no stale_ttl
    with pytest.raises(ConnectionError, match="origin down"):
        reading.get(loader, key)  # nothing left to serve: the caller sees the origin's error
    assert fl.calls(loader, key) == 2


def test_stale_ttl_serves_past_the_ttl_while_the_origin_is_down(
    reading: Reading, r: redis.Redis, key: str, key_events: Callable[..., KeyEvents], caplog: pytest.LogCaptureFixture
) -> None:
    loader, stats = fl.patient, fl.patient.cache.stats  # stale_ttl 30 s, back-off 10 s
    keys = loader.keys(key)
    old = {"key": key, "call": 0}
    reading.set(loader, key, old)
    expire_in(r, keys, -1_000)  # a second past its TTL
    fl.go_down(key)
    events = key_events(keys.pending)
    before = stats.snapshot()

    with caplog.at_level(logging.ERROR, logger="refresher"):
        assert reading.get(loader, key) == old  # tried the origin once, failed, served the stale value
    assert f"loader={loader.name} key={keys.value} reloading failed; serving the stale value" in caplog.text
    assert "origin down" in caplog.text
    assert r.get(keys.pending) == BACKOFF
    assert [reading.get(loader, key) for _ in range(5)] == [old] * 5  # backing off: the origin is left alone
    assert fl.calls(loader, key) == 1
    after = stats.snapshot()
    assert after.get("stale_served", 0) - before.get("stale_served", 0) == 6
    assert after.get("load_failed", 0) - before.get("load_failed", 0) == 1

    fl.come_back(key)
    r.pexpire(keys.pending, 1)  # fast-forward to the end of the 10 s back-off
    assert events.wait(keys.pending, "expired", timeout=3)
    assert reading.get(loader, key) == {"key": key, "call": 2}  # the next read reloads it
    assert reading.get(loader, key) == {"key": key, "call": 2}
    assert fl.calls(loader, key) == 2


def test_a_refresh_task_arriving_during_the_back_off_leaves_the_origin_alone(
    reading: Reading, r: redis.Redis, key: str, tasks_done: TaskLog, worker: object
) -> None:
    """A task queued before the failure, or redelivered, must not be a second attempt."""
    loader = fl.patient  # back-off 10 s
    reading.set(loader, key, {"key": key, "call": 0})
    age(r, loader.keys(key), 1_000)  # older than the task: the task has work to do
    fl.go_down(key)
    task_id, enqueued_at = str(uuid.uuid4()), time.time()
    fl.send_refresh(loader, key, task_id=task_id, enqueued_at=enqueued_at)
    assert tasks_done.shown(1) == [refresh_failed(key)]
    fl.send_refresh(loader, key, task_id=task_id, enqueued_at=enqueued_at)
    assert tasks_done.shown(2) == [refresh_failed(key), "backing_off"]
    assert fl.calls(loader, key) == 1
    assert r.get(loader.keys(key).pending) == BACKOFF  # its TTL untouched by the dropped task
    assert r.pttl(loader.keys(key).pending) > 5_000


@pytest.mark.parametrize("state", ["in_window", "stale"])
def test_the_fleet_tries_a_down_origin_once_per_key_per_backoff_period(
    reading: Reading, r: redis.Redis, key: str, state: str, spawn_worker: Callable[..., WorkerProcess]
) -> None:
    """3 reader processes x 2 threads read one key in a loop for 3 s, the origin down.
    in_window: the value is due for a refresh, so every attempt is a worker's refresh.
    stale: the value is past its TTL (within stale_ttl), so the readers retry inline."""
    loader = fl.lenient  # window 30 s, stale_ttl 30 s, back-off 1 s
    backoff_s = loader.settings.error_backoff_ms / 1000
    keys = loader.keys(key)
    old = {"key": key, "call": 0}
    worker = spawn_worker() if state == "in_window" else None
    fl.go_down(key)

    def write_old_value() -> None:  # once every reader is ready
        reading.set(loader, key, old)
        expire_in(r, keys, 20_000 if state == "in_window" else -1_000)

    seconds = 3.0  # three back-off periods: at least 2 attempts, at most 4
    reports = run_readers(f"{fl.__name__}.lenient", [key], processes=3, threads=2, seconds=seconds,
                          before_go=write_old_value, mode=reading.mode)
    assert [e for rep in reports for e in rep.errors] == []
    assert all(v == old for rep in reports for v in rep.values)

    started = fl.attempts(loader, key)
    gaps = [b - a for a, b in zip(started, started[1:])]
    assert all(gap >= backoff_s * 0.9 for gap in gaps), f"attempts too close: {gaps}"
    assert 2 <= len(started) <= seconds / backoff_s + 1, started  # it does retry, that often at most
    stale_served = sum(rep.stats.get("stale_served", 0) for rep in reports)
    if worker is not None:
        assert worker.log is not None
        worker.log.wait_for(rf"loader={loader.name} key=\S+ refresh failed: ", count=len(started))
        assert stale_served == 0
    else:
        assert stale_served > 0
