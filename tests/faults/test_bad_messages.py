"""Bad input on the queue: a task message that is not JSON (here pickle, which would run
code on the worker as it is decoded) is refused by the worker and never executed; JSON
tasks forged to hurt the worker are rejected at its door (refresher.core.wire) before any work.
(A task naming an unregistered loader: tests/test_worker.py; any JSON at all: tests/test_wire.py.)"""

from __future__ import annotations

import re
import time
import uuid
from pathlib import Path
from typing import Any, Callable

import redis
from celery import Celery

from refresher.io.publish import REFRESH_MANY_TASK, REFRESH_TASK
from tests.support import fault_loaders as fl
from tests.support.servers import WorkerProcess

WRITTEN = r"refresher\.refresh\[\S+\] succeeded in \S+ 'written'"
REJECTED = r"rejected a refresh task"
MAX_PEAK_GROWTH = 64 * 1024 * 1024


def test_a_pickled_task_is_refused_and_never_run(
    r: redis.Redis, broker: redis.Redis, broker_url: str, key: str, spawn_worker: Callable[..., WorkerProcess]
) -> None:
    worker = spawn_worker()
    assert worker.log is not None
    outsider = Celery("outsider", set_as_current=False)
    outsider.conf.broker_url = broker_url
    pickled_id = str(uuid.uuid4())
    try:
        outsider.send_task(REFRESH_TASK, args=[fl.steady.name, [key], {}, time.time()],
                           queue=fl.cache.queue, serializer="pickle", task_id=pickled_id)
    finally:
        outsider.close()
    worker.log.wait_for(r"Received invalid task message: Refusing to deserialize untrusted content of type pickle")
    worker.log.wait_for(r"The message has been ignored and discarded")

    # The worker goes on: a JSON task queued after the refused one is run as usual.
    other = key + "-json"
    fl.send_refresh(fl.steady, other)
    worker.log.wait_for(WRITTEN)
    assert fl.calls(fl.steady, other) == 1
    assert fl.calls(fl.steady, key) == 0  # the pickled task never reached the loader
    assert r.get(fl.steady.keys(key).value) is None
    assert worker.log.count(pickled_id) == 0  # never received as a task, never retried
    assert broker.llen(fl.cache.queue) == 0  # and not put back on the queue


def peak_rss(pid: int) -> int:
    """The process's peak resident set (VmHWM), in bytes."""
    found = re.search(r"^VmHWM:\s+(\d+) kB$", Path(f"/proc/{pid}/status").read_text(), re.MULTILINE)
    assert found is not None
    return int(found.group(1)) * 1024


def forged(name: str, key: str) -> list[tuple[str, list[Any]]]:
    """The messages of issue 19, each of which grew a worker by tens of MB or left a lock."""
    now = time.time()
    return [
        (REFRESH_TASK, [name, [key], {}, [now] * 20_000]),  # enqueued_at as a 20,000-item list
        (REFRESH_TASK, [name, [key], {}, now, "9" * 100_000]),  # a 100 kB seen
        (REFRESH_TASK, [name, [key], {}, now, None, "2"]),  # a string version
        (REFRESH_MANY_TASK, [[[0]] * 100_000]),  # 100,000 junk items
        # 1.6 MB, over wire.MAX_MESSAGE_BYTES: refused undecoded (decoded, its 400,000
        # lists grew the worker's peak RSS by 101 MB; the 100,000 above cost 29 MB)
        (REFRESH_MANY_TASK, [[[0]] * 400_000]),
    ]


def test_forged_refresh_tasks_are_rejected_at_the_door_with_bounded_memory(
    r: redis.Redis, broker_url: str, key: str, spawn_worker: Callable[..., WorkerProcess]
) -> None:
    worker = spawn_worker()
    assert worker.log is not None and worker.proc is not None
    fl.send_refresh(fl.steady, key + "-warm")  # every code path of a refresh imported and used once
    worker.log.wait_for(WRITTEN)
    before = peak_rss(worker.proc.pid)
    outsider = Celery("outsider", set_as_current=False)
    outsider.conf.broker_url = broker_url
    messages = forged(fl.steady.name, key) * 3
    try:
        for task, args in messages:
            outsider.send_task(task, args=args, queue=fl.cache.queue)
    finally:
        outsider.close()
    worker.log.wait_for(REJECTED, count=len(messages), timeout=60)
    assert worker.log.count(r"over \d+: not decoded") == 3  # the 1.6 MB one, each time
    growth = peak_rss(worker.proc.pid) - before
    assert worker.proc.poll() is None
    assert growth < MAX_PEAK_GROWTH, f"the worker's peak RSS grew by {growth / 2**20:.0f} MB"
    assert r.keys("*:lock{*") == []  # nothing locked
    assert fl.calls(fl.steady, key) == 0 and r.get(fl.steady.keys(key).value) is None

    fl.send_refresh(fl.steady, key)  # a well-formed refresh right after still writes
    worker.log.wait_for(WRITTEN, count=2)
    assert fl.calls(fl.steady, key) == 1 and r.get(fl.steady.keys(key).value) is not None
