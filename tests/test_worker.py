"""The refresh task on a real Celery worker (in this process, threads pool)."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from typing import Any, Iterator

import pytest
import redis

from refresher import Refresher, RefreshFailed, TaskRejected
from refresher.core.envelope import Envelope
from refresher.core.protocol.layout import NOTHING_READ
from refresher import Loader
from refresher.core.lock import new_token
from refresher.core.commit import Commit, commit
from refresher.core.miss import BACKOFF
from refresher.core.read import ask_for_refresh
from refresher.core.keys import Keys
from tests.conftest import TaskLog
from tests.support.ageing import into_window
from tests.support.locks import Lock


@pytest.fixture
def cache(redis_url: str) -> Iterator[Refresher]:
    c = Refresher(redis_url)
    yield c
    c.close()


def make_loader(cache: Refresher, delay: float = 0.0, fail: bool = False, **options: Any) -> tuple[Loader[..., Any], list[int]]:
    calls: list[int] = []

    @cache.loader(ttl=60, name="t." + uuid.uuid4().hex[:10], **options)
    def load(n: int) -> dict[str, int]:
        calls.append(n)
        if fail and len(calls) > 1:
            raise ConnectionRefusedError("origin down")
        time.sleep(delay)
        return {"n": n, "version": len(calls)}

    return load, calls


def send(cache: Refresher, loader: Loader[..., Any], *args: Any, enqueued_at: float, seen: int | None) -> None:
    """A refresh task as a reader publishes it (asking to replace version `seen`), or
    as one sent by hand (seen=None: refreshed unless written after `enqueued_at`)."""
    call = loader.call(args, {})
    cache.publisher.app.send_task(
        "refresher.refresh", args=[loader.name, call.args, call.kwargs, enqueued_at, seen], queue=cache.queue,
    )


def test_a_read_in_the_window_is_refreshed_by_the_worker(
    cache: Refresher, r: redis.Redis, tasks_done: TaskLog, worker: object
) -> None:
    load, calls = make_loader(cache)
    assert load.get(1) == {"n": 1, "version": 1}
    into_window(r, load.keys(1))
    assert load.get(1) == {"n": 1, "version": 1}  # served at once, refresh asked
    assert tasks_done.wait(1) == ["written"]
    assert load.get(1) == {"n": 1, "version": 2}
    assert calls == [1, 1]
    envelope = Envelope.from_bytes(r.get(load.keys(1).value) or b"")
    assert envelope.delta_ms >= 0  # measured from the enqueue: queue wait included


def test_the_same_refresh_delivered_twice_at_once_loads_once(
    cache: Refresher, r: redis.Redis, tasks_done: TaskLog, worker: object
) -> None:
    load, calls = make_loader(cache, delay=0.3)
    load.get(2)
    seen = into_window(r, load.keys(2)).version
    enqueued = time.time()
    send(cache, load, 2, enqueued_at=enqueued, seen=seen)
    send(cache, load, 2, enqueued_at=enqueued, seen=seen)
    assert sorted(map(str, tasks_done.wait(2))) == ["deduplicated", "written"]
    assert calls == [2, 2]
    # delivered again after the refresh landed: the version it asked to replace is gone
    send(cache, load, 2, enqueued_at=enqueued, seen=seen)
    assert tasks_done.wait(3)[-1] == "fresh"
    # sent by hand with no version, before the refresh landed: the value is newer
    send(cache, load, 2, enqueued_at=enqueued, seen=None)
    assert tasks_done.wait(4)[-1] == "fresh"
    assert calls == [2, 2]


def test_a_task_for_an_unknown_loader_is_rejected_and_imports_nothing(
    cache: Refresher, tasks_done: TaskLog, worker: object, caplog: pytest.LogCaptureFixture
) -> None:
    import sys

    with caplog.at_level(logging.ERROR, logger="refresher"):
        cache.publisher.app.send_task("refresher.refresh", args=["os.system", ["true"], {}, time.time()], queue=cache.queue)
        cache.publisher.app.send_task("refresher.refresh", args=["antigravity.fly", [], {}, time.time()], queue=cache.queue)
        assert sorted(tasks_done.shown(2)) == sorted(  # two pool threads: either may finish first
            repr(TaskRejected(f"rejected: no loader named {name!r} is registered in this process (check REFRESHER_LOADERS)"))
            for name in ("os.system", "antigravity.fly")
        )
    assert "no loader named 'os.system'" in caplog.text
    assert "antigravity" not in sys.modules


def test_a_failing_refresh_keeps_the_old_value_and_backs_off(
    cache: Refresher, r: redis.Redis, tasks_done: TaskLog, worker: object, caplog: pytest.LogCaptureFixture
) -> None:
    load, calls = make_loader(cache, fail=True, lock_ttl=1)
    first = load.get(3)
    into_window(r, load.keys(3))
    with caplog.at_level(logging.ERROR, logger="refresher"):
        assert load.get(3) == first
        assert tasks_done.shown(1) == [repr(RefreshFailed("ConnectionRefusedError: origin down"))]
    assert f"loader={load.name} key={load.keys(3).value}" in caplog.text and "origin down" in caplog.text
    assert r.get(load.keys(3).pending) == BACKOFF
    assert 0 < r.pttl(load.keys(3).pending) <= 1000  # error_backoff defaults to lock_ttl
    # during the back-off, readers are served and nothing is enqueued
    assert [load.get(3) for _ in range(10)] == [first] * 10
    assert cache.stats["refresh_enqueued"] == 1
    assert calls == [3, 3]


def test_only_the_owner_releases_or_commits(cache: Refresher, r: redis.Redis) -> None:
    load, _ = make_loader(cache)
    keys = load.keys(4)
    first = Lock(cache.sync, keys.lock, ttl_ms=50)
    assert first.acquire()
    r.pexpire(keys.lock, 1)  # the first owner's lock lapses ...
    second = Lock(cache.sync, keys.lock, ttl_ms=5_000)
    deadline = time.monotonic() + 2
    while not second.acquire():  # ... and a second owner takes it once Redis expires it
        assert time.monotonic() < deadline
    assert first.release() is False
    assert not first.extend()
    late = Envelope(0, int(time.time() * 1000), 60_000, 0, 0, b'"late"')
    assert cache.sync.run(commit(keys, first.token, NOTHING_READ, late, 60_000)) is Commit.LOST_LOCK
    assert r.get(keys.lock) == second.token.encode()
    assert r.get(keys.value) is None
    fresh = Envelope(0, int(time.time() * 1000), 60_000, 0, 0, b'"fresh"')
    assert cache.sync.run(commit(keys, second.token, NOTHING_READ, fresh, 60_000)) is Commit.WRITTEN
    assert r.get(keys.lock) is None


def test_lock_tokens_are_random_and_long() -> None:
    tokens = {new_token() for _ in range(100)}
    assert len(tokens) == 100
    assert all(len(bytes.fromhex(t)) >= 16 for t in tokens)


def test_the_watchdog_keeps_a_slow_load_locked_but_not_forever(cache: Refresher, r: redis.Redis) -> None:
    lock = Lock(cache.sync, Keys.build("refresher", "t", "[1]").lock, ttl_ms=150)
    assert lock.acquire()
    held = threading.Event()
    with lock.kept_alive(max_hold_ms=600):
        held.wait(0.4)  # the loader "runs" past the lock's own TTL
        assert r.get(lock.key) == lock.token.encode()
    deadline = time.monotonic() + 2
    assert lock.release()
    lock2 = Lock(cache.sync, Keys.build("refresher", "t", "[2]").lock, ttl_ms=150)
    assert lock2.acquire()
    with lock2.kept_alive(max_hold_ms=450):
        while r.exists(lock2.key):  # the watchdog gives up after max_hold: the lock lapses
            assert time.monotonic() < deadline
    assert time.monotonic() < deadline


def test_a_reader_whose_view_predates_a_commit_asks_for_no_second_refresh(
    cache: Refresher, redis_url: str, r: redis.Redis, tasks_done: TaskLog, worker: object
) -> None:
    """Issue 7: a reader reads the old value in its window; a worker commits the new one
    (which clears the pending marker); only then does that reader claim the marker and
    publish. One origin call for the window, whichever side the late claim reaches."""
    load, calls = make_loader(cache)
    load.get(6)
    stale_view = into_window(r, load.keys(6))  # what a reader in another process has read
    load.get(6)  # a reader asks; the worker refreshes
    assert tasks_done.wait(1) == ["written"]
    assert r.get(load.keys(6).pending) is None  # the commit cleared the marker

    other = Refresher(redis_url)  # the stale reader's process: its own per-process memo
    try:
        late = Loader(other, load.fn, load.name, load.settings)  # not registered: the worker keeps `load`
        other.sync.run(ask_for_refresh(late.state, late.call((6,), {}), stale_view))
        assert other.flush()
        assert other.stats["refresh_enqueued"] == 0 and other.stats["refresh_deduplicated"] == 1
        assert r.get(load.keys(6).pending) is None
    finally:
        other.close()
    # the same late request, had it been published before the commit: the worker drops it
    send(cache, load, 6, enqueued_at=time.time(), seen=stale_view.version)
    assert tasks_done.wait(2)[-1] == "fresh"
    assert calls == [6, 6]


def test_a_threads_pool_worker_takes_the_next_task_as_soon_as_one_is_done(
    cache: Refresher, tasks_done: TaskLog, worker: object
) -> None:
    """A pool thread's acknowledgement wakes the worker's event loop: before kombu 5.7 it
    waited for the loop's next timer (up to 10 s), and with the prefetch limit reached
    the queue behind it waited too (twelve tasks took 10 s on celery 5.3.6, kombu 5.3.7)."""
    load, _ = make_loader(cache)
    started = time.monotonic()
    for n in range(12):  # two threads, prefetch 1 each: six rounds of acknowledgements
        send(cache, load, n, enqueued_at=time.time(), seen=None)
    assert tasks_done.wait(12) == ["written"] * 12
    assert time.monotonic() - started < 3  # 30 ms unloaded; 1 s or more per round without a wake-up
