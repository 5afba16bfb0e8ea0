"""Bad input on the queue: a task message that is not JSON (here pickle, which would run
code on the worker as it is decoded) is refused by the worker and never executed.
(A task naming an unregistered loader: tests/test_worker.py.)"""

from __future__ import annotations

import time
import uuid
from typing import Callable

import redis
from celery import Celery

from refresher.publish import REFRESH_TASK
from tests.support import fault_loaders as fl
from tests.support.servers import WorkerProcess

WRITTEN = r"refresher\.refresh\[\S+\] succeeded in \S+ 'written'"


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
