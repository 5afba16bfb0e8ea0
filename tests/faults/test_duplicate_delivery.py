"""Fault 4: the same refresh task delivered twice at once, and again after it succeeded,
to a `celery -A workers worker` subprocess running two tasks at a time.
One loader call in total."""

from __future__ import annotations

import time
import uuid
from typing import Callable

import redis

from tests.support import fault_loaders as fl
from tests.support.servers import WorkerProcess
from tests.support.reading import Reading

TASK = r"refresher\.refresh\[{id}\] succeeded in \S+ '{result}'"


def test_a_task_delivered_twice_at_once_and_once_more_later_loads_once(
    reading: Reading, r: redis.Redis, key: str, spawn_worker: Callable[..., WorkerProcess]
) -> None:
    loader = fl.steady
    reading.set(loader, key, {"key": key, "call": 0})
    worker = spawn_worker(concurrency=2)
    assert worker.log is not None
    # one message (asking to replace the version stored now), delivered twice
    task_id, enqueued_at, seen = str(uuid.uuid4()), time.time(), fl.stored_version(loader, key)
    fl.hold(key)
    fl.send_refresh(loader, key, task_id=task_id, enqueued_at=enqueued_at, seen=seen)
    call = fl.entered(key)
    fl.send_refresh(loader, key, task_id=task_id, enqueued_at=enqueued_at, seen=seen)
    # The second copy ran while the first was still inside the loader: it found the lock taken.
    worker.log.wait_for(TASK.format(id=task_id, result="deduplicated"))
    fl.release(key, call)
    worker.log.wait_for(TASK.format(id=task_id, result="written"))

    # Redelivered after the refresh landed: the version it asked to replace is gone.
    fl.send_refresh(loader, key, task_id=task_id, enqueued_at=enqueued_at, seen=seen)
    worker.log.wait_for(TASK.format(id=task_id, result="fresh"))
    assert worker.log.count(TASK.format(id=task_id, result=r"\w+")) == 3
    assert fl.calls(loader, key) == 1
    assert reading.get(loader, key) == {"key": key, "call": 1}
