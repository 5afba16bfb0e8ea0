"""Stampedes across real OS processes: coalescing must hold between processes, not just
between threads, so every test here spawns reader processes."""

from __future__ import annotations

import json

import pytest
import redis

from tests.support import loaders
from tests.support.ageing import into_window
from tests.support.reading import Reading
from tests.support.readers import run_readers
from tests.support.servers import WorkerProcess


def test_cold_stampede_calls_the_origin_once(r: redis.Redis, reading: Reading) -> None:
    """4 processes x 25 threads (or tasks) miss one key whose loader takes 200 ms."""
    reports = run_readers("tests.support.loaders.slow_user", [1001], processes=4, threads=25, mode=reading.mode)
    values = [v for rep in reports for v in rep.values]
    assert [e for rep in reports for e in rep.errors] == []
    assert len(values) == 100
    assert all(v == {"id": 1001, "name": "user 1001"} for v in values)
    assert loaders.calls("slow_user") == 1
    # one process loaded; each of the other three sent a thread to wait on the signal
    # channel (a thread that reaches its process's flight only after it ended leads a
    # second one, which finds the value written: more misses and waits, never more loads)
    assert all(rep.stats.get("miss", 0) >= 1 for rep in reports)
    assert sum(rep.stats.get("waited", 0) for rep in reports) >= 3
    assert sum(rep.stats.get("load", 0) for rep in reports) == 1


def test_readers_in_the_window_publish_exactly_one_task(r: redis.Redis, broker: redis.Redis, reading: Reading) -> None:
    """100 concurrent readers (4 processes x 25 threads or tasks) of a value inside its
    window, and no worker: the queue must hold exactly one refresh task."""
    loaders.windowed.get(21)
    reports = run_readers("tests.support.loaders.windowed", [21], processes=4, threads=25, mode=reading.mode,
                          before_go=lambda: into_window(r, loaders.windowed.keys(21)))  # once all are ready
    assert [v for rep in reports for v in rep.values] == [42] * 100
    assert broker.llen(loaders.cache.queue) == 1
    body = json.loads(broker.lindex(loaders.cache.queue, 0) or b"{}")
    assert body["headers"]["task"] == "refresher.refresh"
    assert sum(rep.stats.get("refresh_enqueued", 0) for rep in reports) == 1
    assert sum(rep.stats.get("refresh_deduplicated", 0) for rep in reports) == 99
    assert loaders.calls("windowed") == 1


def test_hot_key_is_refreshed_ahead_and_no_reader_waits(
    r: redis.Redis, worker_process: WorkerProcess, reading: Reading
) -> None:
    """3 processes x 4 threads (or tasks) read one key for 3.2 TTL periods (TTL 2 s, a 20%
    window for headroom on a busy 2-core machine, loader 100 ms) while a real
    `celery -A workers worker` refreshes it."""
    periods = 3.2
    reports = run_readers("tests.support.loaders.hot", ["k"], processes=3, threads=4, seconds=2 * periods,
                          before_go=lambda: loaders.hot.get("k"), mode=reading.mode)  # warm-up
    assert [e for rep in reports for e in rep.errors] == []
    # no reader after warm-up loaded, waited on a lock, or was coalesced onto a load
    for key in ("miss", "coalesced", "waited", "load"):
        assert sum(rep.stats.get(key, 0) for rep in reports) == 0, key
    served = sum(rep.stats.get("hit", 0) + rep.stats.get("near_hit", 0) + rep.stats.get("refresh_asked", 0)
                 for rep in reports)  # from Redis or memory, or served by a read that asked for the refresh
    assert served == sum(len(rep.values) for rep in reports)
    # the warm-up load plus at most one refresh per TTL period (+1)
    assert 1 + int(periods) <= loaders.calls("hot") <= 1 + int(periods) + 1
    # one task per window, each of which did a refresh: none was a duplicate
    enqueued = sum(rep.stats.get("refresh_enqueued", 0) for rep in reports)
    assert worker_process.log is not None
    worker_process.log.wait_for(r"refresher\.refresh\[\S+\] succeeded", count=enqueued)
    assert worker_process.log.count(r"refresher\.refresh\[\S+\] succeeded in \S+ 'written'") == enqueued
    assert loaders.calls("hot") == 1 + enqueued
    # at most one load per key per window: a value is due again only once it has aged
    # 80% of its TTL, so two loads closer than that refreshed one value twice
    starts = loaders.call_times("hot")
    gaps = [later - earlier for earlier, later in zip(starts, starts[1:])]
    assert min(gaps) > 2 * 0.8 - 0.3, gaps
    # the values really changed: readers saw refreshed data
    assert len({v["loaded_at"] for rep in reports for v in rep.values}) >= 3


def test_sync_and_async_readers_in_four_processes_load_once(r: redis.Redis, worker_process: WorkerProcess) -> None:
    """Async readers in 2 processes and sync readers in 2 more (10 each), and a worker,
    all on one cold key: one origin call."""
    reports = run_readers("tests.support.loaders.slow_user", [2002], processes=4, threads=10,
                          mode=["async", "async", "sync", "sync"])
    assert [e for rep in reports for e in rep.errors] == []
    assert [v for rep in reports for v in rep.values] == [{"id": 2002, "name": "user 2002"}] * 40
    assert loaders.calls("slow_user") == 1


@pytest.mark.standalone_only  # redis.asyncio's cluster client holds the loop 30-60 ms while it sets up
def test_async_readers_never_block_their_event_loop_in_a_cold_stampede(r: redis.Redis) -> None:
    """2 processes x 25 tasks miss one key whose sync loader takes 200 ms, with asyncio's
    slow-callback detection on: no callback may hold a loop for 100 ms (the loader runs in
    a thread; waiters sleep on pub/sub). Fewer processes than cores, so a slow callback
    means blocking, not a starved CPU."""
    reports = run_readers("tests.support.loaders.slow_user", [3003], processes=2, threads=25, mode="async",
                          watch_loop=True)
    assert [e for rep in reports for e in rep.errors] == []
    assert [v for rep in reports for v in rep.values] == [{"id": 3003, "name": "user 3003"}] * 50
    assert loaders.calls("slow_user") == 1
