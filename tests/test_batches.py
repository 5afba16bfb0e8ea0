"""Several keys per refresh task (refresher.refresh_many): each key locked, checked and
committed on its own, their Redis work pipelined; the publisher sends them only when it
has a backlog."""

from __future__ import annotations

import base64
import json
import queue
import time
from typing import Any, cast

import redis

from refresher import Refresher, RefreshFailed
from refresher.core.calls import call_repr
from refresher.core.lock import new_token
from refresher.core.miss import BACKOFF
from refresher.io.publish import REFRESH_MANY_TASK, REFRESH_TASK, Publisher, _Job
from tests.conftest import TaskLog
from tests.support.ageing import into_window
from tests.test_worker import cache, make_loader  # noqa: F401  (cache: the fixture)


def test_a_batch_refreshes_each_key_on_its_own_and_says_what_happened_to_each(
    cache: Refresher, r: redis.Redis, tasks_done: TaskLog, worker: object  # noqa: F811
) -> None:
    load, calls = make_loader(cache)
    down, down_calls = make_loader(cache, fail=True)  # its second call raises
    for n in (1, 2, 3, 4):
        load.get(n)
    down.get(5)
    down_seen = into_window(r, down.keys(5)).version
    seen = {n: into_window(r, load.keys(n)).version for n in (1, 2, 3, 4)}
    load.set(2, {"n": 2, "version": 0})  # rewritten since the reader asked: nothing to do
    r.set(load.keys(3).pending, BACKOFF, px=10_000)  # its last load failed: the origin is left alone
    other = new_token()
    r.set(load.keys(4).lock, other, px=10_000)  # somebody else is loading it
    enqueued = time.time()
    items: list[Any] = [[load.name, [n], {}, enqueued, seen[n]] for n in (1, 2, 3, 4)]
    items.append(["os.system", ["true"], {}, enqueued, None])
    items.append([down.name, [5], {}, enqueued, down_seen])
    cache.publisher.app.send_task(REFRESH_MANY_TASK, args=[items], queue=cache.queue)

    # Every key processed, then the batch fails (a FAILURE in Celery and Flower) naming each
    # key's outcome and the failed load's error.
    assert tasks_done.shown(1) == [repr(RefreshFailed(
        f"{load.name}(1): written; {load.name}(2): fresh; {load.name}(3): backing_off; "
        f"{load.name}(4): deduplicated; item 4: rejected; {down.name}(5): failed (ConnectionRefusedError: origin down)"
    ))]
    assert calls == [1, 2, 3, 4, 1]  # only key 1 went back to the origin
    assert down_calls == [5, 5] and r.get(down.keys(5).pending) == BACKOFF  # key 5 tried once, backing off
    assert load.get(1) == {"n": 1, "version": 5} and load.get(2) == {"n": 2, "version": 0}
    assert [r.exists(load.keys(n).lock) for n in (1, 2, 3)] == [0, 0, 0]  # every lock it took, freed
    assert r.get(load.keys(4).lock) == other.encode()  # and the other holder's left alone
    assert r.get(load.keys(3).pending) == BACKOFF
    assert cache.stats["task_written"] == cache.stats["task_fresh"] == cache.stats["task_backing_off"] == 1
    assert cache.stats["task_failed"] == cache.stats["task_rejected"] == 1


def test_a_one_key_task_keeps_its_result_and_arguments(
    cache: Refresher, r: redis.Redis, tasks_done: TaskLog, worker: object  # noqa: F811
) -> None:
    load, calls = make_loader(cache)
    load.get(7)
    into_window(r, load.keys(7))
    load.get(7)  # a key asked for alone gets a one-key task
    assert tasks_done.wait(1) == ["written"]
    assert calls == [7, 7]


def _job(loader: str, n: int) -> _Job:
    return _Job(loader, f"key{n}", [n], {}, time.time(), n, 30.0, lambda: None)


def test_the_publisher_batches_only_a_backlog(cache: Refresher) -> None:  # noqa: F811
    jobs: queue.Queue[_Job] = queue.Queue()
    for n in range(Publisher.BACKLOG):
        jobs.put(_job("t.batched", n))
    assert [len(cache.publisher._take(jobs)) for _ in range(2)] == [1, 1]  # fewer than BACKLOG behind the first
    for n in range(Publisher.BATCH + 4):
        jobs.put(_job("t.batched", n))
    assert len(cache.publisher._take(jobs)) == Publisher.BATCH


def test_a_batch_message_names_every_key_for_flower(cache: Refresher, broker: redis.Redis) -> None:  # noqa: F811
    publisher = cache.publisher
    publisher._publish([_job("t.batched", 1)])
    publisher._publish([_job("t.batched", n) for n in (2, 3)])
    one, many = (json.loads(cast(bytes, broker.lindex(cache.queue, i))) for i in (-1, -2))  # oldest first
    assert one["headers"]["task"] == REFRESH_TASK and one["headers"]["argsrepr"] == "t.batched(1)"
    assert json.loads(base64.b64decode(one["body"]))[0][:3] == ["t.batched", [1], {}]  # the one-key wire args, unchanged
    assert many["headers"]["task"] == REFRESH_MANY_TASK
    assert many["headers"]["argsrepr"] == f"{call_repr('t.batched', [2], {})}, {call_repr('t.batched', [3], {})}"
    assert [item[:3] for item in json.loads(base64.b64decode(many["body"]))[0][0]] == [["t.batched", [2], {}], ["t.batched", [3], {}]]
    assert cache.stats["refresh_enqueued"] == 3
    broker.delete(cache.queue)
