"""invalidate_all (hard and soft), invalidate_tag and versioned loaders, against a real
redis-server, real workers and reader processes."""

from __future__ import annotations

import os
import threading
import time
import uuid
from typing import Any, Iterator

import pytest
import redis

from refresher import Refresher, TaskRejected
from refresher.core.policy import Dropped
from tests.support import epoch_loaders as el
from tests.support.ageing import into_window
from tests.support.readers import CTX
from tests.support.reading import Reading
from tests.support.servers import RedisServer, WorkerProcess

READERS = 3
SECONDS = 3.0


@pytest.fixture(scope="module")
def epoch_worker(redis_server: RedisServer) -> Iterator[WorkerProcess]:
    """One worker for the module's tests (each test's redis_url fixture empties Redis)."""
    proc = WorkerProcess(os.environ["REFRESHER_REDIS_URL"], loaders="tests.support.epoch_loaders", concurrency=2,
                         extra_env={"REFRESHER_QUEUE": "epochs"}).start()
    yield proc
    proc.discard()


def warm_up() -> None:
    el.control.delete("epoch:calls", "epoch:generation")
    el.profile.get_many(range(el.KEYS))
    assert el.cache.tracker.wait_live(10)


def run_readers(mode: str, during: Any) -> tuple[list[tuple[float, int, int]], list[str], list[dict[str, int]]]:
    """READERS processes read every key for SECONDS; `during()` runs in the middle."""
    ready, go, out = CTX.Event(), CTX.Event(), CTX.Queue()
    procs = [CTX.Process(target=el.read_all, args=(mode, SECONDS, ready, go, out)) for _ in range(READERS)]
    for proc in procs:
        proc.start()
    assert ready.wait(60)
    go.set()
    time.sleep(SECONDS / 4)  # the load on the readers, not a synchronisation: they read meanwhile
    during()
    reports = [out.get(timeout=60) for _ in procs]
    for proc in procs:
        proc.join(10)
    reads = [read for report in reports for read in report[0]]
    errors = [error for report in reports for error in report[1]]
    return reads, errors, [report[2] for report in reports]


@pytest.mark.standalone_only
def test_hard_invalidate_all_serves_no_old_value_after_it_returns(reading: Reading, redis_url: str, epoch_worker: WorkerProcess) -> None:
    warm_up()
    returned: list[float] = []

    def invalidate() -> None:
        el.control.set("epoch:generation", 1)
        el.profile.invalidate_all(hard=True)
        returned.append(time.monotonic())

    reads, errors, _ = run_readers(reading.mode, invalidate)
    assert errors == []
    old = [(t, n) for t, n, generation in reads if t > returned[0] and generation == 0]
    assert old == [], f"{len(old)} reads after invalidate_all returned got the old value"
    assert any(t < returned[0] and generation == 0 for t, _, generation in reads)  # it was serving before
    calls = {int(n): int(c) for n, c in el.control.hgetall("epoch:calls").items()}
    assert calls == {n: 2 for n in range(el.KEYS)}  # one load per key after it, coalesced fleet-wide


@pytest.mark.standalone_only
def test_soft_invalidate_all_keeps_serving_and_refreshes_each_key_once(reading: Reading, redis_url: str, epoch_worker: WorkerProcess) -> None:
    warm_up()

    def invalidate() -> None:
        el.control.set("epoch:generation", 1)
        el.profile.invalidate_all(hard=False)

    reads, errors, stats = run_readers(reading.mode, invalidate)
    assert errors == []
    for key in ("miss", "coalesced", "waited", "load"):  # no reader waited on the origin
        assert sum(s.get(key, 0) for s in stats) == 0, key
    calls = {int(n): int(c) for n, c in el.control.hgetall("epoch:calls").items()}
    assert calls == {n: 2 for n in range(el.KEYS)}  # the warm-up, then exactly one refresh each
    last = {n: generation for _, n, generation in sorted(reads)}
    assert last == {n: 1 for n in range(el.KEYS)}  # and readers moved on to the new values


def test_a_tag_drops_its_values_across_loaders(reading: Reading, redis_url: str) -> None:
    loaders = (el.user_profile, el.user_posts, el.user_badges)
    el.control.delete("epoch:tag_calls", "epoch:generation")
    for loader in loaders:
        for user in (1001, 1002):
            reading.get(loader, user)
    el.control.set("epoch:generation", 1)
    if reading.mode == "sync":
        el.cache.invalidate_tag("user:1001")
    else:
        from refresher.io.drivers import loop
        loop.run(lambda: el.cache.ainvalidate_tag("user:1001"))
    assert [reading.get(loader, 1001)["generation"] for loader in loaders] == [1, 1, 1]
    assert [reading.get(loader, 1002)["generation"] for loader in loaders] == [0, 0, 0]
    calls = {key.decode(): int(c) for key, c in el.control.hgetall("epoch:tag_calls").items()}
    assert calls == {"profile:1001": 2, "posts:1001": 2, "badges:1001": 2, "profile:1002": 1, "posts:1002": 1, "badges:1002": 1}
    el.cache.invalidate_tag("badges")  # a tag only one loader carries
    assert reading.get(el.user_badges, 1002)["generation"] == 1 and reading.get(el.user_posts, 1002)["generation"] == 0


@pytest.fixture
def cache(redis_url: str) -> Iterator[Refresher]:
    c = Refresher(redis_url)  # on the queue the in-process `worker` reads
    yield c
    c.close()


@pytest.mark.parametrize("drop", ["invalidate_all", "invalidate_tag"])
@pytest.mark.parametrize("loading", ["reader", "worker"])
def test_a_load_in_flight_across_an_invalidation_is_not_served(
    reading: Reading, cache: Refresher, r: redis.Redis, worker: object, tasks_done: Any, drop: str, loading: str
) -> None:
    """The load (a reader's miss, or a worker's refresh) reads its epochs before it calls
    the origin; the invalidation comes while it is in the origin; what it commits is
    already marked old, so the next read loads again."""
    armed, started, release = threading.Event(), threading.Event(), threading.Event()
    generation = [0]
    tag = "t" + uuid.uuid4().hex[:8]

    @cache.loader(ttl=60, name="t." + uuid.uuid4().hex[:10], tags=lambda n: [tag])
    def slow(n: int) -> int:
        if generation[0] == 0 and armed.is_set():
            started.set()
            assert release.wait(10)
        return generation[0]

    if loading == "reader":
        armed.set()
        first = threading.Thread(target=lambda: reading.get(slow, 1))
        first.start()
    else:
        reading.get(slow, 1)  # loaded, generation 0
        into_window(r, slow.keys(1))
        armed.set()
        assert reading.get(slow, 1) == 0  # served, and a refresh asked for
    assert started.wait(10)  # the load is in the origin
    generation[0] = 1
    if drop == "invalidate_all":
        slow.invalidate_all(hard=True)
    else:
        cache.invalidate_tag(tag)
    release.set()
    if loading == "reader":
        first.join(10)
    else:
        assert tasks_done.wait(1) == ["written"]  # it wrote, with the old marks
    assert reading.get(slow, 1) == 1


def test_soft_invalidate_all_serves_and_asks_for_a_refresh(reading: Reading, cache: Refresher) -> None:
    @cache.loader(ttl=60, name="t." + uuid.uuid4().hex[:10])
    def value(n: int) -> int:
        return n

    reading.get(value, 1)
    reading.get(value, 1)
    value.invalidate_all(hard=False)
    assert reading.get(value, 1) == 1
    assert cache.stats["refresh_asked"] == 1 and cache.stats["miss"] == 1


def test_epochs_of_a_process_follow_redis_without_a_round_trip_per_read(cache: Refresher, redis_url: str) -> None:
    @cache.loader(ttl=60, name="t." + uuid.uuid4().hex[:10])
    def value(n: int) -> int:
        return n

    value.get(1)
    assert cache.tracker.wait_live(10)
    value.get(1)
    mgets = redis.Redis.from_url(redis_url).info("commandstats").get("cmdstat_mget", {}).get("calls", 0)
    for _ in range(20):
        value.get(1)
    assert redis.Redis.from_url(redis_url).info("commandstats").get("cmdstat_mget", {}).get("calls", 0) == mgets
    envelope = cache.epochs
    assert envelope.judge(value.state.epoch_key, None) is Dropped.NO
    value.invalidate_all(hard=True)
    assert envelope.judge(value.state.epoch_key, None) is None  # forgotten at once: fetched again on the next read


@pytest.mark.standalone_only
def test_a_rolling_deploy_never_serves_the_other_versions_shape(redis_url: str) -> None:
    """Old and new app processes and old and new workers at once, on one queue: each
    process only ever gets its own version's shape, and nothing raises."""
    from tests.support import versioned_readers

    workers = [WorkerProcess(redis_url, loaders="tests.support.versioned_loaders",
                             extra_env={"TEST_LOADER_VERSION": str(v), "REFRESHER_QUEUE": "versioned"}).start()
               for v in (1, 2)]
    try:
        ready, go, out = CTX.Event(), CTX.Event(), CTX.Queue()
        procs = [CTX.Process(target=versioned_readers.read, args=(v, 3.0, ready, go, out)) for v in (1, 2, 1, 2)]
        for proc in procs:
            proc.start()
        assert ready.wait(60)
        go.set()
        reports = [out.get(timeout=60) for _ in procs]
        for proc in procs:
            proc.join(10)
    finally:
        for worker in workers:
            worker.stop()
    assert [errors for _, _, errors in reports] == [[], [], [], []]
    for version, shapes, _ in reports:
        assert set(shapes) == {version}, (version, shapes)
    assert sum(w.log.count("refresh written") for w in workers if w.log is not None) > 0  # refreshes ran meanwhile


def test_a_worker_of_another_version_does_not_write(cache: Refresher, redis_url: str, worker: object, tasks_done: Any) -> None:
    @cache.loader(ttl=60, name="t." + uuid.uuid4().hex[:10], version=3)
    def shaped(n: int) -> int:
        return n

    from workers.app import app

    app.send_task("refresher.refresh", args=[shaped.name, [1], {}, time.time(), None, 2], queue="refresher")
    app.send_task("refresher.refresh", args=[shaped.name, [1], {}, time.time(), None, 3], queue="refresher")
    assert sorted(tasks_done.shown(2)) == [
        repr(TaskRejected("version_mismatch: the task is for version 2, this worker's loader is version 3")), "written"]
    assert shaped.keys(1).value.startswith(f"{cache.namespace}:{{{shaped.name}:v3:")
